"""The paper suite end to end through the command line (quick size, as README shows it), the
scenario format, and the report files.

The suite's verdicts are held to the [expect] tables of its TOML files, which state
SCIENCE.md's status column: L1-paper violated on the far minimiser, L1-det, C2 and C2-growth
holding on every path, A3 failing on the blow-up scenarios, T1's endpoints on the zero of H and
not on the minimiser of E[ℓ] for the skewed law, T1 not applying where H has no zero and the
iterates are unbounded (its hypothesis fails).
"""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from simulations.verify.scenarios import load_scenario, load_suite
from theory.walk import walk_probability

KEYS = {"scenario", "claim", "prediction", "measurement", "interval", "verdict", "reason"}


def _verify(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "simulations", "verify", "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify")
    return out, _verify("--check", "--json", "--out", str(out))


def test_quick_suite_gives_the_expected_verdicts(quick):
    out, done = quick
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert rows and all(KEYS <= set(r) for r in rows)
    suite = load_suite("paper")
    assert {r["scenario"] for r in rows} == {sc.name for sc in suite}
    by = {(r["scenario"], r["claim"]): r for r in rows}
    # the headline findings, stated once more here by name
    assert by[("far-minimiser", "L1-paper")]["verdict"] == "violated"
    assert by[("stiff-adaptive", "A3")]["verdict"] == "violated"
    assert by[("stiff-classic", "A3")]["verdict"] == "holds"
    separable = by[("logistic-separable", "T1")]
    assert separable["verdict"] == "does not apply"
    assert separable["details"]["growth"]["grows"] and "Theorem 1 assumes" in separable["reason"]
    skew = by[("skewed-huber", "T1")]
    assert skew["verdict"] == "holds"
    assert skew["details"]["zeros"] == pytest.approx([1 / 9], abs=1e-9)
    assert skew["details"]["z_minimiser"] > 100  # far from E[y] = 1
    assert abs(skew["details"]["mean_endpoint"][0] - 1 / 9) < 1e-3
    # the ±1 walk's rows are decided by AMS, against the binomial tail and the walk's DP
    walk = [r for r in rows if r["scenario"] == "saturated-walk"]
    l1 = next(r for r in walk if r["claim"] == "L1-paper" and r["details"]["form"] == "14")
    a3 = next(r for r in walk if r["claim"] == "A3")
    endpoint = 2 * sum(math.comb(40, k) for k in range(36, 41)) / 2**40  # P(|S_40| ≥ 32)
    assert l1["verdict"] == "violated" and l1["details"]["estimator"] == "ams"
    assert l1["interval"][0] <= endpoint <= l1["interval"][1]
    assert a3["verdict"] == "holds" and a3["details"]["estimator"] == "ams"
    assert a3["interval"][0] <= float(walk_probability(40, 32)) <= a3["interval"][1]
    for sc in suite:
        for claim in sc.claims:
            assert (sc.name, claim) in by, (sc.name, claim)
    # every claim of SCIENCE.md's table is exercised by the suite
    assert {r["claim"] for r in rows} >= {"L1-paper", "L1-det", "L1-mart", "C2", "C2-growth",
                                          "A3", "L2", "L3", "T1", "ODE"}


def test_paper_numbers_row(quick):
    rows = json.loads(quick[1].stdout)
    row = next(r for r in rows if r["scenario"] == "paper-numbers" and r["claim"] == "L1-paper")
    # 2M²/(γλ²) = 2·2²⁰/(π²/6·900) and log10(2) − that/ln 10, by hand
    exponent = 2 * 2**20 / (3.141592653589793**2 / 6 * 900)
    assert row["details"]["exponent"] == pytest.approx(exponent, rel=1e-12)
    assert row["prediction_value"] == pytest.approx(0.30102999566 - exponent / 2.302585092994046,
                                                    rel=1e-10)
    assert row["verdict"] == "vacuous"


def test_report_files(quick):
    out, done = quick
    md = (out / "report.md").read_text(encoding="utf-8")
    tex = (out / "report.tex").read_text(encoding="utf-8")
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved == json.loads(done.stdout)
    assert md.count("\n") == len(saved) + 2 and "| skewed-huber | T1 |" in md
    assert tex.count(r" \\") >= len(saved) + 1 and r"\begin{tabularx}" in tex
    index = json.loads((out / "runs" / "index.json").read_text(encoding="utf-8"))
    from simulations.verify.runner import run_of

    for sc in load_suite("paper"):
        key = run_of(sc).key()
        assert index[key] == [sc.name]
        saved = json.loads((out / "runs" / key / "result.json").read_text(encoding="utf-8"))
        assert saved["key"] == key and saved["scenario"]["name"] == sc.name


def test_resume_reuses_the_saved_runs_and_prints_the_table(quick):
    out, first = quick
    done = _verify("--resume", "--out", str(out), "--claims", "L1-paper,A3")
    assert done.returncode == 0, done.stderr
    assert "far-minimiser" in done.stdout and "violated" in done.stdout
    assert "└" in done.stdout and "T1" not in done.stdout


def test_a_user_scenario_and_bad_input(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("""
claims = ["T1", "L1-det"]
[problem]
name = "quadratic"
noise = "discrete"
values = [0.0, 1.0, 10.0]
probs = [0.5, 0.3, 0.2]
[clip]
rule = "classic"
lam = 2.0
[run]
schedule = "5/(t+5)"
paths = 256
steps = 2000
[expect]
T1 = "holds"
L1-det = "holds"
""", encoding="utf-8")
    sc = load_scenario(path)
    assert sc.name == "mine" and sc.problem["values"] == [0.0, 1.0, 10.0]
    done = _verify("--scenario", str(path), "--out", str(tmp_path / "o"), "--check", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["claim"] for r in rows] == ["T1", "L1-det"]
    # H = 0.5·clamp(θ, ±2) + 0.3·clamp(θ − 1, ±2) + 0.2·clamp(θ − 10, ±2), by hand: on
    # [−1, 2] only the last is clipped, 0.5θ + 0.3(θ − 1) − 0.4 = 0 at θ = 0.875 (E[y] = 2.3)
    assert rows[0]["details"]["zeros"] == pytest.approx([0.875], abs=1e-9)
    assert rows[0]["details"]["minimiser"] == pytest.approx([2.3])
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace('rule = "classic"', 'rule = "adaptive"\neps = 1.0'))
    done = _verify("--scenario", str(bad), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "L1-det: stated for classic" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    bad.write_text(path.read_text().replace("paths = 256", "paths = 256\nwalkers = 3"))
    done = _verify("--scenario", str(bad), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "run.walkers: unknown key" in done.stderr
    done = _verify("--claims", "T9", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "T9" in done.stderr


@pytest.mark.parametrize("text,message", [
    ('claims = ["T1"]\n[problem]\nname = "nope"\n[clip]\nrule = "classic"\nlam = 1.0\n'
     '[run]\nschedule = "1/(t+1)"\npaths = 1\nsteps = 1\n', "problem.name"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\nlam = -1.0\n'
     '[run]\nschedule = "1/(t+1)"\npaths = 1\nsteps = 1\n', "clip.lam: expected a number > 0"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\nnoise = "discrete"\nvalues = [1.0]\n'
     'probs = [0.5]\n[clip]\nrule = "classic"\nlam = 1.0\n'
     '[run]\nschedule = "1/(t+1)"\npaths = 1\nsteps = 1\n', "problem.probs: must"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\nlam = 1.0\n'
     '[run]\nschedule = "1/(t+1)"\npaths = "10"\nsteps = 1\n', "run.paths: expected an integer"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\nlam = 1.0\n'
     '[run]\nschedule = "1/(t+1)"\npaths = 2\nsteps = 1\n[full]\nsteps = 1.5\n',
     "full.steps: expected an integer"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\nsd = "wide"\n[clip]\nrule = "classic"\n'
     'lam = 1.0\n[run]\nschedule = "1/(t+1)"\npaths = 2\nsteps = 1\n', "problem"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\nlam = 1.0\n'
     '[run]\nschedule = "1/t"\npaths = 1\nsteps = 1\n', "1/(t+1)"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\nlam = 1.0\n'
     '[run]\nschedule = "1/(t+1)"\npaths = 0\nsteps = 1\n', "run.paths"),
    ('claims = ["T1"]\n[problem]\nname = "quadratic"\n[clip]\nrule = "classic"\nlam = 1.0\n'
     '[run]\nschedule = "1/(t+1)"\npaths = 1\nsteps = 1\n[expect]\nT1 = "fine"\n', "expect.T1"),
    ('claims = [T1', "not valid TOML"),
])
def test_bad_scenarios_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_scenario(path)


def _tiny(name="tiny", **run):
    from simulations.verify.scenarios import scenario_from_dict

    return scenario_from_dict({
        "name": name, "claims": ["L3"],
        "problem": {"name": "quadratic", "noise": "discrete", "values": [0.0, 3.0],
                    "probs": [0.5, 0.5]},
        "clip": {"rule": "classic", "lam": 1.0},
        "run": {"schedule": "1/(t+1)", "paths": 8, "steps": 32, "xi_paths": 4, **run}})


def test_resume_loads_only_a_run_of_the_same_scenario(tmp_path):
    from dataclasses import replace

    from simulations.verify.runner import run_of, run_scenario

    sc = _tiny()
    first = run_scenario(sc, out=tmp_path, progress=False)
    result = tmp_path / "runs" / run_of(sc).key() / "result.json"
    stamp = result.stat().st_mtime_ns
    again = run_scenario(sc, out=tmp_path, resume=True, progress=False)
    assert result.stat().st_mtime_ns == stamp  # loaded, not run
    assert (again.arrays["xi_max"] == first.arrays["xi_max"]).all()
    changed_sc = replace(sc, run=sc.run.replace(xi_paths=8))
    changed = run_scenario(changed_sc, out=tmp_path, resume=True, progress=False)
    assert len(changed.arrays["xi_max"]) == 8
    assert result.stat().st_mtime_ns == stamp  # another key, another folder
    assert (tmp_path / "runs" / run_of(changed_sc).key() / "result.json").exists()


def test_resume_with_fewer_claims_reuses_the_scenarios_whole_run(tmp_path):
    from dataclasses import replace

    from simulations.verify.runner import run_of, run_scenario

    sc = replace(_tiny(), claims=("L3", "L1-det"))
    sc = replace(sc, run=run_of(sc))  # the run for both claims
    whole = run_scenario(sc, out=tmp_path, progress=False)
    assert set(run_of(sc, ["L1-det"]).record) < set(sc.run.record)
    part = run_scenario(sc, ["L1-det"], out=tmp_path, resume=True, progress=False)
    assert part.run == sc.run and "xi_max" in part.arrays  # loaded: the superset
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()] == [sc.run.key()]
    np.testing.assert_array_equal(part.arrays["max_deviation"], whole.arrays["max_deviation"])
    fresh = run_scenario(sc, ["L1-det"], out=tmp_path, progress=False)  # without --resume
    assert fresh.run == run_of(sc, ["L1-det"]) and "xi_max" not in fresh.arrays


def test_scenario_names_never_become_paths_and_never_collide(tmp_path):
    """A name like ../../etc stays out of the paths; two scenarios with one name but
    different settings are saved side by side (and reloaded each as its own)."""
    from simulations.verify.runner import run_of, run_scenario

    out = tmp_path / "out"
    evil, other = _tiny("../../etc"), _tiny("../../etc", seed=1)
    a = run_scenario(evil, out=out, progress=False)
    b = run_scenario(other, out=out, progress=False)
    inside = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert all(p.parts[0] == "out" for p in inside)  # nothing written outside --out
    units = sorted(p.name for p in (out / "runs").iterdir() if p.is_dir())
    assert units == sorted([run_of(evil).key(), run_of(other).key()])
    index = json.loads((out / "runs" / "index.json").read_text(encoding="utf-8"))
    assert index == {run_of(evil).key(): ["../../etc"], run_of(other).key(): ["../../etc"]}
    again_a = run_scenario(evil, out=out, resume=True, progress=False)
    again_b = run_scenario(other, out=out, resume=True, progress=False)
    assert (again_a.arrays["xi_max"] == a.arrays["xi_max"]).all()
    assert (again_b.arrays["xi_max"] == b.arrays["xi_max"]).all()
    assert not (a.arrays["xi_max"] == b.arrays["xi_max"]).all()  # seeds 0 and 1 differ


def test_progress_lines_on_stderr_when_not_a_terminal(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('claims = ["L1-det"]\n[problem]\nname = "quadratic"\n[clip]\n'
                    'rule = "classic"\nlam = 1.0\n[run]\nschedule = "1/(t+1)"\npaths = 16\n'
                    'steps = 20\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "simulations", "verify", "--scenario",
                           str(path), "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"scenario 1/1 mine: \d+\.\d s, about 0 s left",
                        done.stderr.strip()), done.stderr
    quiet = _verify("--scenario", str(path), "--out", str(tmp_path / "o"))
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_probability_rows_hold_only_when_the_interval_resolves_the_bound(quick):
    """Every probability row that holds has its 95% upper limit at or below the bound; the rows
    that 0 exits cannot resolve (mlp-tanh at M = 10: 0 of 1024 against 10^−345) are
    inconclusive."""
    rows = json.loads(quick[1].stdout)
    for r in rows:
        if r["claim"] in ("L1-paper", "L1-mart") and r["verdict"] == "holds":
            assert math.log10(r["interval"][1]) <= r["details"]["log10_bound"], r
    mlp = [r for r in rows if r["scenario"] == "mlp-tanh" and r["claim"] == "L1-paper"]
    # (15) and (14) per radius; 10^−345 is below the floor of AMS, so it is not tried
    assert [r["verdict"] for r in mlp] == ["violated", "violated", "inconclusive", "inconclusive"]
    assert [r["details"]["form"] for r in mlp] == ["15", "14", "15", "14"]
    assert mlp[2]["details"]["exits"] == 0 and mlp[2]["interval"][1] > 1e-3
    assert mlp[2]["details"]["estimator"] == "monte carlo"
    # the tightness bound/estimate, where the estimate is not 0
    for r in rows:
        if r["claim"] in ("L1-paper", "L1-mart") and r["measurement_value"]:
            assert r["details"]["log10_tightness"] == pytest.approx(
                r["details"]["log10_bound"] - math.log10(r["measurement_value"]), rel=1e-12)


WALK_SCENARIO = """
name = "walk"
claims = ["A3"]
[problem]
name = "quadratic"
noise = "discrete"
values = [-1000.0, 1000.0]
probs = [0.5, 0.5]
theta0 = 0.0
[clip]
rule = "classic"
lam = 1.0
[run]
schedule = "1"
paths = 32
steps = 40
seed = 3
[radii]
blowup = 31.5
[options]
a3_delta = 1e-5
rare_particles = 40
rare_replicas = 6
"""


def test_resume_reuses_the_saved_ams_estimates(tmp_path, monkeypatch, capsys):
    """The ±1 walk's A3 row is decided by AMS: the first verify computes the estimate and keeps
    it in the store (kind ams, with its chain, splitting and provenance), a second one with
    --resume takes it from there without running AMS (the splitting's runner is counted) and
    gives the same row; without --resume it is computed again."""
    from simulations.engine import rare
    from simulations.engine.spec import Chain
    from simulations.engine.store import rare_key
    from simulations.verify import cli

    path = tmp_path / "walk.toml"
    path.write_text(WALK_SCENARIO, encoding="utf-8")
    calls = []
    real = rare._run
    monkeypatch.setattr(rare, "_run", lambda *args: calls.append(1) or real(*args))
    out = tmp_path / "out"
    args = ["verify", "--quiet", "--json", "--scenario", str(path), "--out", str(out)]

    def rows(*more):
        assert cli.main([*args, *more]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert row["details"]["estimator"] == "ams"
        return row

    first = rows()
    computed = len(calls)
    assert computed > 0
    saved = [json.loads(p.read_text(encoding="utf-8"))
             for p in (out / "runs").glob("*/result.json")]
    (entry,) = [e for e in saved if e.get("kind") == "ams"]
    chain = Chain.from_dict(entry["chain"])
    assert chain == load_scenario(path).run.chain
    splitting = rare.Splitting.from_dict(entry["splitting"])
    assert (splitting.event, splitting.particles) == ("blowup", 40)
    assert splitting.level == pytest.approx(31.5)  # just above the radius: "> R"
    assert entry["key"] == rare_key(chain, splitting)
    assert (out / "runs" / entry["key"] / "arrays.npz").exists()
    for key in ("package_version", "git_revision", "created", "torch_version", "device"):
        assert key in entry
    again = rows("--resume")
    assert len(calls) == computed  # no AMS estimate computed
    assert again["details"]["rare"] == first["details"]["rare"]
    assert again["interval"] == first["interval"] and again["verdict"] == first["verdict"]
    rows()
    assert len(calls) == 2 * computed  # without --resume: computed again
