"""ArchSpec -> torch module. The only place that turns the value into layers."""

from __future__ import annotations

import torch
from torch import nn

from nas.arch import ArchSpec, BlockSite, scale_width
from nas.blocks.layers import TWO_D_ONLY, spatial_dims
from nas.errors import ConfigError


class Network(nn.Module):
    """Stem, stages, head; every block built by its own block module."""

    def __init__(self, stem: nn.Module, stages: nn.Sequential, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def build_model(
    arch: ArchSpec | str,
    in_chans: int = 3,
    num_classes: int = 1000,
    input_size: int = 224,
    width_mult: float = 1.0,
) -> Network:
    """Build the network for ``in_chans`` input channels and ``num_classes`` outputs.

    ``input_size`` (an image's side, a 1-D arch's signal length) is only checked (every block must see at
    least one pixel or sample); the network itself accepts any size. ``width_mult`` applies MobileNet's
    width multiplier first (see ``nas.arch.scale_width``).
    """
    if isinstance(arch, str):
        arch = ArchSpec.from_str(arch)
    if in_chans < 1 or num_classes < 1:
        raise ConfigError(f"in_chans and num_classes must be >= 1, got {in_chans} and {num_classes}")
    if width_mult != 1.0:
        arch = scale_width(arch, width_mult)
    stem: nn.Module = nn.Identity()
    stages: list[list[nn.Module]] = [[] for _ in arch.stages]
    head: nn.Module = nn.Identity()
    for site in arch.walk(in_chans, input_size):
        if site.section == "stem":
            stem = build_block(site, num_classes)
        elif site.section == "stage":
            stages[site.stage].append(build_block(site, num_classes))
        else:
            head = build_block(site, num_classes)
    return Network(stem, nn.Sequential(*(nn.Sequential(*blocks) for blocks in stages)), head)


def build_block(site: BlockSite, num_classes: int) -> nn.Module:
    """One block as its block type builds it, with 1-D layers for a 1-D arch; a block type (a plugin's)
    that builds 2-D layers regardless is a ``ConfigError`` rather than a shape error at the first input."""
    kind = site.block.kind
    with spatial_dims(site.dims):
        module = (
            kind.build(site.block, site.in_channels, num_classes)
            if kind.is_head
            else kind.build(site.block, site.in_channels)
        )
    if site.dims == 1 and any(isinstance(m, TWO_D_ONLY) for m in module.modules()):
        raise ConfigError(f"block type '{kind.name}' does not build as 1-D (it makes 2-D layers)")
    return module
