"""Every public function of theory/ carries an ``Example:`` in its docstring (issue 20); the
examples themselves run as doctests (setup.cfg: ``--doctest-modules`` on ``theory``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

THEORY = Path(__file__).resolve().parents[2] / "theory"


def public_functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node for node in tree.body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]


@pytest.mark.parametrize("path", sorted(THEORY.glob("*.py")), ids=lambda path: path.name)
def test_every_public_function_has_an_example(path):
    missing = [node.name for node in public_functions(path)
               if "Example:" not in (ast.get_docstring(node) or "")
               or ">>>" not in (ast.get_docstring(node) or "")]
    assert not missing, f"{path.name}: no Example: in {', '.join(missing)}"


def test_the_doctests_are_collected_by_the_plain_command(pytestconfig):
    # CI runs `python -m pytest -q`: theory/ must be on testpaths with --doctest-modules
    assert "theory" in pytestconfig.getini("testpaths")
    assert "--doctest-modules" in pytestconfig.getini("addopts")
