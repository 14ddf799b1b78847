"""The ``nas`` command: a thin layer over functions the tests call directly.

A ``NasError`` (the user's input) or an ``OSError`` (a path, permission or full disk of the user's) prints
one line on stderr and exits with code 2; anything else is a bug, printed as one line that says so and
where, exit code 1; ``nas --debug ...`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from nas import __version__
from nas.argtypes import positive_float, positive_int
from nas.console import console
from nas.errors import NasError, UsageError
from nas.resources import bundled_names

EXIT_USAGE = 2
EXIT_BUG = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas", description="Hardware-aware neural architecture search for edge medical AI.")
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error (a bug)"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    space = commands.add_parser("space", help="inspect and sample search spaces").add_subparsers(
        dest="space_command", required=True, parser_class=_Parser
    )
    show = space.add_parser("show", help="stages, choices and size of a space")
    spaces = ", ".join(bundled_names("search_spaces"))
    show.add_argument("file", help=f"a space YAML file, or a bundled space name ({spaces})")
    show.set_defaults(func=cmd_space_show)
    sample = space.add_parser("sample", help="random architectures from a space, one arch string a line")
    sample.add_argument("file")
    sample.add_argument("-n", type=positive_int, default=1, help="how many (default 1)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.set_defaults(func=cmd_space_sample)

    arch = commands.add_parser("arch", help="inspect architectures").add_subparsers(
        dest="arch_command", required=True, parser_class=_Parser
    )
    info = arch.add_parser("info", help="params, MACs, peak activation memory, energy estimate")
    info.add_argument("arch", help="a reference network name (see 'nas zoo') or an arch string")
    _add_input_args(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_arch_info)

    from nas.auto.cli import add_auto_command
    from nas.demo import add_demo_command
    from nas.evaluate.cli import add_train_command
    from nas.export.cli import add_export_command
    from nas.latency.cli import add_latency_commands
    from nas.search.cli import add_finalize_command, add_search_command, add_verify_command

    add_latency_commands(commands)
    add_search_command(commands)
    add_finalize_command(commands)
    add_verify_command(commands)
    add_train_command(commands)
    add_export_command(commands)
    add_demo_command(commands)
    add_auto_command(commands)

    plugins = commands.add_parser(
        "plugins",
        help="every registered extension: blocks, strategies, evaluation protocols, latency backends, "
        "datasets, export formats",
    )
    plugins.add_argument("--json", action="store_true", help="print one JSON object")
    plugins.set_defaults(func=cmd_plugins)

    zoo = commands.add_parser("zoo", help="the reference networks and their complexity")
    _add_input_args(zoo)
    zoo.add_argument("--json", action="store_true", help="print a JSON list")
    zoo.set_defaults(func=cmd_zoo)
    return parser


def _add_input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-size", type=positive_int, default=224, help="square input side (default 224)"
    )
    parser.add_argument("--in-chans", type=positive_int, default=3, help="input channels (default 3)")
    parser.add_argument("--num-classes", type=positive_int, default=1000, help="classes (default 1000)")
    parser.add_argument("--width-mult", type=positive_float, default=1.0, help="MobileNet width multiplier")


def _shape(args: argparse.Namespace) -> str:
    return f"{args.in_chans}x{args.input_size}x{args.input_size}"


def cmd_space_show(args: argparse.Namespace) -> None:
    from rich.table import Table

    from nas.space import SearchSpace

    space = SearchSpace.from_yaml(args.file)
    table = Table(title=f"space '{space.name}' ({space.source})", caption=space.config.description)
    for column in ("stage", "stride", "channels", "layers", "choose per", "choices"):
        table.add_column(column)
    for stage in space.stages:
        layers = (
            f"{stage.min_layers}-{stage.max_layers}"
            if stage.min_layers != stage.max_layers
            else str(stage.max_layers)
        )
        choices = {"op": [op.token for op in stage.ops], **stage.dims}
        if len(stage.widths) > 1:
            choices["width"] = stage.widths
        text = "; ".join(f"{k} {{{', '.join(str(v) for v in vals)}}}" for k, vals in choices.items())
        table.add_row(
            stage.name,
            _one_of(stage.strides),
            str(stage.config.channels),
            layers,
            stage.config.choose_per,
            text,
        )
    out = console()
    stem_stride = f" (stride {_one_of(space.stem_strides)})" if len(space.stem_strides) > 1 else ""
    out.print(f"stem [bold]{space.stem}[/]{stem_stride}   head [bold]{space.head}[/]")
    out.print(table)
    out.print(f"{len(space.params)} categorical parameters, log10 size {space.log10_size():.2f}")


def _one_of(values: tuple) -> str:
    """A fixed value as itself, a choice as ``{a, b}`` (as the choices column writes them)."""
    return str(values[0]) if len(values) == 1 else f"{{{', '.join(map(str, values))}}}"


def cmd_space_sample(args: argparse.Namespace) -> None:
    from nas.space import SearchSpace

    space = SearchSpace.from_yaml(args.file)
    rng = random.Random(args.seed)
    for _ in range(args.n):
        print(space.sample(rng).to_str())


def _measure(arch, args: argparse.Namespace) -> dict:
    from nas.arch import scale_width
    from nas.metrics import measure

    if args.width_mult != 1.0:
        arch = scale_width(arch, args.width_mult)
    report = measure(arch, in_chans=args.in_chans, input_size=args.input_size, num_classes=args.num_classes)
    return {
        "arch": arch.to_str(),
        "input_size": args.input_size,
        "in_chans": args.in_chans,
        "num_classes": args.num_classes,
        **report.to_json(),
    }


def cmd_arch_info(args: argparse.Namespace) -> None:
    from nas.zoo import resolve_arch

    info = _measure(resolve_arch(args.arch), args)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    from rich.table import Table

    table = Table(
        show_header=False,
        title=f"{_shape(args)}, {args.num_classes} classes",
    )
    table.add_column("figure", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("arch", info["arch"])
    table.add_row("params", f"{info['params']:,}")
    table.add_row("MACs (fvcore)", f"{info['macs']:,}")
    table.add_row("peak activation memory", f"{info['peak_activation_bytes'] / 1024:,.1f} KiB (fp32)")
    table.add_row("energy (estimate)", f"{info['energy_mj_estimate']:.4f} mJ per image (45 nm, fp32)")
    skipped = ", ".join(f"{op} x{n}" for op, n in info["fvcore_skipped_ops"].items()) or "none"
    table.add_row("ops fvcore does not count", skipped)
    console().print(table)


def cmd_plugins(args: argparse.Namespace) -> None:
    from nas.registry import REGISTRIES, registry, stray_plugins

    found = {kind: registry(kind).describe() for kind in REGISTRIES}
    stray = stray_plugins()
    if args.json:
        print(json.dumps({**found, "ignored_entry_points": stray}, indent=2))
        return
    for kind, entries in found.items():
        print(f"{kind} ({len(entries)}):")
        for name, where in entries.items():
            print(f"  {name:<16} {where}")
    for line in stray:
        kinds = ", ".join(REGISTRIES)
        print(f"ignored entry point (name must be <kind>.<name>, kind one of {kinds}): {line}")


def cmd_zoo(args: argparse.Namespace) -> None:
    from nas.zoo import REFERENCES, resolve_arch

    rows = [{"name": name, **_measure(resolve_arch(name), args)} for name in REFERENCES]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"reference networks at {_shape(args)}, {args.num_classes} classes")
    for column in ("network", "params", "MACs", "peak act. KiB", "energy mJ (est.)"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['params']:,}",
            f"{row['macs']:,}",
            f"{row['peak_activation_bytes'] / 1024:,.1f}",
            f"{row['energy_mj_estimate']:.4f}",
        )
    console().print(table)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv  # anywhere: "rerun with --debug" is appended to the command as typed
    try:
        args = build_parser().parse_args(["--debug", *[a for a in argv if a != "--debug"]] if debug else argv)
        func: Callable[[argparse.Namespace], None] = args.func
        func(args)
    except NasError as exc:  # the user's input: arch strings, files, options, data
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a path, permission or full disk of the user's: theirs to fix, like a NasError
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(
            f"internal error (a bug in nas or a library it calls) at {_where(exc)}: {_describe(exc)}"
            + ("" if debug else "; rerun with --debug for the traceback"),
            file=sys.stderr,
        )
        return EXIT_BUG
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _describe(exc: BaseException) -> str:
    message = _one_line(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _where(exc: BaseException) -> str:
    """The innermost line of this package the exception passed through (else the innermost line): what a
    bug report needs first, even when a library raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    package = str(Path(__file__).resolve().parent)
    ours = [f for f in frames if str(Path(f.filename).resolve()).startswith(package)]
    frame = (ours or frames)[-1] if frames else None
    return f"{frame.filename}:{frame.lineno}" if frame else "?"


if __name__ == "__main__":
    sys.exit(main())
