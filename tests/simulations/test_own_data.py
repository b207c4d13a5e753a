"""A problem's own data (scikit-learn's datasets, a user's .npz/.csv file) and a user's module
(simulations/engine/data.py, simulations.engine.problems.UserModule): the exact H over a
dataset against a slow loop, the compiled step against the torch step on user data, the
module protocol against the built-in model it rewrites, and each one-line refusal."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from simulations.engine.mean_field import MeanField, mean_field
from simulations.engine.problems import make_problem
from simulations.engine.rules import ClipRule
from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec
from simulations.verify.scenarios import load_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODULE = ROOT / "examples" / "my_problem.py"

RNG = np.random.default_rng(7)
X_SMALL = RNG.standard_normal((7, 3))
Y_BINARY = np.array([0, 1, 1, 0, 1, 0, 1], dtype=np.float64)


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "small.npz"
    np.savez(path, X=X_SMALL, y=Y_BINARY)
    return path


def _clip_slow(g: list[float], theta: list[float], rule: str, lam: float, eps: float):
    """g/c for one gradient, written out: classic c = max(1, ‖g‖/λ); adaptive
    c = max(1, ‖g‖/(λ·max(‖θ‖, ε)))."""
    norm = math.sqrt(sum(v * v for v in g))
    tau = lam if rule == "classic" else lam * max(math.sqrt(sum(t * t for t in theta)), eps)
    c = max(1.0, norm / tau)
    return [v / c for v in g]


@pytest.mark.parametrize("rule", ["classic", "adaptive"])
def test_exact_h_over_a_small_file_equals_a_slow_loop(npz, rule):
    """H(θ) = (1/n)Σ_i clip(g_i), g_i = (σ(w·x_i + b) − y_i)[x_i, 1], by a Python loop over the
    samples, against the finite sum of simulations.engine.mean_field (standardize = false)."""
    problem = make_problem("logistic", data=str(npz), standardize=False)
    clip = ClipRule(rule, lam=0.3, **({"eps": 0.1} if rule == "adaptive" else {}))
    thetas = [[0.0, 0.0, 0.0, 0.0], [0.5, -1.0, 2.0, 0.3], [-3.0, 1.0, 0.2, -0.7]]
    est = mean_field(problem, clip, torch.tensor(thetas, dtype=torch.float64))
    assert est.exact and "finite sum" in est.method
    for k, theta in enumerate(thetas):
        want = [0.0] * 4
        for x, y in zip(X_SMALL.tolist(), Y_BINARY.tolist(), strict=True):
            f = sum(w * v for w, v in zip(theta[:3], x, strict=True)) + theta[3]
            r = 1.0 / (1.0 + math.exp(-f)) - y
            clipped = _clip_slow([r * v for v in x] + [r], theta, rule, 0.3, 0.1)
            want = [a + b / len(X_SMALL) for a, b in zip(want, clipped, strict=True)]
        np.testing.assert_allclose(est.value[k].numpy(), want, rtol=1e-13, atol=1e-15)


def test_exact_h_comparison_can_fail(npz):
    problem = make_problem("logistic", data=str(npz), standardize=False)
    theta = torch.tensor([[0.5, -1.0, 2.0, 0.3]], dtype=torch.float64)
    exact = mean_field(problem, ClipRule("classic", lam=0.3), theta).value
    other = mean_field(problem, ClipRule("classic", lam=0.31), theta).value
    assert not np.allclose(exact.numpy(), other.numpy(), rtol=1e-13, atol=1e-15)


def test_a_large_dataset_is_estimated_by_monte_carlo_within_its_error():
    """Above the exact limit (n > samples and n·P > limit) H is a Monte Carlo estimate with a
    standard error; the exact sum lies within a few of them."""
    problem = make_problem("logistic", dataset="breast_cancer")
    rule = ClipRule("classic", lam=0.5)
    theta = torch.linspace(-0.3, 0.3, 31, dtype=torch.float64)[None]
    exact = MeanField(problem, rule)
    assert exact.kind == "atoms"
    estimated = MeanField(problem, rule, samples=256, exact_limit=1000)
    assert estimated.kind == "monte carlo"
    h, est = exact(theta), estimated(theta)
    assert not est.exact and (est.stderr > 0).all()
    z = ((est.value - h.value) / est.stderr).abs()
    assert z.max() < 5.0, z.max()


@pytest.mark.parametrize("problem", [
    {"name": "logistic", "dataset": "breast_cancer"},
    {"name": "linear-regression", "dataset": "diabetes"},
    {"name": "mlp-regression", "dataset": "diabetes", "hidden": 4},
    {"name": "mlp-classification", "dataset": "iris", "hidden": 5},
    {"name": "mlp-classification", "data": "FILE", "hidden": 3},
])
def test_user_data_compiled_step_equals_the_torch_step(problem, tmp_path):
    """A few steps of the compiled (numba) path against the torch step: θ(T) to 1e-12."""
    if problem.get("data") == "FILE":
        path = tmp_path / "three.csv"
        labels = np.arange(len(X_SMALL)) % 3
        np.savetxt(path, np.column_stack([X_SMALL, labels]), delimiter=",",
                   header="a,b,c,label", comments="")
        problem = {**problem, "data": str(path)}
    run = RunSpec.from_dict({"problem": problem, "clip": {"rule": "adaptive", "lam": 0.5,
                                                          "eps": 0.1},
                             "schedule": "0.5/(t+1)", "paths": 6, "steps": 8, "batch": 3})
    fast = simulate(run, Execution(backend="compiled"))
    slow = simulate(run, Execution(backend="torch"))
    assert fast.setting["backend"] == "compiled" and slow.setting["backend"] == "torch"
    a, b = fast.arrays["endpoints"], slow.arrays["endpoints"]
    assert np.abs(a - run.make_problem().theta0).max() > 1e-3  # the paths moved
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_module_protocol_reproduces_the_built_in_model():
    """examples/my_problem.py is logistic regression on breast cancer written in torch: its
    runs (torch step, autograd) equal the built-in problem's (compiled) to 1e-12."""
    chain = {"clip": {"rule": "classic", "lam": 1.0}, "schedule": "1/(t+1)", "paths": 5,
             "steps": 20, "batch": 2}
    mine = simulate(RunSpec.from_dict({"problem": {"module": str(EXAMPLE_MODULE)}, **chain}))
    built = simulate(RunSpec.from_dict({"problem": {"name": "logistic",
                                                    "dataset": "breast_cancer"}, **chain}))
    assert mine.setting["backend"] == "torch" and built.setting["backend"] == "compiled"
    np.testing.assert_allclose(mine.arrays["endpoints"], built.arrays["endpoints"],
                               rtol=1e-12, atol=1e-12)
    assert np.abs(mine.arrays["endpoints"]).max() > 1e-2
    # and H over the module's dataset is the same exact finite sum
    module = make_problem("module", module=str(EXAMPLE_MODULE))
    theta = torch.full((2, 31), 0.1, dtype=torch.float64)
    rule = ClipRule("adaptive", lam=0.5, eps=0.1)
    h = mean_field(module, rule, theta)
    assert h.exact
    np.testing.assert_allclose(
        h.value, mean_field(make_problem("logistic", dataset="breast_cancer"), rule,
                            theta).value, rtol=1e-12, atol=1e-15)


def test_a_scenario_reads_its_files_relative_to_itself_and_keys_their_contents(tmp_path):
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", X=X_SMALL, y=Y_BINARY)
    (tmp_path / "s.toml").write_text(
        'claims = ["A3"]\n[problem]\nname = "logistic"\ndata = "data/d.npz"\n'
        '[clip]\nrule = "classic"\nlam = 1.0\n[run]\nschedule = "1/(t+1)"\npaths = 4\n'
        'steps = 3\n', encoding="utf-8")
    first = load_scenario(tmp_path / "s.toml")
    assert first.problem["data"] == str((tmp_path / "data" / "d.npz").resolve())
    assert first.problem["standardize"] is True
    np.savez(tmp_path / "data" / "d.npz", X=X_SMALL + 1.0, y=Y_BINARY)
    assert load_scenario(tmp_path / "s.toml").run.key() != first.run.key()


# ---- refusals: one line, naming the file ---------------------------------------------------

def _refused(problem: dict, *needles: str) -> str:
    with pytest.raises(ValueError) as info:
        RunSpec.from_dict({"problem": problem, "clip": {"rule": "classic", "lam": 1.0},
                           "schedule": "1", "paths": 1, "steps": 1})
    text = str(info.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text
    return text


def test_refusals_of_data(tmp_path, npz):
    _refused({"name": "logistic", "data": str(tmp_path / "none.npz")}, "none.npz",
             "no such file")
    np.savez(tmp_path / "shape.npz", X=X_SMALL, y=Y_BINARY[:5])
    _refused({"name": "logistic", "data": str(tmp_path / "shape.npz")}, "shape.npz",
             "expected X of shape (n, d)")
    np.savez(tmp_path / "names.npz", x=X_SMALL, y=Y_BINARY)
    _refused({"name": "logistic", "data": str(tmp_path / "names.npz")}, "names.npz",
             "expected arrays X and y")
    x = X_SMALL.copy()
    x[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=x, y=Y_BINARY)
    _refused({"name": "logistic", "data": str(tmp_path / "nan.npz")}, "nan.npz",
             "NaN or infinite", "row 4")
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,0\n1,x,1\n", encoding="utf-8")
    _refused({"name": "logistic", "data": str(tmp_path / "bad.csv")}, "bad.csv", "numbers")
    (tmp_path / "d.txt").write_text("1,2\n", encoding="utf-8")
    _refused({"name": "logistic", "data": str(tmp_path / "d.txt")}, "d.txt", ".npz", ".csv")
    np.savez(tmp_path / "three.npz", X=X_SMALL, y=np.arange(7) % 3)
    _refused({"name": "logistic", "data": str(tmp_path / "three.npz")}, "three.npz",
             "labels 0 and 1")
    _refused({"name": "logistic", "dataset": "digits"}, "problem.data", "sklearn digits",
             "labels 0 and 1")
    _refused({"name": "logistic", "dataset": "mnist"}, "problem.dataset", "mnist")
    _refused({"name": "linear-regression", "dataset": "iris"}, "problem.dataset",
             "class labels")
    _refused({"name": "logistic", "data": str(npz), "n": 5}, "problem.n", "generated data")
    _refused({"name": "logistic", "standardize": False}, "problem.standardize")


MODULE_BODY = {
    "syntax": "def loss(:\n",
    "nothing": "x = 1\n",
    "bad_n": "n = 0\ntheta0 = [0.0]\ndef loss(theta, batch):\n    return theta[:, 0]\n",
    "shape": "n = 3\ntheta0 = [0.0, 1.0]\ndef loss(theta, batch):\n    return theta\n",
    "mixing": ("n = 3\ntheta0 = [1.0]\ndef loss(theta, batch):\n"
               "    return theta[:, 0].square().sum().expand(len(theta))\n"),
    "raises": "n = 3\ntheta0 = [1.0]\ndef loss(theta, batch):\n    raise KeyError('w')\n",
    "theta0": "n = 3\ntheta0 = [[1.0], [float('nan')]]\ndef loss(theta, b):\n    return theta\n",
}
MODULE_NEEDLE = {"syntax": "SyntaxError", "nothing": "defines no n, theta0, loss",
                 "bad_n": "positive integer", "shape": "shape (R,)", "mixing": "mixes the rows",
                 "raises": "KeyError", "theta0": "flat list"}


@pytest.mark.parametrize("case", sorted(MODULE_BODY))
def test_refusals_of_a_module(tmp_path, case):
    path = tmp_path / f"{case}_problem.py"
    path.write_text(MODULE_BODY[case], encoding="utf-8")
    _refused({"module": str(path)}, "problem.module", f"{case}_problem.py", MODULE_NEEDLE[case])


def test_refusal_of_a_missing_module(tmp_path):
    _refused({"module": str(tmp_path / "gone.py")}, "problem.module", "gone.py")


def test_a_good_module_is_accepted(tmp_path):
    """The smallest module: a quadratic over n = 2 points, H by its exact sum."""
    path = tmp_path / "tiny.py"
    path.write_text("import torch\nn = 2\ntheta0 = [0.0, 0.0]\n_y = torch.tensor([[1.0, 0.0], "
                    "[0.0, 3.0]])\ndef loss(theta, index):\n"
                    "    return 0.5 * (theta[:, None, :] - _y[index].to(theta)).square()"
                    ".sum(-1).mean(1)\n", encoding="utf-8")
    problem = make_problem("module", module=str(path))
    h = mean_field(problem, ClipRule("none"), torch.tensor([[0.0, 0.0]], dtype=torch.float64))
    np.testing.assert_allclose(h.value.numpy(), [[-0.5, -1.5]], rtol=1e-15)  # θ − mean y


@pytest.mark.parametrize("problem", [
    {"name": "logistic", "dataset": "breast_cancer"},
    {"name": "mlp-classification", "dataset": "iris", "hidden": 3},
])
def test_xi_over_a_dataset_runs_compiled_and_equals_the_torch_step(problem):
    """The xi observer with H the exact sum over the dataset (B = 1) in the kernel: every
    recorded array against the torch step (whose H is simulations.engine.mean_field's) to 1e-12."""
    run = RunSpec.from_dict({"problem": problem, "clip": {"rule": "classic", "lam": 0.5},
                             "schedule": "0.5/(t+1)", "paths": 4, "steps": 12,
                             "record": ["exits", "xi"], "xi_paths": 3})
    fast = simulate(run, Execution(backend="compiled"))
    slow = simulate(run, Execution(backend="torch"))
    assert fast.setting["backend"] == "compiled"
    assert np.abs(fast.arrays["xi_max"]).max() > 1e-3
    for name, value in slow.arrays.items():
        np.testing.assert_allclose(fast.arrays[name], value, rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def test_the_readme_worked_example_at_a_quick_size(tmp_path, capsys):
    """The README's breast cancer example (examples/breast_cancer_*.toml) through verify, the
    rare command and paper_figs --scenario at 16 paths × 40 steps: the compiled step ran, no
    claim is violated, T1 does not apply (the standardized data are linearly separable, so
    E[ℓ] has no minimiser) and L1-det's prediction is λ·Σ_{t<T} 1/(t+1) written out."""
    from dataclasses import replace

    from simulations.verify.cli import main
    from simulations.verify.runner import run_scenario, verify

    steps = 40
    scenarios = [replace(sc, run=sc.run.replace(paths=16, steps=steps))
                 for sc in (load_scenario(ROOT / "examples" / f"breast_cancer_{rule}.toml")
                            for rule in ("classic", "adaptive"))]
    classic, adaptive = scenarios
    assert run_scenario(classic).setting["backend"] == "compiled"
    # T1 (a root search in 31 dimensions) once, on the classic scenario
    rows = verify([classic], progress=False) + verify(
        [adaptive], [c for c in adaptive.claims if c != "T1"], progress=False)
    verdicts = {(r.scenario, r.claim): r.verdict for r in rows}
    assert "violated" not in verdicts.values(), verdicts
    assert verdicts[("breast-cancer-classic", "T1")] == "does not apply"
    assert verdicts[("breast-cancer-adaptive", "C2")] == "holds"
    det = next(r for r in rows if r.claim == "L1-det")
    assert f"{sum(1.0 / (t + 1) for t in range(steps)):.4g}" in det.prediction
    small = tmp_path / "small.toml"
    small.write_text((ROOT / "examples" / "breast_cancer_classic.toml").read_text()
                     .replace("steps = 1000", f"steps = {steps}"), encoding="utf-8")
    assert main(["rare", "--scenario", str(small), "--event", "exit", "--level", "1.2",
                 "--particles", "20", "--replicas", "2", "--json"]) == 0
    assert '"probability"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["rare", "--scenario", str(small), "--lam", "2", "--event", "exit", "--level",
              "1.2"])
    assert "the chain comes from --scenario" in capsys.readouterr().err
    from paper_figs.__main__ import main as figures

    assert figures(["--scenario", str(small), "--quick", "--only", "fig_growth", "--out",
                    str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "breast-cancer-classic_fig2_growth.png").stat().st_size > 0
