"""Claims of the user's own: the worked example of README (examples/my_bounds.toml with the
claim module examples/xi_second_moment.py and two [[bound]] formulas) run through the command
line, its numbers held against hand computations; the formula parser refusing anything but a
formula; a claim module named by its dotted import path."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from simulations.verify import claims
from simulations.verify.claims.bound import log10_bound, parse_expression
from simulations.verify.scenarios import load_scenario, scenario_from_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _verify(*args):
    return subprocess.run([sys.executable, "-m", "simulations", "verify", "--quiet", *args],
                          capture_output=True, text=True, timeout=600)


def test_the_readme_example_runs_with_the_expected_verdicts(tmp_path):
    done = _verify("--scenario", str(EXAMPLES / "my_bounds.toml"), "--check", "--json",
                   "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert [(r["claim"], r["verdict"]) for r in rows] == [
        ("L1-det", "holds"), ("xi-second-moment", "holds"), ("paper-exit", "violated"),
        ("pinelis-xi", "holds"), ("pinelis-xi", "inconclusive")]
    by = {(r["claim"], r["details"].get("radius")): r for r in rows}
    # γ = π²/6 and γ_T = Σ_{t<500} 1/(t+1)², by hand
    gamma, gamma_t = math.pi**2 / 6, math.fsum(1 / (t + 1) ** 2 for t in range(500))
    paper = by[("paper-exit", 2.0)]
    assert paper["prediction_value"] == pytest.approx(
        math.log10(2) - 2 * 4 / gamma / math.log(10), rel=1e-12)
    assert paper["details"]["exits"] == 1000  # every path moves > 2 towards the zero near 5
    for r in (8.0, 12.0):
        assert by[("pinelis-xi", r)]["prediction_value"] == pytest.approx(
            math.log10(2) - r**2 / (8 * gamma_t) / math.log(10), rel=1e-12)
    moment = by[("xi-second-moment", None)]
    assert moment["prediction_value"] == pytest.approx(4 * gamma_t, rel=1e-12)
    assert moment["interval"][1] < moment["prediction_value"]


def test_the_example_scenario_names_its_claims_by_file_and_by_formula():
    sc = load_scenario(EXAMPLES / "my_bounds.toml")
    assert sc.claims == ("L1-det", "xi-second-moment", "paper-exit", "pinelis-xi")
    assert claims.get("xi-second-moment").source == str(EXAMPLES / "xi_second_moment.py")
    assert claims.observers_for(sc.claims) == ("exits", "running_max", "checkpoints", "xi")


@pytest.mark.parametrize("text,message", [
    ("__import__('os').system('true')", "__"),
    ("lam.real", "'.' is not allowed"),
    ("lam[0]", "is not allowed"),
    ("x + 1", "unknown symbol"),
    ("open('f')", "is not allowed"),
    ("(lambda: 1)()", "is not allowed"),
    ("lambda: 1", "is not allowed"),
    ("'a' + lam", "is not allowed"),
    ("exp(lam)(2)", "only the functions exp"),
    ("M >", "'>' is not allowed"),
    ("[lam for lam in (1,)]", "is not allowed"),
])
def test_the_parser_refuses_anything_but_a_formula(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_expression(text)


def test_bounds_are_evaluated_in_log_space():
    """The paper's example: 2e^{−2M²/(γλ²)} with λ = 30, M = 2¹⁰, γ = π²/6 is 10^−614.9087
    (SCIENCE.md), far below the smallest float64; ^ is a power."""
    expr = parse_expression("2*exp(-2*M^2/(gamma*lam**2))")
    got = log10_bound(expr, {"M": 2.0**10, "lam": 30.0, "gamma": math.pi**2 / 6})
    assert got == pytest.approx(math.log10(2) - 2 * 2**20 / (math.pi**2 / 6 * 900)
                                / math.log(10), rel=1e-13)
    assert got == pytest.approx(-614.9087, abs=5e-5)
    assert log10_bound(parse_expression("Min(1, 0*lam)"), {"lam": 1.0}) == -math.inf
    with pytest.raises(ValueError, match="needs eps"):
        log10_bound(parse_expression("eps*lam"), {"lam": 1.0})


def test_a_claim_module_named_by_import_path(tmp_path, monkeypatch):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "my_claim.py").write_text(
        (EXAMPLES / "xi_second_moment.py").read_text(encoding="utf-8")
        .replace('ID = "xi-second-moment"', 'ID = "my-moment"'), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        sc = scenario_from_dict({
            "name": "dotted", "claims": ["T1", "mypkg.my_claim"],
            "problem": {"name": "quadratic", "noise": "normal", "mean": 1.0, "sd": 1.0},
            "clip": {"rule": "classic", "lam": 1.0},
            "run": {"schedule": "1/(t+1)", "paths": 4, "steps": 4},
            "options": {"xi_moment_factor": 1.0}, "expect": {"mypkg.my_claim": "holds"}})
        assert sc.claims == ("T1", "my-moment") and sc.expect == {"my-moment": ("holds",)}
        with pytest.raises(ValueError, match="cannot import"):
            scenario_from_dict({"claims": ["mypkg.nothing_here"], "problem": sc.problem,
                                "clip": sc.clip, "run": {"schedule": "1/(t+1)", "paths": 1,
                                                         "steps": 1}, "name": "x"})
    finally:
        claims.unregister("my-moment")


def test_a_bad_bound_is_one_line_on_stderr(tmp_path):
    text = (EXAMPLES / "my_bounds.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('claims = ["L1-det", "./xi_second_moment.py"]',
                                'claims = ["L1-det"]')
                   .replace('"2*exp(-r**2/(8*lam**2*sum_a2))"', '"__import__(\'os\')"'),
                   encoding="utf-8")
    done = _verify("--scenario", str(bad), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "bound[1].expression" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_blowup_bound_on_constructed_paths():
    """P(max_s‖θ(s)‖ > M) ≤ 10⁻³ for classic clipping, 8 steps of 1/(t+1) (λΣa = 2.718): at
    M = 1 with every path at 2 it is violated; at M = 100 no path can get there (vacuous)."""
    import numpy as np

    from simulations.engine.simulation import Simulation

    data = {"name": "blow", "claims": [], "bound": [
        {"name": "tmp-blow", "event": "blowup", "expression": "1e-3", "radius": [1.0, 100.0]}],
        "problem": {"name": "quadratic", "noise": "point", "mean": 0.0},
        "clip": {"rule": "classic", "lam": 1.0},
        "run": {"schedule": "1/(t+1)", "paths": 400, "steps": 8}}
    try:
        sc = scenario_from_dict(data)
        sim = Simulation({"paths": 400, "steps": 8}, {"max_norm": np.full(400, 2.0)})
        rows = claims.evaluate(sc, sim)
        assert [r.verdict for r in rows] == ["violated", "vacuous"]
        assert rows[0].details["exits"] == 400 and rows[0].prediction_value == -3.0
        with pytest.raises(ValueError, match="uses eps"):
            scenario_from_dict({**data, "bound": [{**data["bound"][0], "expression": "eps",
                                                   "name": "tmp-eps"}]})
        # the same id with another formula is refused, not silently replaced
        with pytest.raises(ValueError, match="already defined"):
            scenario_from_dict({**data, "bound": [{**data["bound"][0], "expression": "0.5"}]})
    finally:
        claims.unregister("tmp-blow")
        claims.unregister("tmp-eps")


def _cosine_scenario(expression: str, name: str) -> dict:
    return {"name": name, "claims": ["L1-det"],
            "problem": {"name": "quadratic", "noise": "normal", "mean": 5.0, "sd": 1.0},
            "clip": {"rule": "classic", "lam": 1.0},
            "run": {"schedule": "0.05*(1+cos(pi*t/T))", "paths": 64, "steps": 50},
            "radii": {"exit": [0.5]},
            "bound": [{"name": name, "event": "exit", "expression": expression}]}


def test_a_bound_on_a_cosine_schedule_uses_the_horizon_sums_and_refuses_gamma():
    """Cosine decay is defined for t < T only, so γ = Σ_{t≥0} a(t)² does not exist: a formula
    with gamma is refused at load time in one line; one with sum_a2 = Σ_{t<T} a(t)² runs, and
    its value is the formula evaluated on the sums written out here."""
    from simulations.verify.runner import run_scenario

    with pytest.raises(ValueError, match="gamma") as error:
        scenario_from_dict(_cosine_scenario("2*exp(-2*M**2/(gamma*lam**2))", "cos-gamma"))
    assert "\n" not in str(error.value)
    try:
        sc = scenario_from_dict(_cosine_scenario("2*exp(-2*M**2/(sum_a2*lam**2))", "cos-t"))
        rows = claims.evaluate(sc, run_scenario(sc, progress=False))
    finally:
        claims.registry.unregister("cos-t")
    sum_a2 = math.fsum((0.05 * (1 + math.cos(math.pi * t / 50))) ** 2 for t in range(50))
    row = next(r for r in rows if r.claim == "cos-t")
    assert row.prediction_value == pytest.approx(
        math.log10(2) - 2 * 0.25 / sum_a2 / math.log(10), rel=1e-12)


SCENARIO = ('name = "tiny"\nclaims = ["L1-det"]\n[problem]\nname = "quadratic"\n'
            '[clip]\nrule = "classic"\nlam = 1.0\n[run]\nschedule = "1"\npaths = 4\nsteps = 3\n')


@pytest.mark.parametrize(("source", "words"), [
    ("garbage(\n", ["claim file", "SyntaxError", "bad.py:1"]),
    ('raise RuntimeError("no data")\n', ["claim file", "RuntimeError: no data", "bad.py:1"]),
    ('ID = "tmp-boom"\nSTATEMENT = "s"\n\n\ndef check(ctx):\n    return 1 / 0\n',
     ["claim 'tmp-boom'", "failed on scenario 'tiny'", "ZeroDivisionError", "bad.py:6"]),
])
def test_a_broken_claim_file_is_one_line_naming_the_error_and_its_line(tmp_path, source, words):
    (tmp_path / "bad.py").write_text(source, encoding="utf-8")
    (tmp_path / "tiny.toml").write_text(SCENARIO, encoding="utf-8")
    done = _verify("--scenario", str(tmp_path / "tiny.toml"), "--claims",
                   str(tmp_path / "bad.py"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and all(w in line for w in words), line


@pytest.mark.parametrize(("expression", "reason"), [
    ("1e400", "beyond 10^±308"), ("Max(M,1e999)", "beyond 10^±308"),
    ("exp(1,2)", "exp takes 1 argument(s), got 2"), ("log(0)", "logarithm of 0"),
    ("1/0", "division by zero"), ("sqrt(1-M)", "complex"), ("exp(exp(M))", "overflow"),
])
def test_a_bound_that_cannot_be_evaluated_is_refused_when_the_file_is_read(tmp_path, expression,
                                                                            reason):
    """Before any path runs: one line naming the file, the bound and the reason (these were a
    traceback after the whole run, or accepted as "vacuous")."""
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO + f'[[bound]]\nname = "tmp-bad"\nevent = "exit"\nradius = [1.0]\n'
                               f'expression = "{expression}"\n', encoding="utf-8")
    try:
        with pytest.raises(ValueError) as error:
            load_scenario(path)
    finally:
        claims.unregister("tmp-bad")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: bound[0].expression: ")
    assert "'tmp-bad'" in message and reason in message, message


def test_a_bound_above_one_is_shown_as_a_power_of_ten():
    """A bound of 1e300 (vacuous) is 10^300 in the row, not an OverflowError of 10**lg."""
    import numpy as np

    from simulations.engine.simulation import Simulation

    data = {"name": "big", "claims": [], "problem": {"name": "quadratic", "noise": "point"},
            "clip": {"rule": "classic", "lam": 1.0}, "run": {"schedule": "1", "paths": 4,
                                                              "steps": 3},
            "bound": [{"name": "tmp-big", "event": "blowup", "expression": "1e300*M**10",
                       "radius": [10.0]}]}
    try:
        sc = scenario_from_dict(data)
        (row,) = claims.evaluate(sc, Simulation({"paths": 4, "steps": 3},
                                                {"max_norm": np.zeros(4)}))
    finally:
        claims.unregister("tmp-big")
    assert row.prediction_value == pytest.approx(310.0) and row.prediction == "P ≤ 10^310"


def test_the_claim_template_runs_as_a_claim(tmp_path):
    """examples/claim_template.py (Lemma 1's deterministic bound, as a worked template) through
    verify: its prediction is λΣ_{t<T} a(t) = H_500 by hand, and the paths keep to it."""
    done = _verify("--scenario", str(EXAMPLES / "my_bounds.toml"), "--claims",
                   str(EXAMPLES / "claim_template.py"), "--json", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = [r for r in json.loads(done.stdout) if r["claim"] == "my-claim"]
    assert row["prediction_value"] == pytest.approx(
        math.fsum(1 / (t + 1) for t in range(500)), rel=1e-12)
    assert row["verdict"] == "holds" and 2.0 < row["measurement_value"] < row["prediction_value"]
