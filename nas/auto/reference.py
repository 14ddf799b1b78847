"""The reference network (``--reference``: by default MedMNIST's ResNet-18 for images, Wang et al.'s 1-D
ResNet for signals) trained with the final recipe on the same data, so the summary compares like with
like. It runs only when its training fits: its time is estimated before the search from a few timed
optimizer steps, and reserved out of the budget when it is at most ``RESERVE_SHARE`` of it; otherwise the
summary says what it would have cost."""

from __future__ import annotations

import statistics
import time

import torch

from nas.arch import ArchSpec
from nas.builder import build_model

RESERVE_SHARE = 0.25
TIMED_STEPS, TIMING_BATCH = 3, 16
EVAL_OVERHEAD = 1.15  # the per-epoch validation pass and the final scoring, measured on ResNet-18 here


def estimate_training_seconds(
    arch: ArchSpec, chans: int, size: int, classes: int, steps: int, batch: int
) -> float:
    """Seconds to train ``arch`` for ``steps`` optimizer steps of ``batch`` examples (images or signals: the
    arch's dims set the tensors' shape and layout): the time per example of a few optimizer steps
    (``seconds_per_image``) times the examples of the recipe, plus the validations."""
    images = steps * batch
    return seconds_per_image(arch, chans, size, classes, min(batch, TIMING_BATCH)) * images * EVAL_OVERHEAD


def seconds_per_image(arch: ArchSpec, chans: int, size: int, classes: int, batch: int) -> float:
    """The median of ``TIMED_STEPS`` optimizer steps on a random batch of the data's shape, after one
    warm-up step (the first call picks kernels and allocates), per image. A small batch keeps this to a
    few seconds even for ResNet-18; a CPU's time per image barely changes with the batch at these sizes."""
    model = build_model(arch, in_chans=chans, num_classes=classes, input_size=size).train()
    layout = torch.channels_last if arch.dims == 2 else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(arch.input_shape(chans, size, batch)).contiguous(memory_format=layout)
    y = torch.randint(0, classes, (batch,))
    times = []
    for _ in range(1 + TIMED_STEPS):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) / batch
