"""A first-order ESTIMATE of the energy of one inference, from operation and memory-access counts.

    energy = MACs x E_MAC  +  weight bytes x E_DRAM/byte  +  activation traffic bytes x E_SRAM/byte

It ranks candidate networks by what dominates energy on edge hardware (arithmetic, off-chip weight reads,
on-chip activation traffic); it is not a measurement and no device reports these numbers. Assumptions:
weights are read once from off-chip DRAM per inference (no on-chip weight reuse across inferences);
every activation byte an op reads or writes goes through on-chip SRAM (writes priced as reads); control,
instruction fetch and leakage are ignored.

Source of the constants: M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, 45 nm process, 0.9 V:

* 32-bit float multiply 3.7 pJ, 32-bit float add 0.9 pJ   -> fp32 MAC 4.6 pJ
* 8-bit int multiply 0.2 pJ, 8-bit int add 0.03 pJ         -> int8 MAC 0.23 pJ
* 32-bit read from an 8 KB SRAM 5 pJ                        -> 1.25 pJ/byte
* 32-bit read from DRAM 640 pJ                              -> 160 pJ/byte

The int8 variant (``dtype="int8"``) prices MACs at the int8 figure and stores every element (weights and
activations) in 1 byte; memory energy per byte is the same for both dtypes.
"""

from __future__ import annotations

from typing import Literal

Dtype = Literal["fp32", "int8"]

# Horowitz, ISSCC 2014, 45 nm (picojoules).
FP32_MUL_PJ = 3.7
FP32_ADD_PJ = 0.9
INT8_MUL_PJ = 0.2
INT8_ADD_PJ = 0.03
SRAM_READ_32BIT_PJ = 5.0  # 8 KB SRAM
DRAM_READ_32BIT_PJ = 640.0

MAC_PJ: dict[str, float] = {"fp32": FP32_MUL_PJ + FP32_ADD_PJ, "int8": INT8_MUL_PJ + INT8_ADD_PJ}
BYTES_PER_ELEMENT: dict[str, int] = {"fp32": 4, "int8": 1}
SRAM_PJ_PER_BYTE = SRAM_READ_32BIT_PJ / 4
DRAM_PJ_PER_BYTE = DRAM_READ_32BIT_PJ / 4

_PJ_PER_MJ = 1e9


def energy_estimate_mj(
    macs: int,
    params: int,
    activation_traffic_bytes: int,
    dtype: Dtype = "fp32",
    traffic_bytes_per_element: int = 4,
) -> float:
    """Estimated energy of one inference in millijoules (Horowitz 2014, 45 nm; see the module docstring).

    ``activation_traffic_bytes`` is the figure ``nas.metrics.memory`` reports, counted at
    ``traffic_bytes_per_element`` bytes per element (4, as ``Complexity`` stores it); it is rescaled to
    the element size of ``dtype``, so the same ``Complexity`` gives both the fp32 and the int8 estimate.
    """
    if dtype not in MAC_PJ:
        raise ValueError(f"dtype must be one of {', '.join(MAC_PJ)}, got {dtype!r}")
    if min(macs, params, activation_traffic_bytes) < 0:
        raise ValueError("macs, params and activation_traffic_bytes must be >= 0")
    if traffic_bytes_per_element < 1:
        raise ValueError(f"traffic_bytes_per_element must be >= 1, got {traffic_bytes_per_element}")
    element = BYTES_PER_ELEMENT[dtype]
    compute_pj = macs * MAC_PJ[dtype]
    weights_pj = params * element * DRAM_PJ_PER_BYTE
    traffic_pj = activation_traffic_bytes * element / traffic_bytes_per_element * SRAM_PJ_PER_BYTE
    return (compute_pj + weights_pj + traffic_pj) / _PJ_PER_MJ
