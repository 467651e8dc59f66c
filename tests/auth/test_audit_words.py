"""Every audit action the code records has plain words for the audit page and its CSV."""

from __future__ import annotations

import ast
from pathlib import Path

from app.auth.audit import READ_ACTIONS
from app.auth.audit_words import ACTION_WORDS, action_words

APP = Path(__file__).resolve().parents[2] / "app"
# The functions that write audit rows, and where each takes its action code.
WRITERS_BY_KEYWORD = {"record_audit", "record_patient_read", "record_list_read"}
WRITERS_BY_POSITION = {"_call_event": 2}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _strings(node: ast.AST) -> set[str]:
    return {
        item.value
        for item in ast.walk(node)
        if isinstance(item, ast.Constant) and isinstance(item.value, str)
    }


def recorded_actions() -> dict[str, str]:
    """Action code -> the first file that records it, found by reading the source."""
    found: dict[str, str] = {}
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            codes: set[str] = set()
            if isinstance(node, ast.Call):
                name = _name(node.func)
                if name in WRITERS_BY_KEYWORD:
                    for keyword in node.keywords:
                        if keyword.arg == "action":
                            codes |= _strings(keyword.value)
                if name in WRITERS_BY_POSITION and len(node.args) > WRITERS_BY_POSITION[name]:
                    codes |= _strings(node.args[WRITERS_BY_POSITION[name]])
            elif isinstance(node, ast.Assign):
                targets = [_name(target) for target in node.targets]
                if any(target and target.endswith(("_ACTION", "_ACTIONS")) for target in targets):
                    codes |= _strings(node.value)
            for code in codes:
                found.setdefault(code, str(path.relative_to(APP.parent)))
    return found


def test_every_action_recorded_anywhere_in_the_app_has_words() -> None:
    recorded = recorded_actions()
    # The scan itself works: it finds the actions of several features.
    assert {"user.password_changed", "navigator_task.done", "patient.call_logged"} <= set(recorded)
    assert set(READ_ACTIONS) <= set(recorded)
    missing = {code: where for code, where in recorded.items() if code not in ACTION_WORDS}
    assert not missing, f"audit actions without words in app/auth/audit_words.py: {missing}"


def test_words_read_as_a_sentence_and_an_unknown_code_shows_as_recorded() -> None:
    assert action_words("user.deactivated") == "Deactivated an account"
    assert action_words("retired.action") == "retired.action"
    for words in ACTION_WORDS.values():
        assert words[0].isupper()
        assert not words.endswith(".")
