"""The command line `python -m theory bound`: the JSON keys, the paper's numbers, bad input."""

import json
import math
import subprocess
import sys

import mpmath as mp
import pytest

PAPER = ["--lam", "30", "--radius", "1024", "--schedule", "1/(t+1)"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "theory", "bound", *args],
                          capture_output=True, text=True, timeout=120)


def test_json_reproduces_the_papers_numbers():
    done = run(*PAPER, "--json")
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    gamma = float(mp.pi**2 / 6)
    assert table["schedule"]["gamma"] == pytest.approx(gamma, rel=1e-14)
    assert table["schedule"]["a2"] is True
    paper = table["bounds"]["lemma1_paper"]
    exponent = 2**21 / (150 * math.pi**2)  # 2M²/(γλ²) with M = 2¹⁰, λ = 30, γ = π²/6
    assert paper["exponent"] == pytest.approx(exponent, rel=1e-13)
    assert paper["exponent"] == pytest.approx(1416.5728, abs=1e-4)
    assert paper["log10_probability"] == pytest.approx(-614.9087, abs=1e-4)
    assert paper["probability"] is None  # 2e^{-1416} underflows float64
    assert table["bounds"]["azuma"]["exponent"] == pytest.approx(354.1432, abs=1e-4)
    pinelis = 1024**2 / (8 * 30**2 * gamma)
    assert table["bounds"]["pinelis"]["log10_probability"] == pytest.approx(
        (math.log(2) - pinelis) / math.log(10), rel=1e-12)
    horizon = table["bounds"]["deterministic"]["horizon_for_radius"]
    with mp.workdps(50):
        assert 30 * mp.harmonic(horizon) >= 1024 > 30 * mp.harmonic(horizon - 1)
    assert 3.7e14 < horizon < 3.8e14
    assert table["bounds"]["deterministic"]["radius"] is None  # no horizon: λΣa = ∞
    assert "claim2" not in table["bounds"]


def test_json_with_horizon_eps_and_delta():
    done = run(*PAPER, "--horizon", "10**3", "--eps", "0.01", "--delta", "0.05", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["bounds"]
    assert results["deterministic"]["radius"] == pytest.approx(
        30 * math.fsum(1 / (t + 1) for t in range(1000)), rel=1e-14)
    gamma_1000 = math.fsum(1 / (t + 1) ** 2 for t in range(1000))
    assert results["lemma1_paper"]["exponent"] == pytest.approx(
        2 * 1024**2 / (30**2 * gamma_1000), rel=1e-13)
    assert results["claim2"] == {"k_tight": 30.0, "k_paper": 30.0, "paper_is_tight": True}
    log_growth = math.log(0.01) + math.fsum(math.log1p(30 / (t + 1)) for t in range(1000))
    assert results["gronwall"]["log_norm"] == pytest.approx(log_growth, rel=1e-12)
    radius = 30 * math.sqrt(8 * gamma_1000 * math.log(2 / 0.05))
    assert results["inverses"]["pinelis_radius"] == pytest.approx(radius, rel=1e-12)


def test_claim2_paper_constant_is_larger_when_lambda_is_small():
    done = run("--lam", "0.5", "--radius", "1", "--schedule", "1/(t+1)", "--eps", "0.1", "--json")
    claim2 = json.loads(done.stdout)["bounds"]["claim2"]
    assert (claim2["k_tight"], claim2["k_paper"]) == (0.5, 1.0)


def test_table_for_a_person_shows_every_row():
    done = run(*PAPER)
    assert done.returncode == 0
    for text in ("1416.57", "-614.90", "354.14", "Pinelis", "374314574624759", "underflow"):
        assert text in done.stdout


@pytest.mark.parametrize(("args", "argument"), [
    (["--lam", "0", "--radius", "1", "--schedule", "1/(t+1)"], "--lam"),
    (["--lam", "-3", "--radius", "1", "--schedule", "1/(t+1)"], "--lam"),
    (["--lam", "abc", "--radius", "1", "--schedule", "1/(t+1)"], "--lam"),
    (["--lam", "1", "--radius", "0", "--schedule", "1/(t+1)"], "--radius"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(t+1)", "--eps", "0"], "--eps"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(t+1)", "--delta", "1"], "--delta"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(t+1)", "--delta", "0"], "--delta"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/("], "--schedule"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/t"], "--schedule"),
    (["--lam", "1", "--radius", "1", "--schedule", "1-t"], "--schedule"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(x+1)"], "--schedule"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(t+1)", "--horizon", "1.5"], "--horizon"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(t+1)", "--horizon", "10**25"], "--horizon"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(t+1)", "--horizon", "1e30"], "--horizon"),
    (["--lam", "1", "--radius", "1", "--schedule", "((9**99)**99)**99"], "--schedule"),
    (["--radius", "1", "--schedule", "1/(t+1)"], "--lam"),
    (["--lam", "1", "--radius", "1", "--schedule", "1/(t+1)", "--theta0-norm", "-1"],
     "--theta0-norm"),
])
def test_bad_input_is_one_line_naming_the_argument(args, argument):
    done = run(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert argument in lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_one_over_t_gets_the_hint():
    done = run("--lam", "1", "--radius", "1", "--schedule", "1/t")
    assert "did you mean 1/(t+1)?" in done.stderr


# ---- the clipverify console command ---------------------------------------------------------

def test_clipverify_is_a_console_script_of_the_package():
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    scripts = cfg["options.entry_points"]["console_scripts"].split("=")
    assert [s.strip() for s in scripts] == ["clipverify", "paper_figs.console:main"]


def test_clipverify_dispatches_every_command(tmp_path, capsys, monkeypatch):
    from paper_figs.console import main

    assert main(["bound", *PAPER, "--json"]) == 0
    paper = json.loads(capsys.readouterr().out)["bounds"]["lemma1_paper"]
    assert paper["exponent"] == pytest.approx(2**21 / (150 * math.pi**2), rel=1e-13)

    assert main(["problems"]) == 0
    assert "rnn-cliff" in capsys.readouterr().out

    assert main(["run", "--problem", "stiff", "--kind", "far", "--clip", "classic", "--lam",
                 "1", "--schedule", "1/(t+1)", "--paths", "3", "--steps", "8", "--radius", "2",
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    # always clipped towards a far target: θ(s) − θ(0) = Σ_{t<s} 1/(t+1) > 2 first at s = 4
    assert "blown up: 0 of 3 paths" in out
    row = next(line for line in out.splitlines() if line.split()[:1] == ["2"])
    assert row.split()[:6] == ["2", "1.0000", "3", "4", "4", "4"]

    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert main(["figs", "--quick", "--out", str(tmp_path / "figs"), "--only",
                 "fig_schedules"]) == 0
    assert (tmp_path / "figs" / "fig7_schedules.csv").exists()

    with pytest.raises(SystemExit) as stop:
        main(["verify", "--claims", "T9"])
    assert stop.value.code == 2
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main([]) == 2
