"""The `qnnc` command: the parser, dispatch to one command module, and error reporting.

Exit status: 0 success, 1 errors in a program or file, 2 bad command-line use.
Errors are printed as diagnostics (`--error-format text|json`); a Python traceback is
never shown for bad input. A failure that is not a `QnncError` is a bug in qnnc and is
reported as an internal error (set QNNC_DEBUG=1 for its traceback).

Only the command being run is imported (`qnnc --help` imports none), so `check`, `fmt`
and `ir` start without the simulator's or the vendors' libraries.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Optional, Sequence

from qnnc.compiler.diagnostics import (Diagnostic, QnncError, error, forget_sources, render_all,
                                       render_json)
from qnnc.runtime.cli import registry

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


def build_parser(command: Optional[str] = None) -> _ArgumentParser:
    """Every command is listed; only `command`'s module is imported to add its flags."""
    parser = _ArgumentParser(
        prog="qnnc", description="qnnc: a compiler for quantum neural networks",
        epilog="exit status: 0 ok, 1 errors in a program or file, 2 bad command-line use")
    parser.add_argument("--error-format", choices=("text", "json"), default="text",
                        help="how to print errors (default: text)")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    parser._qnnc_commands = list(registry.COMMANDS)  # type: ignore[attr-defined]
    for name in registry.COMMANDS:
        help_ = registry.help_of(name)
        p = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            registry.load(name).add_arguments(p)
    return parser


def command_named_in(argv: Sequence[str]) -> Optional[str]:
    """The command `argv` runs: its first word that names one. (The options before it,
    `--error-format text|json` and flags, cannot be mistaken for a command's name.)"""
    return next((word for word in argv if word in registry.COMMANDS), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    error_format = "json" if "--error-format=json" in argv or (
        "--error-format" in argv and argv[argv.index("--error-format") + 1: argv.index("--error-format") + 2] == ["json"]
    ) else "text"
    forget_sources()  # snippets only from the sources this run loads
    for stream in (sys.stdout, sys.stderr):
        # A name the user gave may hold a character no encoding writes (a lone surrogate
        # from undecodable bytes in argv): it is escaped, never an error.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    from qnnc.runtime.cli import json_output

    json_output.reset_notes("--json" in argv)
    command = command_named_in(argv)
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        error_format = args.error_format
        if args.version:
            from qnnc import __version__

            print(f"qnnc {__version__}")
            return 0
        if not args.command:
            parser.print_help()
            return 2
        return registry.load(args.command).run(args)
    except QnncError as exc:
        _report(exc.diagnostics, error_format)
        if command and "--json" in argv:  # the envelope still comes, with the errors
            json_output.emit(command, None, [d.to_json() for d in exc.diagnostics])
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
