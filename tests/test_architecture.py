"""The architecture's import rules (``[tool.importlinter]`` in pyproject.toml), checked on every
run: ``ml/`` stays a library without web, database or domain imports; ``jobs/`` runs every
domain's jobs without importing one; routes hold no SQL. A rule broken names the import chain."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
SESSION_CALLS = {"execute", "scalar", "scalars", "query", "add", "add_all", "delete", "merge"}


def test_the_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # where pyproject.toml is

    assert lint_imports(no_cache=True, no_logo=True) == 0  # the broken contract is printed


@pytest.mark.parametrize(
    "views", sorted(ROOT.glob("service/*/views.py")), ids=lambda path: path.parent.name
)
def test_routes_run_no_statements_on_their_session(views: Path) -> None:
    """What the import rules cannot see: a route calling ``session.execute`` on the session it
    is given, with a statement built elsewhere."""
    calls = [
        f"line {node.lineno}: .{node.func.attr}()"
        for node in ast.walk(ast.parse(views.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SESSION_CALLS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "session"
    ]

    assert calls == []
