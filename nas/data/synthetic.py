"""Generated images for demos and tests when no real data is at hand: a binary task where class 1
carries a faint blurred opacity at a random place on a noisy, vignetted background (a caricature of a
chest X-ray finding). Deterministic for a seed; learnable, but not trivially, by a small network."""

from __future__ import annotations

import numpy as np

from nas.data.splits import Split, Splits


def _images(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 2, n)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    vignette = 0.55 - 0.6 * (xx**2 + yy**2)
    images = vignette + 0.12 * rng.standard_normal((n, size, size))
    centers = rng.uniform(-0.3, 0.3, (n, 2))
    radius = rng.uniform(0.08, 0.16, n)
    blob = np.exp(
        -((xx - centers[:, :1, None]) ** 2 + (yy - centers[:, 1:, None]) ** 2)
        / (2 * radius[:, None, None] ** 2)
    )
    images += 0.25 * labels[:, None, None] * blob
    pixels = np.clip(images * 255, 0, 255).astype(np.uint8)[..., None]
    return pixels, labels.astype(np.int64)


def synthetic_splits(
    size: int = 28, n_train: int = 800, n_val: int = 200, n_test: int = 200, seed: int = 0
) -> Splits:
    """Train/val/test splits of the generated task, named ``synthetic``."""
    rng = np.random.default_rng(seed)
    splits = [Split(*_images(n, size, rng)) for n in (n_train, n_val, n_test)]
    return Splits("synthetic", "binary", ("normal", "finding"), *splits)
