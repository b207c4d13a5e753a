"""Every command of the toolkit ends in one line on stderr: bad input with exit status 2, a
fault with 1, Ctrl-C with 130, never a traceback (:mod:`theory.command`). The commands are run
through their entry points: ``main(argv)`` in this process for bad flags and random flag values
(hypothesis), ``python -m ...`` in a subprocess for Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paper_figs import console
from paper_figs.__main__ import main as figs_main
from simulations.verify.cli import main as simulations_main
from theory.__main__ import main as theory_main
from torch_impl.experiments.__main__ import main as experiments_main

ROOT = Path(__file__).resolve().parents[2]
BOUND = ["bound", "--lam", "1", "--radius", "2", "--schedule", "1/(t+1)"]
RUN = ["run", "--problem", "quadratic", "--clip", "classic", "--lam", "1", "--schedule", "1",
       "--paths", "2", "--steps", "2", "--backend", "torch", "--quiet"]
RARE = ["rare", "--problem", "quadratic", "--clip", "classic", "--lam", "1", "--schedule", "1",
        "--steps", "2", "--event", "exit", "--level", "1", "--particles", "10",
        "--replicas", "2"]
SCENARIO = ('claims = ["T1"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\n'
            'lam = 1.0\n[run]\nschedule = "1/(t+1)"\npaths = 4\nsteps = 2\n')


def outcome(main, argv, capsys) -> tuple[int, list[str]]:
    """(exit status, the lines on stderr) of ``main(argv)``."""
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse: --help, or a refusal through Parser.error
        status = stop.code
    return status, capsys.readouterr().err.splitlines()


def bad_cases(tmp: Path) -> dict[str, tuple]:
    """Bad flags of every command: name -> (main, argv), the scenario files written into
    ``tmp``."""
    (tmp / "blowup.toml").write_text(SCENARIO + "[radii]\nblowup = []\n")
    (tmp / "deep.toml").write_text("a = " + "[" * 2000 + "]" * 2000 + "\n")
    (tmp / "deep100.toml").write_text(SCENARIO + "[options]\nx = " + "[" * 100 + "]" * 100 + "\n")
    (tmp / "junk.toml").write_text("[problem\n")
    out = ["--out", str(tmp / "out")]
    sims = {
        "run --dim 1e12": [*RUN, "--dim", "1e12", *out],
        "run linear-regression --dim 1e9": [*RUN[:2], "linear-regression", *RUN[3:],
                                            "--dim", "1e9", *out],
        "run linear-regression --n 1e9": [*RUN[:2], "linear-regression", *RUN[3:],
                                          "--n", "1e9", *out],
        "run mlp-regression --n 1e12": [*RUN[:2], "mlp-regression", *RUN[3:], "--n", "1e12",
                                        *out],
        "run --paths 1e15": [*RUN, "--paths", "1e15", *out],
        "run --paths 0": [*RUN, "--paths", "0", *out],
        "run --paths 2.5": [*RUN, "--paths", "2.5", *out],
        "run --paths huge text": [*RUN, "--paths", "9" * 5000, *out],
        "run --steps 1e10": [*RUN, "--steps", "1e10", *out],
        "run --steps 10**400000": [*RUN, "--steps", "10**400000", *out],
        "run --lam nan": [*RUN, "--lam", "nan", *out],
        "run --lam -1": [*RUN, "--lam", "-1", *out],
        "run --schedule x": [*RUN, "--schedule", "x", *out],
        "run --schedule 0": [*RUN, "--schedule", "0", *out],
        "run --radius inf": [*RUN, "--radius", "inf", *out],
        "run --device tpu": [*RUN, "--device", "tpu", *out],
        "run --eps (classic)": [*RUN, "--eps", "1", *out],
        "run --theta0 1 2 3": [*RUN, "--theta0", "1", "2", "3", *out],
        "run no --out": RUN,
        "rare --dim 1e8": [*RARE, "--dim", "1e8"],
        "rare --steps 4e9": [*RARE, "--steps", "4000000000"],
        "rare --particles 1": [*RARE, "--particles", "1"],
        "rare linear-regression --n 1e9": [*RARE[:2], "linear-regression", *RARE[3:],
                                           "--n", "1e9"],
        "verify blowup = []": ["verify", "--scenario", str(tmp / "blowup.toml"), *out],
        "verify deep TOML": ["verify", "--scenario", str(tmp / "deep.toml"), *out],
        "verify nested 100 deep": ["verify", "--scenario", str(tmp / "deep100.toml"), *out],
        "verify invalid TOML": ["verify", "--scenario", str(tmp / "junk.toml"), *out],
        "verify missing file": ["verify", "--scenario", str(tmp / "none.toml"), *out],
        "verify --claims T9": ["verify", "--claims", "T9", *out],
        "problems --x": ["problems", "--x"],
        "no command": [],
    }
    cases: dict[str, tuple] = {f"simulations {k}": (simulations_main, v) for k, v in sims.items()}
    theory = {"--lam -1": [*BOUND, "--lam", "-1"], "--lam nan": [*BOUND, "--lam", "nan"],
              "--horizon -3": [*BOUND, "--horizon", "-3"],
              "--horizon 1.5": [*BOUND, "--horizon", "1.5"],
              "--horizon 10**10**10": [*BOUND, "--horizon", "10**10000"],
              "--schedule x+": [*BOUND, "--schedule", "x+"],
              "--delta 2": [*BOUND, "--delta", "2"], "--eps 0": [*BOUND, "--eps", "0"],
              "no command": [], "frob": ["frob"]}
    cases.update({f"theory {k}": (theory_main, v) for k, v in theory.items()})
    figs = {"--only nope": ["--only", "nope"],
            "--only fig_bounds without --scenario": ["--only", "fig_bounds", *out],
            "--from missing": ["--from", str(tmp / "none"), *out],
            "--scenario blowup = []": ["--scenario", str(tmp / "blowup.toml"), *out],
            "--scenario deep TOML": ["--scenario", str(tmp / "deep.toml"), *out],
            "--frob": ["--frob"]}
    cases.update({f"paper_figs {k}": (figs_main, v) for k, v in figs.items()})
    experiments = {"no name": [], "unknown": ["nope"],
                   "--seed -1": ["norm_vs_value", "--seed", "-1"],
                   "--seed x": ["norm_vs_value", "--seed", "x"],
                   "--frob": ["ema_vs_fixed", "--frob"]}
    cases.update({f"experiments {k}": (experiments_main, v) for k, v in experiments.items()})
    clipverify = {"no command": [], "frob": ["frob"], "bound --lam 0": ["bound", *BOUND[1:],
                                                                        "--lam", "0"],
                  "run --paths 0": [*RUN, "--paths", "0", *out],
                  "figs --only nope": ["figs", "--only", "nope"]}
    cases.update({f"clipverify {k}": (console.main, v) for k, v in clipverify.items()})
    return cases


with tempfile.TemporaryDirectory() as folder:
    CASES = sorted(bad_cases(Path(folder)))


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_and_status_2(name, tmp_path, capsys):
    main, argv = bad_cases(tmp_path)[name]
    status, lines = outcome(main, argv, capsys)
    assert status == 2, lines
    assert len(lines) == 1 and "error:" in lines[0], lines
    assert not (tmp_path / "out" / "runs").exists()


def test_sizes_that_cannot_fit_say_what_they_would_need(tmp_path, capsys):
    for name in ("simulations run linear-regression --n 1e9", "simulations run --dim 1e12",
                 "simulations rare --steps 4e9", "simulations run --paths 1e15"):
        main, argv = bad_cases(tmp_path)[name]
        _, (line,) = outcome(main, argv, capsys)
        flag = name.split()[-2]
        assert f"argument {flag}:" in line and "would need about" in line, line
        assert "of memory, more than the" in line


# ---- faults -----------------------------------------------------------------------------------

def test_a_fault_is_one_line_and_status_1(tmp_path, capsys, monkeypatch):
    """A file that cannot be written, and a bug, each one line with exit status 1."""
    from simulations.engine import run as engine

    blocked = tmp_path / "file"
    blocked.write_text("")
    status, lines = outcome(simulations_main, [*RUN, "--out", str(blocked / "sub")], capsys)
    assert status == 2 and len(lines) == 1 and "--out" in lines[0]  # refused up front

    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(engine, "simulate", broken)
    status, lines = outcome(simulations_main, [*RUN, "--out", str(tmp_path / "o")], capsys)
    assert status == 1 and lines == [
        "python -m simulations: error: internal error: RuntimeError: a bug over two lines"]


# ---- Ctrl-C -----------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("argv", [
    ["simulations", *RUN[:9], "--paths", "1000", "--steps", "10000000", "--backend", "torch"],
    ["simulations", "rare", "--problem", "quadratic", "--lam", "1", "--schedule", "1/(t+1)",
     "--steps", "100000", "--event", "exit", "--level", "50", "--particles", "1000",
     "--replicas", "100"],
    ["paper_figs", "--quick", "--only", "fig_blowup", "fig_growth"],
], ids=["run", "rare", "paper_figs"])
def test_ctrl_c_is_one_line_and_status_130(argv, tmp_path):
    """SIGINT once the command runs (1 s of CPU: past the interpreter's start, inside main)."""
    out = ["--out", str(tmp_path / "out")]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", *argv, *out], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        start = time.monotonic()
        while proc.poll() is None and cpu_seconds(proc.pid) < 1.0:
            assert time.monotonic() - start < 120
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    lines = err.splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err


# ---- random flag values -----------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(-3, 4).map(str), st.sampled_from(["1e13", "10**30", "1e400", "-1e-300", "2.5",
                                                  "nan", "inf", "-inf", "1_0", "0x10", "", " ",
                                                  "1e", "١"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789eE+-._*^x ", max_size=6))
SCHEDULES = st.one_of(
    st.sampled_from(["1", "1/(t+1)", "0.1*0.5**floor(t/100)", "0.05*(1+cos(pi*t/T))", "t",
                     "1/t", "exp(-t)", "sqrt(t+1)**-1", "0", "-1", "nan", "9**9**9", "t**t",
                     "__import__('os')", "(", "1/(t-1)"]),
    st.text(alphabet="t1+-*/()^. expsinco", max_size=8))
#: flags of ``run`` whose values are tried, each with its strategy
FLAGS = {"--paths": NUMBERS, "--steps": NUMBERS, "--dim": NUMBERS, "--lam": NUMBERS,
         "--batch": NUMBERS, "--seed": NUMBERS, "--radius": NUMBERS, "--schedule": SCHEDULES}


def works_or_is_refused(main, argv: list[str], capsys) -> None:
    """``main(argv)`` ends within 20 s with status 0, or 2 and one line."""
    start = time.monotonic()
    status, lines = outcome(main, argv, capsys)
    assert time.monotonic() - start < 20, argv
    assert status in (0, 2), (argv, lines)
    if status == 2:
        assert len(lines) == 1 and "error:" in lines[0], (argv, lines)


def small(flag: str, text: str) -> bool:
    """Whether ``text`` would make a quick run (else it must be refused or is not tried)."""
    from theory.command import read_integer

    value = read_integer(text)
    return flag not in ("--paths", "--steps", "--dim", "--batch") or value is None \
        or value <= 4 or value >= 10**13


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({}, optional=FLAGS))
def test_random_flag_values_run_or_are_refused_in_one_line(values, tmp_path_factory, capsys):
    values = {flag: text for flag, text in values.items() if small(flag, text)}
    argv = ["run", "--problem", "quadratic", "--clip", "classic", "--lam", "1", "--schedule",
            "1", "--paths", "2", "--steps", "2", "--backend", "torch", "--quiet", "--out",
            str(tmp_path_factory.mktemp("run"))]
    for flag, text in values.items():
        argv += [f"{flag}={text}"]
    works_or_is_refused(simulations_main, argv, capsys)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lam=NUMBERS, horizon=NUMBERS, schedule=SCHEDULES)
def test_random_bound_flags_work_or_are_refused_in_one_line(lam, horizon, schedule, capsys):
    argv = ["bound", f"--lam={lam}", "--radius=2", f"--schedule={schedule}",
            f"--horizon={horizon}"]
    works_or_is_refused(theory_main, argv, capsys)
