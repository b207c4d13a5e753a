"""paper_figs: one ``--quick`` run of every figure (module fixture), each data file checked
against an independent computation, plus the tables step, ``--from`` and the result store."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from scipy import integrate, special, stats  # noqa: E402

from paper_figs import style, tables  # noqa: E402
from paper_figs.__main__ import FIGURES, main  # noqa: E402
from paper_figs.data import read_csv  # noqa: E402
from simulations.engine.store import RunStore  # noqa: E402
from theory.records import content_key  # noqa: E402

NAMES = ("fig1_blowup", "fig2_growth", "fig3_claim2", "fig4_equilibria", "fig5_ode",
         "fig6_lemma3", "fig7_schedules", "fig8_marchaud", "fig9_assumptions")
LOG10_2 = math.log10(2.0)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """The figures of one ``--quick`` run (the tables step is tested on its own below: the
    quick verification suite alone takes longer than this whole module may)."""
    folder = tmp_path_factory.mktemp("paper_figs")
    assert main(["--quick", "--out", str(folder), "--only", *FIGURES]) == 0
    return folder


def rows(out, name, series=None, panel=None):
    """The CSV rows of figure ``name`` for one series (and panel)."""
    found = [r for r in read_csv(out / f"{name}.csv")
             if series in (None, r["series"]) and panel in (None, r["panel"])]
    assert found, f"{name}: no rows for series {series!r}, panel {panel!r}"
    return found


def column(found, key):
    return np.array([r[key] for r in found], dtype=np.float64)


def harmonic(steps):
    """Σ_{t<T} 1/(t+1), summed directly."""
    return float(np.sum(1.0 / (np.arange(steps) + 1.0)))


@pytest.mark.parametrize("name", NAMES)
def test_every_figure_is_written_as_pdf_png_csv(out, name):
    assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(read_csv(out / f"{name}.csv")) > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == {} and manifest["quick"] is True


def test_blowup_radius_and_bounds_are_the_formulas(out):
    (det,) = rows(out, "fig1_blowup", "deterministic radius")
    steps = int(det["horizon"])
    assert det["x"] == pytest.approx(1.0 * harmonic(steps), rel=1e-12)
    paper = rows(out, "fig1_blowup", "paper bound (15)")
    m = column(paper, "x")
    expected = LOG10_2 - 2 * m**2 / (1.0**2 * math.pi**2 / 6) / math.log(10)
    np.testing.assert_allclose(column(paper, "log10_y"), expected, rtol=1e-12, atol=1e-12)
    pinelis = rows(out, "fig1_blowup", "Pinelis bound")
    r = column(pinelis, "x")
    gamma_t = float(np.sum(1.0 / (np.arange(steps) + 1.0) ** 2))
    np.testing.assert_allclose(column(pinelis, "log10_y"),
                               LOG10_2 - r**2 / (8 * gamma_t) / math.log(10), rtol=1e-10)


@pytest.mark.parametrize("scenario", ["far", "near"])
@pytest.mark.parametrize("panel", ["a", "b"])
def test_blowup_fraction_lies_in_its_clopper_pearson_band(out, scenario, panel):
    found = rows(out, "fig1_blowup", f"empirical {scenario}", panel)
    frac, lower, upper = (column(found, k) for k in ("y", "lower", "upper"))
    k, n = column(found, "exceed"), int(found[0]["paths"])
    np.testing.assert_array_equal(frac, k / n)
    assert np.all((lower <= frac) & (frac <= upper))
    # the exact ends: no exceedance gives upper 1 − (α/2)^(1/n), all of them lower (α/2)^(1/n)
    np.testing.assert_allclose(upper[k == 0], 1 - 0.025 ** (1 / n), rtol=1e-9)
    np.testing.assert_allclose(lower[k == n], 0.025 ** (1 / n), rtol=1e-9)
    assert np.all(np.diff(frac) <= 0)


def test_blowup_far_scenario_breaks_the_papers_bound_and_never_the_deterministic_one(out):
    (det,) = rows(out, "fig1_blowup", "deterministic radius")
    far = rows(out, "fig1_blowup", "empirical far", "a")
    m, lower = column(far, "x"), column(far, "lower")
    assert np.all(column(far, "y")[m >= det["x"]] == 0)  # no path beyond λΣa
    paper = LOG10_2 - 2 * m**2 / (math.pi**2 / 6) / math.log(10)  # (15), λ = 1, γ = π²/6
    violated = lower > 10.0**paper
    assert violated.any() and m[violated].max() > 0.9 * det["x"]


def test_growth_envelopes_are_the_formulas_and_hold(out):
    det = rows(out, "fig2_growth", "deterministic envelope")
    t = column(det, "x").astype(int)
    np.testing.assert_allclose(column(det, "y"), [1.0 + 30.0 * harmonic(s) for s in t],
                               rtol=1e-12)
    gron = rows(out, "fig2_growth", "Gronwall envelope")
    direct = [math.log10(max(1.0, 1e-3)) + np.sum(np.log10(1 + 30.0 / (np.arange(s) + 1.0)))
              for s in column(gron, "x").astype(int)]
    np.testing.assert_allclose(column(gron, "log10_y"), direct, rtol=1e-10, atol=1e-10)
    for rule, bound in (("classic", column(det, "y")), ("adaptive", 10.0 ** np.array(direct))):
        pct = rows(out, "fig2_growth", f"{rule} percentiles")
        p = np.array([column(pct, k) for k in ("p5", "p25", "y", "p75", "p95")])
        assert np.all(np.diff(p, axis=0) >= 0)
        p95_at = p[-1][t]
        assert np.all(p95_at <= bound * (1 + 1e-12))
    unclipped = column(rows(out, "fig2_growth", "unclipped percentiles"), "y")
    assert unclipped.max() > 1e20  # without clipping the stiff quadratic explodes first


@pytest.mark.parametrize(("panel", "lam", "eps"), [("a", 30.0, 1e-3), ("b", 0.5, 0.1)])
def test_claim2_points_obey_the_tight_constant(out, panel, lam, eps):
    points = rows(out, "fig3_claim2", "visited points", panel)
    theta, clipped, g = (column(points, k) for k in ("x", "y", "g_norm"))
    np.testing.assert_allclose(clipped, np.minimum(g, lam * np.maximum(theta, eps)),
                               rtol=1e-12)
    tight = rows(out, "fig3_claim2", "tight K", panel)[0]["K"]
    paper = rows(out, "fig3_claim2", "paper's K", panel)[0]["K"]
    assert tight == lam * max(1.0, eps) and paper == max(lam * eps, lam, 1.0)
    assert np.all(clipped <= tight * (1 + theta) * (1 + 1e-12))
    (summary,) = rows(out, "fig3_claim2", "max ratio over all points", panel)
    assert summary["y"] <= tight and summary["replay_error"] < 1e-12


def test_equilibria_follow_the_huber_closed_form(out):
    zero = rows(out, "fig4_equilibria", "zero of H")
    lam = column(zero, "x")
    np.testing.assert_allclose(column(zero, "y"), np.minimum(lam * 0.1 / 0.9, 1.0), atol=1e-9)
    assert np.all(column(rows(out, "fig4_equilibria", "E[y]"), "y") == 1.0)
    bias = rows(out, "fig4_equilibria", "zero of H minus E[y]")
    np.testing.assert_allclose(column(bias, "y"), np.minimum(lam / 9, 1.0) - 1.0, atol=1e-9)
    ends = rows(out, "fig4_equilibria", "endpoints")
    mean, lam_sim = column(ends, "y"), column(ends, "x")
    np.testing.assert_allclose(mean, np.minimum(lam_sim / 9, 1.0), atol=0.02)
    hist = rows(out, "fig4_equilibria", "endpoint histogram")
    for value in lam_sim:
        counts = [r["count"] for r in hist if r["x"] == value]
        assert sum(counts) == ends[0]["paths"]


def test_ode_solution_solves_the_ode_and_the_gap_shrinks(out):
    ode = rows(out, "fig5_ode", "ODE", "a")
    tau, theta = column(ode, "x"), column(ode, "y")
    assert theta[0] == 5.0 and tau[0] == 0.0
    h = 0.9 * np.clip(theta, -1, 1) + 0.1 * np.clip(theta - 10, -1, 1)  # the two-point law
    slope = np.gradient(theta, tau)
    smooth = np.abs(np.abs(theta) - 1) > 0.05  # away from the kink of H at θ = 1
    np.testing.assert_allclose(slope[smooth][1:-1], -h[smooth][1:-1], atol=2e-3)
    for name in ("quadratic", "logistic"):
        gap = column(rows(out, "fig5_ode", f"gap {name}", "c"), "y")
        assert gap[-1] < gap[0] / 3 and gap[-2:].mean() < gap[:2].mean()


def test_lemma3_sup_is_under_doobs_bound_and_shrinks(out):
    horizons = sorted({r["horizon"] for r in read_csv(out / "fig6_lemma3.csv")
                       if r["series"].startswith("T=")})
    medians = []
    for horizon in horizons:
        found = rows(out, "fig6_lemma3", f"T={int(horizon)}")
        t = column(found, "x").astype(int)
        np.testing.assert_array_equal(t, [int(horizon * f) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2)])
        direct = [4.0 * math.sqrt(np.sum(1.0 / (np.arange(s, int(horizon)) + 1.0) ** 2))
                  for s in t]
        np.testing.assert_allclose(column(found, "doob_bound"), direct, rtol=1e-10)
        assert np.all(column(found, "rms") <= column(found, "doob_bound"))
        medians.append(column(found, "y"))
    assert medians[-1][-1] < medians[0][0] / 3
    limit = rows(out, "fig6_lemma3", "Doob bound, T = infinity")
    t = column(limit, "x").astype(int)
    np.testing.assert_allclose(column(limit, "y"), 4.0 * np.sqrt(special.polygamma(1, t + 1.0)),
                               rtol=1e-9)


def test_schedule_sums_and_verdicts(out):
    for text, a in (("1/(t+1)", lambda t: 1 / (t + 1.0)),
                    ("1/sqrt(t+1)", lambda t: 1 / np.sqrt(t + 1.0))):
        for power, panel, label in ((1, "a", "sum a"), (2, "b", "sum a^2")):
            found = [r for r in rows(out, "fig7_schedules", f"{label} {text}", panel)
                     if r["x"] <= 10**6]
            direct = [np.sum(a(np.arange(int(r["x"]))) ** power) for r in found]
            np.testing.assert_allclose(column(found, "y"), direct, rtol=1e-10)
    verdict = {str(r["schedule"]): r["a2"] for r in read_csv(out / "fig7_schedules.csv")}
    assert verdict == {"1/(t+1)": "holds", "0.05/(1+t/100)": "holds", "1/(t+1)**0.75": "holds",
                       "1/sqrt(t+1)": "fails", "0.01": "fails"}


def test_from_redraws_without_simulating_and_names_what_is_missing(out, tmp_path):
    again = tmp_path / "again"
    assert main(["--from", str(out), "--out", str(again), "--only", "fig_claim2"]) == 0
    assert (again / "fig3_claim2.csv").read_text() == (out / "fig3_claim2.csv").read_text()
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    assert main(["--from", str(empty), "--out", str(tmp_path / "x"), "--only", "fig_ode"]) == 1
    failed = json.loads((tmp_path / "x" / "manifest.json").read_text())["failed"]
    assert "no saved result" in failed["fig_ode"]


def test_tables_are_copied_and_missing_ones_named(tmp_path, monkeypatch):
    source = tmp_path / "earlier" / "tables"
    source.mkdir(parents=True)
    for name in tables.REPORTS:
        (source / name).write_text(f"table {name}")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed001.md").write_text("| seed 001 |")
    monkeypatch.setattr(tables, "SEED_DIR", seeds)
    status = tables.make(tmp_path / "out", quick=True, source=tmp_path / "earlier")
    assert sorted(p.name for p in status.written) == ["report.json", "report.md", "report.tex",
                                                      "seed001.md"]
    assert (tmp_path / "out" / "report.tex").read_text() == "table report.tex"
    assert [line.split()[2] for line in status.missing] == ["seed000.md:", "seed003.md:"]


def test_store_reuses_a_result_and_keys_it_by_setting(tmp_path):
    store, calls = RunStore(tmp_path), []

    def compute():
        calls.append(1)
        return {"x": np.arange(3.0)}

    one, two = content_key({"seed": 1}), content_key({"seed": 2})
    first = store.arrays(one, compute, name="demo")
    again = store.arrays(one, compute, name="demo")
    other = store.arrays(two, compute, name="demo")
    assert len(calls) == 2 and np.array_equal(first["x"], again["x"]) and len(other) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted([one, two])
    assert json.loads((tmp_path / "index.json").read_text()) == {one: ["demo"], two: ["demo"]}
    with pytest.raises(FileNotFoundError, match="no saved result"):
        RunStore(tmp_path, read_only=True).arrays(content_key({"seed": 3}), compute)
    with pytest.raises(ValueError, match="16 hex digits"):
        store.folder("../../etc")
    data = (tmp_path / one / "arrays.npz").read_bytes()
    (tmp_path / one / "arrays.npz").write_bytes(data[:20])  # damaged: computed again
    assert np.array_equal(store.arrays(one, compute)["x"], np.arange(3.0)) and len(calls) == 3


def test_relative_out_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--quick", "--out", "figs", "--only", "fig_schedules", "fig_equilibria"]) == 0
    assert (tmp_path / "figs" / "fig7_schedules.csv").exists()
    assert (tmp_path / "figs" / "fig4_equilibria.csv").exists()
    manifest = json.loads((tmp_path / "figs" / "manifest.json").read_text())
    assert manifest["failed"] == {}
    # the runs are in the store under the relative folder, and --from reads them back
    assert any(p.is_dir() for p in (tmp_path / "figs" / "runs").iterdir())
    assert main(["--from", "figs", "--out", "again", "--only", "fig_equilibria"]) == 0
    assert (tmp_path / "again" / "fig4_equilibria.csv").read_text() == (
        tmp_path / "figs" / "fig4_equilibria.csv").read_text()


def test_blowup_splitting_points_agree_with_monte_carlo_where_both_exist(out):
    """Each AMS interval overlaps the Monte Carlo band sandwiching its level: for grid radii
    x_lo < L < x_hi, P(> x_hi) ≤ P(≥ L) ≤ P(≥ x_lo), so the truth lies in
    [lower(x_hi), upper(x_lo)] with the Clopper–Pearson ends of the engine's paths."""
    for panel in "ab":
        ams = rows(out, "fig1_blowup", "AMS near", panel)
        mc = rows(out, "fig1_blowup", "empirical near", panel)
        x, lower, upper = (column(mc, k) for k in ("x", "lower", "upper"))
        for r in ams:
            level = r["level"]
            below, above = np.flatnonzero(x < level)[-1], np.flatnonzero(x > level)[0]
            assert r["low"] <= r["estimate"] <= r["high"]
            assert r["low"] <= upper[below] and r["high"] >= lower[above], (panel, r)
            assert r["estimator"].startswith("AMS importance=max")


def test_blowup_splitting_is_monotone_and_inside_the_deterministic_radius(out):
    (det,) = rows(out, "fig1_blowup", "deterministic radius")
    steps = int(det["horizon"])
    atoms = np.cumsum(1.0 / (np.arange(steps) + 1.0))  # λ·Σ_{t<s} a(t), where paths pile up
    for panel in "ab":
        ams = rows(out, "fig1_blowup", "AMS near", panel)
        level, estimate = column(ams, "level"), column(ams, "estimate")
        assert np.all(np.diff(level) > 0) and np.all(np.diff(estimate) <= 0)
        assert np.all((level > 0) & (level < det["x"]))
        assert np.all(np.abs(level[:, None] - atoms[None, :]).min(axis=1) > 0.01)
        assert np.all(column(ams, "trajectory_steps") > 0)


def test_blowup_splitting_points_come_from_the_store(out, tmp_path, monkeypatch):
    """Figure 1's AMS runs are the store's AMS entries (one per panel, kind ams, with their
    chain and splitting); redrawn from the store, no AMS runs and the points are the same."""
    from simulations.engine import rare

    saved = [json.loads(p.read_text()) for p in (out / "runs").glob("*/result.json")]
    entries = [e for e in saved if e.get("kind") == "ams"]
    assert sorted(e["splitting"]["event"] for e in entries) == ["exit", "xi"]
    assert all(e["chain"]["seed"] == 5 and e["splitting"]["importance"] == "max"
               for e in entries)
    monkeypatch.setattr(rare, "_run", None)  # no AMS may run
    again = tmp_path / "again"
    assert main(["--from", str(out), "--out", str(again), "--only", "fig_blowup"]) == 0
    for panel in "ab":
        assert rows(again, "fig1_blowup", "AMS near", panel) == rows(out, "fig1_blowup",
                                                                      "AMS near", panel)


def test_marchaud_ratio_is_the_huber_field_and_below_k(out):
    """Far minimiser, ½(θ − y)², y ~ N(100, 1), classic λ = 1: H(θ) = E[clamp(θ − y, −1, 1)],
    integrated here against the normal density (scipy.integrate.quad)."""
    far = rows(out, "fig8_marchaud", "far-minimiser")
    for r in far[::7]:
        theta = r["theta1"]
        h = integrate.quad(lambda y, th=theta: np.clip(th - y, -1, 1) * stats.norm.pdf(y, 100),
                           60, 140, points=[theta - 1, theta + 1], limit=200)[0]
        assert r["norm_h"] == pytest.approx(abs(h), rel=1e-7, abs=1e-10)
        assert r["y"] == pytest.approx(abs(h) / (1 + abs(theta)), rel=1e-7, abs=1e-10)
    every = read_csv(out / "fig8_marchaud.csv")
    assert {r["series"] for r in every} >= {"far-minimiser", "stiff-adaptive", "skewed-huber"}
    assert all(r["y"] <= r["K"] * (1 + 1e-12) for r in every)
    np.testing.assert_allclose([r["y_over_k"] for r in every], [r["y"] / r["K"] for r in every],
                               rtol=1e-12)


def test_assumptions_table_decides_a1_and_a2_by_hand(out):
    """(A2) for c/(t+t0)^p holds iff 1/2 < p ≤ 1 and fails for a constant; (A1) is decided by
    the activation (tanh is C²) and holds trivially without one."""
    table = {r["scenario"]: r for r in read_csv(out / "fig9_assumptions.csv")}
    assert len(table) == 11
    by_hand = {"1/(t+1)": "holds", "0.05/(1+t/100)": "holds", "1/(t+1)**0.6": "holds",
               "0.5/(1+t/100)": "holds", "1.0": "violated"}  # "1" is read back as 1.0
    for r in table.values():
        assert r["a2"] == by_hand[str(r["schedule"])], r
        assert r["a1"] == "holds"
        assert ("tanh" in r["a1_measurement"]) == r["problem"].startswith("mlp"), r


def log_excess(ax, which: int) -> tuple[float, float]:
    """How many decades the log axis ``which`` (0: x, 1: y) of ``ax`` reaches below and above
    the data drawn in data coordinates, bounds (gid ``bound``), axis-spanning lines and points
    pinned to the axis floor (the markers of a zero, a band reaching down to 0) left out."""
    values = []
    for artist in [*ax.lines, *ax.collections]:
        if artist.get_gid() == style.BOUND or artist.get_transform() != ax.transData:
            continue
        if isinstance(artist, Line2D):
            xy = np.asarray(artist.get_xydata(), dtype=np.float64)
        else:
            paths = [p.vertices for p in artist.get_paths() if len(p.vertices)]
            xy = np.concatenate(paths) if paths else np.empty((0, 2))
        values.append(xy.reshape(-1, 2)[:, which])
    limits = ax.get_xlim() if which == 0 else ax.get_ylim()
    v = np.concatenate(values) if values else np.empty(0)
    v = v[np.isfinite(v) & (v > 0) & ~np.isclose(v, limits[0], rtol=1e-9, atol=0)]
    assert v.size, "a log axis without data"
    lo, hi = np.log10(limits)
    return float(np.log10(v.min()) - lo), float(hi - np.log10(v.max()))


def test_log_excess_flags_an_axis_far_beyond_its_data():
    """The growth figure as it was: y from 1e-20 to 1e92 for data in [1e-6, 1e30] and an
    envelope (a bound) reaching 1e92."""
    fig, ax = style.figure()
    ax.plot([1, 10, 100], [1e-6, 1.0, 1e30])
    ax.plot([1, 100], [1.0, 1e92], gid=style.BOUND)
    ax.set_yscale("log")
    ax.set_ylim(1e-20, 1e92)
    below, above = log_excess(ax, 1)
    assert below == pytest.approx(14) and above == pytest.approx(62)


def test_every_log_axis_follows_its_data(out, tmp_path, monkeypatch):
    """Redraw every figure from the store, keep the Figure objects, and hold each log axis to
    at most 40 decades beyond the data drawn on it (bounds excluded)."""
    kept = {}
    save = style.save

    def keep(fig, rows_, folder, name):
        kept[name] = fig
        return save(fig, rows_, folder, name)

    monkeypatch.setattr(style, "save", keep)
    assert main(["--from", str(out), "--out", str(tmp_path / "again"), "--only",
                 *FIGURES]) == 0
    assert set(kept) == set(NAMES)
    checked = 0
    for name, fig in kept.items():
        for ax in fig.axes:
            for which, scale in enumerate((ax.get_xscale(), ax.get_yscale())):
                if scale == "log":
                    below, above = log_excess(ax, which)
                    assert below <= 40 and above <= 40, (name, ax.get_title(), below, above)
                    checked += 1
    assert checked >= 8
