"""Shared pieces of the export tests: a small untrained arch, and one tiny trained run (trained once per
test session on a generated .npz, in a temporary folder)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from medmnist_data import write_npz

from nas.export.format import ExportOptions

SMALL = "conv_k3_s2_c8:ir_k3_e3_c16_se0.25:ir_k3_s2_e3_c24:head_c64"
# residuals, SE, hard-SE, a hidden head layer: what pruning must keep consistent
COUPLED = "conv_k3_s2_c16:ir_k3_e4_c32,ir_k3_e4_c32:ds_k3_c32_hse0.25,ir_k5_e3_c32_se0.25:head_c64_f32"
SHUFFLED = "conv_k3_s2_c16:ir_k3_e4_c32_g2,ir_k3_e4_c32_g2:head_c64"
TRAINED_ARCH = "conv_k3_s2_c8:ir_k3_e3_c16_se0.25,ir_k3_e3_c16:ir_k3_s2_e3_c24:head_c64"
FAST = {"rounds": 5, "calibration_images": 32, "finetune_epochs": 1, "threads": 1}


@functools.cache
def workspace() -> Path:
    path = Path(tempfile.mkdtemp(prefix="nas-export-test-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def data_file() -> Path:
    """A generated MedMNIST-layout file named so that no real dataset answers to its name."""
    return write_npz(workspace() / "tinyxray.npz", sizes=(96, 48, 48))


@functools.cache
def trained_run() -> Path:
    """A model trained for 2 epochs by ``nas.evaluate.train_final`` (arch.txt, weights.pt, metrics.json)."""
    from nas.data import load_dataset
    from nas.evaluate import TrainConfig, train_final

    out = workspace() / "trained"
    config = TrainConfig(epochs=2, batch_size=16, lr=3e-3, threads=1)
    train_final(TRAINED_ARCH, load_dataset(data_file(), 28), config, out)
    return out


def options(out: Path, **changes) -> ExportOptions:
    return ExportOptions(out_dir=out, **{**FAST, **changes})
