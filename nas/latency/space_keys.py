"""Every block key a search space can produce, enumerated exactly (not by sampling).

A space is a fixed set of categorical choices per stage. The blocks of a stage are: its first realized
layer at each of the stage's stride choices from every input the stage can have, and every later layer at
stride 1 with input = output channels, for every width and every op combo (``Stage.combos``). The inputs
are (channels, size) pairs, tracked from the stem at each of its stride choices as
``SearchSpace._validate`` tracks channels (a stage that can be empty passes its input through); sizes
follow from the sites themselves, so every resolution a choice of strides reaches is covered.
"""

from __future__ import annotations

import itertools

from nas.arch import BlockSite
from nas.latency.keys import block_key, block_site
from nas.space import SearchSpace


def space_sites(space: SearchSpace, in_chans: int, input_size: int) -> list[BlockSite]:
    """Distinct block sites (stem, every stage layer, head) in network order."""
    dims = space.config.dims
    sites = [block_site(stem, in_chans, input_size, dims) for stem in space.stems]
    inputs = {(stem.out_channels, stem.out_size) for stem in sites}
    divisor = space.config.channel_divisor
    for stage in space.stages:
        outs = sorted({stage.out_channels(w, divisor) for w in stage.widths})
        reached: set[tuple[int, int]] = set()
        for (in_chs, size), stride, out, combo in itertools.product(
            sorted(inputs), stage.strides, outs, stage.combos
        ):
            block = stage.realize(combo, stride, in_chs, out)
            if block is None:  # identity skip: the next layer is first, from in_chs == out
                reached.add((in_chs, size))
                continue
            first = block_site(block, in_chs, size, dims)
            sites.append(first)
            reached.add((first.out_channels, first.out_size))
        for (chs, size), combo in itertools.product(sorted(reached), stage.combos):
            if stage.max_layers > 1:
                block = stage.realize(combo, 1, chs, chs)
                if block is not None:
                    sites.append(block_site(block, chs, size, dims))
        inputs = reached | (inputs if stage.min_layers == 0 else set())
    sites += [block_site(space.head, chs, size, dims) for chs, size in sorted(inputs)]
    return _distinct(sites)


def space_keys(
    space: SearchSpace, in_chans: int, input_size: int, num_classes: int, dtype: str = "fp32"
) -> dict[str, BlockSite]:
    """Key -> site for every block the space can produce."""
    return {block_key(s, dtype, num_classes): s for s in space_sites(space, in_chans, input_size)}


def _distinct(sites: list[BlockSite]) -> list[BlockSite]:
    seen: dict[tuple, BlockSite] = {}
    for site in sites:
        seen.setdefault((site.block, site.in_channels, site.in_size), site)
    return list(seen.values())
