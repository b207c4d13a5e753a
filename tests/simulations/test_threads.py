"""Threads set once (simulations.engine.threads): the count reaches torch and numba, None means the
default (every CPU available, or the command line's --threads), bad counts are refused naming
``threads``, and a run's arrays do not depend on the threads or the chunk size."""

from __future__ import annotations

import json
import subprocess
import sys

import numba
import numpy as np
import pytest
import torch

from simulations.engine import run as engine
from simulations.engine import threads
from simulations.engine.spec import Execution, RunSpec
from simulations.verify import cli
from theory.errors import BadArgument


@pytest.fixture(autouse=True)
def _restore():
    """Each test starts and ends with no default set and every thread available."""
    threads.set_default_threads(None)
    yield
    threads.set_default_threads(None)
    threads.use_threads(None)


def test_available_is_the_affinity():
    try:
        expected = len(__import__("os").sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        expected = __import__("os").cpu_count()
    assert threads.available_threads() == expected
    assert threads.default_threads() == expected


def test_count_reaches_torch_and_numba():
    assert threads.use_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert numba.get_num_threads() == 1
    limit = numba.config.NUMBA_NUM_THREADS
    assert threads.use_threads(limit + 3) == limit + 3
    assert torch.get_num_threads() == limit + 3
    assert numba.get_num_threads() == limit  # clamped to numba's pool
    # None goes back to every CPU available
    count = threads.use_threads(None)
    assert count == threads.available_threads()
    assert torch.get_num_threads() == count
    assert numba.get_num_threads() == min(count, limit)


def test_first_call_in_a_fresh_process():
    """numba's OpenMP layer starts on the first set_num_threads and resets the OpenMP count
    torch reads: torch must still get the count."""
    code = ("import numba, torch; torch.get_num_threads(); "
            "from simulations.engine.threads import use_threads; "
            "print(use_threads(1), torch.get_num_threads(), numba.get_num_threads())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["1", "1", "1"], proc.stderr


def test_blas_threads_follow_when_threadpoolctl_is_there():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    threads.use_threads(1)
    blas = [d for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
    assert all(d["num_threads"] == 1 for d in blas)


def test_default_set_once_is_what_none_means():
    threads.set_default_threads(1)
    assert threads.default_threads() == 1
    assert threads.use_threads(None) == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    threads.set_default_threads(None)
    assert threads.use_threads() == threads.available_threads()


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, [1]])
def test_bad_counts_name_threads(bad):
    for call in (threads.use_threads, threads.set_default_threads,
                 lambda n: Execution(threads=n)):
        with pytest.raises(BadArgument) as info:
            call(bad)
        assert info.value.param == "threads"
        assert "\n" not in str(info.value)


def test_execution_takes_integers():
    assert Execution(threads=2).threads == 2
    assert Execution(threads=np.int64(3)).threads == 3
    assert Execution().threads is None


def test_simulate_sets_the_threads():
    engine.simulate(_spec("quadratic"), Execution(threads=1, progress=False))
    assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    threads.set_default_threads(1)
    threads.use_threads(2)
    engine.simulate(_spec("quadratic"), Execution(progress=False))  # None: the default
    assert torch.get_num_threads() == 1


def _spec(problem: str) -> RunSpec:
    if problem == "quadratic":
        return RunSpec.from_dict({
            "problem": {"name": "quadratic", "noise": "normal", "mean": 2.0, "sd": 1.5,
                        "dim": 8, "theta0": 0.5},
            # R·P = 36000 > torch's grain of 32768: torch splits its ops over the threads
            "clip": {"rule": "classic", "lam": 3.5}, "schedule": "0.5/(t+1)", "paths": 4500,
            "steps": 8, "radii": [0.5, 1.0], "record": ["exits", "running_max", "claim2",
                                                         "clipped", "checkpoints", "paths",
                                                         "xi"],
            "xi_paths": 16})
    return RunSpec.from_dict({
        "problem": {"name": "linear-regression", "n": 50, "dim": 4},
        "clip": {"rule": "adaptive", "lam": 50.0, "eps": 1.0}, "schedule": "0.05/(t+1)",
        "paths": 40, "steps": 30, "batch": 3, "radii": [1.0]})


@pytest.mark.parametrize("problem", ["quadratic", "linear-regression"])
def test_arrays_do_not_depend_on_threads_or_chunks(problem):
    spec = _spec(problem)
    runs = [engine.simulate(spec, Execution(threads=n, chunk_size=chunk, progress=False))
            for n, chunk in ((1, None), (2, None), (1, spec.paths // 3 + 1),
                             (2, spec.paths // 5 + 3))]
    first = runs[0].arrays
    assert len(first) > 3
    for sim in runs[1:]:
        assert sim.arrays.keys() == first.keys()
        for name, array in first.items():
            assert np.array_equal(sim.arrays[name], array, equal_nan=True), name
        assert sim.setting == runs[0].setting  # the thread count is recorded nowhere


def test_cli_flag_reaches_the_run(tmp_path, capsys):
    status = cli.main(["run", "--problem", "quadratic", "--theta0", "0", "--lam", "1", "--schedule",
                       "1/(t+1)", "--paths", "20", "--steps", "10", "--threads", "1",
                       "--quiet", "--out", str(tmp_path)])
    assert status == 0
    assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    saved = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert "threads" not in json.dumps(saved["setting"])  # only the command line names it
    capsys.readouterr()


@pytest.mark.parametrize("command", ["run", "rare", "verify"])
@pytest.mark.parametrize("value", ["0", "two", "1.5"])
def test_cli_bad_threads_is_one_line(command, value):
    proc = subprocess.run([sys.executable, "-m", "simulations", command, "--threads", value],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "argument --threads:" in lines[0]


def test_cli_flag_reaches_rare(capsys):
    status = cli.main(["rare", "--problem", "quadratic", "--noise", "discrete", "--values",
                       "-10", "10", "--probs", "0.5", "0.5", "--theta0", "0", "--clip",
                       "classic", "--lam", "1", "--schedule", "1", "--steps", "20", "--event",
                       "exit", "--level", "6", "--particles", "10", "--kill", "2",
                       "--replicas", "2", "--threads", "1", "--json"])
    assert status == 0
    assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)  # not undone by ams
    capsys.readouterr()


def test_cli_flag_is_the_default_of_verify(tmp_path):
    with pytest.raises(SystemExit):  # the scenario is missing: parsed, then refused
        cli.main(["verify", "--threads", "1", "--scenario", str(tmp_path / "none.toml"),
                  "--out", str(tmp_path)])
    assert threads.default_threads() == 1
