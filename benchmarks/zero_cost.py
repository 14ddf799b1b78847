"""Zero-cost proxies: does a score of the untrained network rank architectures as full training does?

Issue #13 asks for a training-free prefilter only if its measured rank correlation earns it a place;
until then the proxies live here, not in ``nas``. Each network is built seeded (as training builds it)
and scored on one seeded mini-batch of training images, normalized as the trainer normalizes them:

- naswot (Mellor et al., ICML 2021): log|det K| with K = C C^T + (1-C)(1-C)^T, C the binary codes
  (pre-activation > 0) of one batch at every activation module (ReLU, ReLU6, hswish, swish; not the SE
  gates), summed over modules, train mode (batch statistics).
- synflow (Tanaka et al. 2020; as in Abdelfattah et al., ICLR 2021): sum |theta * dR/dtheta| over conv
  and linear weights, R = sum of the outputs for one all-ones input, with every parameter made |theta|,
  BatchNorm bypassed and float64 (Abdelfattah's ``synflow``); eval mode, so dropout is off.
- grad_norm (Abdelfattah et al.): sum over conv and linear layers of ||dL/dW||_2, L the training loss
  (cross-entropy) on the batch, train mode.
- snip (Lee et al., ICLR 2019; as in Abdelfattah et al.): sum |W * dL/dW| over conv and linear weights.
- jacob_cov (Mellor et al. 2020, arXiv v1): -sum(log(v + k) + 1/(v + k)), k = 1e-5, v the eigenvalues of
  the correlation matrix of the per-image input gradients of the summed outputs.
- params: parameter count, the baseline every proxy must beat (Abdelfattah et al. report it).

    python benchmarks/zero_cost.py --nets 10 --space mnasnet_small --data pneumoniamnist   # smoke mode
    python benchmarks/zero_cost.py --truth runs/trainings.jsonl --data pneumoniamnist [--compare-tau 0.17]

``--truth`` reads one full training per line (``arch``, ``seed``, ``val_auc``, ``test_auc``, written by
``benchmarks/search_quality.py``), averages over seeds per arch, and prints per proxy Kendall tau and
Spearman rho against the mean test AUC, tau against the mean val AUC, and the median seconds per
network (its build included). The ceiling is how well one training seed ranks the nets against another
(mean pairwise tau; 2+ seeds): no proxy can be expected above it. A |tau| under twice its null standard
deviation is no evidence of any correlation. ``--compare-tau`` is the search's own proxy tau (a short
training); the verdict says whether a proxy matches it. The data must be the data the trainings used.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from nas.arch import ArchSpec
from nas.blocks.base import ACTIVATIONS
from nas.blocks.layers import activation
from nas.builder import build_model
from nas.data import load_dataset
from nas.data.splits import Splits
from nas.errors import DataError
from nas.evaluate import TrainConfig
from nas.evaluate.loop import make_criterion, normalize, to_tensor
from nas.latency.validate import kendall_tau
from nas.metrics.complexity import count_params
from nas.space import SearchSpace

RECTIFIERS = tuple({type(activation(name)) for name in ACTIVATIONS})  # not the SE gates (always > 0)
Batch = tuple[torch.Tensor, torch.Tensor, Callable[..., torch.Tensor]]


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def naswot(model: nn.Module, batch: Batch) -> float:
    x = batch[0]
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64)

    def add_codes(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        code = (inputs[0].flatten(1) > 0).float()
        kernel.add_((code @ code.T + (1 - code) @ (1 - code).T).double())

    hooks = [m.register_forward_hook(add_codes) for m in model.modules() if isinstance(m, RECTIFIERS)]
    with torch.no_grad():
        model.train()(x)
    for hook in hooks:
        hook.remove()
    return torch.linalg.slogdet(kernel).logabsdet.item()


def synflow(model: nn.Module, batch: Batch) -> float:
    model = model.double().eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        bn.register_forward_hook(lambda _module, inputs, _output: inputs[0])  # bypassed
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model(torch.ones((1, *batch[0].shape[1:]), dtype=torch.float64)).sum().backward()
    layers = [m for m in weighted_layers(model) if m.weight.grad is not None]
    return sum((m.weight * m.weight.grad).abs().sum().item() for m in layers)


def _loss_gradients(model: nn.Module, batch: Batch) -> list[nn.Module]:
    x, y, criterion = batch
    criterion(model.train()(x), y).backward()
    return [m for m in weighted_layers(model) if m.weight.grad is not None]


def grad_norm(model: nn.Module, batch: Batch) -> float:
    return sum(m.weight.grad.norm().item() for m in _loss_gradients(model, batch))


def snip(model: nn.Module, batch: Batch) -> float:
    return sum((m.weight * m.weight.grad).abs().sum().item() for m in _loss_gradients(model, batch))


def jacob_cov(model: nn.Module, batch: Batch) -> float:
    x = batch[0].clone().requires_grad_(True)
    out = model.train()(x)
    out.backward(torch.ones_like(out))
    correlations = np.corrcoef(x.grad.flatten(1).double().numpy())
    if not np.isfinite(correlations).all():  # an image with a constant (zero) gradient
        return math.nan
    eigenvalues = np.linalg.eigvalsh(correlations)
    k = 1e-5
    return float(-np.sum(np.log(eigenvalues + k) + 1 / (eigenvalues + k)))


def params(model: nn.Module, batch: Batch) -> float:
    return float(count_params(model))


PROXIES: dict[str, Callable[[nn.Module, Batch], float]] = {
    "naswot": naswot,
    "synflow": synflow,
    "grad_norm": grad_norm,
    "snip": snip,
    "jacob_cov": jacob_cov,
    "params": params,
}


def mini_batch(splits: Splits, size: int, seed: int) -> Batch:
    """``size`` seeded training images as the trainer feeds them (float, normalized), their labels, and
    the trainer's loss."""
    if size > len(splits.train):
        raise DataError(f"--batch {size} exceeds the {len(splits.train)} training images")
    picked = np.sort(np.random.default_rng(seed).choice(len(splits.train), size, replace=False))
    subset = splits.train.subset(picked)
    x = normalize(to_tensor(subset, "cpu").float().div_(255), *splits.normalization())
    return x, torch.from_numpy(subset.labels), make_criterion(splits, TrainConfig(), "cpu")


def score(arch: ArchSpec, splits: Splits, batch: Batch, seed: int) -> dict[str, tuple[float, float]]:
    """(score, seconds) per proxy, each on a fresh network initialized from ``seed``."""
    found = {}
    for name, proxy in PROXIES.items():
        start = time.perf_counter()
        torch.manual_seed(seed)  # weight init (and dropout) as the training's
        model = build_model(arch, splits.n_channels, splits.num_classes, splits.input_size)
        found[name] = (proxy(model, batch), time.perf_counter() - start)
    return found


def read_truth(path: Path) -> dict[str, list[dict]]:
    """Trainings grouped by canonical arch string."""
    trainings: dict[str, list[dict]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            arch = ArchSpec.from_str(row["arch"]).to_str()
            record = {key: float(row[key]) for key in ("val_auc", "test_auc")} | {"seed": int(row["seed"])}
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{number}: not a training record ({exc})") from None
        trainings.setdefault(arch, []).append(record)
    if len(trainings) < 2:
        raise DataError(f"{path} holds {len(trainings)} distinct arch(s); ranking needs 2 or more")
    return trainings


def seed_ceiling(trainings: dict[str, list[dict]]) -> tuple[float, int]:
    """Mean Kendall tau of test AUC between every two seeds, over the nets trained with both."""
    by_seed: dict[int, dict[str, float]] = {}
    for arch, records in trainings.items():
        for r in records:
            by_seed.setdefault(r["seed"], {})[arch] = r["test_auc"]
    taus = []
    for a, b in itertools.combinations(sorted(by_seed), 2):
        shared = sorted(by_seed[a].keys() & by_seed[b].keys())
        if len(shared) >= 2:
            taus.append(kendall_tau([by_seed[a][n] for n in shared], [by_seed[b][n] for n in shared]))
    return (statistics.mean(taus) if taus else math.nan), len(taus)


def null_sd(n: int) -> float:
    """Standard deviation of Kendall tau between independent rankings of ``n`` items."""
    return math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))


def print_scores(i: int, arch: str, scores: dict[str, tuple[float, float]], extra: str = "") -> None:
    figures = "  ".join(f"{name} {value:.4g}" for name, (value, _) in scores.items())
    seconds = sum(s for _, s in scores.values())
    print(f"{i:3d} {extra}{figures}  ({seconds:.2f} s)  {arch}", flush=True)


def smoke(args: argparse.Namespace, splits: Splits, batch: Batch) -> None:
    space = SearchSpace.from_yaml(args.space)
    rng = random.Random(args.seed)
    archs = [space.sample(rng) for _ in range(args.nets)]
    print(f"== {args.nets} random nets of {space.name}, no ground truth (smoke mode)")
    seconds: dict[str, list[float]] = {name: [] for name in PROXIES}
    for i, arch in enumerate(archs, 1):
        scores = score(arch, splits, batch, args.seed)
        print_scores(i, arch.to_str(), scores)
        for name, (_, s) in scores.items():
            seconds[name].append(s)
    medians = "  ".join(f"{name} {statistics.median(s):.3f}" for name, s in seconds.items())
    print(f"median seconds per net (build included): {medians}")


def against_truth(args: argparse.Namespace, splits: Splits, batch: Batch) -> None:
    trainings = read_truth(Path(args.truth))
    counts = [len(records) for records in trainings.values()]
    print(
        f"== {len(trainings)} nets from {args.truth}, seeds per net: min {min(counts)}, "
        f"max {max(counts)}, mean {statistics.mean(counts):.1f}"
    )
    test_auc = {a: statistics.mean(r["test_auc"] for r in rs) for a, rs in trainings.items()}
    val_auc = {a: statistics.mean(r["val_auc"] for r in rs) for a, rs in trainings.items()}
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    for i, arch in enumerate(trainings, 1):
        scores[arch] = score(ArchSpec.from_str(arch), splits, batch, args.seed)
        print_scores(i, arch, scores[arch], f"test AUC {test_auc[arch]:.4f}  ")
    ceiling, pairs = seed_ceiling(trainings)
    n = len(trainings)
    print(
        f"ceiling (seed vs seed, mean Kendall tau of test AUC over {pairs} seed pairs): "
        + (f"{ceiling:.3f}" if pairs else "needs 2+ seeds per net")
    )
    print(f"no-correlation band at {n} nets: |tau| < {2 * null_sd(n):.3f} (2 sd)")
    print(f"{'proxy':<10} {'tau test':>9} {'rho test':>9} {'tau val':>8} {'s/net':>7}")
    taus = {}
    for name in PROXIES:
        kept = [a for a in trainings if not math.isnan(scores[a][name][0])]  # NaN has no rank
        values = [scores[a][name][0] for a in kept]
        taus[name] = kendall_tau(values, [test_auc[a] for a in kept])
        rho = float(spearmanr(values, [test_auc[a] for a in kept]).statistic) if len(kept) > 2 else math.nan
        tau_val = kendall_tau(values, [val_auc[a] for a in kept])
        seconds = statistics.median(scores[a][name][1] for a in trainings)
        dropped = f"  ({n - len(kept)} NaN dropped)" if len(kept) < n else ""
        print(f"{name:<10} {taus[name]:>9.3f} {rho:>9.3f} {tau_val:>8.3f} {seconds:>7.3f}{dropped}")
    if args.compare_tau is not None:
        print(f"verdict against the search's proxy (tau {args.compare_tau:.3f}):")
        for name, tau in taus.items():
            if abs(tau) < 2 * null_sd(n):
                verdict = "no evidence of correlation at all: not offered"
            elif tau < 0:
                verdict = "ranks the nets the wrong way round: not offered"
            elif tau >= args.compare_tau:
                verdict = "ranks at least as well as the search's proxy: earns a place as a prefilter"
            else:
                verdict = "ranks worse than the search's proxy: not offered"
            print(f"  {name:<10} tau {tau:.3f}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", help="JSONL of full trainings; without it, smoke mode")
    parser.add_argument("--compare-tau", type=float, help="the search's own proxy tau, for the verdict")
    parser.add_argument("--data", default="pneumoniamnist", help="the data the trainings used")
    parser.add_argument("--input-size", type=int, default=28)
    parser.add_argument("--space", default="mnasnet_small", help="smoke mode: space to sample from")
    parser.add_argument("--nets", type=int, default=10, help="smoke mode: random nets to score")
    parser.add_argument("--batch", type=int, default=64, help="training images per mini-batch")
    parser.add_argument("--seed", type=int, default=0, help="batch, weight init and (smoke) sample seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = load_dataset(args.data, args.input_size)
    batch = mini_batch(splits, args.batch, args.seed)
    print(
        f"{splits.name} {splits.input_size}x{splits.input_size}, batch {args.batch}, seed {args.seed}, "
        f"torch threads {torch.get_num_threads()}; proxies: {', '.join(PROXIES)}"
    )
    (against_truth if args.truth else smoke)(args, splits, batch)


if __name__ == "__main__":
    main()
