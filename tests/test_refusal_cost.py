"""Every class of refusal of issue 9 exits cleanly (code 1 or 2, a diagnostic, no
traceback) within 500 MB peak memory.

Slow-marked (run with `pytest -m slow tests/test_refusal_cost.py`). The cases and the
child process that runs each are in tests/refusal_cases.py; their times (issue 9: within
2 s) are measured by benchmarks/bench_refusals.py and recorded in BENCHMARKS.md, since a
test asserts no time.
"""

from __future__ import annotations

import pytest
from refusal_cases import cases, run_case

pytestmark = pytest.mark.slow


def test_every_refusal_is_clean_and_small(tmp_path):
    failures = []
    for name, argv in cases(tmp_path).items():
        stats, stderr = run_case(argv, tmp_path)
        assert stats["rc"] in (1, 2) and "Q0000" not in stderr and "Traceback" not in stderr, (name, stderr[-800:])
        if stats["peak"] > 500 * 2 ** 20:
            failures.append((name, stats["peak"] // 2 ** 20))
    assert not failures, failures
