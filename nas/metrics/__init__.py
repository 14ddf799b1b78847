"""Complexity metrics of a network: parameters, fvcore MACs, peak activation memory, activation
traffic, and a (Horowitz 2014) energy estimate.

``measure(arch)`` gives all of them as one ``Complexity`` value; the functions below measure one
aspect of an already built model.
"""

from nas.metrics.complexity import Complexity, count_macs, count_params, measure
from nas.metrics.energy import energy_estimate_mj
from nas.metrics.memory import (
    ActivationProfile,
    ActivationTrace,
    activation_traffic_bytes,
    peak_activation_bytes,
    profile,
    profile_activations,
    trace,
)

__all__ = [
    "ActivationProfile",
    "ActivationTrace",
    "Complexity",
    "activation_traffic_bytes",
    "count_macs",
    "count_params",
    "energy_estimate_mj",
    "measure",
    "peak_activation_bytes",
    "profile",
    "profile_activations",
    "trace",
]
