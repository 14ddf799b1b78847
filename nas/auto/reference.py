"""The reference network (``--reference``, ResNet-18 by default) trained with the final recipe on the same
data, so the summary compares like with like. It runs only when its training fits: its time is estimated
before the search from a few timed optimizer steps, and reserved out of the budget when it is at most
``RESERVE_SHARE`` of it; otherwise the summary says what it would have cost."""

from __future__ import annotations

import time

import torch

from nas.arch import ArchSpec
from nas.builder import build_model

RESERVE_SHARE = 0.25
TIMED_STEPS = 3
EVAL_OVERHEAD = 1.15  # the per-epoch validation pass and the final scoring, measured on ResNet-18 here


def estimate_training_seconds(
    arch: ArchSpec, chans: int, size: int, classes: int, train_images: int, batch: int, epochs: int
) -> float:
    """Seconds to train ``arch`` for ``epochs`` on ``train_images`` images: optimizer steps of random
    batches of the data's shape timed here (after one warm-up step), times the steps of the recipe."""
    model = build_model(arch, in_chans=chans, num_classes=classes, input_size=size).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, chans, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,))
    model = model.to(memory_format=torch.channels_last)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(TIMED_STEPS):
        step()
    per_step = (time.perf_counter() - start) / TIMED_STEPS
    steps = epochs * -(-train_images // batch)
    return per_step * steps * EVAL_OVERHEAD
