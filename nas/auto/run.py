"""``nas auto`` end to end: checks that cost nothing first (nothing is written for a refused run), then
the stages, each recorded in ``DIR/auto.json`` when it ends so a rerun with ``--resume`` skips it:

1. ``table``: the device's latency table for this data shape (given, found, derived or built);
2. ``budget``: the latency budget in ms (``--max-latency-ms``, or ``--latency-ratio`` times the reference
   network measured now on the table's backend, on the table's scale); a budget that fewer than
   ``MIN_FEASIBLE_SHARE`` of the space's nets meet is refused (the search would hardly train one);
3. ``search``: ``DIR/experiment.yaml`` (``nas.auto.plan``) searched until its share of the budget; a
   third of the way, the share is cut short where the first final trainings, estimated from the trials'
   times, would not fit after it, and where they do not fit even then, the final recipe's step floor is
   lowered until they do (a 2-minute budget on a slow machine had run to 2.3 minutes); at the share's
   end the floor is checked again against the times of the net the first final trainings train, the
   best candidate (the nets completed a third of the way can be smaller);
4. ``finalize``: the best candidates (when none completed, the furthest trained) trained with the full
   recipe, as many candidates and seeds as the time left allows (measured on the first final trainings,
   right after the search's share; time that the most finalizing would not use goes back to the search
   first);
5. ``export``: the best finalist's best seed by validation, exported with parity checks and its card;
6. ``measure``: the model and the reference network timed interleaved on the device;
7. ``reference``: the reference network trained with the final recipe on the same data, when its
   estimated time (``nas.auto.reference``, taken out of the budget before the search) fits.

Budget: wall time is counted across invocations (``AutoState``); the search gets ``SEARCH_SHARE`` of what
the table leaves, finalize what is left but ``plan.finish_seconds``.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nas.auto import plan
from nas.auto.device import given_table, resolve_table
from nas.auto.profile import DataProfile, load_profile
from nas.auto.request import AutoRequest, check_dims, check_request
from nas.auto.state import AutoState
from nas.auto.summary import EXPERIMENT_FILE, MODEL_DIR, SUMMARY_FILE, build_summary
from nas.errors import NasError, UsageError

Say = Callable[[str], None]
FEASIBILITY_SAMPLES = 2000
MIN_FEASIBLE_SHARE = 0.02  # ECG5000 at 0.9 %: 133 trials in 1.8 minutes, none within the budget
MEASURE_ROUNDS = 300
# the share of the search after which the first final trainings are estimated: at half of a 2-minute
# budget's share, a loaded 2-core machine (kill and resume included) had spent all but 10 s of the time
# those trainings then took (55 s)
ESTIMATE_AFTER = 1 / 3


def run_auto(
    request: AutoRequest,
    say: Say = print,
    final_progress: Callable[[int, int, bool], None] | None = None,
    table_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``nas auto`` into ``request.out``; return the summary written to ``summary.json``."""
    from nas.space import SearchSpace
    from nas.zoo import resolve_arch

    check_request(request)
    given = given_table(request.device) if request.device.table is not None else None
    if given and request.input_size not in (None, given.input_size):
        raise UsageError(f"--input-size {request.input_size} differs from the table's {given.input_size}")
    profile = load_profile(request.data, request.input_size or (given.input_size if given else None))
    say(f"data: {profile.describe()}")
    plan.objective_settings(request.objective, profile.task)
    space = given.space() if given else SearchSpace.from_yaml(plan.space_for(profile))
    request = dataclasses.replace(request, reference=request.reference or plan.reference_for(profile))
    reference = resolve_arch(request.reference)
    check_dims(profile, space, request, reference)
    if note := plan.space_note(profile, space.name):
        say(f"space: {note}")
    out = request.out
    existed = out.exists()  # empty, or AutoState.open refuses it
    state = AutoState.open(out, request.record(), request.resume)
    fresh = state is None
    if state is None:
        state = AutoState.create(out, request.record())
    state.set("request", {**state.data["request"], "budget_minutes": request.budget_minutes})
    try:
        with state:
            state.set("profile", profile.to_json())
            table_path = _table_stage(state, request, space, profile, table_progress, say)
            max_ms = _budget_stage(state, request, table_path, reference, space, profile.dims, say)
            _reference_plan(state, request, reference, profile, say)
    except NasError:
        if fresh:  # refused before any search: leave nothing behind
            shutil.rmtree(out, ignore_errors=True)
            if existed:
                out.mkdir()
        raise
    with state:
        config = _experiment(state, request, profile, space.name, table_path, max_ms, say)
        config = _search_stage(state, config, profile, say)
        record = _finalize_stage(state, config, final_progress, say)
        card = _export_stage(state, request, config, record, table_path, say)
        measured = _measure_stage(state, table_path, card["arch"], reference, request.reference, say)
        _reference_stage(state, config, reference, request.reference, say)
        summary = build_summary(state, request, profile, config, record, card, measured)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _table_stage(state, request, space, profile: DataProfile, progress, say: Say) -> Path:
    done = state.done("table")
    if done is None:
        say(f"device: getting a latency table for {space.name} at {profile.size_text()} ...")
        choice = resolve_table(
            request.device,
            space,
            profile.size,
            profile.channels,
            profile.classes,
            state.out / "latency",
            progress,
        )
        done = {"path": str(choice.path), "how": choice.how, "note": choice.note}
        state.finish("table", done)
    say(f"latency table ({done['how']}): {done['note']}")
    return Path(done["path"])


def _budget_stage(
    state, request: AutoRequest, table_path: Path, reference, space, dims: int, say: Say
) -> float:
    from nas.latency.predictors import load_latency
    from nas.latency.validate import measure_nets

    done = state.done("budget")
    if done is None:
        table = load_latency(table_path)
        if request.max_latency_ms is not None:
            done = {"max_ms": request.max_latency_ms, "reference_ms": None}
        else:
            ratio = request.latency_ratio or plan.DEFAULT_RATIO[dims]
            ms = measure_nets(table, {request.reference: reference}, rounds=MEASURE_ROUNDS)[request.reference]
            done = {"max_ms": ratio * ms, "reference_ms": ms, "ratio": ratio}
        rng = random.Random(0)
        _check_feasible(sorted(table.predict(space.sample(rng)) for _ in range(FEASIBILITY_SAMPLES)),
                        done["max_ms"], space.name)  # fmt: skip
        state.finish("budget", done)
    how = (
        f"{done['ratio']:g} x {request.reference} ({done['reference_ms']:.3f} ms)"
        if done.get("reference_ms")
        else "--max-latency-ms"
    )
    say(f"latency budget: {done['max_ms']:.3f} ms ({how})")
    return float(done["max_ms"])


def _check_feasible(predicted: list[float], max_ms: float, space: str) -> None:
    """Refuse a budget that no net, or too few, of ``predicted`` (random nets of the space, sorted) meet,
    saying what budget admits a tenth of them."""
    meets, n = bisect.bisect_right(predicted, max_ms), len(predicted)
    if meets == 0:
        raise UsageError(
            f"the latency budget {max_ms:.3f} ms is below the fastest of {n} nets of {space} "
            f"({predicted[0]:.3f} ms on this device): raise --max-latency-ms or --latency-ratio"
        )
    if meets < MIN_FEASIBLE_SHARE * n:
        raise UsageError(
            f"the latency budget {max_ms:.3f} ms admits {meets} of {n} random nets of {space} "
            f"({meets / n:.1%}): the search would hardly train one; raise --max-latency-ms or "
            f"--latency-ratio ({predicted[n // 10]:.3f} ms admits a tenth)"
        )


def _reference_plan(state, request: AutoRequest, reference, profile: DataProfile, say: Say) -> None:
    from nas.auto.reference import RESERVE_SHARE, estimate_training_seconds

    done = state.done("reference_plan")
    if done is None:
        seconds = estimate_training_seconds(
            reference,
            profile.channels,
            profile.size,
            profile.classes,
            plan.final_steps(profile.train, plan.final_min_steps(request.budget_minutes)),
            plan.BATCH,
        )
        done = {
            "estimate_s": round(seconds, 1),
            "train": seconds <= RESERVE_SHARE * request.budget_minutes * 60,
        }
        state.finish("reference_plan", done)
    verb = "reserved for training it" if done["train"] else "too long for this budget: not trained"
    say(f"reference {request.reference}: about {done['estimate_s'] / 60:.1f} min to train, {verb}")


def _budget_s(state) -> float:
    return state.data["request"]["budget_minutes"] * 60


def _reserved(state) -> float:
    """Seconds still held back for the reference training."""
    planned = state.done("reference_plan")
    return planned["estimate_s"] if planned and planned["train"] and not state.done("reference") else 0.0


def _reference_stage(state, config, reference, name: str, say: Say) -> None:
    from nas.evaluate.cache import train_cached
    from nas.search.factory import load_splits

    if state.done("reference") is not None or not state.done("reference_plan")["train"]:
        return
    say(f"reference: training {name} with the final recipe")
    splits = load_splits(config)
    recipe = config.finalize.train_config(config.train_config(), splits).replace(threads=None)
    start = time.monotonic()
    metrics, _ = train_cached(reference, splits, recipe, state.out / "reference")
    state.finish("reference", {"test": metrics["test"], "seconds": round(time.monotonic() - start, 1)})


def _experiment(state, request, profile, space: str, table_path: Path, max_ms: float, say: Say):
    """``DIR/experiment.yaml``, written once (its search share fixed then); the resolved config."""
    from nas.search.config import load_experiment

    path = state.out / EXPERIMENT_FILE
    if not path.exists():
        seconds = plan.search_seconds(state.left() - _reserved(state), _budget_s(state))
        data = plan.experiment(
            profile,
            request.data,
            space,
            table_path,
            request.objective,
            max_ms,
            seconds,
            request.budget_minutes,
            state.out,
        )
        state.set("search_until_s", round(state.spent() + seconds, 1))  # before the file: a resume needs it
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        protocol = data["evaluation"]["protocol"]
        say(f"experiment: {path} ({protocol}, {data['workers']} workers, search {seconds / 60:.1f} min)")
    return load_experiment(str(path))


def _search_stage(state, config, profile: DataProfile, say: Say):
    """The search, in up to three runs of the study: a third of its share, then the rest of the share
    that the first final trainings leave (``_fit_final_wave``), then, once those are timed (their floor
    checked against the best candidate's times: ``_fit_best``), the time finalizing will not need.
    Returns the experiment as the final trainings will run it."""
    if state.done("search") is not None:
        return config
    monitor = _trial_lines(state, say)
    if "final_estimate_s" not in state.data:
        seconds = (state.data["search_until_s"] - state.spent()) * ESTIMATE_AFTER
        if seconds > 5:
            say(f"search: {seconds / 60:.1f} min, then an estimate of the final trainings' time")
            _search(config, seconds, monitor)
        config = _fit_final_wave(state, config, profile, say)
    seconds = state.data["search_until_s"] - state.spent()
    if seconds > 5:
        say(f"search: {seconds / 60:.1f} min left of its share")
        _search(config, seconds, monitor)
    # time the first final trainings, then search on for what finalizing will not need
    if "extend_until_s" not in state.data:
        found = _candidates(config)
        if "final_wave" not in state.data:
            config = _fit_best(state, config, profile, found, say)
        wave, trained = _final_wave(state, config, say)
        need = plan.final_seconds(plan.most_final_trainings(len(found)) - trained, wave, config.workers)
        spare = state.left() - _reserved(state) - plan.finish_seconds(_budget_s(state)) - need
        state.set("extend_until_s", round(state.spent() + (0.9 * spare if spare > 60 else 0.0), 1))
    seconds = state.data["extend_until_s"] - state.spent()
    if seconds > 5:
        state.set("search_until_s", state.data["extend_until_s"])
        say(f"search: {seconds / 60:.1f} min more (the time finalizing will not need)")
        _search(config, seconds, monitor)
    from nas.search.finalize import completed
    from nas.search.summary import read_summary

    summary = read_summary(config.out)
    state.finish("search", {"counts": summary.counts, "rungs": summary.rungs})
    say(f"search: {', '.join(f'{k} {v}' for k, v in summary.counts.items())}")
    if not completed(summary, config):
        say("search: no candidate completed in its time; finalizing the ones trained furthest")
    return config


def _fit_final_wave(state, config, profile: DataProfile, say: Say):
    """End the search's share where the first final trainings (``_final_estimate``) still fit in the
    budget; when they do not fit even now, lower the final recipe's step floor (``_fit_floor``)."""
    config, estimate = _fit_floor(state, config, profile, _final_estimate(state, config, profile), say)
    latest = state.spent() + _room(state) - estimate
    if latest < state.data["search_until_s"]:
        state.set("search_until_s", round(max(latest, state.spent()), 1))
        say(f"search: its share shortened to leave {estimate:.0f} s for the first final trainings")
    state.set("final_estimate_s", round(estimate, 1))
    return config


def _fit_best(state, config, profile: DataProfile, found: list[dict[str, Any]], say: Say):
    """Just before the first final trainings, the estimate again from the net they train, the search's
    best of ``found`` (``_candidates``; ``_fit_floor``): the early one went by the nets completed then,
    which can be smaller."""
    if not found:
        return config
    estimate = _final_estimate(state, config, profile, found[0]["arch"])
    return _fit_floor(state, config, profile, estimate, say)[0]


def _fit_floor(state, config, profile: DataProfile, estimate: float, say: Say):
    """Lower the final recipe's step floor where one final training of ``estimate`` seconds would not fit
    in what is left (``_room``), in the experiment file (so a resumed run and ``nas search`` on it train
    the same), down to the recipe's epochs; returns the experiment and the estimate at that floor."""
    from nas.search.config import load_experiment

    room, floor = _room(state), config.finalize.min_steps
    if estimate > room and floor:
        steps = plan.final_steps(profile.train, floor)
        fitted = plan.fitted_floor(profile.train, floor, max(room, 0) / estimate)
        if fitted < floor:
            _record_finalize(state.out / EXPERIMENT_FILE, min_steps=fitted)
            config = load_experiment(str(state.out / EXPERIMENT_FILE))
            estimate *= plan.final_steps(profile.train, fitted) / steps
            say(f"finalize: the final recipe's floor lowered from {floor} to {fitted} steps to fit")
    return config, estimate


def _room(state) -> float:
    """Seconds the first final trainings may take: the budget less the reference's reserve, the finish
    and what is spent."""
    return _budget_s(state) - _reserved(state) - plan.finish_seconds(_budget_s(state)) - state.spent()


def _final_estimate(state, config, profile: DataProfile, arch: str | None = None) -> float:
    """Seconds one final training should take (``plan.final_training_seconds``), from the trials so far,
    or from ``arch``'s own trainings (not its cached copies) when given."""
    from nas.search.run import open_storage, open_study, storage_url

    trials = open_study(config, open_storage(storage_url(config))).get_trials(deepcopy=False)
    if arch is not None:
        trials = [t for t in trials if t.user_attrs.get("arch") == arch and "cached_from" not in t.user_attrs]
    final_images = plan.final_steps(profile.train, config.finalize.min_steps) * plan.BATCH
    return plan.final_training_seconds(trials, plan.epoch_images(profile), final_images)


def _candidates(config) -> list[dict[str, Any]]:
    """The candidates finalize could take from the search so far, best first (``finalize.candidates``:
    the completed feasible ones, else the stopped ones within the constraints; one per arch)."""
    from nas.search.finalize import candidates, ranking
    from nas.search.report import front_axes
    from nas.search.summary import read_summary

    rank_by, descending = ranking(config, front_axes(config))
    return candidates(read_summary(config.out), config, rank_by, descending)


def _search(config, seconds: float, monitor) -> None:
    """The experiment searched for ``seconds`` more (the study resumes), without its finalize."""
    from nas.search.runner import run_experiment

    run_experiment(config.model_copy(update={"finalize": None, "timeout": seconds}), monitor=monitor)


def _final_wave(state, config, say: Say) -> tuple[float, int]:
    """Seconds a wave of final trainings takes and how many it trained: the search's best trained on
    ``plan.wave_size`` seeds side by side, as finalize trains the rest (they are reused there), recorded."""
    from nas.search.finalize import finalize_run

    recorded = state.data.get("final_wave")
    if recorded is None:
        trainings = plan.wave_size(config.workers)
        start = time.monotonic()
        finalize_run(
            config.out,
            **(config.finalize.model_dump() | {"top": 1, "seeds": trainings}),
            workers=trainings,
        )
        recorded = {"trainings": trainings, "seconds": round(time.monotonic() - start, 1)}
        state.set("final_wave", recorded)
        say(f"final trainings: {trainings} side by side took {recorded['seconds']:.0f} s")
    return recorded["seconds"], recorded["trainings"]


def _trial_lines(state, say: Say):
    """The search's monitor: a line per trial this process finishes, with the study's counts so far and
    the minutes left of the search's share."""
    from contextlib import contextmanager

    from nas.search.run import FINISHED
    from nas.search.summary import shown_state

    @contextmanager
    def monitor(config):
        def line(study, trial) -> None:
            metrics = trial.user_attrs.get("metrics", {})
            shown = ", ".join(f"{m} {metrics[m]:.4g}" for m in config.metrics_used() if m in metrics)
            finished = len(study.get_trials(deepcopy=False, states=FINISHED))
            left = (state.data["search_until_s"] - state.spent()) / 60
            state_name = shown_state(trial.user_attrs, trial.state.name)
            say(
                f"  trial {trial.number} {state_name}: {shown} ({finished} done, {max(left, 0):.1f} min left)"
            )

        yield [line]

    return monitor


def _finalize_stage(state, config, progress, say: Say):
    """The best candidate's first seeds, timed; then as many candidates and seeds as the time left allows."""
    from nas.search.final import read_final
    from nas.search.finalize import finalize_run

    done = state.done("finalize")
    if done is None:
        final = config.finalize
        wave, trained = _final_wave(state, config, say)
        left = state.left() - _reserved(state) - plan.finish_seconds(_budget_s(state))
        top, seeds = plan.finalize_size(wave, config.workers, left, trained)
        say(
            f"finalize: top {top} x {seeds} seeds, {final.epochs} epochs and at least {final.min_steps} steps"
            f" ({wave:.0f} s a wave of {config.workers} side by side)"
        )
        finalize_run(
            config.out,
            **(final.model_dump() | {"top": top, "seeds": seeds}),
            progress=progress,
            workers=config.workers,
        )
        _record_finalize(state.out / EXPERIMENT_FILE, top=top, seeds=seeds)
        done = {"top": top, "seeds": seeds, "epochs": final.epochs, "min_steps": final.min_steps}
        state.finish("finalize", done)
    return read_final(config.out)


def _record_finalize(path: Path, **settings: int) -> None:
    """The finalize actually run, in the experiment file (so ``nas search`` on it does the same)."""
    data = yaml.safe_load(path.read_text())
    data["finalize"].update(settings)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _export_stage(state, request: AutoRequest, config, record, table_path: Path, say: Say) -> dict[str, Any]:
    from nas.export.format import ExportOptions
    from nas.export.pipeline import run_export
    from nas.export.source import SourceRequest

    done = state.done("export")
    if done is None:
        best = min(record.trials, key=lambda t: t.final_rank)
        metric = objective_metric(config).removeprefix("val_")
        trained = Path(config.out) / _best_seed(Path(config.out), best.dirs, metric)
        say(f"export: trial {best.number} ({trained}) -> {state.out / MODEL_DIR}")
        options = ExportOptions(
            out_dir=state.out / MODEL_DIR, format=request.format, int8=request.int8, table=table_path
        )
        card = run_export(SourceRequest(run_dir=trained, data=request.data).load(), options)
        done = {
            "trained": str(trained),
            "trial": best.number,
            "card": card.model_dump(mode="json", by_alias=True),
        }
        state.finish("export", done)
    return done["card"]


def objective_metric(config) -> str:
    """The validation metric the search maximized: the reward's (since the search has one), or the first
    objective of a Pareto experiment that an earlier version wrote (a resumed run)."""
    return config.reward.accuracy if config.reward is not None else config.objectives[0].metric


def _best_seed(run_dir: Path, dirs: list[str], metric: str) -> str:
    """The finalist's trained directory with the best validation ``metric`` (ties: the first seed)."""

    def val(directory: str) -> float:
        metrics = json.loads((run_dir / directory / "metrics.json").read_text())
        value = metrics.get("val", {}).get(metric)
        return value if isinstance(value, int | float) else float("-inf")

    return max(dirs, key=val)


def _measure_stage(state, table_path: Path, arch: str, reference, name: str, say: Say) -> dict[str, float]:
    from nas.arch import ArchSpec
    from nas.latency.predictors import load_latency
    from nas.latency.validate import measure_nets

    done = state.done("measure")
    if done is None:
        say(f"measure: the model and {name} interleaved on the device, {MEASURE_ROUNDS} rounds")
        table = load_latency(table_path)
        ms = measure_nets(table, {"model": ArchSpec.from_str(arch), name: reference}, rounds=MEASURE_ROUNDS)
        done = {"model_ms": ms["model"], "reference_ms": ms[name], "ratio": ms["model"] / ms[name]}
        state.finish("measure", done)
    return done
