"""The commands' JSON: two-space indents, one trailing newline, the same everywhere
(tools and golden files compare it byte for byte).

Every command's `--json` prints one *envelope* on standard output:

    {"command": "compile", "version": "0.1.0", "result": {...}, "diagnostics": [...]}

`result` is the command's own answer (null when it failed), `diagnostics` the notes and
warnings it gave along the way (and, on failure, the errors), each as
`Diagnostic.to_json()`. The envelope's JSON Schema ships with the package
(`qnnc/runtime/schemas/envelope.schema.json`, `envelope_schema()`)."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional, Sequence

ENVELOPE_SCHEMA = "envelope.schema.json"

# Notes a command gave while it ran (e.g. "weights: the declared initialisation, seed 0"):
# they go into the envelope's diagnostics, and to standard error as text.
_notes: list[dict] = []
_quiet = False  # with --json the notes are in the envelope only


def json_text(value) -> str:
    return json.dumps(value, indent=2) + "\n"


def print_json(value) -> None:
    sys.stdout.write(json_text(value))


def note(message: str, code: Optional[str] = None, severity: str = "note", quiet: bool = False) -> None:
    """Record a note for the envelope and (unless `quiet`) say it on standard error."""
    d: dict = {"severity": severity, "message": message}
    if code:
        d["code"] = code
    _notes.append(d)
    if not (quiet or _quiet):
        print(f"{severity}: {message}", file=sys.stderr)


def reset_notes(json_mode: bool = False) -> None:
    """Start a command: no notes yet; with `json_mode` they go into the envelope only."""
    global _quiet
    _notes.clear()
    _quiet = json_mode


def envelope(command: str, result: Any, diagnostics: Sequence[dict] = ()) -> dict:
    from qnnc import __version__

    return {"command": command, "version": __version__, "result": result,
            "diagnostics": [*_notes, *diagnostics]}


def emit(command: str, result: Any, diagnostics: Sequence[dict] = ()) -> None:
    """Print `result` in the envelope of `command` on standard output."""
    print_json(envelope(command, result, diagnostics))


def envelope_text(command: str, result: Any) -> str:
    return json_text(envelope(command, result))


def envelope_schema() -> dict:
    from importlib.resources import files

    return json.loads(files("qnnc.runtime").joinpath("schemas", ENVELOPE_SCHEMA).read_text("utf-8"))
