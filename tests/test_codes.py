"""The table of diagnostic codes (`qnnc.compiler.codes`): the documentation lists exactly
its codes, the source uses no other, and an unknown code cannot make a diagnostic."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qnnc.compiler import codes
from qnnc.compiler.diagnostics import Collector, Diagnostic, error

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "diagnostics.md"

_ROW = re.compile(r"^\| (Q\d{4}) \| ([^|]*) \|")  # `| Q0201 | unknown layer: ... |`; not ranges
_HEADING = re.compile(r"^## (Q\d{4}): (.*)$")  # `## Q0000: internal error`
_SECTION = re.compile(r"^## Q0(\d)xx")  # `## Q02xx: semantic`: the codes below are Q02..


def _documented() -> list[tuple[str, str, str]]:
    """(code, meaning, section hundred) for each code row and code heading of the doc."""
    found = []
    section = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if m := _SECTION.match(line):
            section = m.group(1)
        elif line.startswith("## "):
            section = ""
        if m := _ROW.match(line) or _HEADING.match(line):
            found.append((m.group(1), m.group(2).strip(), section))
    return found


def _plain(text: str) -> str:
    return text.replace("`", "").lower()


def test_the_doc_lists_exactly_the_table():
    documented = {code for code, _, _ in _documented()}
    table = set(codes.BY_CODE)
    assert documented - table == set(), "documented but not in qnnc.compiler.codes"
    assert table - documented == set(), "in qnnc.compiler.codes but not documented"


@pytest.mark.parametrize("code, meaning, section", _documented())
def test_each_documented_meaning_opens_with_the_title(code, meaning, section):
    row = codes.BY_CODE[code]
    assert _plain(meaning).startswith(_plain(row.title)), (code, row.title, meaning)
    if section:
        assert code.startswith(f"Q0{section}"), f"{code} is documented under Q0{section}xx"


def test_every_code_in_the_source_is_in_the_table():
    literal = re.compile(r"""["'](Q\d{4})["']""")
    unknown = {}
    for folder in ("compiler", "runtime"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "compiler" / "codes.py":
                continue  # the table itself (its area bounds are not codes)
            for code in literal.findall(path.read_text(encoding="utf-8")):
                if code not in codes.BY_CODE:
                    unknown.setdefault(code, []).append(str(path.relative_to(ROOT)))
    assert unknown == {}


def test_each_code_lies_in_its_area():
    for row in codes.TABLE:
        first, last = codes.AREAS[row.area]
        assert first <= row.code <= last, row


@pytest.mark.parametrize("make", [
    lambda: error("Q9999", "no such code"),
    lambda: Diagnostic("Q0250", "a semantic code nobody defined"),
    lambda: Collector().add("Q0", "not a code"),
    lambda: error("Q0201 ", "a code with a trailing space"),
])
def test_an_unknown_code_fails_where_it_is_made(make):
    with pytest.raises(ValueError, match="unknown diagnostic code"):
        make()


def test_a_target_refuses_only_with_a_target_code():
    from qnnc.runtime.targets.errors import refuse

    assert refuse("Q0301", "unknown target").diagnostics[0].code == "Q0301"
    with pytest.raises(ValueError):
        refuse("Q0201", "a semantic code")
    with pytest.raises(ValueError):
        refuse("Q0399", "no such code")


def test_the_verifier_does_not_need_the_elaborator():
    # The verifier checks IR from JSON too; it takes its codes from the table.
    out = subprocess.run(
        [sys.executable, "-c", "import sys, qnnc.compiler.verify; "
         "print(any(m.startswith('qnnc.compiler.elaborat') for m in sys.modules))"],
        capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
