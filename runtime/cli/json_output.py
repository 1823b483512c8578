"""The commands' JSON on standard output and in files: two-space indents, one trailing
newline, the same everywhere (tools and golden files compare it byte for byte)."""

from __future__ import annotations

import json
import sys


def json_text(value) -> str:
    return json.dumps(value, indent=2) + "\n"


def print_json(value) -> None:
    sys.stdout.write(json_text(value))
