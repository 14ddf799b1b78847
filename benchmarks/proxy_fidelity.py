"""Accuracy-proxy fidelity: does a short training rank architectures as a full training does?

Samples random MnasNet-space architectures, scores each with the search's proxy (val AUC after a few
epochs on a training subset) and with a full training (val AUC, all training images, more epochs,
otherwise the proxy's recipe: same batch size and learning rate), and prints Kendall tau between the
two and the time per proxy evaluation. Only validation is read. ``--experiment`` takes the data, space,
size and proxy recipe from a search experiment, in place of ``--data``/``--space``/``--proxy-*``.

``--resnet18`` instead trains the reference ``resnet18_medmnist`` with ``train_final`` (select on val,
test once) and prints its test AUC/ACC next to the published MedMNIST v2 ResNet-18 (28) figures.

    .venv/bin/python benchmarks/proxy_fidelity.py [--nets 20] [--proxy-epochs 3] [--full-epochs 10]
    python benchmarks/proxy_fidelity.py --experiment experiments/pneumoniamnist.yaml [--full-epochs 15]
    .venv/bin/python benchmarks/proxy_fidelity.py --resnet18 [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch

from nas.data import load_dataset
from nas.data.medmnist import PUBLISHED_RESNET18
from nas.evaluate import TrainConfig, TrainingDiverged, evaluate_candidate, train_final
from nas.latency.validate import kendall_tau
from nas.search.config import load_experiment
from nas.space import SearchSpace

PUBLISHED = PUBLISHED_RESNET18  # MedMNIST v2, ResNet-18 (28)


def fidelity(args: argparse.Namespace) -> None:
    if args.experiment:
        experiment = load_experiment(args.experiment)
        args.data = experiment.dataset.ref
        args.space, args.input_size = experiment.space, experiment.input_size
        proxy = experiment.train_config()  # exactly the search's proxy
        proxy = proxy.replace(seed=args.seed, threads=args.threads or proxy.threads)
    else:
        proxy = TrainConfig(
            epochs=args.proxy_epochs,
            max_train_samples=args.proxy_samples,
            batch_size=args.proxy_batch_size,
            seed=args.seed,
            threads=args.threads,
        )
    full = proxy.replace(epochs=args.full_epochs, max_train_samples=None)  # same recipe, all data, longer
    splits = load_dataset(args.data, args.input_size)
    space = SearchSpace.from_yaml(args.space)
    rng = random.Random(args.seed)
    archs = [space.sample(rng) for _ in range(args.nets)]
    print(
        f"== {splits.name} {args.input_size}x{args.input_size}, space {space.name}, {args.nets} nets, "
        f"torch threads {proxy.threads or torch.get_num_threads()}"
    )
    print(
        f"proxy: {proxy.epochs} epochs on {proxy.max_train_samples or 'all'} images, "
        f"batch {proxy.batch_size}; "
        f"full: {full.epochs} epochs on all, batch {full.batch_size}"
    )
    rows: list[dict] = []
    for i, arch in enumerate(archs):
        row: dict = {"arch": arch.to_str()}
        for name, config in (("proxy", proxy), ("full", full)):
            start = time.perf_counter()
            try:
                result = evaluate_candidate(arch, splits, config)
                row[name] = result["score"]
                row[f"{name}_images_per_second"] = result["images_per_second"]
            except TrainingDiverged as exc:
                row[name], row[f"{name}_error"] = float("nan"), str(exc)
            row[f"{name}_seconds"] = time.perf_counter() - start
        rows.append(row)
        print(
            f"{i + 1:3d} proxy AUC {row['proxy']:.4f} ({row['proxy_seconds']:5.1f} s)  "
            f"full AUC {row['full']:.4f} ({row['full_seconds']:6.1f} s)  {row['arch']}",
            flush=True,
        )
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    done = [r for r in rows if r["proxy"] == r["proxy"] and r["full"] == r["full"]]  # drop NaN (diverged)
    tau = kendall_tau([r["proxy"] for r in done], [r["full"] for r in done])
    seconds = [r["proxy_seconds"] for r in rows]
    print(f"Kendall tau (proxy val AUC vs full val AUC) over {len(done)} nets: {tau:.3f}")
    print(
        f"time per candidate evaluation (proxy): mean {statistics.mean(seconds):.1f} s, "
        f"median {statistics.median(seconds):.1f} s; proxy throughput "
        f"{statistics.mean(r['proxy_images_per_second'] for r in done):.0f} images/s"
    )


def resnet18(args: argparse.Namespace) -> None:
    splits = load_dataset(args.data, args.input_size)
    config = TrainConfig(epochs=args.epochs, seed=args.seed, threads=args.threads)
    start = time.perf_counter()
    metrics = train_final(
        "resnet18_medmnist",
        splits,
        config,
        args.out or f"runs/train/{splits.name}_{args.input_size}/resnet18_medmnist",
        progress=lambda phase, epoch, m: print(
            f"epoch {epoch}: val AUC {m['auc']:.4f} ACC {m['accuracy']:.4f}"
        ),
    )
    test = metrics["test"]
    print(
        f"resnet18_medmnist on {splits.name} {args.input_size}x{args.input_size}, {args.epochs} epochs "
        f"(best {metrics['best_epoch']}), {time.perf_counter() - start:.0f} s, "
        f"{metrics['images_per_second']:.0f} images/s on {metrics['threads']} thread(s)"
    )
    print(f"test AUC {test['auc']:.4f}  ACC {test['accuracy']:.4f}")
    published = PUBLISHED.get(splits.name)
    if published and args.input_size == 28:
        auc, acc = published["auc"], published["accuracy"]
        print(f"published MedMNIST v2 ResNet-18 (28): AUC {auc:.3f}  ACC {acc:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--experiment", help="take data, space, size and the proxy recipe from this search experiment"
    )
    parser.add_argument("--data", default="pneumoniamnist")
    parser.add_argument("--input-size", type=int, default=28)
    parser.add_argument("--space", default="mnasnet")
    parser.add_argument("--nets", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proxy-epochs", type=int, default=3)
    parser.add_argument("--proxy-samples", type=int, default=1000)
    parser.add_argument(
        "--proxy-batch-size", type=int, default=32, help="small: a proxy needs steps, not epochs (default 32)"
    )
    parser.add_argument("--full-epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--resnet18", action="store_true", help="train resnet18_medmnist with train_final")
    parser.add_argument("--epochs", type=int, default=10, help="--resnet18 epochs")
    parser.add_argument("--out", help="fidelity: a JSON file of every net; --resnet18: the run directory")
    args = parser.parse_args()
    (resnet18 if args.resnet18 else fidelity)(args)


if __name__ == "__main__":
    main()
