"""MetaSchedule tuning of one network for this machine's CPU, builds and measurements in this process.

MetaSchedule's ``LocalBuilder`` and ``LocalRunner`` build and time every candidate in worker processes
that each import TVM first; on a busy 2-core machine that import alone outlasts their timeouts, and
it costs seconds per batch of candidates. Here a candidate is built (``default_build``, as the
``LocalBuilder`` does) and timed (``run_evaluator_common``, as the ``LocalRunner`` does: random
inputs, ``time_evaluator``) in this process instead. What that gives up is isolation: a candidate that
crashed would take the export with it (MetaSchedule's schedule rules produce valid loop nests, and the
postprocessors reject invalid ones before they are built).

Trials go to the tasks (fused operators) in order of their FLOPs, heaviest first: the first round gives
every task ``ceil(trials / tasks)`` candidates until ``trials`` are spent, so a small budget tunes the
operators that matter most and leaves the rest at TVM's default schedules. The tuning database and the
logs stay in ``work_dir``.
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

MIN_REPEAT_MS = 50  # each candidate is timed for at least this long (MetaSchedule's default: 100)
CANDIDATES_PER_TRIAL = 16  # evolutionary search population per measured candidate of a task's round
POPULATION = (32, 512)  # ... within these bounds (512: MetaSchedule's default)
# GPU and DSP tensor intrinsics: parsed from TVMScript when MetaSchedule first imports its intrinsics,
# 85% of that import (about 50 s of CPU on this project's 2-core machine), never used on a CPU target
NOT_FOR_CPU = ("cuda", "rocm", "hexagon")


def fuse(tvm: Any, mod: Any, target: Any) -> Any:
    """The Relax module as MetaSchedule's ``compile_relax`` lowers it before applying a database
    (legalized, operators fused): its PrimFuncs are the tuning tasks, keyed as the database is read."""
    from tvm import relax

    passes = [
        *relax.pipeline.library_dispatch_passes(target),
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]
    with target:
        return tvm.transform.Sequential(passes)(mod)


def tune(tvm: Any, mod: Any, target: Any, trials: int, work_dir: Path, seed: int = 0) -> tuple[Any, dict]:
    """Tune ``mod``'s operators for ``target`` with ``trials`` measured candidates in all; returns the
    database (a JSON database in ``work_dir``) and what was done."""
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.analysis import estimate_tir_flops
    from tvm_ffi import structural_hash

    start = time.perf_counter()
    shutil.rmtree(work_dir, ignore_errors=True)  # a JSON database appends: a rerun starts afresh
    work_dir.mkdir(parents=True)
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)  # progress goes to logs/
    _import_cpu_intrinsics()
    extracted = ms.relax_integration.extract_tasks(fuse(tvm, mod, target), target)
    flops = {t.task_name: estimate_tir_flops(t.dispatched[0]) * t.weight for t in extracted}
    extracted.sort(key=lambda t: -flops[t.task_name])
    per_task = max(1, min(64, math.ceil(trials / max(1, len(extracted)))))
    population = min(POPULATION[1], max(POPULATION[0], CANDIDATES_PER_TRIAL * per_task))
    strategy = ms.search_strategy.EvolutionarySearch(
        population_size=population, init_min_unmeasured=min(50, population)
    )
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        extracted_tasks=extracted, work_dir=str(work_dir), strategy=strategy, num_threads=1, seed=seed
    )
    database = ms.database.JSONDatabase(work_dir=str(work_dir))
    with tempfile.TemporaryDirectory(prefix="nas-tvm-tune-") as tmp:
        ms.tune_tasks(
            tasks=contexts,
            task_weights=weights,
            work_dir=str(work_dir),
            max_trials_global=trials,
            num_trials_per_iter=per_task,
            builder=in_process_builder(Path(tmp)),
            runner=in_process_runner(),
            database=database,
            cost_model=ms.cost_model.XGBModel(num_tuning_cores=1),
        )
    measured = [r for r in database.get_all_tuning_records() if _ran(r)]
    info = {
        "trials": trials,
        "trials_per_task_first_round": per_task,
        "tasks": len(extracted),
        "tasks_with_measured_candidates": len({structural_hash(r.workload.mod) for r in measured}),
        "measured_candidates": len(measured),
        "heaviest_tasks": [t.task_name for t in extracted[:5]],
        "seconds": time.perf_counter() - start,
        "strategy": f"MetaSchedule evolutionary search (population {population}), XGBoost cost model, "
        "gradient task scheduler",
        "builder_runner": "in this process (default_build; time_evaluator on random inputs, "
        f"at least {MIN_REPEAT_MS} ms per candidate)",
    }
    return database, info


def _import_cpu_intrinsics() -> None:
    """Import MetaSchedule's tensor intrinsics without the GPU and DSP ones (``NOT_FOR_CPU``), which are
    left importable: their modules are stand-ins only while the package imports."""
    import importlib
    import sys
    import types

    package = "tvm.s_tir.tensor_intrin"
    if package in sys.modules:
        return
    stubs = {name: types.ModuleType(f"{package}.{name}") for name in NOT_FOR_CPU}
    sys.modules.update({stub.__name__: stub for stub in stubs.values()})
    try:
        loaded = importlib.import_module(package)
    finally:
        for stub in stubs.values():
            sys.modules.pop(stub.__name__, None)
    for name, stub in stubs.items():
        if getattr(loaded, name, None) is stub:
            delattr(loaded, name)


def _ran(record: Any) -> bool:
    """A candidate that built and ran (MetaSchedule stores failed ones with a 1e10 s run time)."""
    return bool(record.run_secs) and all(float(t) < 1e9 for t in record.run_secs)


@functools.cache
def _builder_classes() -> tuple[type, type]:
    """The builder and runner classes, defined on first use (their bases come from TVM)."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import default_build
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig, PyRunner
    from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture, default_alloc_argument
    from tvm.s_tir.meta_schedule.runner.utils import run_evaluator_common

    @derived_object
    class _Builder(PyBuilder):
        """Builds candidates in this process into ``folder``."""

        folder: str

        def __init__(self, folder: Path) -> None:
            super().__init__()
            self.folder = str(folder)
            self.built = 0

        def build(self, build_inputs: list) -> list:
            results = []
            for item in build_inputs:
                self.built += 1
                path = Path(self.folder) / f"candidate_{self.built}" / "candidate.so"
                try:
                    path.parent.mkdir()  # MetaSchedule removes the folder once the candidate ran
                    default_build(item.mod, item.target, None).export_library(str(path))
                    results.append(BuilderResult(str(path), None))
                except Exception as exc:  # a candidate that does not build is a failed trial
                    results.append(BuilderResult(None, f"build failed: {exc}"))
            return results

    @derived_object
    class _Runner(PyRunner):
        """Times built candidates in this process, as ``LocalRunner``'s workers do."""

        def run(self, runner_inputs: list) -> list:
            import tvm

            config = EvaluatorConfig(number=3, repeat=1, min_repeat_ms=MIN_REPEAT_MS)
            futures = []
            for item in runner_inputs:
                try:
                    module = tvm.runtime.load_module(str(item.artifact_path))
                    device = tvm.runtime.device(str(item.device_type), 0)
                    info = tuple(arg.as_json() for arg in item.args_info)
                    args = default_alloc_argument(device, info, 1)
                    costs = run_evaluator_common(module, device, config, args)
                    futures.append(LocalRunnerFuture(res=costs, error_message=None))
                except Exception as exc:  # a candidate that fails to run is a failed trial
                    futures.append(LocalRunnerFuture(res=None, error_message=f"run failed: {exc}"))
            return futures

    return _Builder, _Runner


def in_process_builder(folder: Path) -> Any:
    return _builder_classes()[0](folder)


def in_process_runner() -> Any:
    return _builder_classes()[1]()
