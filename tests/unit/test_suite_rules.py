"""Rules the suite keeps so that its tests do not undo each other."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_uses_mock_aws_in_the_suites_process():
    # moto's backends are process-wide and mock_aws resets them when it exits: a test using
    # it wiped the session cloud's bus and table for every later test on its worker (twice,
    # by two different changes). Use the `cloud` fixture and a table of the test's own, or
    # run in a subprocess as tests/e2e/http_scenarios.py does.
    using = sorted(
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path != Path(__file__) and re.search(r"\bmock_aws\s*\(", path.read_text())
    )
    assert using == [], f"mock_aws in the suite's process: {using}"
