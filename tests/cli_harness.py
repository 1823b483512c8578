"""Running `qnnc` in-process for the fuzz suites, and the one check every outcome must
pass: exit 0, or a refusal that is a diagnostic with a code (never Q0000), exit 1 or 2,
no traceback."""

from __future__ import annotations

import contextlib
import io
import json
import re

from qnnc.compiler.diagnostics import QnncError, render_all, render_json
from qnnc.runtime.cli import main

_CODE = re.compile(r"^error\[(Q\d{4})\]: ", re.M)


class _Stream(io.TextIOWrapper):
    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8", errors="replace")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = _Stream(), _Stream()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.text(), err.text()


def assert_clean(rc: int, err: str, what) -> None:
    """A clean outcome: success, or diagnostics with codes and exit 1 or 2."""
    what = repr(what)[:300]
    assert "Traceback" not in err and "Q0000" not in err, (what, err[:2000])
    assert rc in (0, 1, 2), (what, rc, err[:2000])
    if rc and err.startswith("{"):
        diags = json.loads(err)["diagnostics"]
        assert diags and all(d["code"] != "Q0000" for d in diags), (what, err[:2000])
    elif rc:
        codes = _CODE.findall(err)
        assert codes and without_notes(err).startswith("error["), (what, err[:2000])


def without_notes(err: str) -> str:
    """Standard error less the leading `note:` lines a command may give before it fails
    (e.g. which weights it uses)."""
    lines = err.splitlines(keepends=True)
    while lines and lines[0].startswith("note: "):
        lines.pop(0)
    return "".join(lines)


def check_refusal(exc: QnncError, what) -> set[str]:
    """A library-level refusal: diagnostics with codes (not Q0000) that render."""
    assert exc.diagnostics, what
    for d in exc.diagnostics:
        assert d.code != "Q0000" and d.message, (what, d)
    text = render_all(exc.diagnostics)
    json.loads(render_json(exc.diagnostics))
    assert "Traceback" not in text
    return {d.code for d in exc.diagnostics}
