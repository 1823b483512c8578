"""`qnnc fmt FILE...`: rewrite .qnn files in the canonical layout (or only check it).
Imports only the compiler core."""

from __future__ import annotations

import difflib
import sys

from qnnc.runtime.cli.flag_types import PATH
from qnnc.runtime.cli import output


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", type=PATH, metavar="FILE", help=".qnn files to format in place")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if a file is not formatted; change nothing")
    mode.add_argument("--stdout", action="store_true", help="print the formatted text instead of rewriting")
    p.add_argument("--diff", action="store_true", help="with --check, show what would change")
    p.add_argument("--json", action="store_true", help="print which files were (or would be) reformatted as JSON")


def run(args) -> int:
    from qnnc.compiler import format_source, read_source

    status = 0
    say = (lambda *a, **k: None) if args.json else print
    files = []
    for path in args.files:
        text = read_source(path)
        formatted = format_source(text, path)
        files.append({"file": path, "formatted": formatted == text,
                      "action": "checked" if args.check else "printed" if args.stdout else
                      ("reformatted" if formatted != text else "unchanged")})
        if args.check:
            if formatted != text:
                say(f"would reformat {path}")
                if args.diff and not args.json:
                    sys.stdout.writelines(difflib.unified_diff(
                        text.splitlines(True), formatted.splitlines(True), path, path + " (formatted)"))
                status = 1
        elif args.stdout:
            if args.json:
                files[-1]["text"] = formatted
            else:
                sys.stdout.write(formatted)
        elif formatted != text:
            output.write_text(path, formatted)
            say(f"reformatted {path}")
    if args.json:
        from qnnc.runtime.cli.json_output import emit

        emit("fmt", {"files": files, "status": status})
    return status
