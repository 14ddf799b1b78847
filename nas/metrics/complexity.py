"""Complexity of a network: parameters, MACs (fvcore), activation memory, and an energy estimate.

MACs come from fvcore's ``FlopCountAnalysis`` on the eval-mode model and a ``torch.zeros(1, C, R, R)``
input. fvcore counts one fused multiply-add as one "flop", so its total is a MAC count; the figures match
what fvcore reports for torchvision's own models (``tests/test_complexity.py``).

What fvcore counts: convolutions, linear/matmul, batch norm (eval: one op per element, plus one more with
affine weights) and ``adaptive_avg_pool2d`` (one op per input element; the project counts
``adaptive_avg_pool1d`` of 1-D networks the same way). What it does not count:

* reported by fvcore as unsupported: ``hardtanh`` (ReLU6), ``hardswish``, ``hardsigmoid``, ``sigmoid``,
  ``silu``, elementwise ``add`` (residual sums) and ``mul`` (squeeze-excite scaling), ``max_pool2d`` and
  ``avg_pool2d``;
* ignored silently by fvcore: ``relu``, ``clamp``, ``cat`` (Fire modules), ``constant_pad_nd``,
  ``stack``, and view/shape ops (``flatten``, ``view``, ``reshape``, ``transpose``, ``size``, ``dropout``).

The project keeps fvcore's total as the MAC figure, so numbers stay comparable with published ones, and
makes the gap visible instead: ``fvcore_skipped_ops`` lists, by op name and number of calls, both the
unsupported ops and the silently ignored ops that do real work (relu, clamp, cat, pad, stack). Their cost
is not lost: every byte they read and write is in ``activation_traffic_bytes`` and so in the energy
estimate. View/shape ops move no data and are not listed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.metrics.energy import energy_estimate_mj
from nas.metrics.memory import profile, trace

# Ops fvcore drops without a word although they compute or move data: recorded, never counted as MACs.
_SILENTLY_IGNORED = ("aten::relu", "aten::relu_", "aten::clamp", "aten::clamp_", "aten::cat")
_SILENTLY_IGNORED += ("aten::stack", "aten::constant_pad_nd")
_FVCORE_LOGGERS = ("fvcore.nn.jit_analysis", "fvcore.nn.jit_handles", "fvcore")


@dataclass(frozen=True)
class Complexity:
    """Everything the search and the reports need to know about a network's cost, as one value.

    ``macs`` is fvcore's total (eval mode, batch 1); ``fvcore_skipped_ops`` the op calls it did not
    count; byte figures are fp32 (4 bytes per element) except ``int8_weight_bytes``, a microcontroller's
    flash for the int8 model (``int8_weight_bytes``); ``energy_mj_estimate`` is an estimate
    (``nas.metrics.energy``), not a measurement.
    """

    params: int
    macs: int
    macs_by_operator: dict[str, int] = field(hash=False)
    fvcore_skipped_ops: dict[str, int] = field(hash=False)
    peak_activation_bytes: int
    activation_traffic_bytes: int
    energy_mj_estimate: float
    int8_weight_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """A plain JSON-able dict (copies of the dicts, ints and a float)."""
        data = asdict(self)
        data["macs_by_operator"] = dict(self.macs_by_operator)
        data["fvcore_skipped_ops"] = dict(self.fvcore_skipped_ops)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Complexity:
        """Inverse of ``to_json``, for cached results."""
        return cls(
            params=int(data["params"]),
            macs=int(data["macs"]),
            macs_by_operator={str(k): int(v) for k, v in data["macs_by_operator"].items()},
            fvcore_skipped_ops={str(k): int(v) for k, v in data["fvcore_skipped_ops"].items()},
            peak_activation_bytes=int(data["peak_activation_bytes"]),
            activation_traffic_bytes=int(data["activation_traffic_bytes"]),
            energy_mj_estimate=float(data["energy_mj_estimate"]),
            int8_weight_bytes=int(data.get("int8_weight_bytes", 0)),
        )


def count_params(model: torch.nn.Module) -> int:
    """All parameters (trainable or not, shared ones once); BatchNorm running stats are buffers, not
    parameters, as in torchvision's published counts."""
    return sum(p.numel() for p in model.parameters())


def int8_weight_bytes(model: torch.nn.Module) -> int:
    """Flash for the int8 model as a QDQ export stores it: batch norm folded into the convs, one byte per
    conv or linear weight, and per output channel an int32 bias and an fp32 scale (the zero points of
    symmetric weights are not stored on microcontroller runtimes). The exported INT8 ONNX file's
    initializers are the exact figure (``nas export --int8``)."""
    layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)
    return sum(m.weight.numel() + 8 * m.weight.shape[0] for m in model.modules() if isinstance(m, layers))


def count_macs(
    model: torch.nn.Module, in_chans: int, input_size: int, dims: int = 2
) -> tuple[int, dict[str, int], dict[str, int]]:
    """fvcore MACs of one batch-1 eval-mode forward pass (``dims`` 1: a signal of ``input_size``
    samples): total, by operator, and skipped op calls.

    Skipped ops are keyed without the ``aten::`` prefix (``{"add": 10, "hardtanh": 35}``); see the
    module docstring for what fvcore skips and why the total is kept as is.
    """
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import elementwise_flop_counter

    skipped: Counter[str] = Counter()

    def record(kind: str) -> Callable[[list[Any], list[Any]], Counter[str]]:
        """An fvcore op handle that notes the call and counts nothing."""

        def handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
            skipped[_short(kind)] += 1
            return Counter()

        return handle

    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, in_chans, *(input_size,) * dims, device=device)
    try:
        with _quiet_fvcore(), torch.no_grad():
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            analysis.set_op_handle(**{kind: record(kind) for kind in _SILENTLY_IGNORED})
            analysis.set_op_handle("aten::adaptive_avg_pool1d", elementwise_flop_counter(1, 0))
            total = int(analysis.total())
            by_operator = {op: int(n) for op, n in analysis.by_operator().items() if n}
            for kind, calls in analysis.unsupported_ops().items():
                skipped[_short(kind)] += calls
    finally:
        model.train(was_training)
    return total, by_operator, dict(sorted(skipped.items()))


def measure(arch: ArchSpec, in_chans: int = 3, input_size: int = 224, num_classes: int = 1000) -> Complexity:
    """Build ``arch`` and measure it: one fvcore pass for MACs, one fx trace for memory and traffic."""
    model = build_model(arch, in_chans=in_chans, num_classes=num_classes, input_size=input_size).eval()
    params = count_params(model)
    macs, by_operator, skipped = count_macs(model, in_chans, input_size, arch.dims)
    activations = profile(trace(model, in_chans, input_size, arch.dims), bytes_per_element=4)
    return Complexity(
        params=params,
        macs=macs,
        macs_by_operator=by_operator,
        fvcore_skipped_ops=skipped,
        peak_activation_bytes=activations.peak_bytes,
        activation_traffic_bytes=activations.traffic_bytes,
        energy_mj_estimate=energy_estimate_mj(macs, params, activations.traffic_bytes, dtype="fp32"),
        int8_weight_bytes=int8_weight_bytes(model),
    )


def _short(kind: str) -> str:
    return kind.split("::", 1)[-1]


@contextmanager
def _quiet_fvcore() -> Iterator[None]:
    """fvcore logs a warning per unsupported op; the skipped ops are returned instead."""
    loggers = [logging.getLogger(name) for name in _FVCORE_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
