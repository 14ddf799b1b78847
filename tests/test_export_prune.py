"""Structured pruning: layers really shrink, coupled channels stay consistent, the result exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import COUPLED, SHUFFLED, SMALL, data_file, options, trained_run

from nas.export.onnx import PARITY_TOLERANCE, Normalized, parity
from nas.export.pipeline import run_export
from nas.export.prune import classifier, prune_channels
from nas.export.source import from_arch, from_run_dir
from nas.metrics import count_params
from nas.onnxrt import export_onnx

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.extra("prune")]


@pytest.mark.parametrize("arch", [SMALL, COUPLED, "resnet18_medmnist"])
def test_pruning_shrinks_layers_and_still_exports(arch):
    source = from_arch(arch, None, None, 3, None)
    before = count_params(source.network)
    widths = [m.out_channels for m in source.network.modules() if isinstance(m, torch.nn.Conv2d)]
    pruned = prune_channels(source.network, 0.5, source.input_shape)
    assert count_params(source.network) == before  # the original is left alone
    assert count_params(pruned) < 0.5 * before
    new_widths = [m.out_channels for m in pruned.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(new_widths) < 0.7 * sum(widths)
    assert classifier(pruned).out_features == 3
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        assert pruned(torch.from_numpy(x)).shape == (5, 3)
    model = Normalized(pruned, source.mean, source.std)
    assert parity(model, export_onnx(model, source.input_shape, deployable=True), x) < PARITY_TOLERANCE


def kept_rows(original: torch.nn.Conv2d, pruned: torch.nn.Conv2d, bn) -> list[int]:
    """Which original output channels a pruned conv kept: by its BatchNorm's labels, else its bias."""
    if bn is not None:
        return bn.running_mean.round().long().tolist()
    return [int((original.bias - b).abs().argmin()) for b in pruned.bias]


def kept_columns(original: torch.nn.Conv2d, pruned: torch.nn.Conv2d, rows: list[int]) -> list[int]:
    """Which original input channels a pruned (ungrouped) conv kept, by matching weight columns."""
    before = original.weight[rows].transpose(0, 1).flatten(1)
    after = pruned.weight.transpose(0, 1).flatten(1)
    return torch.cdist(after, before).argmin(dim=1).tolist()


@pytest.mark.parametrize("arch", [COUPLED, SMALL, "mobilenet_v3_small", "resnet18_medmnist"])
def test_kept_channels_line_up_across_layers(arch):
    """Every conv's kept input channels are exactly the kept output channels of some producer: channels
    labelled before pruning (BatchNorm running means, biases) are read back after it."""
    network = from_arch(arch, None, None, None, None).network
    with torch.no_grad():
        for m in network.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.arange(m.num_features, dtype=torch.float32))
    pruned = prune_channels(network, 0.4, (1, 1, 28, 28))

    def convs(net):
        bn_after = {}
        for seq in net.modules():
            if (
                isinstance(seq, torch.nn.Sequential)
                and len(seq) > 1
                and isinstance(seq[0], torch.nn.Conv2d)
                and isinstance(seq[1], torch.nn.BatchNorm2d)
            ):
                bn_after[seq[0]] = seq[1]
        return [(m, bn_after.get(m)) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]

    pairs = list(zip(convs(network), convs(pruned), strict=True))
    produced = {
        tuple(kept_rows(o, p, bn)) for (o, _), (p, bn) in pairs if bn is not None or p.bias is not None
    }
    produced.add(tuple(range(1)))  # the image
    checked = 0
    for (orig, _), (new, bn) in pairs:
        if new.groups == 1 and (bn is not None or new.bias is not None):
            columns = kept_columns(orig, new, kept_rows(orig, new, bn))
            assert tuple(columns) in produced, f"{new} reads channels no layer produces"
            checked += 1
    assert checked >= 5


def test_shuffled_grouped_convs_are_refused():
    with pytest.raises(ValueError, match="channel-shuffled"):
        prune_channels(from_arch(SHUFFLED, None, None, None, None).network, 0.3, (1, 1, 28, 28))


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5])
def test_ratio_must_be_a_fraction(ratio):
    with pytest.raises(ValueError, match="prune ratio"):
        prune_channels(from_arch(SMALL, None, None, None, None).network, ratio, (1, 1, 28, 28))


def test_trained_prune_finetunes_and_reports_deltas(tmp_path):
    source = from_run_dir(trained_run(), None, False, str(data_file()))
    card = run_export(source, options(tmp_path, prune=0.3)).to_json()
    p = card["pruning"]
    assert card["pruned"] and p["ratio"] == 0.3 and p["finetune"]["epochs"] == 1
    assert p["params"][1] < p["params"][0] and p["params_ratio"] < 0.8 and p["macs"][1] < p["macs"][0]
    assert card["complexity"]["params"] == p["params"][1]
    before, after = p["conv_widths"]
    assert len(before) == len(after) and all(new <= old for old, new in zip(before, after, strict=True))
    assert p["latency_ratio"] > 0 and "auc" in p["metric_deltas"]["test"]
    assert set(card["latency"]["measured_ms"]) == {"fp32", "unpruned_fp32"}
    assert card["clinical"]["unpruned_fp32"]["test"]["threshold"] == pytest.approx(source.threshold)
