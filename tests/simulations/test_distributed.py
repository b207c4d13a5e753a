"""Runs split across torch.distributed ranks (gloo on the CPU, 2 processes on this machine,
started as torchrun starts them: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): the same bits as
one process, one line on every rank when a rank dies or raises, nothing saved then, and a
checkpoint of 2 ranks resumed by 1. The one-process results are computed here in the test's
own process, with no process group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simulations.engine import distributed
from simulations.engine import run as engine
from simulations.engine.distributed import Communicator
from simulations.engine.run import simulate
from simulations.engine.spec import Execution
from simulations.verify import cli

ROOT = Path(__file__).resolve().parents[2]
RUN = ["run", "--problem", "quadratic", "--noise", "normal", "--mean", "1", "--sd", "2",
       "--dim", "2", "--clip", "classic", "--lam", "0.5", "--schedule", "1/(t+1)^0.6",
       "--radius", "1", "--radius", "3", "--quiet", "--threads", "1", "--rank-timeout", "3"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(world: int, argv: list[str]) -> list[subprocess.Popen]:
    """``world`` ranks of ``python <argv>``, with the variables torchrun sets."""
    port, procs = _port(), []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world),
               "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return procs


def _finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str]]:
    """(exit status, stderr) of each rank."""
    out = []
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        out.append((proc.returncode, err))
    return out


def _load(out: Path):
    """The one run saved in ``out/runs``."""
    from simulations.engine import results

    (folder,) = [p for p in (out / "runs").iterdir() if p.is_dir()]
    return results.load(folder)


def _same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


# ---- the plan, without processes -----------------------------------------------------------

@pytest.mark.parametrize("rows,world", [(1, 1), (1, 3), (10, 3), (401, 2), (7, 7)])
def test_shares_cover_the_rows_once_in_order(rows, world):
    parts = distributed.shares(rows, world)
    assert [r for lo, hi in parts for r in range(lo, hi)] == list(range(rows))
    assert max(hi - lo for lo, hi in parts) - min(hi - lo for lo, hi in parts) <= 1


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_a_resumed_plan_covers_every_row_once(world):
    done = [{"rows": [0, 30]}, {"rows": [50, 60]}]
    partial = [{"rows": [30, 50], "state": {"t": 5}}, {"rows": [90, 95], "state": {"t": 7}}]
    rows = []
    for rank in range(world):
        for piece in engine._plan(120, 16, done, partial, Communicator(rank, world)):
            assert piece["rows"][1] - piece["rows"][0] <= 16 or piece["state"]
            rows += range(*piece["rows"])
    rows += [r for p in done for r in range(*p["rows"])]
    assert sorted(rows) == list(range(120))


def test_each_rank_takes_its_gpu_where_cuda_is_present():
    assert distributed.rank_device(3, cuda=True) == "cuda:3"
    assert distributed.rank_device(3, cuda=False) == "cpu"


def test_threads_are_shared_among_the_ranks_of_a_machine(monkeypatch):
    from simulations.engine import threads

    monkeypatch.setattr(threads, "available_threads", lambda: 16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert threads.default_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert threads.default_threads() == 1


def test_distributed_without_a_process_group_is_refused():
    from theory.errors import BadArgument

    with pytest.raises(BadArgument, match="torchrun"):
        distributed.communicator(True)


# ---- 2 processes ---------------------------------------------------------------------------

def test_two_ranks_give_the_bits_of_one(tmp_path, capsys):
    out = tmp_path / "two"
    argv = [*RUN, "--paths", "401", "--steps", "300", "--chunk-size", "64", "--keep-paths",
            "203", "--out", str(out)]  # kept paths on both ranks
    ends = _finish(_launch(2, ["-m", "simulations", *argv]))
    assert [rc for rc, _ in ends] == [0, 0], ends
    sim = _load(out)
    one = simulate(sim.run, Execution(threads=1, progress=False, distributed=False))
    _same(sim.arrays, one.arrays)
    assert sim.arrays["path"].shape[0] == 203
    # the store a split run wrote is the one a single process reads (and reuses)
    assert cli.main([*argv, "--resume"]) == 0
    assert "reusing the run saved" in capsys.readouterr().err


SCENARIO = """claims = ["L1-det", "T1"]
[problem]
name = "quadratic"
noise = "discrete"
values = [0.0, 1.0, {top}]
probs = [0.5, 0.3, 0.2]
[clip]
rule = "classic"
lam = {lam}
[run]
schedule = "5/(t+5)"
paths = 96
steps = 300
"""


def test_verify_of_two_scenarios_on_two_ranks_gives_the_rows_of_one(tmp_path):
    from simulations.verify import report
    from simulations.verify.runner import verify
    from simulations.verify.scenarios import load_scenario

    files = []
    for name, top, lam in (("a", 10.0, 2.0), ("b", 4.0, 0.5)):
        files += ["--scenario", str(tmp_path / f"{name}.toml")]
        (tmp_path / f"{name}.toml").write_text(SCENARIO.format(top=top, lam=lam))
    out = tmp_path / "out"
    ends = _finish(_launch(2, ["-m", "simulations", "verify", *files, "--json", "--quiet",
                               "--threads", "1", "--out", str(out)]))
    assert [rc for rc, _ in ends] == [0, 0], ends
    rows = verify([load_scenario(p) for p in files[1::2]], progress=False)
    assert json.loads((out / "report.json").read_text()) == json.loads(report.as_json(rows))
    assert {r["scenario"] for r in json.loads(report.as_json(rows))} == {"a", "b"}
    assert len([p for p in (out / "runs").iterdir() if p.is_dir()]) == 2  # both saved by rank 0


WALK = ["--problem", "quadratic", "--noise", "discrete", "--values", "-1000", "1000", "--probs",
        "0.5", "0.5", "--theta0", "0", "--clip", "classic", "--lam", "1", "--schedule", "1",
        "--steps", "40", "--event", "exit", "--level", "20.5", "--particles", "20", "--seed",
        "9"]


def test_rare_on_two_ranks_gives_the_estimate_of_one(capsys):
    procs = _launch(2, ["-m", "simulations", "rare", *WALK, "--replicas", "5", "--json",
                        "--threads", "1"])
    two = procs[0].communicate(timeout=300)[0]
    assert [p.wait() for p in procs] == [0, 0]
    assert cli.main(["rare", *WALK, "--replicas", "5", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert json.loads(two) == one and one["replicas"] == 5


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Rank 1 of 2 killed mid-run, after its first checkpoint: (out, rank 0's end, argv)."""
    out = tmp_path_factory.mktemp("killed")
    argv = [*RUN, "--paths", "600", "--steps", "40000", "--chunk-size", "150",
            "--checkpoint-every", "2000", "--out", str(out)]
    procs = _launch(2, ["-m", "simulations", *argv])
    start, mark = time.monotonic(), None
    while time.monotonic() - start < 50:  # the second save of rank 1: a state past step 0
        files = list(out.glob("checkpoints/*/state.g0.1-of-2.pt"))
        if files and mark is None:
            mark = files[0].stat().st_mtime_ns
        elif files and files[0].stat().st_mtime_ns != mark:
            break
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    ends = _finish(procs[:1])
    procs[1].wait()
    return out, ends[0], argv


def test_a_killed_rank_ends_every_rank_in_one_line_and_saves_nothing(killed):
    out, (status, err), _ = killed
    lines = err.strip().splitlines()
    assert status != 0 and len(lines) == 1, err
    assert "rank 1" in lines[0] and "no sign of life" in lines[0]
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())


def test_two_ranks_checkpointed_resumed_by_one_equal_the_whole_run(killed, capsys):
    out, _, argv = killed
    (ckdir,) = (out / "checkpoints").iterdir()
    saved = [engine._load_checkpoint(p) for p in sorted(ckdir.glob("state*.pt"))]
    assert [s["world"] for s in saved] == [2, 2]
    assert any(p["state"]["t"] > 0 for s in saved for p in s["partial"]) or any(
        s["done"] for s in saved)  # work to keep, not a fresh start
    assert cli.main([*argv, "--resume"]) == 0
    capsys.readouterr()
    sim = _load(out)
    whole = simulate(sim.run, Execution(threads=1, progress=False, distributed=False))
    _same(sim.arrays, whole.arrays)
    assert not ckdir.exists()


RAISE = """
import sys, torch.distributed as dist
from simulations.engine import run as engine
from simulations.engine.spec import Execution, RunSpec
dist.init_process_group("gloo")
if dist.get_rank() == 1:
    def boom(*args):
        raise ValueError("boom on purpose")
    engine._run_chunk = boom
spec = RunSpec.from_dict({"problem": {"name": "quadratic", "mean": 1.0}, "paths": 64,
    "clip": {"rule": "classic", "lam": 1.0}, "schedule": "1/(t+1)", "steps": 200000})
engine.simulate(spec, Execution(distributed=True, threads=1, progress=False, rank_timeout=3))
"""


def test_a_rank_that_raises_ends_every_rank_with_its_line():
    (status0, err0), (status1, err1) = _finish(_launch(2, ["-c", RAISE]))
    lines = err0.strip().splitlines()
    assert status0 != 0 and len(lines) == 1, err0
    assert lines[0] == "stopped: rank 1: ValueError: boom on purpose"
    assert status1 != 0 and "boom on purpose" in err1
