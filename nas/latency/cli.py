"""``nas latency build | measure | fit | adapt | predict | validate | import | show``: thin commands over
``build_table``, ``nas.latency.measured``, the predictors, ``validate`` and the table.

``add_latency_commands`` adds them to the ``nas`` parser; like the rest of the CLI, bad input raises a
``NasError``, which ``nas.cli.main`` prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from nas.argtypes import non_negative_float, positive_int


def add_latency_commands(commands: Any) -> None:
    """Add ``latency`` and its subcommands to the top-level subparsers ``commands``."""
    from nas.latency import importers

    latency = commands.add_parser("latency", help="device latency tables: build, validate, show")
    sub = latency.add_subparsers(dest="latency_command", required=True, parser_class=type(latency))

    build = sub.add_parser(
        "build",
        help="measure a latency table for a space on this machine or a board",
        description="Measure a latency table. A finished table of the same space, size, device and backend "
        "for another data shape (--from, else found in the output folder) gives its body blocks: only the "
        "stem and head are timed, in seconds.",
    )
    build.add_argument("--space", help="a space YAML file or a bundled space name (default: --from's)")
    build.add_argument("--input-size", type=positive_int, help="square input side (default: --from's)")
    build.add_argument("--in-chans", type=positive_int, help="input channels (default 3, or --from's)")
    build.add_argument("--num-classes", type=positive_int, help="classes (default 1000, or --from's)")
    build.add_argument(
        "--device", help="device name, the table's folder under latency_tables/ (default: --from's)"
    )
    _backend_arguments(build, ", or --from's")
    build.add_argument("--rounds", type=positive_int, help="timing rounds (default 100, or --from's)")
    _sample_argument(build, ", or --from's")
    build.add_argument("--calibration-nets", type=positive_int, help="default 30, or --from's")
    build.add_argument(
        "--from",
        dest="base",
        type=Path,
        metavar="TABLE",
        help="a table of this space and device for another data shape: its settings are the defaults and "
        "its body blocks are reused",
    )
    build.add_argument(
        "--out",
        type=Path,
        help="table file (default latency_tables/<device>/<space>-<res>.json; "
        "<space>-<res>-<C>ch-<K>cls.json where that holds another data shape)",
    )
    build.set_defaults(func=cmd_latency_build)

    measure = sub.add_parser(
        "measure",
        help="time whole networks on this machine or a board: arch,latency_ms CSV and a JSON sidecar",
        description="Time whole networks of a space (random ones from --seed, or the arch strings of "
        "--archs), interleaved with the space's anchor network, for 'nas latency adapt' and 'fit'.",
    )
    measure.add_argument("--space", required=True, help="a space YAML file or a bundled space name")
    measure.add_argument("--input-size", type=positive_int, required=True, help="input side or length")
    measure.add_argument("--in-chans", type=positive_int, default=3, help="input channels (default 3)")
    measure.add_argument("--num-classes", type=positive_int, default=1000, help="classes (default 1000)")
    measure.add_argument("--device", required=True, help="device name, recorded in the sidecar")
    _backend_arguments(measure, "")
    measure.add_argument("--rounds", type=positive_int, default=100, help="timing rounds (default 100)")
    _sample_argument(measure, "")
    nets = measure.add_mutually_exclusive_group(required=True)
    nets.add_argument("--nets", type=positive_int, help="how many random nets of the space")
    nets.add_argument("--archs", type=Path, metavar="FILE", help="one canonical arch string per line")
    measure.add_argument("--seed", type=int, default=0, help="seed of the random nets (default 0)")
    measure.add_argument("--out", type=Path, required=True, help="MEASURED.csv (sidecar MEASURED.json)")
    measure.set_defaults(func=cmd_latency_measure)

    fitted = sub.add_parser(
        "fit", help="a latency predictor learned from measured nets alone (no table): a predictor JSON"
    )
    fitted.add_argument("--measured", type=Path, required=True, help="MEASURED.csv of 'nas latency measure'")
    fitted.add_argument("--space", required=True, help="the measured nets' space (a YAML file or a name)")
    fitted.add_argument("--out", type=Path, required=True, help="PREDICTOR.json")
    fitted.set_defaults(func=cmd_latency_fit)

    adapted = sub.add_parser(
        "adapt",
        help="a predictor for a new device from another device's table and a few nets measured on it",
    )
    adapted.add_argument("--from", dest="source", type=Path, required=True, metavar="TABLE")
    adapted.add_argument("--measured", type=Path, required=True, help="MEASURED.csv of 'nas latency measure'")
    adapted.add_argument("--device", required=True, help="the new device's name")
    adapted.add_argument("--out", type=Path, required=True, help="PREDICTOR.json")
    adapted.set_defaults(func=cmd_latency_adapt)

    predicted = sub.add_parser("predict", help="a table's or predictor's latency of the nets of a file")
    predicted.add_argument("table", type=Path, metavar="PREDICTOR_OR_TABLE")
    predicted.add_argument("--archs", type=Path, required=True, metavar="FILE", help="one arch per line")
    predicted.add_argument("--out", type=Path, required=True, help="PRED.csv (arch,latency_ms)")
    predicted.set_defaults(func=cmd_latency_predict)

    validate = sub.add_parser("validate", help="predicted vs measured latency of held-out random nets")
    validate.add_argument("table", type=Path, metavar="PREDICTOR_OR_TABLE")
    validate.add_argument("--nets", type=positive_int, default=50, help="how many nets (default 50)")
    validate.add_argument("--seed", type=int, default=0, help="seed of the held-out nets (default 0)")
    validate.add_argument("--json", action="store_true", help="print one JSON object")
    validate.set_defaults(func=cmd_latency_validate)

    imported = sub.add_parser(
        "import",
        help="turn a published per-layer FBNet latency table (CSV or JSON) into a table of this project",
        description=(importers.__doc__ or "").split("Every op")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imported.add_argument("file", type=Path, help="the per-layer table (.csv or .json)")
    imported.add_argument("--device", required=True, help="device name (and the rows of that device)")
    imported.add_argument("--input-size", type=positive_int, default=224, help="default 224")
    imported.add_argument("--in-chans", type=positive_int, default=3, help="default 3")
    imported.add_argument("--num-classes", type=positive_int, default=1000, help="default 1000")
    imported.add_argument("--out", type=Path, help="default latency_tables/<device>/fbnet-<res>.json")
    imported.set_defaults(func=cmd_latency_import)

    show = sub.add_parser(
        "show", help="provenance, settings, calibration and entries of a table or predictor"
    )
    show.add_argument("table", type=Path, metavar="PREDICTOR_OR_TABLE")
    show.set_defaults(func=cmd_latency_show)


def _backend_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """The backend and its options, shared by ``build`` and ``measure`` (None when not given)."""
    from nas.latency.backends import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS.names(), help=f"default ort{default}")
    parser.add_argument("--threads", type=positive_int, help=f"inference threads (default 1{default})")
    parser.add_argument("--rpc-host", help="TVM RPC server or tracker host (tvm-rpc)")
    parser.add_argument("--rpc-port", type=positive_int, help="TVM RPC port (tvm-rpc)")
    parser.add_argument("--rpc-key", help="TVM RPC tracker key of the board (tvm-rpc)")
    parser.add_argument("--target", help="TVM target: 'host' or a JSON object (tvm, tvm-rpc)")


def _sample_argument(parser: argparse.ArgumentParser, default: str) -> None:
    from nas.latency.backends.base import Settings

    parser.add_argument(
        "--sample-ms",
        type=non_negative_float,
        help="run each item back to back this long per timed sample, as in use "
        f"(default {Settings.sample_ms:g}{default}); 0 times single runs, cold in cache",
    )


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "rpc_host": args.rpc_host,
        "rpc_port": args.rpc_port,
        "rpc_key": args.rpc_key,
        "target": args.target,
    }


def cmd_latency_measure(args: argparse.Namespace) -> None:
    from nas.latency import measured
    from nas.latency.backends import make_backend
    from nas.latency.backends.base import Settings
    from nas.space import SearchSpace

    space = SearchSpace.from_yaml(args.space)
    if args.archs is not None:
        archs = measured.read_archs(args.archs, space)
    else:
        archs = measured.random_nets(space, args.nets, args.seed)
    measured.check_out(args.out)
    backend = make_backend(args.backend or "ort", threads=args.threads or 1, **_backend_options(args))
    result = measured.measure_archs(
        space,
        archs,
        args.input_size,
        args.in_chans,
        args.num_classes,
        backend,
        args.device,
        Settings(rounds=args.rounds, **_given(sample_ms=args.sample_ms)),
        seed=None if args.archs is not None else args.seed,
    )
    measured.save(result, args.out)
    print(f"wrote {args.out} and {measured.sidecar_path(args.out)}: {len(result.nets)} nets")


def _given(**options: Any) -> dict[str, Any]:
    """The options a user gave (not None): what overrides a default or a base table's setting."""
    return {key: value for key, value in options.items() if value is not None}


def cmd_latency_build(args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.latency.backends import make_backend
    from nas.latency.backends.base import Settings
    from nas.latency.build import (
        CALIBRATION_NETS,
        ROUNDS,
        build_table,
        find_shape_base,
        shape_base_measure,
        table_settings,
    )
    from nas.latency.table import LatencyTable, shape_table_path
    from nas.latency.validate import backend_from_provenance
    from nas.resources import find_file

    base = LatencyTable.load(find_file(args.base)) if args.base else None
    space, size, chans, classes, device = _build_settings(args, base)
    options = _backend_options(args)
    if base is not None and args.backend is None and args.threads is None and not any(options.values()):
        backend = backend_from_provenance(base.provenance)
    else:
        backend = make_backend(args.backend or "ort", threads=args.threads or 1, **options)
    out = args.out or shape_table_path(device, space.name, size, chans, classes)
    settings = table_settings(space, size, chans, classes)
    if base is None and not out.exists():
        wanted: dict[str, Any] = {"device": device, "backend": backend.name, "threads": backend.threads}
        if args.sample_ms is not None:  # a base timed otherwise would not add up with this table's blocks
            wanted["measure"] = {"sample_ms": args.sample_ms}
        found = find_shape_base(out.parent, settings, {**backend.provenance(), **wanted})
        base = LatencyTable.load(found) if found else None
        if found:
            print(f"reusing the body blocks of {found} (built for another data shape)")
    measure, calibration = shape_base_measure(base) if base else (Settings(rounds=ROUNDS), CALIBRATION_NETS)
    measure = dataclasses.replace(measure, **_given(rounds=args.rounds, sample_ms=args.sample_ms))
    if out.exists():
        _say_resumed_timing(out, measure)
    calibration = args.calibration_nets or calibration
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        table = build_table(
            space,
            size,
            chans,
            classes,
            backend,
            device,
            out,
            measure=measure,
            calibration_nets=calibration,
            progress=progress,
            base=base,
        )
    cal = table.calibration
    print(
        f"wrote {out}: {len(table.entries)} blocks, "
        f"calibration leave-one-out MAPE {cal.loo_mape:.1%} on {cal.n} nets"
    )


def _build_settings(args: argparse.Namespace, base: Any) -> tuple[Any, int, int, int, str]:
    """Space, input size, channels, classes and device: the flags, else ``--from``'s, else defaults."""
    from nas.errors import UsageError
    from nas.space import SearchSpace

    missing = [
        f
        for f, v in (("--space", args.space), ("--input-size", args.input_size), ("--device", args.device))
        if v is None
    ]
    if base is None and missing:
        raise UsageError(f"nas latency build needs {', '.join(missing)} (or --from TABLE to take them from)")
    space = SearchSpace.from_yaml(args.space) if args.space else base.space()
    s = base.settings if base is not None else {"in_chans": 3, "num_classes": 1000}
    return (
        space,
        args.input_size or s["input_size"],
        args.in_chans or s["in_chans"],
        args.num_classes or s["num_classes"],
        args.device or base.provenance["device"],
    )


def cmd_latency_import(args: argparse.Namespace) -> None:
    from nas.latency.importers import import_fbnet_table
    from nas.latency.table import default_table_path

    table = import_fbnet_table(args.file, args.device, args.input_size, args.in_chans, args.num_classes)
    out = args.out or default_table_path(args.device, "fbnet", args.input_size)
    table.save(out)
    print(f"wrote {out}: {len(table.entries)} blocks from {args.file} (uncalibrated: sum of layers)")


def _say_resumed_timing(out: Path, asked: Any) -> None:
    """A resumed table is timed as it was started (its blocks must add up); say so where the command
    line asked for other rounds or samples, rather than ignore them silently."""
    from nas.latency.backends.base import Settings
    from nas.latency.table import LatencyTable

    kept = Settings.recorded(LatencyTable.load(out).provenance.get("measure"))
    if (kept.rounds, kept.sample_ms) != (asked.rounds, asked.sample_ms):
        print(
            f"resuming {out}: it keeps the timing it was started with ({kept.rounds} rounds, "
            f"{kept.sample_ms:g} ms samples), not {asked.rounds} rounds of {asked.sample_ms:g} ms; "
            "choose another --out for those"
        )


def cmd_latency_fit(args: argparse.Namespace) -> None:
    from nas.latency import measured
    from nas.latency.predictors.fitted import fit_predictor

    found = _measured_of(args.measured, args.space)
    measured.check_free(args.out)
    predictor = fit_predictor(found)
    predictor.save(args.out)
    m = predictor.model
    loo = m.loo_mape_by_design
    print(
        f"wrote {args.out}: fitted on {len(found.nets)} nets; the fit on every arch feature weighs "
        f"{m.features_weight:.2f} against the cost terms' (leave-one-out MAPE {loo['features']:.1%} and "
        f"{loo['costs']:.1%}), mixed: leave-one-out MAPE {m.loo_mape:.1%}"
    )


def cmd_latency_adapt(args: argparse.Namespace) -> None:
    from nas.latency import measured
    from nas.latency.predictors.adapted import adapt
    from nas.latency.predictors.features import TERM_UNITS
    from nas.latency.table import LatencyTable
    from nas.resources import find_file

    table = LatencyTable.load(find_file(args.source))
    found = _measured_of(args.measured, None)
    measured.check_free(args.out)
    predictor = adapt(table, found, args.device)
    predictor.save(args.out)
    m = predictor.model
    loo = m.loo_mape_by_design
    groups = "  ".join(f"{g} x{r:.2f}" for g, r in m.corrections.items())
    term_ms = {**m.mac_ms, "conv_layers": m.conv_ms}
    terms = "  ".join(f"{term} {ms:.3g} ms per {TERM_UNITS[term]}" for term, ms in term_ms.items())
    print(
        f"wrote {args.out}: {len(found.nets)} nets; the fit with the source's blocks weighs "
        f"{m.source_weight:.2f} against the cost terms alone (leave-one-out MAPE {loo['source']:.1%} and "
        f"{loo['terms']:.1%}, mixed {loo['mixed']:.1%}): block costs {groups}, plus {terms}; "
        f"calibration leave-one-out MAPE {predictor.calibration.loo_mape:.1%}"
    )


def _measured_of(path: Path, space: str | None) -> Any:
    """The measured set at ``path``; with ``space``, its nets must be of that space."""
    from nas.errors import DataError
    from nas.latency import measured
    from nas.space import SearchSpace

    found = measured.load(path)
    if space is not None:
        wanted = SearchSpace.from_yaml(space)
        if wanted.config.model_dump(mode="json") != found.sidecar.settings["space_config"]:
            held = found.sidecar.settings["space"]
            raise DataError(f"{path} holds nets of space '{held}' as measured, not of {space}")
    return found


def cmd_latency_predict(args: argparse.Namespace) -> None:
    from nas.latency import measured
    from nas.latency.predictors import load_latency

    model = load_latency(args.table)
    archs = measured.read_archs(args.archs, model.space())
    measured.check_free(args.out)
    measured.write_csv(args.out, [(a.to_str(), model.predict(a)) for a in archs])
    print(f"wrote {args.out}: {len(archs)} nets")


def cmd_latency_validate(args: argparse.Namespace) -> None:
    from nas.latency.predictors import load_latency
    from nas.latency.validate import format_report, validate

    report = validate(load_latency(args.table), nets=args.nets, seed=args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.table}: {report['n']} held-out nets, seed {args.seed}")
    for column in ("arch", "predicted ms", "measured ms", "error"):
        table.add_column(column, justify="left" if column == "arch" else "right")
    for net in report["nets"]:
        error = net["predicted_ms"] / net["measured_ms"] - 1
        table.add_row(net["arch"], f"{net['predicted_ms']:.3f}", f"{net['measured_ms']:.3f}", f"{error:+.1%}")
    console = Console()
    console.print(table)
    console.print(format_report(report))


def cmd_latency_show(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from nas.latency.predictors import load_latency
    from nas.latency.table import LatencyTable

    table = load_latency(args.table)
    info = Table(show_header=False, title=str(args.table))
    for key, value in {**table.provenance, **table.settings}.items():
        if key != "space_config":
            info.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    if table.anchor:
        info.add_row("anchor", f"{table.anchor['median_ms']:.3f} ms  {table.anchor['arch']}")
    if not isinstance(table, LatencyTable):
        info.add_row("predictor", f"{table.name}, learned from {len(table.calibration_nets)} measured nets")
        for key, value in table.model.model_dump(mode="json").items():
            if key not in ("entries", "features", "scale", "coef"):
                info.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
        Console().print(info)
        return
    info.add_row("entries", str(len(table.entries)))
    cal = table.calibration
    if cal:
        fitted = f"{cal.a:+.4g} ms + {cal.b:.4g} x block sum {cal.c:+.4g} ms x blocks"
        info.add_row("calibration", f"{fitted}; leave-one-out MAPE {cal.loo_mape:.1%} on {cal.n} nets")
    elif table.provenance.get("backend") == "imported":
        info.add_row("calibration", "none (imported table: predicts the sum of its layers)")
    else:
        info.add_row("calibration", "none (build unfinished)")
    Console().print(info)
