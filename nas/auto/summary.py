"""``DIR/summary.json``: what ``nas auto`` made, how it scores, and the figures it is compared with. Its
keys are a public contract: new ones are added, none renamed.

Published figures: MedMNIST's ResNet-18 (28) for MedMNIST sets at 28 px (``published_resnet18_28``, and
under ``published``), and for registered signal sets at their own length the baselines time-series
benchmarks report (``published`` only): a value is a figure or the ``[low, high]`` range of the reports.
"""

from __future__ import annotations

from typing import Any

from nas.auto.profile import DataProfile

EXPERIMENT_FILE, SUMMARY_FILE, MODEL_DIR = "experiment.yaml", "summary.json", "model"
Figure = float | tuple[float, float]

# ECG5000 at its 140 samples: Wang, Yan & Oates 2017 and Fawaz et al. 2019's re-run of their networks
# (the UCR archive's test split; ../shared/data/README.md in the project's workspace).
PUBLISHED_SIGNALS: dict[str, tuple[int, dict[str, dict[str, Figure]]]] = {
    "ecg5000": (
        140,
        {
            "ResNet (Wang et al. 2017 / Fawaz et al. 2019)": {"accuracy": (0.931, 0.934)},
            "FCN (Wang et al. 2017 / Fawaz et al. 2019)": {"accuracy": 0.940},
        },
    ),
}


def published(profile: DataProfile) -> dict[str, dict[str, Figure]]:
    """The published test figures for this data at this size, by network; empty when none are known."""
    from nas.data.medmnist import PUBLISHED_RESNET18

    name = profile.name.lower()
    if profile.dims == 2:
        figures = PUBLISHED_RESNET18.get(name) if profile.size == 28 else None
        return {"ResNet-18 (28)": figures} if figures else {}
    length, nets = PUBLISHED_SIGNALS.get(name, (None, {}))
    return nets if profile.size == length else {}


def build_summary(state, request, profile: DataProfile, config, record, card, measured) -> dict[str, Any]:
    """The summary of a finished run (``run_auto`` writes it to ``SUMMARY_FILE``)."""
    best = min(record.trials, key=lambda t: t.final_rank)
    clinical = (card.get("clinical") or {}).get("fp32", {})
    figures = published(profile)
    files = {
        "experiment": str(state.out / EXPERIMENT_FILE),
        "search": str(config.out),
        "model": str(state.out / MODEL_DIR),
        "model_card": str(state.out / MODEL_DIR / "model_card.md"),
        "record": str(state.out / "auto.json"),
        "summary": str(state.out / SUMMARY_FILE),
    }
    return {
        "data": profile.to_json(),
        "table": state.done("table"),
        "latency_budget_ms": state.done("budget")["max_ms"],
        "search": state.done("search"),
        "finalize": state.done("finalize"),
        "model": {
            "trial": best.number,
            "arch": card["arch"],
            "params": card["complexity"]["params"],
            "macs": card["complexity"]["macs"],
            "peak_activation_kb": card["complexity"]["peak_activation_bytes"] / 1024,
            "weight_bytes": card["files"]["fp32"]["weight_bytes"],
            "val": dict(best.val),
            "val_std": dict(best.val_std),
            "test": clinical.get("test", {}),
        },
        "reference": {
            "name": request.reference,
            "trained": state.done("reference") is not None,
            "estimate_s": state.done("reference_plan")["estimate_s"],
            "test": (state.done("reference") or {}).get("test"),
            "published_resnet18_28": figures.get("ResNet-18 (28)"),
            "published": figures,
        },
        "latency": measured,
        "budget": {"minutes": request.budget_minutes, "spent_minutes": round(state.spent() / 60, 2)},
        "files": files,
    }
