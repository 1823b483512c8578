"""The `qnnc` command.

Exit status: 0 success, 1 errors in a program or file, 2 bad command-line use.
Errors are printed as diagnostics (`--error-format text|json`); a Python traceback is
never shown for bad input. A failure that is not a `QnncError` is a bug in qnnc and is
reported as an internal error (set QNNC_DEBUG=1 for its traceback).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from typing import Callable, Optional, Sequence

from qnnc.compiler.diagnostics import Diagnostic, QnncError, error, render_all, render_json

BAD_USAGE = "Q0407"


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports misuse as a diagnostic (exit 2) instead of exiting itself."""

    def error(self, message: str):  # type: ignore[override]
        hint = f"run `{self.prog} --help` for the options"
        if "invalid choice" in message:
            bad = message.split("invalid choice: ")[-1].split(" ")[0].strip("'")
            choices = [c for c in (getattr(self, "_qnnc_commands", None) or [])]
            close = difflib.get_close_matches(bad, choices, n=1)
            if close:
                hint = f"did you mean `{close[0]}`?"
        raise error(BAD_USAGE, message, help=hint, exit_code=2)


def _set_pairs(values: Optional[Sequence[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or ():
        name, sep, value = v.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value or not name.isidentifier():
            raise error("Q0401", f"`--set {v}` is not of the form NAME=VALUE",
                        help="e.g. `--set a=0.5` (no spaces around `=`, or quote the pair)", exit_code=2)
        if name in out:
            raise error("Q0401", f"`--set {name}` is given twice", exit_code=2)
        out[name] = value
    return out


def add_program_arguments(p: argparse.ArgumentParser, many: bool = False) -> None:
    """FILE plus `--set` and `--network`: shared by every command that reads a program."""
    if many:
        p.add_argument("files", nargs="+", metavar="FILE", help=".qnn program(s) or IR JSON")
    else:
        p.add_argument("file", metavar="FILE", help=".qnn program or IR JSON")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="override a `param` (repeatable), e.g. --set a=0.5")
    p.add_argument("--network", metavar="NAME", help="which network (default: the first)")


def load_from_args(args, path: Optional[str] = None):
    """The program named on the command line, `--set` applied, one network selected."""
    from qnnc.compiler import load_program
    from qnnc.compiler.passes import PassManager, SelectNetwork

    program = load_program(path or args.file, _set_pairs(args.set))
    if getattr(args, "network", None):
        program = PassManager([SelectNetwork(args.network)]).run(program)
    return program


# --------------------------------------------------------------------------- commands


def _cmd_check(args) -> int:
    import time

    failed: list = []
    exit_code = 0
    for path in args.files:
        t0 = time.perf_counter()
        try:
            program = load_from_args(args, path)
        except QnncError as exc:
            if exc.exit_code == 2 or len(args.files) == 1:
                raise
            failed.extend(exc.diagnostics)  # keep going: report every file's errors
            exit_code = max(exit_code, exc.exit_code)
            continue
        dt = time.perf_counter() - t0
        parts = []
        for net in program.networks:
            sizes = [str(net.input.features)] + [str(l.size) for l in net.layers]
            parts.append(f"network {net.name} {'-'.join(sizes)}")
        if not program.networks:
            parts.append(f"{len(program.neurons)} neuron(s)")
        print(f"ok: {path}: " + "; ".join(parts) + (f" ({dt * 1000:.0f} ms)" if args.timing else ""))
    if failed:
        raise QnncError(failed, exit_code)
    return 0


def _cmd_ir(args) -> int:
    from qnnc.compiler import dump_ir
    from qnnc.compiler.serialize import schema_text

    if args.schema:
        text = schema_text()
    else:
        if not args.file:
            raise error(BAD_USAGE, "`qnnc ir` needs a FILE (or --schema)", exit_code=2)
        text = dump_ir(load_from_args(args))
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_fmt(args) -> int:
    from qnnc.compiler import format_source, read_source

    status = 0
    for path in args.files:
        text = read_source(path)
        formatted = format_source(text, path)
        if args.check:
            if formatted != text:
                print(f"would reformat {path}")
                if args.diff:
                    sys.stdout.writelines(difflib.unified_diff(
                        text.splitlines(True), formatted.splitlines(True), path, path + " (formatted)"))
                status = 1
        elif args.stdout:
            sys.stdout.write(formatted)
        elif formatted != text:
            _write(path, formatted)
            print(f"reformatted {path}")
    return status


def _write(path: str, text: str) -> None:
    """Write an output file atomically; a path the system refuses is the user's error."""
    from qnnc.compiler.fileio import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise error("Q0405", f"cannot write {path}: {exc.strerror or exc}",
                    help="check that the folder exists and is writable, and that the path is not a folder",
                    exit_code=1) from None


def _add_check(p):
    add_program_arguments(p, many=True)
    p.add_argument("--timing", action="store_true", help="print the time each file took")


def _add_ir(p):
    p.add_argument("file", metavar="FILE", nargs="?", help=".qnn program or IR JSON")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[], help="override a `param`")
    p.add_argument("--network", metavar="NAME", help="keep only this network")
    p.add_argument("-o", "--output", metavar="OUT", help="write to OUT (atomically) instead of stdout")
    p.add_argument("--schema", action="store_true", help="print the IR's JSON Schema instead")


def _add_fmt(p):
    p.add_argument("files", nargs="+", metavar="FILE", help=".qnn files to format in place")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if a file is not formatted; change nothing")
    mode.add_argument("--stdout", action="store_true", help="print the formatted text instead of rewriting")
    p.add_argument("--diff", action="store_true", help="with --check, show what would change")


# name -> (help, add_arguments, run). Only commands that work are listed here; each
# command of a later layer lives in qnnc.runtime and is imported only when used.
_BUILTIN: dict[str, tuple[str, Callable, Callable]] = {
    "check": ("check programs for errors", _add_check, _cmd_check),
    "ir": ("print a program's IR as JSON", _add_ir, _cmd_ir),
    "fmt": ("format .qnn files canonically", _add_fmt, _cmd_fmt),
}
_RUNTIME: dict[str, tuple[str, str]] = {
    # name -> (help, module with add_arguments(parser) and run(args) -> int)
    "train": ("train a network with its recipe (torch simulator)", "qnnc.runtime.cmd_train"),
    "eval": ("test accuracy of a checkpoint, majority vote over shots", "qnnc.runtime.cmd_eval"),
    "hamiltonian": ("the network as an Ising spin model: spectrum, T_c, phase", "qnnc.runtime.cmd_hamiltonian"),
    "tap": ("TAP analysis over a training run: T_c(t), spectrum, solutions, power law", "qnnc.runtime.cmd_tap"),
    "compile": ("compile a network to IBM, IonQ or Quantinuum circuits", "qnnc.runtime.cmd_compile"),
    "run": ("run compiled circuits on a local simulator (Aer, Braket, pytket)", "qnnc.runtime.cmd_run"),
    "submit": ("run compiled circuits through a vendor's cloud client (dry run unless --yes)", "qnnc.runtime.cmd_submit"),
    "data": ("inspect, verify or download data sets", "qnnc.runtime.cmd_data"),
}


def build_parser() -> _ArgumentParser:
    parser = _ArgumentParser(
        prog="qnnc", description="qnnc: a compiler for quantum neural networks",
        epilog="exit status: 0 ok, 1 errors in a program or file, 2 bad command-line use")
    parser.add_argument("--error-format", choices=("text", "json"), default="text",
                        help="how to print errors (default: text)")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    parser._qnnc_commands = list(_BUILTIN) + list(_RUNTIME)  # type: ignore[attr-defined]
    for name, (help_, add, _run) in _BUILTIN.items():
        add(sub.add_parser(name, help=help_, description=help_))
    for name, (help_, module) in _RUNTIME.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    error_format = "json" if "--error-format=json" in argv or (
        "--error-format" in argv and argv[argv.index("--error-format") + 1: argv.index("--error-format") + 2] == ["json"]
    ) else "text"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        error_format = args.error_format
        if args.version:
            from qnnc import __version__

            print(f"qnnc {__version__}")
            return 0
        if not args.command:
            parser.print_help()
            return 2
        if args.command in _BUILTIN:
            return _BUILTIN[args.command][2](args)
        return importlib.import_module(_RUNTIME[args.command][1]).run(args)
    except QnncError as exc:
        _report(exc.diagnostics, error_format)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in qnnc, not in the user's input
        if os.environ.get("QNNC_DEBUG"):
            raise
        _report([Diagnostic("Q0000", f"internal error: {type(exc).__name__}: {exc}",
                            help="this is a bug in qnnc; rerun with QNNC_DEBUG=1 and report the traceback")],
                error_format)
        return 3


def _report(diags, error_format: str) -> None:
    if error_format == "json":
        sys.stderr.write(render_json(diags))
    else:
        sys.stderr.write(render_all(diags))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
