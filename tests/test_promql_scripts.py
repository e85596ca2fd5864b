"""Run the project's own promqltest scripts (tests/promql/*.test), one pytest case per eval."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloanalysis.promql.promqltest import CaseResult, run_file

SCRIPTS = sorted((Path(__file__).parent / "promql").glob("*.test"))


def _cases() -> list[tuple[str, CaseResult]]:
    return [(path.name, result) for path in SCRIPTS for result in run_file(path)]


CASES = _cases()


def test_scripts_exist() -> None:
    assert SCRIPTS, "no tests/promql/*.test scripts found"


@pytest.mark.parametrize(("script", "case"), CASES, ids=[f"{s}:{c.line}" for s, c in CASES])
def test_promql_case(script: str, case: CaseResult) -> None:
    assert case.status == "passed", f"{script}:{case.line}: {case.expr}: {case.detail}"
