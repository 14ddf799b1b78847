"""Training-time augmentation: each transform does what it says, from the seed, and nothing when off."""

from __future__ import annotations

import pytest
import torch

from nas.evaluate.augment import Augmentation, color_jitter, random_affine, random_flips


def images(n: int = 32, channels: int = 1) -> torch.Tensor:
    return torch.rand(n, channels, 12, 12, generator=torch.Generator().manual_seed(1))


def test_nothing_is_changed_when_every_amount_is_zero():
    x = images()
    assert torch.equal(Augmentation()(x, torch.Generator()), x)
    assert torch.allclose(random_affine(x, 0, 0, 0, torch.Generator()), x, atol=1e-6)
    assert torch.allclose(color_jitter(x, 0.0, torch.Generator()), x, atol=1e-6)


def test_affine_moves_content_within_its_bounds_and_follows_the_seed():
    x = torch.zeros(8, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1
    out = random_affine(x, 0.1, 10, 0.1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.allclose(out, x, atol=1e-3)
    assert out.min() >= 0 and out.max() <= 1
    mass = out.sum(dim=(1, 2, 3))  # a zoom of at most 10 % keeps the square's area within ~21 %
    assert ((mass > 16 * 0.79) & (mass < 16 * 1.22)).all()
    assert torch.equal(out, random_affine(x, 0.1, 10, 0.1, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize(("flips", "axes"), [("horizontal", [-1]), ("vertical", [-2]), ("both", [-1, -2])])
def test_flips_mirror_along_the_allowed_axes_only(flips, axes):
    x = images(64)
    out = random_flips(x, flips, torch.Generator().manual_seed(0))
    options = [x, x.flip(axes[0])] + ([x.flip(axes[1]), x.flip(axes)] if len(axes) == 2 else [])
    which = [next(i for i, o in enumerate(options) if torch.equal(out[n], o[n])) for n in range(len(x))]
    assert set(which) == set(range(len(options)))  # 64 images draw every allowed flip


def test_colour_jitter_stays_in_range_and_leaves_grey_pixels_grey():
    x = images(16, channels=3)
    out = color_jitter(x, 0.4, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, x)
    grey = images(16).expand(-1, 3, -1, -1)
    jittered = color_jitter(grey, 0.4, torch.Generator().manual_seed(0))
    assert torch.allclose(jittered[:, 0], jittered[:, 1]) and torch.allclose(jittered[:, 1], jittered[:, 2])
