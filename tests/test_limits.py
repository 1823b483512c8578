"""The one limits table (`qnnc.compiler.limits`): docs/diagnostics.md lists exactly its
limits, with their values, and each limit's code is a code of the table of codes."""

from __future__ import annotations

import re
from pathlib import Path

from qnnc.compiler import codes, limits

DOC = Path(__file__).resolve().parent.parent / "docs" / "diagnostics.md"
_ROW = re.compile(r"^\| `(MAX_\w+|SNIPPET_WIDTH)` \| ([\d,]+) \|")


def test_the_doc_lists_exactly_the_limits():
    text = DOC.read_text(encoding="utf-8").split("## Limits", 1)[1]
    rows = {m.group(1): int(m.group(2).replace(",", "")) for line in text.splitlines() if (m := _ROW.match(line))}
    assert rows == {limit.name: limit.value for limit in limits.TABLE}


def test_each_limit_has_a_known_code():
    for limit in limits.TABLE:
        assert limit.code == "-" or limit.code in codes.BY_CODE, limit
