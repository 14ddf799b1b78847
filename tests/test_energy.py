"""The energy estimate (``nas.metrics.energy``): Horowitz 2014 constants, fp32 and int8."""

from __future__ import annotations

import pytest

from nas.metrics import energy_estimate_mj
from nas.metrics.energy import DRAM_PJ_PER_BYTE, MAC_PJ, SRAM_PJ_PER_BYTE


def test_constants_from_horowitz() -> None:
    assert MAC_PJ["fp32"] == pytest.approx(3.7 + 0.9)
    assert MAC_PJ["int8"] == pytest.approx(0.2 + 0.03)
    assert SRAM_PJ_PER_BYTE == 1.25  # 5 pJ per 32-bit word
    assert DRAM_PJ_PER_BYTE == 160.0  # 640 pJ per 32-bit word


def test_fp32_formula() -> None:
    # 1e6 MACs x 4.6 pJ + 1000 params x 4 B x 160 pJ/B + 1e5 B x 1.25 pJ/B, in mJ (1 mJ = 1e9 pJ).
    expected_pj = 1e6 * 4.6 + 1000 * 4 * 160 + 1e5 * 1.25
    assert energy_estimate_mj(1_000_000, 1000, 100_000) == pytest.approx(expected_pj / 1e9)


def test_int8_variant() -> None:
    # int8: 0.23 pJ per MAC, 1-byte weights; traffic counted at 4 B/element shrinks to a quarter.
    expected_pj = 1e6 * 0.23 + 1000 * 1 * 160 + 1e5 / 4 * 1.25
    assert energy_estimate_mj(1_000_000, 1000, 100_000, dtype="int8") == pytest.approx(expected_pj / 1e9)
    assert energy_estimate_mj(1_000_000, 1000, 25_000, dtype="int8", traffic_bytes_per_element=1) == (
        pytest.approx(expected_pj / 1e9)
    )


def test_monotone_in_every_term() -> None:
    base = energy_estimate_mj(10_000, 100, 1000)
    assert energy_estimate_mj(20_000, 100, 1000) > base
    assert energy_estimate_mj(10_000, 200, 1000) > base
    assert energy_estimate_mj(10_000, 100, 2000) > base
    assert energy_estimate_mj(10_000, 100, 1000, dtype="int8") < base
    assert energy_estimate_mj(0, 0, 0) == 0.0


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="dtype"):
        energy_estimate_mj(1, 1, 1, dtype="fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        energy_estimate_mj(-1, 1, 1)
