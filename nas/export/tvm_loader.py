"""Run a model exported by ``nas export --format tvm`` (written beside it as ``run_tvm.py``).

Needs Python 3, numpy and the TVM runtime of the version that compiled the library (its
``model_tvm.json`` names it; on a board: ``pip install apache-tvm==<version> apache-tvm-ffi``), nothing
from the ``nas`` package. The library takes one input at a time, batch 1: an image as float32 NCHW, raw
pixels in [0, 1], or, for a 1-D network, a signal as float32 NCL, raw as recorded (it normalizes either
itself), and returns logits.

    python run_tvm.py images.npy                      # prints logits and class probabilities
    python run_tvm.py images.npy --out logits.npy     # also writes the logits, shape (N, classes)

``images.npy``: images float32 in [0, 1] shaped (N, C, H, W) or (C, H, W), uint8 arrays divided by 255;
signals float32 shaped (N, C, L) or (C, L). ``model_tvm.json``'s ``input_shape`` says which.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def load(library: Path):
    """The library's Relax virtual machine on this machine's CPU."""
    import tvm
    from tvm import relax

    return relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())


def as_input(images: np.ndarray, shape: list[int] | None) -> np.ndarray:
    """Images as float32 NCHW in [0, 1] (uint8 ones divided by 255), signals (a 3-D ``shape``) as float32
    NCL unscaled; checked against the model's input shape when it is known."""
    if images.dtype == np.uint8 and (shape is None or len(shape) == 4):
        images = images.astype(np.float32) / np.float32(255)
    images = np.asarray(images, dtype=np.float32)
    if shape is not None and images.ndim == len(shape) - 1:
        images = images[None]
    if shape is not None and tuple(images.shape[1:]) != tuple(shape[1:]):
        wanted = ", ".join(map(str, shape[1:]))
        raise SystemExit(f"images have shape {images.shape}; the model takes (N, {wanted})")
    return np.ascontiguousarray(images)


def logits(vm, images: np.ndarray) -> np.ndarray:
    """The model's logits for each input, one call per input."""
    import tvm

    rows = []
    for image in images:
        out = vm["main"](tvm.runtime.tensor(image[None], tvm.cpu()))
        rows.append((out if hasattr(out, "numpy") else out[0]).numpy()[0])
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def probabilities(raw: np.ndarray, task: str) -> np.ndarray:
    raw = raw.astype(np.float64)
    if task == "multi-label":
        return 1 / (1 + np.exp(-raw))
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a TVM-compiled nas model on .npy images or signals.")
    parser.add_argument("images", type=Path, help=".npy file: float32 [0, 1] NCHW (or uint8), or NCL signals")
    parser.add_argument("--lib", type=Path, default=HERE / "model_tvm.so", help="the compiled library")
    parser.add_argument("--meta", type=Path, default=HERE / "model_tvm.json", help="its description")
    parser.add_argument("--out", type=Path, help="write the logits here (.npy)")
    args = parser.parse_args(argv)
    meta = json.loads(args.meta.read_text()) if args.meta.is_file() else {}
    images = as_input(np.load(args.images), meta.get("input_shape"))
    result = logits(load(args.lib), images)
    names = meta.get("class_names") or [f"class_{k}" for k in range(result.shape[1] if result.size else 0)]
    probs = probabilities(result, meta.get("task", "multi-class")) if result.size else result
    for i, (row, p) in enumerate(zip(result, probs, strict=True)):
        best = int(np.argmax(p))
        values = " ".join(f"{v:.6g}" for v in row)
        print(f"{i}: logits [{values}] -> {names[best]} (p={p[best]:.4f})")
    if args.out is not None:
        np.save(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
