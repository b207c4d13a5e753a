"""Start fast: a command imports only what it uses. Parsing ``--help`` of ``python -m
simulations`` and of its run, verify and rare commands imports neither torch nor scipy.stats,
a whole ``run`` imports no scipy.stats and runs no full garbage collection, and ``python -m
theory bound`` imports no torch (each checked in a fresh interpreter). The copies that
:mod:`simulations.engine.catalog` keeps of heavy modules' constants equal their owners'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "scipy.stats")
BOUND = ["bound", "--lam", "30", "--radius", "1024", "--schedule", "1/(t+1)"]


def loaded_after(module: str, argv: list[str]) -> dict:
    """Which of HEAVY are in sys.modules after ``module.main(argv)`` in a fresh interpreter
    (its exit status and stdout too, and the number of full garbage collections it ran)."""
    code = (
        "import contextlib, gc, io, json, sys\n"
        f"from {module} import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        status = main({argv!r})\n"
        "    except SystemExit as stop:\n"
        "        status = stop.code\n"
        f"print(json.dumps({{'status': status, 'stdout': out.getvalue(), 'loaded': "
        f"[m for m in {HEAVY!r} if m in sys.modules], "
        "'full_collections': gc.get_stats()[2]['collections']}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("command", [[], ["run"], ["verify"], ["rare"]])
def test_help_imports_neither_torch_nor_scipy_stats(command):
    result = loaded_after("simulations.verify.cli", [*command, "--help"])
    assert result["status"] == 0
    assert "usage: python -m simulations" in result["stdout"]
    assert result["loaded"] == []


def test_help_through_python_m():
    """The real entry point, as ``python -X importtime`` sees it."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "simulations", "run",
                           "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--chunk-size" in proc.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "simulations.verify.cli" in imported
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_run_saves_without_scipy_stats_nor_full_collections(tmp_path):
    """A whole ``run`` (the engine, the store, the summary) needs no scipy.stats: the store
    imports :mod:`simulations.engine.rare`, whose Student quantile imports it when called. (On
    the torch step, so that a kernel not yet in numba's cache is not compiled here; the
    kernel's first load imports scipy.linalg, not scipy.stats.)"""
    result = loaded_after("simulations.verify.cli", [
        "run", "--problem", "quadratic", "--dim", "1", "--clip", "classic", "--lam", "1",
        "--schedule", "0.05/(1+t/100)", "--paths", "8", "--steps", "3", "--radius", "1",
        "--backend", "torch", "--quiet", "--out", str(tmp_path)])
    assert result["status"] == 0
    assert "blown up: 0 of 8 paths" in result["stdout"]
    assert (next((tmp_path / "runs").iterdir()) / "arrays.npz").is_file()
    assert result["loaded"] == ["torch"]
    # torch's, numba's and sympy's imports under theory.command.lasting_imports: without it
    # Python walks their objects in 4 full collections here (1 without it around the engine's
    # imports alone)
    assert result["full_collections"] == 0


def test_theory_bound_imports_no_torch():
    result = loaded_after("theory.__main__", BOUND)
    assert result["status"] == 0
    assert "Azuma" in result["stdout"]
    assert "torch" not in result["loaded"]


def test_catalog_copies_equal_their_owners():
    from simulations.engine import catalog, observers, problems, rare, rules
    from simulations.engine import run as engine

    assert catalog.OBSERVERS == observers.OBSERVERS
    assert catalog.MEMORY_BUDGET == engine.MEMORY_BUDGET
    assert catalog.PROBLEM_NAMES == tuple(problems.PROBLEMS)
    for name in problems.PROBLEMS:
        assert catalog.problem_params(name) == problems.problem_params(name), name
        assert catalog.PROBLEM_PARAMS[name] is problems.PROBLEMS[name].PARAMS
    assert (rules.PARAMS, rules.RULE_PARAMS, rules.RULES) == (
        catalog.PARAMS, catalog.RULE_PARAMS, catalog.RULES)
    assert (rare.EVENTS, rare.IMPORTANCE) == (catalog.EVENTS, catalog.IMPORTANCE)
