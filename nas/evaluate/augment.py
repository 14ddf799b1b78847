"""Training-time augmentation of a batch of images in [0, 1] (NCHW) or of signals (NCL), drawn from the
training seed.

What suits a modality differs: shifts and small rotations or zooms for grey X-ray and ultrasound
(a patient is never mirrored: a flip swaps left and right), colour jitter for fundus or dermoscopy
photographs, whose colour varies with the camera. ``Augmentation`` holds the amounts, set from the
training settings; only shifts are on by default (``benchmarks/recipe.py`` measured the others at
28 px), and flips only when a user's config allows them. A signal is only shifted in time (a heartbeat's
position in its window varies); the image-only amounts are refused for signals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FLIPS = ("none", "horizontal", "vertical", "both")


@dataclass(frozen=True)
class Augmentation:
    """``max_shift`` of the side, ``max_rotate`` degrees, ``max_scale`` zoom fraction, ``color_jitter``
    brightness / contrast / saturation strength, ``flips`` allowed."""

    max_shift: float = 0.0
    max_rotate: float = 0.0
    max_scale: float = 0.0
    color_jitter: float = 0.0
    flips: str = "none"

    def image_only(self) -> list[str]:
        """The amounts set here that only mean something for images."""
        named = {
            "max_rotate": self.max_rotate,
            "max_scale": self.max_scale,
            "color_jitter": self.color_jitter,
        }
        named["flips"] = self.flips != "none"
        return [name for name, value in named.items() if value]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.dim() == 3:
            return random_shift(x, round(self.max_shift * x.shape[-1]), generator)
        if self.max_rotate or self.max_scale:
            x = random_affine(x, self.max_shift, self.max_rotate, self.max_scale, generator)
        else:
            x = random_shift(x, round(self.max_shift * x.shape[-1]), generator)
        if self.flips != "none":
            x = random_flips(x, self.flips, generator)
        if self.color_jitter:
            x = color_jitter(x, self.color_jitter, generator)
        return x


def _uniform(n: int, bound: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``n`` draws from U(-bound, bound), made on the CPU generator (the same numbers on any device)."""
    return ((torch.rand(n, generator=generator) * 2 - 1) * bound).to(device)


def random_shift(x: torch.Tensor, max_px: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image (or signal, NCL) by up to ``max_px`` whole pixels or samples (edges
    replicated)."""
    if max_px < 1:
        return x
    if x.dim() == 3:
        n, _, length = x.shape
        padded = F.pad(x, (max_px, max_px), mode="replicate")
        start = torch.randint(0, 2 * max_px + 1, (n,), generator=generator).to(x.device)
        index = (start[:, None] + torch.arange(length, device=x.device))[:, None, :].expand_as(x)
        return padded.gather(2, index)
    n, _, h, w = x.shape
    padded = F.pad(x, (max_px, max_px, max_px, max_px), mode="replicate").permute(0, 2, 3, 1)
    oy = torch.randint(0, 2 * max_px + 1, (n,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * max_px + 1, (n,), generator=generator).to(x.device)
    rows = oy[:, None] + torch.arange(h, device=x.device)
    cols = ox[:, None] + torch.arange(w, device=x.device)
    out = padded[torch.arange(n, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def random_affine(
    x: torch.Tensor, max_shift: float, max_rotate: float, max_scale: float, generator: torch.Generator
) -> torch.Tensor:
    """Rotate by up to ``max_rotate`` degrees, zoom by up to ``max_scale`` and shift by up to ``max_shift``
    of the side, each image its own draw; bilinear, edges replicated."""
    n = len(x)
    angle = _uniform(n, math.radians(max_rotate), generator, x.device)
    zoom = 1 + _uniform(n, max_scale, generator, x.device)
    shift = _uniform(2 * n, 2 * max_shift, generator, x.device).view(n, 2)  # grid coordinates span 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_flips(x: torch.Tensor, flips: str, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image with probability 1/2 along the allowed axes."""
    for axis, allowed in ((-1, ("horizontal", "both")), (-2, ("vertical", "both"))):
        if flips in allowed:
            flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(axis), x)
    return x


def color_jitter(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and (colour images) saturation each scaled by a factor in
    [1 - strength, 1 + strength], per image; values stay in [0, 1]."""
    n = len(x)
    brightness, contrast, saturation = (
        1 + _uniform(n, strength, generator, x.device).view(-1, 1, 1, 1) for _ in range(3)
    )
    x = x * brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    if x.shape[1] == 3:
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * saturation + grey
    return x.clamp(0, 1)
