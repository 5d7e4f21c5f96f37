"""Every reason code the rules and models can give has words in both languages on the inspector's page."""

from __future__ import annotations

import ast
from pathlib import Path

import anju.models
from anju.hub.api.labels import REASONS


def _constants(node: ast.expr) -> set[str]:
    """The codes an argument can be: a constant, or each branch of ``a if c else b`` (nested too)."""
    if isinstance(node, ast.Constant):
        return {str(node.value)}
    if isinstance(node, ast.IfExp):
        return _constants(node.body) | _constants(node.orelse)
    return set()


def _codes(path: Path) -> set[str]:
    """The first argument of every ``Reason("code", ...)`` call in a module (each branch of a choice)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Reason"
                and node.args):
            found |= _constants(node.args[0])
    return found


def test_every_reason_code_has_a_label() -> None:
    folder = Path(anju.models.__file__).parent
    codes = set().union(*(_codes(p) for p in folder.glob("*.py")))
    seen = {"idle_streak", "flat_lived_in", "tenant_faces_vanished", "drop_by_visits", "tenants_card_only"}
    assert seen <= codes
    assert codes - set(REASONS) == set()
