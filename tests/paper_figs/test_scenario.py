"""``python -m paper_figs --scenario``: the figures of a user's scenario, each data file checked
against the saved run's arrays and the bounds written out by hand; bad input; reruns reuse the
run store."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

import simulations.verify.runner  # noqa: E402
from paper_figs.__main__ import main  # noqa: E402
from paper_figs.data import read_csv  # noqa: E402
from paper_figs.scenario import safe_name  # noqa: E402
from simulations.engine.store import RunStore  # noqa: E402
from simulations.verify.scenarios import load_scenario  # noqa: E402

STEPS, PATHS = 100, 200
CLASSIC = f"""
name = "my quad/../run"
claims = ["L1-paper", "L1-det", "L1-mart", "A3", "L3", "T1", "ODE", "L2"]

[problem]
name = "quadratic"
noise = "normal"
mean = 3.0
sd = 1.0
theta0 = 0.0

[clip]
rule = "classic"
lam = 1.0

[run]
schedule = "1/(t+1)"
paths = {PATHS}
steps = {STEPS}
seed = 7
keep_paths = 4
xi_paths = {PATHS}

[radii]
exit = [1.0, 2.0]
xi = [1.0]
"""
ADAPTIVE = f"""
name = "stiff"
claims = ["C2", "C2-growth"]

[problem]
name = "quadratic"
noise = "normal"
mean = 0.0
sd = 1.0
curvature = 100.0
theta0 = 1.0

[clip]
rule = "adaptive"
lam = 30.0
eps = 0.001

[run]
schedule = "1/(t+1)"
paths = {PATHS}
steps = {STEPS}
"""
PREFIX = "my-quad-..-run"  # the name with its path separators replaced
A = 1.0 / (np.arange(STEPS) + 1.0)  # a(t) = 1/(t+1), t < T
LOG10_2 = math.log10(2.0)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenario_figs")
    (folder / "classic.toml").write_text(CLASSIC)
    (folder / "adaptive.toml").write_text(ADAPTIVE)
    out = folder / "out"
    assert main(["--quick", "--out", str(out), "--scenario", str(folder / "classic.toml"),
                 "--scenario", str(folder / "adaptive.toml")]) == 0
    return folder, out


def saved_arrays(folder, out, toml):
    """The arrays of the scenario's run as saved in the store."""
    sim = RunStore(out / "runs", read_only=True).load(load_scenario(folder / toml).run)
    assert sim is not None
    return sim.arrays


def rows(out, name, series, panel=None):
    found = [r for r in read_csv(out / f"{name}.csv")
             if r["series"] == series and panel in (None, r["panel"])]
    assert found, f"{name}: no rows for {series!r}"
    return found


def column(found, key):
    return np.array([r[key] for r in found], dtype=np.float64)


def test_the_applicable_figures_are_written_and_listed(made):
    _, out = made
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == {}
    expected = {f"{PREFIX}_{n}" for n in ("fig1_blowup", "fig2_growth", "fig4_equilibria",
                                          "fig5_ode", "fig6_lemma3", "fig7_schedules",
                                          "fig8_marchaud")}
    expected |= {f"stiff_{n}" for n in ("fig2_growth", "fig3_claim2", "fig7_schedules")}
    assert set(manifest["figures"]) == expected
    for name in expected:
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert manifest["figures"][name] == [str(out / f"{name}.{s}") for s in ("pdf", "png",
                                                                                 "csv")]
    claims = manifest["scenarios"]["my quad/../run"]["claims"]
    assert claims["L2"] == [f"{PREFIX}_fig8_marchaud"]
    assert claims["L1-paper"] == claims["L1-mart"] == claims["A3"] == [f"{PREFIX}_fig1_blowup"]
    assert claims["T1"] == [f"{PREFIX}_fig4_equilibria"]
    assert manifest["scenarios"]["stiff"]["claims"] == {"C2": ["stiff_fig3_claim2"],
                                                        "C2-growth": ["stiff_fig2_growth"]}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["runs"]  # nothing escaped


def test_exit_fractions_are_the_saved_runs_and_the_bounds_the_formulas(made):
    folder, out = made
    arr = saved_arrays(folder, out, "classic.toml")
    name = f"{PREFIX}_fig1_blowup"
    for panel, values, strict in (("a", arr["deviation_at"][:, -1], True),
                                  ("b", arr["xi_max"], False)):
        found = rows(out, name, "empirical", panel)
        m, frac = column(found, "x"), column(found, "y")
        direct = [np.mean(values > x) if strict else np.mean(values >= x) for x in m]
        np.testing.assert_array_equal(frac, direct)
        k = column(found, "exceed").astype(int)
        for i in (0, len(k) // 3, len(k) - 1):  # scipy's exact interval is Clopper–Pearson
            ci = stats.binomtest(k[i], PATHS).proportion_ci(0.95, method="exact")
            assert (found[i]["lower"], found[i]["upper"]) == pytest.approx((ci.low, ci.high),
                                                                           rel=1e-9, abs=1e-12)
    gamma, gamma_t = math.pi**2 / 6, float(np.sum(A**2))
    for series, g in (("paper bound (15)", gamma), ("paper bound (14)", gamma_t)):
        found = rows(out, name, series, "a")
        m = column(found, "x")
        np.testing.assert_allclose(column(found, "y"), 2 * np.exp(-2 * m**2 / (1.0 * g)),
                                   rtol=1e-10)
    found = rows(out, name, "Pinelis bound", "b")
    r = column(found, "x")
    np.testing.assert_allclose(column(found, "log10_y"),
                               LOG10_2 - r**2 / (8 * gamma_t) / math.log(10), rtol=1e-10)
    (det,) = rows(out, name, "deterministic radius", "a")
    assert det["x"] == pytest.approx(float(np.sum(A)), rel=1e-12)
    a3 = rows(out, name, "empirical", "c")
    np.testing.assert_array_equal(column(a3, "y"),
                                  [np.mean(~(arr["max_norm"] <= x)) for x in column(a3, "x")])


def test_growth_is_the_checkpoints_against_lambda_sum_a(made):
    folder, out = made
    arr = saved_arrays(folder, out, "classic.toml")
    name = f"{PREFIX}_fig2_growth"
    steps = arr["checkpoint_steps"]
    env = rows(out, name, "deterministic envelope")
    np.testing.assert_array_equal(column(env, "x"), steps)
    cumulative = np.concatenate([[0.0], np.cumsum(A)])  # λ = 1
    np.testing.assert_allclose(column(env, "y"), cumulative[steps], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(column(rows(out, name, "max over paths"), "y"),
                                  arr["deviation_at"].max(axis=0))
    np.testing.assert_allclose(column(rows(out, name, "norm percentiles"), "y"),
                               np.median(arr["deviation_at"], axis=0), rtol=1e-12)
    assert np.all(arr["deviation_at"].max(axis=0) <= cumulative[steps] * (1 + 1e-12))


def test_adaptive_growth_and_claim2(made):
    folder, out = made
    arr = saved_arrays(folder, out, "adaptive.toml")
    gron = rows(out, "stiff_fig2_growth", "Gronwall envelope")
    s = column(gron, "x").astype(int)
    norm0 = max(float(arr["norm_at"][:, 0].max()), 1e-3)
    direct = [math.log10(norm0) + np.sum(np.log10(1 + 30.0 * A[:t])) for t in s]
    np.testing.assert_allclose(column(gron, "log10_y"), direct, rtol=1e-10, atol=1e-10)
    hist = rows(out, "stiff_fig3_claim2", "ratio histogram")
    assert column(hist, "y").sum() == PATHS
    counts, _ = np.histogram(arr["claim2_ratio"], bins=np.append(column(hist, "lower"),
                                                                 hist[-1]["upper"]))
    np.testing.assert_array_equal(column(hist, "y"), counts)
    assert rows(out, "stiff_fig3_claim2", "tight K")[0]["K"] == 30.0 * max(1.0, 1e-3)
    assert rows(out, "stiff_fig3_claim2", "paper's K")[0]["K"] == max(30.0 * 1e-3, 30.0, 1.0)


def test_zero_set_lemma3_and_schedule(made):
    folder, out = made
    arr = saved_arrays(folder, out, "classic.toml")
    # y ~ N(3, 1), λ = 1: H(θ) = E[clamp(θ − y, −1, 1)] is odd about θ = 3, its only zero
    (zero,) = rows(out, f"{PREFIX}_fig4_equilibria", "zero of H")
    assert zero["x"] == pytest.approx(3.0, abs=1e-9)
    hist = rows(out, f"{PREFIX}_fig4_equilibria", "endpoint histogram")
    assert column(hist, "count").sum() == PATHS
    assert rows(out, f"{PREFIX}_fig4_equilibria", "E[y]")[0]["x"] == 3.0
    (lemma3,) = [rows(out, f"{PREFIX}_fig6_lemma3", f"T={STEPS}")]
    t = column(lemma3, "x").astype(int)
    np.testing.assert_array_equal(t, arr["xi_anchors"])
    np.testing.assert_allclose(column(lemma3, "doob_bound"),
                               [4.0 * math.sqrt(np.sum(A[u:] ** 2)) for u in t], rtol=1e-10)
    np.testing.assert_allclose(column(lemma3, "y"), np.median(arr["xi_sup_after"], axis=0))
    sums = [r for r in rows(out, f"{PREFIX}_fig7_schedules", "sum a 1/(t+1)", "a")
            if r["x"] <= 10**6]
    harmonic = np.cumsum(1.0 / np.arange(1, 10**6 + 1))
    np.testing.assert_allclose(column(sums, "y"), harmonic[column(sums, "x").astype(int) - 1],
                               rtol=1e-10)


def test_a_rerun_reuses_the_saved_run(made, monkeypatch, tmp_path):
    folder, first = made
    out = tmp_path / "copy"
    shutil.copytree(first / "runs", out / "runs")

    def refuse(*args, **kwargs):
        raise AssertionError("simulated again")

    monkeypatch.setattr(simulations.verify.runner, "simulate", refuse)
    assert main(["--quick", "--out", str(out), "--scenario", str(folder / "adaptive.toml"),
                 "--only", "fig_claim2"]) == 0
    claims = json.loads((out / "manifest.json").read_text())["scenarios"]["stiff"]["claims"]
    assert claims == {"C2": ["stiff_fig3_claim2"], "C2-growth": "not drawn (--only)"}


def test_from_draws_the_saved_run_and_names_a_missing_one(made, tmp_path):
    folder, out = made
    again = tmp_path / "again"
    assert main(["--from", str(out), "--out", str(again), "--scenario",
                 str(folder / "adaptive.toml"), "--only", "fig_claim2"]) == 0
    assert (again / "stiff_fig3_claim2.csv").read_text() == (
        out / "stiff_fig3_claim2.csv").read_text()
    (tmp_path / "other.toml").write_text(ADAPTIVE.replace("paths = 200", "paths = 300"))
    assert main(["--from", str(out), "--out", str(tmp_path / "x"), "--scenario",
                 str(tmp_path / "other.toml")]) == 1
    failed = json.loads((tmp_path / "x" / "manifest.json").read_text())["failed"]
    assert "no saved run" in failed["stiff"]


@pytest.mark.parametrize("case", ["missing", "invalid", "tables"])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, case):
    bad = tmp_path / "bad.toml"
    extra = []
    if case == "invalid":
        bad.write_text(CLASSIC.replace('rule = "classic"', 'rule = "adaptive"'))
    elif case == "tables":
        bad.write_text(CLASSIC)
        extra = ["--only", "tables"]
    assert main(["--out", str(tmp_path / "o"), "--scenario", str(bad), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_safe_name_cannot_leave_the_folder():
    assert safe_name("../../etc/passwd") == "etc-passwd"
    assert safe_name("..") == safe_name("/") == "scenario"
    assert safe_name("a b\\c") == "a-b-c"


def test_a_claim_whose_figure_does_not_apply_is_listed_as_no_figure(tmp_path):
    (tmp_path / "plane.toml").write_text(
        CLASSIC.replace('claims = ["L1-paper", "L1-det", "L1-mart", "A3", "L3", "T1", "ODE", '
                        '"L2"]', 'claims = ["T1"]')
        .replace('theta0 = 0.0', 'dim = 3').replace('name = "my quad/../run"', 'name = "plane"')
        .replace(f"paths = {PATHS}", "paths = 50"))
    out = tmp_path / "out"
    assert main(["--quick", "--out", str(out), "--scenario", str(tmp_path / "plane.toml")]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenarios"]["plane"]["claims"]["T1"].startswith("no figure (")
    assert set(manifest["figures"]) == {"plane_fig7_schedules"}


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def examples_made(tmp_path_factory):
    """The ``[[bound]]`` figure of examples/my_bounds.toml and T1's figure in the plane of
    examples/t1_plane.toml, at their quick sizes."""
    out = tmp_path_factory.mktemp("example_figs")
    assert main(["--quick", "--out", str(out), "--scenario", str(EXAMPLES / "my_bounds.toml"),
                 "--scenario", str(EXAMPLES / "t1_plane.toml"), "--only", "fig_bounds",
                 "fig_equilibria"]) == 0
    return out


def test_user_bounds_are_their_formulas_and_the_rows_their_counts(examples_made):
    """my_bounds.toml: ½(θ − y)², y ~ N(5, 3²), classic λ = 1, a(t) = 1/(t+1), T = 500;
    paper-exit 2exp(−2M²/(γλ²)) with γ = π²/6, pinelis-xi 2exp(−r²/(8λ²Σ_{t<T}a²))."""
    out = examples_made
    sc = load_scenario(EXAMPLES / "my_bounds.toml")
    arr = RunStore(out / "runs", read_only=True).load(sc.run).arrays
    steps = 500
    gamma_t = float(np.sum(1.0 / (np.arange(steps) + 1.0) ** 2))
    for panel, _claim, values, strict, exponent in (
            ("a", "paper-exit", arr["max_deviation"], True, lambda m: 2 * m**2 / (np.pi**2 / 6)),
            ("b", "pinelis-xi", arr["xi_max"], False, lambda r: r**2 / (8 * gamma_t))):
        name = "my-bounds_fig10_bounds"
        bound = rows(out, name, "bound", panel)
        x = column(bound, "x")
        np.testing.assert_allclose(column(bound, "log10_y"),
                                   LOG10_2 - exponent(x) / math.log(10), rtol=1e-9, atol=1e-12)
        tail = rows(out, name, "empirical", panel)
        m = column(tail, "x")
        direct = [np.mean(values > v) if strict else np.mean(values >= v) for v in m]
        np.testing.assert_array_equal(column(tail, "y"), direct)
        for r in rows(out, name, "checked radius", panel):
            k, n = int(r["exits"]), int(r["paths"])
            assert k == int(np.sum(values > r["x"] if strict else values >= r["x"]))
            assert r["y"] == k / n
            lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
            hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
            assert r["lower"] == pytest.approx(lo, rel=1e-9)
            assert r["upper"] == pytest.approx(hi, rel=1e-9)
            assert r["log10_bound"] == pytest.approx(
                LOG10_2 - exponent(r["x"]) / math.log(10), rel=1e-9)
    (exit_row,) = rows(out, "my-bounds_fig10_bounds", "checked radius", "a")
    assert exit_row["verdict"] == "violated"  # the paper's bound, as sc's [expect] says


def logistic_field(theta, x, y, lam):
    """H(θ) = mean_i g_i·min(1, λ/‖g_i‖), g_i = (σ(w x_i + b) − y_i)(x_i, 1): the exact mean
    of classically clipped logistic gradients over the data set, written out in numpy."""
    theta = np.atleast_2d(theta)
    f = theta[:, :1] * x[None, :, 0] + theta[:, 1:2]
    r = 1.0 / (1.0 + np.exp(-f)) - y[None, :]
    g = np.stack([r * x[None, :, 0], r], axis=-1)
    norm = np.linalg.norm(g, axis=-1, keepdims=True)
    return np.mean(g * np.minimum(1.0, lam / np.maximum(norm, 1e-300)), axis=1)


def test_t1_in_the_plane_zero_set_and_covariance_ellipse(examples_made):
    out, name = examples_made, "t1-plane_fig4_equilibria"
    problem = load_scenario(EXAMPLES / "t1_plane.toml").make_problem()
    ends = rows(out, name, "endpoints")
    end = np.column_stack([column(ends, "x"), column(ends, "y")])
    mean, cov = end.mean(axis=0), np.cov(end, rowvar=False)
    (m,) = rows(out, name, "endpoint mean")
    np.testing.assert_allclose([m["x"], m["y"]], mean, rtol=1e-12)
    ring = rows(out, name, "covariance ellipse")
    d = np.column_stack([column(ring, "x"), column(ring, "y")]) - mean
    form = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(form, stats.chi2.ppf(0.95, 2), rtol=1e-9)
    zeros = rows(out, name, "zero of H")
    assert len(zeros) == 1
    point = np.array([zeros[0]["x"], zeros[0]["y"]])
    assert np.linalg.norm(logistic_field(point, problem.x, problem.y, 1.0)) < 1e-9
    grid = rows(out, name, "H grid")[::997]
    h = logistic_field(np.column_stack([column(grid, "x"), column(grid, "y")]), problem.x,
                       problem.y, 1.0)
    np.testing.assert_allclose(np.column_stack([column(grid, "h1"), column(grid, "h2")]), h,
                               rtol=1e-9, atol=1e-13)
