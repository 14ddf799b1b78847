"""Does a MedMNIST set's test split differ from its train and val splits in what the images show? (issue
14: RetinaMNIST's test AUC stays 0.05 below what the same recipe scores on held-out train + val.)

    python benchmarks/split_shift.py [--data retinamnist]

Printed per pair of splits: class shares; a *domain classifier*'s AUC (L2 logistic regression on each
image's 7x7 mean-pooled pixels and per-channel mean and std, 5-fold stratified cross-validation: 0.5
when a linear model on these features cannot tell the splits apart); the median and 10th percentile of
each image's distance to its nearest training image (pixels in [0, 1]; a split holding near-copies of
training images, e.g. the same patient's other eye, sits closer); and the accuracy of that neighbour's
label. Reads the test split's images and labels, so it is a diagnosis of the data, never an input to a
search or a recipe choice.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from nas.data.medmnist import find_file
from nas.evaluate.protocols.kfold import fold_assignment
from nas.metrics.clinical import roc_auc

POOL, FOLDS, L2, SEED = 7, 5, 1e-2, 0


def features(images: np.ndarray) -> np.ndarray:
    """Mean-pooled pixels on a ``POOL`` x ``POOL`` grid and per-channel mean and std, in [0, 1]."""
    x = images.astype(np.float32) / 255
    x = x.reshape(*x.shape[:3], -1)  # N, H, W, C (grey images get C = 1)
    n, h, w, c = x.shape
    pooled = x[:, : h // POOL * POOL, : w // POOL * POOL].reshape(n, POOL, h // POOL, POOL, w // POOL, c)
    return np.hstack([pooled.mean(axis=(2, 4)).reshape(n, -1), x.mean(axis=(1, 2)), x.std(axis=(1, 2))])


def fit_logistic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L2 logistic regression's weights (the last one the bias), fitted by L-BFGS."""
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        logits = x @ w[:-1] + w[-1]
        value = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + L2 * w[:-1].square().sum()
        value.backward()
        return value

    optimizer.step(loss)
    return w.detach()


def domain_auc(a: np.ndarray, b: np.ndarray) -> float:
    """Out-of-fold AUC of an L2 logistic regression telling ``b``'s rows (1) from ``a``'s (0)."""
    x = np.vstack([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    fold = fold_assignment(y.astype(int), FOLDS, SEED)  # stratified: each fold gets its share of both
    scores = np.empty(len(y))
    for k in range(FOLDS):
        train, held = fold != k, fold == k
        mean, std = x[train].mean(0), x[train].std(0) + 1e-6
        w = fit_logistic(torch.tensor((x[train] - mean) / std, dtype=torch.float64), torch.tensor(y[train]))
        scores[held] = (torch.tensor((x[held] - mean) / std, dtype=torch.float64) @ w[:-1] + w[-1]).numpy()
    return float(roc_auc(y.astype(int), scores))


def nearest(queries: np.ndarray, pool: np.ndarray, same: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each query's distance to its nearest ``pool`` row and that row's index (``same``: not itself)."""
    d2 = (queries**2).sum(1)[:, None] + (pool**2).sum(1)[None] - 2 * queries @ pool.T
    if same:
        np.fill_diagonal(d2, np.inf)
    index = d2.argmin(1)
    return np.sqrt(np.maximum(d2[np.arange(len(queries)), index], 0)), index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="retinamnist", help="a MedMNIST name (default retinamnist)")
    args = parser.parse_args()
    with np.load(find_file(args.data, 28)) as data:
        images = {s: data[f"{s}_images"] for s in ("train", "val", "test")}
        labels = {s: data[f"{s}_labels"].reshape(-1) for s in ("train", "val", "test")}
    classes = int(max(v.max() for v in labels.values())) + 1
    for split in images:
        shares = np.bincount(labels[split], minlength=classes) / len(labels[split])
        print(f"{split:5s} {len(labels[split]):5d} images, class shares {np.round(shares, 3).tolist()}")
    feats = {s: features(v) for s, v in images.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        print(f"domain classifier {a} vs {b}: AUC {domain_auc(feats[a], feats[b]):.3f}")
    pixels = {s: v.reshape(len(v), -1).astype(np.float32) / 255 for s, v in images.items()}
    for split in images:
        dist, index = nearest(pixels[split], pixels["train"], same=split == "train")
        agree = np.mean(labels["train"][index] == labels[split])
        print(
            f"{split:5s} to its nearest training image: median {np.median(dist):.2f}, "
            f"10th percentile {np.percentile(dist, 10):.2f}; that image's label agrees {agree:.3f}"
        )


if __name__ == "__main__":
    main()
