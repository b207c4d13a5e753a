"""The seed reproductions' --quick runs: files written, real numbers, clipping bounds held,
the shipped full results left alone; the command line's names and aliases."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from torch_impl.experiments import ALIASES, EXPERIMENTS
from torch_impl.experiments.__main__ import main
from torch_impl.experiments.common import DEFAULT_OUT, QUICK_OUT


def shipped() -> dict[str, bytes]:
    """The bytes of every file of the shipped full results."""
    return {p.name: p.read_bytes() for p in sorted(DEFAULT_OUT.iterdir()) if p.is_file()}


def numbers_in_table(markdown: str) -> list[float]:
    """The finite decimal numbers in the table rows of ``markdown`` (not its headers)."""
    rows = [line for line in markdown.splitlines()
            if line.startswith("|") and not line.startswith("|:") and "seed train" not in line
            and "method" not in line]
    return [float(x) for row in rows for x in re.findall(r"(?<![\w.])\d+\.\d+", row)]


@pytest.fixture(scope="module")
def seed000_run(tmp_path_factory):
    """``norm_vs_value --quick`` with the default --out, from a scratch working directory;
    returns the working directory and the shipped results' bytes from before the run."""
    cwd = tmp_path_factory.mktemp("cwd")
    before = shipped()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        assert main(["norm_vs_value", "--quick"]) == 0
    finally:
        os.chdir(here)
    return cwd, before


@pytest.fixture(scope="module")
def seed000(seed000_run):
    return seed000_run[0] / QUICK_OUT


@pytest.fixture(scope="module")
def seed001(tmp_path_factory):
    pytest.importorskip("optuna")
    pytest.importorskip("mnist1d")
    out = tmp_path_factory.mktemp("seed001")
    assert main(["ema_vs_fixed", "--quick", "--out", str(out)]) == 0
    return out


def test_seed000_files(seed000):
    text = (seed000 / "seed000.md").read_text()
    assert "Gradient value clipping" in text and "| 32.0 |" in text
    assert len(numbers_in_table(text)) > 50
    for mode in ("norm", "norm_per_tensor", "value"):
        assert (seed000 / f"seed000_{mode}.png").read_bytes()[:4] == b"\x89PNG"


def test_seed000_clipping_bounds(seed000):
    runs = json.loads((seed000 / "seed000.json").read_text())["runs"]
    assert len(runs) == 2 * (3 * 6 + 1)
    for run in runs:
        diverged = None in run["test_curve"]  # a diverged run stops after that epoch
        assert run["steps"] % 16 == 0 and 0 < run["steps"] <= 3 * 16  # ceil(500 / 32) a epoch
        assert diverged or run["steps"] == 3 * 16
        if run["mode"] == "norm":  # global classic clipping: ||g / c|| = min(||g||, lam)
            assert run["max_post_norm"] <= run["lam"] * (1 + 1e-5)
            assert run["clipped_fraction"] > 0  # the unscaled targets make big gradients
        if run["mode"] == "norm_per_tensor":  # 4 tensors, each clipped to lam
            assert run["max_post_norm"] <= 2 * run["lam"] * (1 + 1e-5)
        if run["mode"] == "none":
            assert run["clipped_fraction"] == 0
            assert run["max_post_norm"] == run["max_pre_norm"]


def test_seed001_files(seed001):
    text = (seed001 / "seed001.md").read_text()
    assert "lr=0.0107, clip_threshold=2.38" in text
    numbers = numbers_in_table(text)
    assert len(numbers) >= 10 and all(math.isfinite(x) for x in numbers)
    assert (seed001 / "seed001.png").read_bytes()[:4] == b"\x89PNG"


def test_seed001_tuning_respects_space(seed001):
    data = json.loads((seed001 / "seed001.json").read_text())
    space = data["setting"]["space"]
    for method, result in data["results"].items():
        assert len(result["trials"]) == 3
        for name, (low, high, _) in space[method].items():
            assert low <= result["best_params"][name] <= high
        assert result["best_value"] == min(t["value"] for t in result["trials"])
        for run in result["final"]:
            assert len(run["val_curve"]) == 3 and 0 <= run["test_accuracy"] <= 1


def test_unknown_experiment(capsys):
    assert main(["seed999"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_quick_run_leaves_the_shipped_results_alone(seed000_run):
    cwd, before = seed000_run
    assert {"seed000.md", "seed001.md", "seed003.md", "seed000.json"} <= set(before)
    assert shipped() == before
    written = sorted(p.name for p in (cwd / QUICK_OUT).iterdir())
    assert written == ["seed000.json", "seed000.md", "seed000_norm.png",
                       "seed000_norm_per_tensor.png", "seed000_value.png"]
    assert "(quick)" in (cwd / QUICK_OUT / "seed000.md").read_text()


@pytest.mark.parametrize("name", [*EXPERIMENTS, *ALIASES])
def test_quick_into_the_shipped_folder_is_refused(name, capsys):
    before = shipped()
    with pytest.raises(SystemExit) as done:
        main([name, "--quick", "--out", str(DEFAULT_OUT)])
    assert done.value.code == 2
    assert "shipped full results" in capsys.readouterr().err
    assert shipped() == before


@pytest.mark.parametrize(("alias", "name"), list(ALIASES.items()))
def test_seed_ids_are_aliases_of_the_module_names(alias, name, capsys):
    with pytest.raises(SystemExit) as done:
        main([alias, "--help"])
    assert done.value.code == 0
    assert f"python -m torch_impl.experiments {name}" in capsys.readouterr().out


def test_shipped_full_results_load():
    """The shipped tables and raw numbers of full (not quick) runs, one per experiment."""
    for stem in EXPERIMENTS.values():
        assert (DEFAULT_OUT / f"{stem}.md").read_text().startswith("# Seed")
        data = json.loads((DEFAULT_OUT / f"{stem}.json").read_text())
        assert data["setting"]["quick"] is False


def test_the_recorded_command_runs_the_experiment_again(seed000, seed001):
    """The JSON records a command that works from any folder: the module, the experiment and
    its arguments, not the path of the script that ran."""
    import shlex

    setting = json.loads((seed000 / "seed000.json").read_text())["setting"]
    assert shlex.split(setting["command"]) == [
        "python", "-m", "torch_impl.experiments", "norm_vs_value", "--quick"]
    setting = json.loads((seed001 / "seed001.json").read_text())["setting"]
    assert shlex.split(setting["command"])[:5] == [
        "python", "-m", "torch_impl.experiments", "ema_vs_fixed", "--quick"]


def test_torch_impl_imports_no_simulations_module():
    """Every module of torch_impl (the experiments too) imports without ``simulations``."""
    code = ("import importlib, pkgutil, sys, torch_impl\n"
            "for m in pkgutil.walk_packages(torch_impl.__path__, 'torch_impl.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'simulations'))")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
