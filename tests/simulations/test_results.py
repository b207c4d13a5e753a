"""simulations.engine.results: save/load round trip (with infinities), strict JSON, atomic writes,
provenance."""

import errno
import json
import os
import re
import shutil
import stat
import subprocess

import numpy as np
import pytest
import torch

from simulations.engine import results
from simulations.engine.run import simulate
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Execution, RunSpec


def strict_json(path):
    """Parse ``path`` refusing NaN and ±Infinity (which json.loads accepts by default)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def no_temporaries(folder):
    """No hidden (temporary) file or folder left in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def mixed_simulation() -> Simulation:
    """Five paths, two blown up (infinite maxima), one NaN ratio."""
    setting = {"problem": "quadratic", "clip": "classic", "lam": 1.0, "eps": None,
               "schedule": "1/(t+1)", "paths": 5, "steps": 10, "batch": 1, "seed": 3,
               "radii": [1.0, 2.5], "guard": 1e100, "record": ["exits"]}
    arrays = {
        "blown_step": np.array([-1, 4, -1, 7, -1]),
        "first_exit": np.array([[2, -1], [1, 4], [3, 9], [5, 7], [-1, -1]]),
        "first_exit_norm": np.array([[2, -1], [1, 4], [3, -1], [5, 7], [-1, -1]]),
        "max_deviation": np.array([1.5, np.inf, 2.75, np.inf, 0.5]),
        "max_norm": np.array([1.5, np.inf, 2.75, np.inf, 0.5]),
        "claim2_ratio": np.array([0.5, np.nan, 0.75, np.inf, 0.25]),
        "clipped_steps": np.array([10, 4, 5, 7, 0]),
        "endpoints": np.array([[1.0], [np.inf], [-2.0], [np.nan], [0.0]]),
    }
    return Simulation(setting, arrays)


def test_round_trip_keeps_infinities_and_writes_strict_json(tmp_path):
    sim = mixed_simulation()
    path = results.save(sim, tmp_path / "run", device="cpu", command="python -m simulations x")
    assert path == tmp_path / "run" / "result.json"
    result = strict_json(path)
    back = results.load(tmp_path / "run")
    assert back.setting == sim.setting
    assert back.arrays.keys() == sim.arrays.keys()
    for key, value in sim.arrays.items():
        np.testing.assert_array_equal(back.arrays[key], value, err_msg=key)  # inf and NaN too
        assert back.arrays[key].dtype == value.dtype
    assert result["blown_up"] == 2 == back.blown_up
    assert (result["paths"], result["steps"], result["seed"]) == (5, 10, 3)
    assert result["radii"] == sim.radius_summary()
    assert result["radii"][1] == {"radius": 2.5, "exit_fraction": 0.6, "exits": 3,
                                  "first_exit_step": {"min": 4, "median": 7.0, "max": 9}}
    assert result["radii_norm"][1]["exits"] == 2
    summary = result["summary"]
    assert summary["clipped_fraction"] == {"mean": pytest.approx(26 / 50), "median": 0.5}
    assert summary["claim2_ratio_max"] == 0.75  # NaN and inf left out
    assert summary["max_deviation"] == {
        "finite_paths": 3, "min": 0.5, "p01": pytest.approx(0.5 + 0.02 * 1.0),
        "p10": pytest.approx(0.7), "median": 1.5, "p90": pytest.approx(2.5),
        "p99": pytest.approx(2.725), "max": 2.75}
    assert result["device"] == "cpu" and result["command"] == "python -m simulations x"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", result["created"])
    assert result["torch_version"] == str(torch.__version__)
    assert isinstance(result["package_version"], str)
    assert "git_revision" in result
    assert no_temporaries(tmp_path / "run")


def test_blown_up_run_saves_and_loads(tmp_path):
    # ℓ = −½θ², no clipping, a = 1: θ doubles each step and passes float32's guard 1e18.
    run = RunSpec.from_dict({"problem": {"name": "stiff", "kind": "concave"},
                             "clip": {"rule": "none"}, "schedule": 1.0, "paths": 3,
                             "steps": 80, "radii": [10.0], "dtype": "float32"})
    sim = simulate(run, Execution(progress=False))
    assert sim.blown_up == 3
    results.save(sim, tmp_path)
    result = strict_json(tmp_path / "result.json")
    assert result["blown_up"] == 3
    assert result["summary"]["max_deviation"]["finite_paths"] == 0
    assert result["summary"]["max_deviation"]["max"] is None
    assert result["radii"][0]["exit_fraction"] == 1.0
    assert result["radii"][0]["first_exit_step"]["max"] == 4  # 2^4 = 16 > 1 + 10
    back = results.load(tmp_path)
    assert np.all(np.isinf(back.arrays["max_deviation"]))
    np.testing.assert_array_equal(back.arrays["path"], sim.arrays["path"])
    assert back.setting == sim.setting
    assert back.run == run and result["key"] == run.key() and result["run"] == run.to_dict()


def test_without_the_exits_observer_radii_are_null(tmp_path):
    sim = Simulation({"paths": 2, "steps": 0, "seed": 0, "radii": [1.0]},
                     {"blown_step": np.array([-1, -1]), "clipped_steps": np.array([0, 0])})
    results.save(sim, tmp_path)
    result = strict_json(tmp_path / "result.json")
    assert result["radii"] is None and result["radii_norm"] is None
    assert result["summary"] == {"clipped_fraction": {"mean": None, "median": None}}
    assert result["device"] is None


def test_to_json_writes_non_finite_numbers_as_null():
    value = {"a": np.float64(np.inf), "b": [1.5, float("nan"), np.int64(3)], "c": (-np.inf,),
             "d": np.array([1.0, np.inf]), 4: None}
    assert results.to_json(value) == {"a": None, "b": [1.5, None, 3], "c": [None],
                                      "d": [1.0, None], "4": None}


def test_writes_are_atomic(tmp_path, monkeypatch):
    """result.json and arrays.npz are one unit: a failure while writing either (a full disk
    included) or while renaming leaves the previous pair, byte for byte, and no temporary."""
    unit = tmp_path / "run"
    results.save(mixed_simulation(), unit)
    before = {p.name: p.read_bytes() for p in unit.iterdir()}
    assert sorted(before) == ["arrays.npz", "result.json"]
    mode = stat.S_IMODE((unit / "result.json").stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert stat.S_IMODE(unit.stat().st_mode) == 0o777 & ~umask
    other = mixed_simulation()
    other.arrays["clipped_steps"] = other.arrays["clipped_steps"] + 1  # a different array

    def unchanged():
        assert {p.name: p.read_bytes() for p in unit.iterdir()} == before
        assert no_temporaries(tmp_path)
        results.load(unit)  # still a readable pair

    real_write = results._write_file

    def json_fails(path, write):
        if path.name == "result.json":  # the new arrays.npz is already written
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, write)

    monkeypatch.setattr(results, "_write_file", json_fails)
    with pytest.raises(OSError) as error:
        results.save(other, unit)
    assert error.value.errno == errno.ENOSPC
    unchanged()
    monkeypatch.undo()

    def broken_savez(file, **arrays):
        file.write(b"half an archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        results.save(other, unit)
    unchanged()
    monkeypatch.undo()

    real_replace = os.replace

    def interrupted_replace(src, dst):
        if str(dst) == str(unit):  # the new unit's rename: the old one is already aside
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        results.save(other, unit)
    monkeypatch.undo()
    unchanged()
    results.save(other, unit)  # and a save that completes replaces the pair
    assert results.load(unit).arrays["clipped_steps"].tolist() == [11, 5, 6, 8, 1]
    assert no_temporaries(tmp_path)


@pytest.mark.parametrize("damage", ["truncate-json", "truncate-npz", "delete-npz", "foreign"])
def test_a_damaged_saved_run_is_refused_in_one_error(tmp_path, damage):
    unit = tmp_path / "run"
    results.save(mixed_simulation(), unit)
    if damage == "truncate-json":
        text = (unit / "result.json").read_bytes()
        (unit / "result.json").write_bytes(text[: len(text) // 2])
    elif damage == "truncate-npz":
        data = (unit / "arrays.npz").read_bytes()
        (unit / "arrays.npz").write_bytes(data[: len(data) // 2])
    elif damage == "delete-npz":
        (unit / "arrays.npz").unlink()
    else:
        (unit / "result.json").write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="not a complete saved run"):
        results.load(unit)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision(tmp_path, monkeypatch):
    assert results.git_revision(tmp_path) is None  # not a checkout
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                               "user.email=t@example.org", *args], capture_output=True,
                              text=True, check=True).stdout.strip()

    git("init", "-q")
    assert results.git_revision(repo) is None  # no commit yet
    (repo / "a.txt").write_text("a")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    assert results.git_revision(repo) == head
    (repo / "a.txt").write_text("changed")
    assert results.git_revision(repo) == head + "-dirty"
    (repo / "sub").mkdir()
    assert results.git_revision(repo / "sub") is None  # only the top of a checkout counts
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # git missing
    assert results.git_revision(repo) is None
    assert results.git_revision() is None


def test_package_version():
    assert isinstance(results.package_version(), str) and results.package_version()
