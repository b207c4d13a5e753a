"""The command line `python -m simulations`: runs checked against numbers computed here, bad
input, Ctrl-C and --resume."""

import errno
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulations.engine import results
from simulations.engine import run as engine
from simulations.engine.results import load
from simulations.verify import cli

FAR = ["--problem", "quadratic", "--noise", "normal", "--mean", "100", "--sd", "1", "--dim", "1",
       "--theta0", "0", "--clip", "classic", "--lam", "1", "--schedule", "1/(t+1)",
       "--paths", "2000", "--steps", "200", "--batch", "1", "--seed", "0", "--dtype", "float64"]
STEPS = 200


def run(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulations", *args], capture_output=True,
                          text=True, timeout=timeout)


def saved(out: Path) -> Path:
    """The one run saved in the store ``out/runs`` (its folder ``out/runs/<key>``)."""
    folders = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    assert re.fullmatch(r"[0-9a-f]{16}", folders[0].name)
    return folders[0]


def harmonic_exit(radius: float) -> int | None:
    """The smallest s ≤ STEPS with Σ_{t<s} 1/(t+1) > radius, or None."""
    total = 0.0
    for s in range(1, STEPS + 1):
        total = math.fsum([total, 1.0 / s])
        if total > radius:
            return s
    return None


@pytest.fixture(scope="module")
def far(tmp_path_factory):
    out = tmp_path_factory.mktemp("far") / "runs" / "far"
    done = run("run", *FAR, "--radius", "2", "--radius", "5", "--radius", "6", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return saved(out), json.loads((saved(out) / "result.json").read_text()), done


def test_far_quadratic_leaves_every_radius_at_the_harmonic_step(far):
    # Every step is clipped (|θ − y| ≈ 94 > λ = 1), so θ(s) = Σ_{t<s} 1/(t+1) on every path.
    out, result, _ = far
    assert harmonic_exit(2) == 4
    assert harmonic_exit(5) == 83
    assert math.fsum(1 / (t + 1) for t in range(STEPS)) < 6  # 6 is beyond λΣa(t)
    radii = {row["radius"]: row for row in result["radii"]}
    for radius in (2.0, 5.0):
        s = harmonic_exit(radius)
        assert radii[radius]["exit_fraction"] == 1.0
        assert radii[radius]["exits"] == 2000
        assert radii[radius]["first_exit_step"] == {"min": s, "median": s, "max": s}
    assert radii[6.0]["exit_fraction"] == 0.0
    assert radii[6.0]["exits"] == 0
    assert radii[6.0]["first_exit_step"] is None
    assert result["radii_norm"] == result["radii"]  # θ(0) = 0
    assert result["blown_up"] == 0
    assert (result["paths"], result["steps"], result["seed"]) == (2000, STEPS, 0)
    summary = result["summary"]
    harmonic = math.fsum(1 / (t + 1) for t in range(STEPS))
    assert summary["max_deviation"]["finite_paths"] == 2000
    for key in ("min", "median", "max"):
        assert summary["max_deviation"][key] == pytest.approx(harmonic, rel=1e-12)
        assert summary["max_norm"][key] == pytest.approx(harmonic, rel=1e-12)
    assert summary["clipped_fraction"] == {"mean": 1.0, "median": 1.0}
    assert summary["claim2_ratio_max"] == pytest.approx(1.0)  # ‖g/c‖/(1+‖θ‖) at θ = 0


def test_far_quadratic_setting_files_and_provenance(far):
    out, result, done = far
    setting = result["setting"]
    expected = {"problem": "quadratic", "noise": "normal", "mean": 100.0, "sd": 1.0, "dim": 1,
                "clip": "classic", "lam": 1.0, "schedule": "1/(t+1)", "paths": 2000,
                "steps": STEPS, "batch": 1, "seed": 0, "radii": [2.0, 5.0, 6.0],
                "dtype": "float64", "record": list(engine.DEFAULT_RECORD)}
    assert {k: setting[k] for k in expected} == expected
    sim = load(out)
    assert sim.setting == setting
    assert sim.radius_summary() == result["radii"]
    assert np.all(sim.arrays["first_exit"][:, 0] == 4)
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "result.json"]
    assert "git_revision" in result
    root = Path(cli.__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if head.returncode == 0:
        assert re.fullmatch(head.stdout.strip() + r"(-dirty)?", result["git_revision"])
    assert result["device"] == "cpu"
    assert result["package_version"]
    assert result["torch_version"]
    assert "--radius 5" in result["command"]
    # the summary table
    lines = done.stdout.splitlines()
    row = next(line for line in lines if line.split()[:1] == ["2"])
    assert row.split()[:6] == ["2", "1.0000", "2000", "4", "4", "4"]
    assert any(line.split()[:3] == ["6", "0.0000", "0"] for line in lines)
    assert "blown up: 0 of 2000 paths" in done.stdout
    assert str(out / "result.json") in done.stdout


def test_two_point_law_without_clipping_is_the_running_mean(tmp_path, capsys):
    # a(t) = 1/(t+1) and no clipping: θ(s) = mean of y_0..y_{s−1}, y ∈ {0, 10}.
    status = cli.main(["run", "--problem", "quadratic", "--noise", "discrete", "--values", "0",
                       "10", "--probs", "0.9", "0.1", "--clip", "none", "--schedule", "1/(t+1)",
                       "--paths", "2000", "--steps", "200", "--radius", "0.5", "--quiet",
                       "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    result = json.loads((saved(tmp_path) / "result.json").read_text())
    assert result["setting"]["values"] == [0.0, 10.0]
    assert result["setting"]["probs"] == [0.9, 0.1]
    sim = load(saved(tmp_path))
    paths = sim.arrays["path"][:, :, 0]  # (8, T+1)
    s = np.arange(paths.shape[1])
    draws = np.diff(s * paths, axis=1)
    assert np.allclose(draws[np.abs(draws) < 5], 0, atol=1e-9)
    assert np.allclose(draws[np.abs(draws) >= 5], 10, atol=1e-9)
    tens = sim.arrays["endpoints"][:, 0] * STEPS / 10  # Binomial(T, 0.1) per path
    assert np.allclose(tens, np.round(tens), atol=1e-8)
    assert tens.mean() / STEPS == pytest.approx(0.1, abs=0.003)  # sd 0.0005
    # θ(1) = y_0: the paths that leave radius 0.5 at step 1 are those with y_0 = 10
    first = sim.arrays["first_exit"][:, 0]
    assert np.mean(first == 1) == pytest.approx(0.1, abs=0.035)  # 5 sd
    assert np.all((first == 1) == (sim.arrays["norm_at"][:, 1] == 10.0))


def test_adaptive_rule_grows_like_gronwall(tmp_path, capsys):
    # Adaptive clipping, λ = 1, ε = 0.5, θ(0) = 0, y ≈ 100: θ(1) = ε·a(0) = 0.5, then while
    # clipped θ(s+1) = θ(s)(1 + 1/(s+1)), so θ(s) = (s+1)/4 (all steps clipped while θ < y/2).
    steps = 120
    status = cli.main(["run", "--problem", "quadratic", "--mean", "100", "--theta0", "0",
                       "--clip", "adaptive", "--lam", "1", "--eps", "0.5", "--schedule",
                       "1/(t+1)", "--paths", "500", "--steps", str(steps), "--radius", "10",
                       "--quiet", "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    result = json.loads((saved(tmp_path) / "result.json").read_text())
    assert (result["setting"]["clip"], result["setting"]["eps"]) == ("adaptive", 0.5)
    exit_step = next(s for s in range(1, steps + 1) if (s + 1) / 4 > 10)
    assert result["radii"][0]["first_exit_step"] == {"min": exit_step, "median": exit_step,
                                                     "max": exit_step}
    assert result["summary"]["max_norm"]["max"] == pytest.approx((steps + 1) / 4, rel=1e-12)
    assert result["summary"]["max_norm"]["min"] == pytest.approx((steps + 1) / 4, rel=1e-12)
    ratios = [0.5] + [((t + 1) / 4) / (1 + (t + 1) / 4) for t in range(1, steps)]
    assert result["summary"]["claim2_ratio_max"] == pytest.approx(max(ratios), rel=1e-12)
    assert result["summary"]["claim2_ratio_max"] <= 1.0  # Claim 2: K = λ·max(1, ε)


BASE = ["run", "--problem", "quadratic", "--lam", "1", "--schedule", "1/(t+1)", "--paths", "5",
        "--steps", "5", "--quiet"]


@pytest.mark.parametrize(("args", "flag"), [
    (["--lam", "0"], "--lam"),
    (["--lam", "-2"], "--lam"),
    (["--clip", "adaptive", "--eps", "0"], "--eps"),
    (["--clip", "adaptive"], "--eps"),
    (["--eps", "1"], "--eps"),  # classic takes no ε
    (["--paths", "0"], "--paths"),
    (["--paths", "1.5"], "--paths"),
    (["--schedule", "1/t"], "--schedule"),
    (["--schedule", "1-t"], "--schedule"),
    (["--schedule", "-1"], "--schedule"),
    (["--radius", "0"], "--radius"),
    (["--radius", "-1"], "--radius"),
    (["--problem", "nope"], "--problem"),
    (["--hidden", "3"], "--hidden"),  # the quadratic has no hidden layer
    (["--data-noise", "1"], "--data-noise"),
    (["--values", "0", "10"], "--values"),  # a normal law has no atoms
    (["--noise", "discrete", "--values", "0", "10", "--probs", "0.5", "0.4"], "--probs"),
    (["--sd", "0"], "--sd"),
    (["--theta0", "1", "2"], "--theta0"),
    (["--record", "exits,nope"], "--record"),
    (["--device", "nope"], "--device"),
    (["--clip", "projection"], "--lam"),  # the projection rule takes --ball, not λ
    (["--out", "{file}/sub"], "--out"),  # a folder inside a file cannot be made
])
def test_bad_input_is_one_line_and_exit_2(args, flag, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = [a.format(file=blocker) for a in args]
    with pytest.raises(SystemExit) as stop:
        cli.main([*BASE, "--out", str(tmp_path / "out"), *args])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"python -m simulations run: error: argument {flag}"), lines[0]
    assert captured.out == ""
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out" / "runs")
                                                                .iterdir())


def test_flags_of_other_problems_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--problem", "linear-regression", "--noise", "normal", "--lam", "1",
                  "--schedule", "1", "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --noise: the linear-regression problem does not take it" in err
    assert "--data-noise" in err


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    done = run(*BASE, "--schedule", "1/t", "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "python -m simulations run: error: argument --schedule: a(0) of '1/t' is undefined, "
        "and the index starts at t = 0: did you mean 1/(t+1)?"]
    assert done.stdout == ""


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_lists_every_flag_with_its_default(capsys):
    text = _help(["run", "--help"], capsys)
    for flag in ("--problem", "--noise", "--mean", "--sd", "--df", "--values", "--probs",
                 "--eps", "--ball", "--hidden", "--n", "--data-noise", "--kind", "--curvature",
                 "--dataset", "--separable", "--no-separable", "--data-seed", "--record",
                 "--keep-paths", "--chunk-size", "--device", "--checkpoint-every", "--resume",
                 "--quiet", "--out", "--radius", "--dtype", "--batch"):
        assert flag in text, flag
    for default in ("number of paths R (default: 1000)", "(default: cpu)",
                    "(default: 1000)", "(default: float64)",
                    "(default: exits,running_max,claim2,clipped,checkpoints,paths)",
                    "(default: mlp-regression 25, mlp-classification 32)"):
        assert default in text, default
    top = _help(["--help"], capsys)
    assert "{run,rare,problems,verify}" in top and "lists every flag" in top
    verify = _help(["verify", "--help"], capsys)
    for flag in ("--suite", "--scenario", "--claims", "--full", "--json", "--out", "--resume",
                 "--check"):
        assert flag in verify, flag


def test_problems_lists_the_catalog(capsys):
    from simulations.engine.problems import PROBLEMS

    assert cli.main(["problems"]) == 0
    out = capsys.readouterr().out
    for name in PROBLEMS:
        assert re.search(rf"^{re.escape(name)} +\S", out, re.M), name
    assert "--length 50" in out and "--data-noise 0.1" in out


def test_every_problem_parameter_has_a_flag(capsys):
    from simulations.engine.problems import PROBLEMS, problem_params

    text = _help(["run", "--help"], capsys)
    for name in PROBLEMS:
        for param in problem_params(name):
            assert "--" + param.name.replace("_", "-") in text, (name, param.name)


def _numbers(out):
    result = json.loads((saved(out) / "result.json").read_text())
    for key in ("created", "command", "git_revision", "sha256"):  # the SHA-256 covers them
        result.pop(key)
    return result


def test_ctrl_c_then_resume_gives_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
    args = ["run", "--problem", "quadratic", "--mean", "1", "--sd", "2", "--dim", "2",
            "--clip", "classic", "--lam", "0.5", "--schedule", "1/(t+1)^0.6", "--paths", "600",
            "--steps", "200", "--chunk-size", "300", "--checkpoint-every", "50",
            "--radius", "1", "--radius", "3", "--quiet"]
    assert cli.main([*args, "--out", str(tmp_path / "straight")]) == 0
    capsys.readouterr()

    original = engine._atomic_save
    saves = []

    def interrupt_in_the_second_chunk(obj, path):
        original(obj, path)
        saves.append(obj["partial"]["t"] if obj["partial"] else None)
        if obj["partial"] is not None and len(obj["done"]) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_atomic_save", interrupt_in_the_second_chunk)
    out = tmp_path / "stopped"
    assert cli.main([*args, "--out", str(out)]) == 130
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    (checkpoint,) = (out / "checkpoints").iterdir()
    assert str(checkpoint) in lines[0] and "--resume" in lines[0]
    assert (checkpoint / "state.pt").exists()
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())
    assert saves == [50, 100, 150, None, 50]  # chunk 1 whole, chunk 2 up to step 50

    monkeypatch.setattr(engine, "_atomic_save", original)
    assert cli.main([*args, "--out", str(out), "--resume"]) == 0
    assert _numbers(out) == _numbers(tmp_path / "straight")
    resumed, straight = load(saved(out)), load(saved(tmp_path / "straight"))
    assert saved(out).name == saved(tmp_path / "straight").name == resumed.run.key()
    assert resumed.arrays.keys() == straight.arrays.keys()
    for key in straight.arrays:
        np.testing.assert_array_equal(resumed.arrays[key], straight.arrays[key], err_msg=key)
    assert not checkpoint.exists()


def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    args = [*BASE, "--paths", "40", "--steps", "60", "--chunk-size", "20",
            "--checkpoint-every", "10", "--out", str(tmp_path)]
    original = engine._atomic_save

    def interrupt(obj, path):
        original(obj, path)
        if obj["partial"] is not None and obj["partial"]["t"] == 30:
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_atomic_save", interrupt)
    assert cli.main(args) == 130
    monkeypatch.undo()
    (state,) = (tmp_path / "checkpoints").glob("*/state.pt")
    state.write_bytes(state.read_bytes()[:100])  # truncated
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli.main([*args, "--resume"])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "argument --resume: the checkpoint" in lines[0], lines
    assert "damaged" in lines[0]
    assert cli.main(args) == 0  # without --resume: computed afresh


def test_resume_reuses_a_saved_run_and_recomputes_a_damaged_one(tmp_path, capsys):
    args = [*BASE, "--out", str(tmp_path)]
    assert cli.main(args) == 0
    unit = saved(tmp_path)
    stamp = (unit / "result.json").stat().st_mtime_ns
    assert cli.main([*args, "--resume"]) == 0
    assert (unit / "result.json").stat().st_mtime_ns == stamp  # loaded, not run
    assert "reusing" in capsys.readouterr().err
    data = (unit / "arrays.npz").read_bytes()
    (unit / "arrays.npz").write_bytes(data[: len(data) // 3])  # truncated
    assert cli.main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "not a complete saved run" in err and "Traceback" not in err
    assert load(unit).paths == 5  # saved again, readable


def test_a_full_disk_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch, capsys):
    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results, "_write_file", full)
    with pytest.raises(SystemExit) as stop:
        cli.main([*BASE, "--out", str(tmp_path)])
    assert stop.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"python -m simulations run: error: cannot write into {tmp_path}: "
                     "No space left on device"]
    assert [p for p in (tmp_path / "runs").rglob("*")] == []  # no temporary folder or file


@pytest.mark.parametrize("args, flag, need", [
    (["--paths", "1e12"], "--paths", "TiB"),  # R·(P + observers) numbers: terabytes
    (["--paths", "1e6", "--keep-paths", "1e6", "--steps", "1e6"], "--keep-paths", "TiB"),
])
def test_huge_runs_are_refused_up_front_with_the_memory_they_need(args, flag, need, tmp_path,
                                                                  capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*BASE, "--out", str(tmp_path), *args])
    assert stop.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"python -m simulations run: error: argument {flag}: this run's "
                           "arrays") and "would need about" in line
    assert need in line and "\n" not in line


def test_runs_with_one_out_never_overwrite_each_other(tmp_path):
    for seed in ("1", "2"):
        assert cli.main([*BASE, "--seed", seed, "--out", str(tmp_path)]) == 0
    units = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert len(units) == 2
    assert sorted(load(u).setting["seed"] for u in units) == [1, 2]


# ---- declared parameters, names, --claims ------------------------------------------------------

def test_data_noise_and_ball_are_the_names_everywhere(tmp_path, capsys):
    args = ["run", "--problem", "linear-regression", "--n", "20", "--dim", "2",
            "--data-noise", "0.5", "--clip", "projection", "--ball", "0.25", "--schedule", "0.1",
            "--paths", "3", "--steps", "4", "--quiet", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("linear-regression, projection onto the ball ‖θ‖ ≤ "
                                          "0.25, a(t) = 0.1: 3 paths × 4 steps")
    sim = load(saved(tmp_path))
    assert sim.setting["data_noise"] == 0.5 and "noise" not in sim.setting
    assert (sim.setting["clip"], sim.setting["ball"]) == ("projection", 0.25)
    assert sim.run.to_dict()["clip"] == {"rule": "projection", "ball": 0.25}
    # every iterate stays in the ball ‖θ‖ ≤ 0.25 (θ(0) = 0 is inside)
    assert np.all(sim.arrays["max_norm"] <= 0.25 * (1 + 1e-12))


def test_a_law_parameter_of_another_law_names_its_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*BASE, "--noise", "point", "--sd", "2", "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["python -m simulations run: error: argument --sd: the point law does not take "
                   "it (only normal, student-t)"]


CLAIM = '''
import numpy as np

ID = "tmp-cli-max"
STATEMENT = "max_s ‖θ(s)‖ ≤ 2 on every path"
OBSERVERS = ("running_max",)


def check(ctx):
    worst = float(np.max(ctx.sim.arrays["max_norm"]))
    return [ctx.row(prediction="<= 2", measurement=f"{worst:.6g}", interval=None,
                    verdict="holds" if worst <= 2 else "violated", reason="",
                    measurement_value=worst)]
'''

SCENARIO = '''
name = "walk-to-five"
claims = ["L1-det"]

[problem]
name = "quadratic"
noise = "point"
mean = 5
theta0 = 0

[clip]
rule = "classic"
lam = 1

[run]
schedule = "1/(t+1)"
paths = 4
steps = 4
'''


@pytest.fixture
def claim_and_scenario(tmp_path, monkeypatch):
    from simulations.verify import claims

    (tmp_path / "my_claim.py").write_text(CLAIM, encoding="utf-8")
    (tmp_path / "walk.toml").write_text(SCENARIO, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    claims.unregister("tmp-cli-max")


def test_claims_takes_a_file_and_checks_it_on_scenarios_that_do_not_list_it(
        claim_and_scenario, capsys):
    tmp = claim_and_scenario
    assert cli.main(["verify", "--scenario", str(tmp / "walk.toml"), "--claims",
                     "./my_claim.py,L1-det", "--json", "--quiet", "--out", str(tmp / "v")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["claim"] for r in rows] == ["tmp-cli-max", "L1-det"]
    # every step is clipped (|5 − θ| > λ = 1 until θ = 25/12): θ(4) = 1 + 1/2 + 1/3 + 1/4
    assert rows[0]["measurement_value"] == pytest.approx(25 / 12, rel=1e-12)
    assert rows[0]["verdict"] == "violated"


@pytest.mark.parametrize("name", ["nope", "./missing.py", "no_such_pkg.claim"])
def test_claims_that_do_not_resolve_are_one_line_naming_the_flag(name, claim_and_scenario,
                                                                 capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["verify", "--scenario", "walk.toml", "--claims", name])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "python -m simulations verify: error: argument --claims: "), lines


def test_claims_that_apply_to_no_scenario_are_refused(claim_and_scenario, capsys):
    # C2 is stated for adaptive clipping; the scenario clips classically
    with pytest.raises(SystemExit) as stop:
        cli.main(["verify", "--scenario", "walk.toml", "--claims", "C2", "--quiet"])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["python -m simulations verify: error: argument --claims: none of C2 applies "
                     "to any of the scenarios"]
