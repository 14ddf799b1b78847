"""Peak activation memory and activation traffic of one forward pass, from a torch.fx trace.

Peak activation memory decides whether a network fits a microcontroller's SRAM; activation traffic
(bytes every op reads and writes) feeds the energy estimate (``nas.metrics.energy``). Both come from one
``torch.fx.symbolic_trace`` of the model, run once on a zero input by ``ShapeProp``.

The model of memory, in graph (execution) order:

* a tensor is live from the node that produces it until its last user has run; while a node runs, its
  inputs and its output are all live (no op works in place: ``nas.blocks.layers.activation``);
* the network input counts; weights do not (``get_attr`` and module parameters are not activations);
* an output that shares storage with one of its inputs (``view``, ``flatten``, ``reshape`` of a contiguous
  tensor, ``transpose``, ``nn.Identity``, eval-mode dropout) is an alias: it adds no bytes, it extends the
  lifetime of the tensor it views. Aliasing is read off the real tensors, not guessed from op names, so a
  ``reshape`` that has to copy (after a ``transpose``) counts as a new tensor;
* non-tensor outputs (the ints of ``x.size(0)``) count 0.

Bytes are ``numel * bytes_per_element``: 4 for fp32, 1 for an int8 deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import fx
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import ShapeProp

_COMPUTE_OPS = ("call_module", "call_function", "call_method")


@dataclass(frozen=True)
class ActivationProfile:
    """What one traced forward pass says about activation memory.

    ``peak_bytes``: the most bytes live at once; ``peak_node``: the fx node running at that moment;
    ``traffic_bytes``: sum over compute nodes of the bytes of their tensor inputs plus their output.
    """

    peak_bytes: int
    peak_node: str
    traffic_bytes: int
    input_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class ActivationTrace:
    """One traced forward pass: the fx nodes in execution order, the element count of every node that
    yields activations, and which input each view-like node aliases. Byte figures derive from it."""

    nodes: tuple[fx.Node, ...]
    numel: dict[fx.Node, int]
    alias_of: dict[fx.Node, fx.Node]


class _AliasShapeProp(ShapeProp):
    """``ShapeProp`` that also records, per node, its output's element count and which input it aliases."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.numel: dict[fx.Node, int] = {}
        self.alias_of: dict[fx.Node, fx.Node] = {}

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if n.op == "output":
            return result
        tensors: list[torch.Tensor] = []
        map_aggregate(result, lambda obj: tensors.append(obj) if isinstance(obj, torch.Tensor) else None)
        if not tensors or n.op == "get_attr":
            return result  # ints from size(), or weights: not activations
        self.numel[n] = sum(t.numel() for t in tensors)
        if n.op in _COMPUTE_OPS:
            inputs = [(inp, self.env.get(inp)) for inp in n.all_input_nodes]
            views = {_storage(v): inp for inp, v in inputs if isinstance(v, torch.Tensor)}
            owners = {views.get(_storage(t)) for t in tensors}
            if None not in owners:  # every output tensor views an input: no new storage
                self.alias_of[n] = next(iter(owners))
        return result


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def trace(model: torch.nn.Module, in_chans: int, input_size: int, dims: int = 2) -> ActivationTrace:
    """Symbolically trace ``model`` in eval mode and run it once on a zero input of batch 1 (``dims`` 1:
    a signal of ``input_size`` samples).

    Trace once, then ask ``profile`` for any element size: ``measure`` needs both peak and traffic."""
    was_training = model.training
    model.eval()
    try:
        gm = fx.symbolic_trace(model)
        prop = _AliasShapeProp(gm)
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        with torch.no_grad():
            x = torch.zeros(1, in_chans, *(input_size,) * dims, device=device, dtype=dtype)
            prop.propagate(x)
    finally:
        model.train(was_training)
    return ActivationTrace(tuple(gm.graph.nodes), prop.numel, prop.alias_of)


def profile_activations(
    model: torch.nn.Module, in_chans: int, input_size: int, bytes_per_element: int = 4, dims: int = 2
) -> ActivationProfile:
    """Peak live activation bytes and activation traffic of one batch-1 forward pass (one trace)."""
    return profile(trace(model, in_chans, input_size, dims), bytes_per_element)


def peak_activation_bytes(
    model: torch.nn.Module, in_chans: int, input_size: int, bytes_per_element: int = 4, dims: int = 2
) -> int:
    """The largest sum of live activation bytes during one forward pass: what must fit in SRAM."""
    return profile_activations(model, in_chans, input_size, bytes_per_element, dims).peak_bytes


def activation_traffic_bytes(
    model: torch.nn.Module, in_chans: int, input_size: int, bytes_per_element: int = 4, dims: int = 2
) -> int:
    """Bytes read and written by all compute ops of one forward pass (the SRAM term of the energy)."""
    return profile_activations(model, in_chans, input_size, bytes_per_element, dims).traffic_bytes


def profile(traced: ActivationTrace, bytes_per_element: int = 4) -> ActivationProfile:
    """Peak live bytes (sweep over lifetimes in graph order) and traffic of a traced forward pass."""
    if bytes_per_element < 1:
        raise ValueError(f"bytes_per_element must be >= 1, got {bytes_per_element}")
    nodes = list(traced.nodes)
    order = {n: i for i, n in enumerate(nodes)}

    def root(n: fx.Node) -> fx.Node:
        while n in traced.alias_of:
            n = traced.alias_of[n]
        return n

    # Lifetimes of the tensors that own storage: from their producer to the last user of any alias.
    start: dict[fx.Node, int] = {}
    end: dict[fx.Node, int] = {}
    for n in nodes:
        if n in traced.numel and n not in traced.alias_of:
            start[n] = end[n] = order[n]
    for n in nodes:
        if n in traced.numel:
            owner = root(n)
            last = max((order[u] for u in n.users), default=order[n])
            end[owner] = max(end[owner], last)

    # Sweep: +bytes where a tensor is born, -bytes after its last use.
    delta = [0] * (len(nodes) + 1)
    for n, first in start.items():
        size = traced.numel[n] * bytes_per_element
        delta[first] += size
        delta[end[n] + 1] -= size
    peak, peak_at, live = 0, 0, 0
    for i in range(len(nodes)):
        live += delta[i]
        if live > peak:
            peak, peak_at = live, i

    traffic = 0
    for n in nodes:
        if n.op in _COMPUTE_OPS and n in traced.numel and n not in traced.alias_of:
            reads = sum(traced.numel.get(inp, 0) for inp in n.all_input_nodes)
            traffic += (reads + traced.numel[n]) * bytes_per_element

    inputs = [n for n in nodes if n.op == "placeholder"]
    outputs = [inp for n in nodes if n.op == "output" for inp in n.all_input_nodes]
    return ActivationProfile(
        peak_bytes=peak,
        peak_node=nodes[peak_at].name if nodes else "",
        traffic_bytes=traffic,
        input_bytes=sum(traced.numel.get(n, 0) for n in inputs) * bytes_per_element,
        output_bytes=sum(traced.numel.get(n, 0) for n in outputs) * bytes_per_element,
    )
