"""The block types an arch string can name. A new block type is one module plus one line here."""

from __future__ import annotations

from nas.blocks import basic, conv, dsconv, fire, head, mbconv, pool
from nas.blocks.base import BlockType
from nas.errors import ConfigError

BLOCK_TYPES: dict[str, BlockType] = {
    block.name: block
    for block in (
        conv.BLOCK,
        dsconv.BLOCK,
        mbconv.BLOCK,
        fire.BLOCK,
        basic.BLOCK,
        pool.MAX_BLOCK,
        pool.AVG_BLOCK,
        head.BLOCK,
    )
}


def block_type(name: str) -> BlockType:
    """Look a block type up by its token name; unknown names raise ``ValueError``."""
    try:
        return BLOCK_TYPES[name]
    except KeyError:
        raise ConfigError(f"unknown block type '{name}' (known: {', '.join(BLOCK_TYPES)})") from None
