"""The hazard log's evidence exists: every test it names is a real test in this repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAZARD_LOG = ROOT / "docs" / "safety" / "hazard-log.md"
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _rows() -> list[list[str]]:
    lines = HAZARD_LOG.read_text(encoding="utf-8").splitlines()
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in lines
        if re.match(r"^\| H\d+ ", line)
    ]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_hazard_log_names_exists() -> None:
    references = TEST_REFERENCE.findall(HAZARD_LOG.read_text(encoding="utf-8"))
    assert len(references) >= 20
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).is_file() or name not in _test_names(ROOT / path)
    ]
    assert not missing, f"the hazard log names tests that no longer exist: {missing}"


def test_every_hazard_has_a_cause_a_control_and_a_proving_test() -> None:
    rows = _rows()
    assert len(rows) >= 7
    for row in rows:
        hazard_id, hazard, cause, _effect, _risk, control, tests, status = row
        assert all((hazard, cause, control)), hazard_id
        assert TEST_REFERENCE.search(tests), f"{hazard_id} has no proving test"
        assert status.startswith(("Controlled", "Open")), hazard_id
