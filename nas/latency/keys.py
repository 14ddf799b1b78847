"""Latency keys: what a block costs depends on the block, its input shape and the number type only.

A key is derived from the arch value alone (``BlockSite`` from ``ArchSpec.walk``, the one walk of an
arch), so table building and prediction can never disagree about which entry a block uses.
"""

from __future__ import annotations

from functools import lru_cache

from torch import nn

from nas.arch import ArchSpec, BlockSite, BlockSpec
from nas.builder import build_block

KEY_SEP = "|"
DTYPES = ("fp32", "fp16", "int8")


def check_dtype(dtype: str) -> str:
    """``dtype`` if it is one of ``DTYPES``; a ``ValueError`` (wrapped by pydantic where a table file is
    validated) otherwise."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype '{dtype}' (choose from {', '.join(DTYPES)})")
    return dtype


def block_key(site: BlockSite, dtype: str = "fp32", num_classes: int | None = None) -> str:
    """``<block>|in<C>|<H>x<W>|<dtype>`` (``<L>`` alone for a 1-D block); a head also carries ``n<classes>``
    (its classifier's width)."""
    check_dtype(dtype)
    parts = [site.block.to_str(), f"in{site.in_channels}", "x".join([str(site.in_size)] * site.dims)]
    if site.block.kind.is_head:
        if num_classes is None or num_classes < 1:
            raise ValueError(f"the head key of '{site.block}' needs num_classes >= 1")
        parts.append(f"n{num_classes}")
    return KEY_SEP.join([*parts, dtype])


def arch_keys(
    arch: ArchSpec, in_chans: int, input_size: int, num_classes: int, dtype: str = "fp32"
) -> list[tuple[str, BlockSite]]:
    """Every block of ``arch`` in execution order with its key."""
    return [(block_key(s, dtype, num_classes), s) for s in arch.walk(in_chans, input_size)]


def block_site(block: BlockSpec, in_chans: int, input_size: int, dims: int = 2) -> BlockSite:
    """The site of ``block`` alone on a ``in_chans x input_size x input_size`` input (``x input_size``
    for ``dims`` 1).

    Walks a one-block arch (1x1 conv stem keeping the shape) so the block is canonicalized and sized
    exactly as inside any network.
    """
    stem = BlockSpec.make("conv", kernel=1, channels=in_chans)
    if block.kind.is_head:
        arch = ArchSpec(stem, (), block, dims)
    else:
        arch = ArchSpec(stem, ((block,),), BlockSpec.make("head"), dims)
    return list(arch.walk(in_chans, input_size))[1]


def input_shape(site: BlockSite) -> tuple[int, ...]:
    return (1, site.in_channels, *(site.in_size,) * site.dims)


def block_module(site: BlockSite, num_classes: int) -> nn.Module:
    """The block alone as a torch module in eval mode, built as the builder builds it."""
    return build_block(site, num_classes).eval()


@lru_cache(maxsize=65536)
def block_weights(key: str, site: BlockSite, num_classes: int) -> float:
    """The block's parameters (millions), cached by its key (``site`` is what the key names)."""
    from nas.metrics.complexity import count_params

    return count_params(block_module(site, num_classes)) / 1e6


def arch_weights(sites: list[tuple[str, BlockSite]], num_classes: int) -> float:
    """A net's parameters (millions) from its ``arch_keys``."""
    return sum(block_weights(key, site, num_classes) for key, site in sites)
