"""The block types an arch string can name. A new block type is one module plus one line in ``BLOCKS``
(or, from another package, an entry point ``block.<name>`` in the group ``nas.plugins``)."""

from __future__ import annotations

from nas.blocks.base import BlockType
from nas.registry import Registry

BLOCKS: Registry[BlockType] = Registry(
    "block",
    {
        "conv": "nas.blocks.conv:BLOCK",
        "ds": "nas.blocks.dsconv:BLOCK",
        "ir": "nas.blocks.mbconv:BLOCK",
        "fire": "nas.blocks.fire:BLOCK",
        "basic": "nas.blocks.basic:BLOCK",
        "res3": "nas.blocks.tsres:BLOCK",
        "maxpool": "nas.blocks.pool:MAX_BLOCK",
        "avgpool": "nas.blocks.pool:AVG_BLOCK",
        "head": "nas.blocks.head:BLOCK",
    },
    label="block type",
)


def block_type(name: str) -> BlockType:
    """Look a block type up by its token name; an unknown name is a one-line ``UsageError``."""
    return BLOCKS.get(name)
