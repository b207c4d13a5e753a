"""The cost before and during a run: ``--dry-run`` (simulations/engine/cost.py) prints the
trajectory-steps, peak memory and estimated time and saves nothing; progress shows on a stderr
that is not a terminal, as a line every few seconds (simulations/engine/progress.py)."""

import os
import re
import subprocess
import sys

import pytest

from simulations.engine import cost, progress
from simulations.engine.rare import Splitting, ams
from simulations.engine.spec import Chain, Execution, RunSpec

QUAD = ["--problem", "quadratic", "--noise", "normal", "--mean", "100", "--sd", "1", "--dim",
        "1", "--theta0", "0", "--clip", "classic", "--lam", "1", "--schedule", "1/(t+1)"]
WALK = ["--problem", "quadratic", "--noise", "discrete", "--values", "-1000", "1000", "--probs",
        "0.5", "0.5", "--theta0", "0", "--clip", "classic", "--lam", "1", "--schedule", "1",
        "--steps", "40", "--event", "exit", "--level", "20.5", "--particles", "40",
        "--replicas", "4"]
WALK_CHAIN = {"problem": {"name": "quadratic", "noise": "discrete", "values": [-1000.0, 1000.0],
                          "probs": [0.5, 0.5], "theta0": 0.0},
              "clip": {"rule": "classic", "lam": 1.0}, "schedule": "1", "steps": 40}
#: a scenario of 64 paths × 50 steps
MINE = ('claims = ["L1-det"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\n'
        'lam = 1.0\n[run]\nschedule = "1/(t+1)"\npaths = 64\nsteps = 50\n')


def command(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def rows(stdout: str) -> dict[str, list[str]]:
    """The dry-run table's rows by their first column (columns split on two spaces)."""
    lines = stdout.strip().splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["run", "trajectory-steps", "peak memory", "time",
                                            "estimated from"], lines[0]
    return {r[0]: r for r in (re.split(r"\s{2,}", line.strip()) for line in lines[2:])
            if len(r) >= 4}


def seconds(text: str) -> float:
    """"0.4 s", "12 s", "3 min 4 s" as seconds."""
    m = re.fullmatch(r"(?:(\d+) min )?([\d.]+) s", text)
    assert m, text
    return 60 * int(m.group(1) or 0) + float(m.group(2))


def test_run_dry_run_prints_the_fields_and_writes_nothing(tmp_path):
    out = tmp_path / "never"
    done = command("simulations", "run", *QUAD, "--paths", "3000", "--steps", "300",
                   "--radius", "2", "--out", str(out), "--dry-run")
    assert done.returncode == 0, done.stderr
    row = rows(done.stdout)["run"]
    assert float(row[1]) == 3000 * 300  # trajectory-steps = R·T
    assert re.fullmatch(r"[\d.]+ (bytes|KiB|MiB)", row[2]), row
    assert seconds(row[3]) > 0
    assert "nothing was saved" in done.stdout
    assert not out.exists()  # not even the folder


def test_peak_memory_by_hand():
    """Nothing recorded: the result is θ(T) and the blow-up step, 8·P + 8 bytes a path, held
    twice; the schedule 16 bytes a step; a chunk's working rows (8·P + 4·B·(P + 8)) numbers
    of 8 bytes each. P = 1, B = 1, R = 1000, T = 300."""
    spec = RunSpec.from_dict({"problem": {"name": "quadratic", "noise": "normal", "mean": 1.0,
                                          "sd": 1.0}, "clip": {"rule": "classic", "lam": 1.0},
                              "schedule": "1/(t+1)", "paths": 1000, "steps": 300,
                              "record": []})
    by_hand = 2 * 1000 * (8 + 8) + 16 * 300 + 1000 * (8 + 4 * 9) * 8
    assert cost.run_cost(spec).memory == by_hand


def test_rare_work_estimate_against_the_run():
    """The splitting model's trajectory-steps (pilots of 10 particles) against those of the run
    itself, on the ±1 walk (seeded: the same numbers every time), within a factor 2."""
    chain = Chain.from_dict(WALK_CHAIN)
    splitting = Splitting(event="exit", level=20.5, particles=40, replicas=4)
    estimate = cost.rare_cost(chain, splitting)
    done = ams(chain, splitting, Execution(progress=False))
    assert done.trajectory_steps / 2 <= estimate.trajectory_steps <= 2 * done.trajectory_steps
    assert estimate.memory > 0 and estimate.seconds > 0


def test_rare_dry_run_writes_nothing(tmp_path):
    out = tmp_path / "never"
    done = command("simulations", "rare", *WALK, "--out", str(out), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "pilots of 10 particles" in rows(done.stdout)["AMS"][4]
    assert not out.exists()


@pytest.mark.parametrize("prefix", [("simulations", "verify"), ("paper_figs", "--quick")])
def test_scenario_dry_run_lists_its_run_and_writes_nothing(tmp_path, prefix):
    """``verify --dry-run`` and ``paper_figs --dry-run`` of one scenario: its run's row (and,
    for verify, its claims' row); no output folder."""
    path = tmp_path / "mine.toml"
    path.write_text(MINE, encoding="utf-8")
    done = command(*prefix, "--scenario", str(path), "--out", str(tmp_path / "o"), "--dry-run")
    assert done.returncode == 0, done.stderr
    table = rows(done.stdout)
    assert float(table["mine"][1]) == 64 * 50
    assert "mine: claims" in table or prefix[0] == "paper_figs"
    assert not (tmp_path / "o").exists()


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    """With a tiny interval every block of steps prints a line; --quiet prints none."""
    args = ("simulations", "run", *QUAD, "--paths", "100", "--steps", "3000", "--chunk-size",
            "50", "--out", str(tmp_path))
    done = command(*args, env={progress.INTERVAL_ENV: "1e-9"})
    assert done.returncode == 0, done.stderr
    lines = re.findall(r"quadratic/classic: (\d+)/300000 trajectory-steps \((\d+)%\)",
                       done.stderr)
    assert len(lines) >= 2, done.stderr
    counts = [int(n) for n, _ in lines]
    assert counts == sorted(counts) and counts[-1] == 300000  # the last block ends the run
    quiet = command(*args, "--quiet", env={progress.INTERVAL_ENV: "1e-9"})
    assert quiet.returncode == 0 and "trajectory-steps" not in quiet.stderr, quiet.stderr


def test_progress_lines_of_the_splitting():
    done = command("simulations", "rare", *WALK, env={progress.INTERVAL_ENV: "1e-9"})
    assert done.returncode == 0, done.stderr
    found = re.findall(r"AMS exit \(max\) ≥ 20.5: (\d+) iterations, [\d.]+ s, replicas (\d)/4 "
                       r"done", done.stderr)
    assert len(found) >= 2, done.stderr
    assert [int(n) for n, _ in found] == list(range(1, len(found) + 1))


@pytest.mark.parametrize("value, expected", [("0.5", 0.5), ("abc", 5.0), ("-1", 5.0),
                                             ("inf", 5.0)])
def test_interval_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(progress.INTERVAL_ENV, value)
    assert progress.interval() == expected


def test_clock():
    assert [progress.clock(s) for s in (0.44, 12.4, 184, 7500)] == [
        "0.4 s", "12 s", "3 min 4 s", "2 h 5 min"]
