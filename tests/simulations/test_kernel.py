"""The compiled kernel's own parts, against independent computations: Φ⁻¹ against torch's
ndtri (and the normal CDF), and the size of every function's signature in simulations/.

The kernel's results as a whole are held against the slow reference, cell by cell, in
test_engine.py (both steps) and, for the splitting, in test_rare.py."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import torch
from scipy import special

from simulations.engine import kernel

ROOT = Path(__file__).resolve().parents[2]


def _elementwise(f):
    """f applied to each element of a float64 array, compiled as the kernel is."""
    from numba import njit

    @njit(error_model="numpy")
    def many(x):
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = f(x[i])
        return out

    return many


_ndtri = _elementwise(kernel.ndtri)
_tanh64 = _elementwise(kernel._tanh64)


def test_ndtri_is_torchs_to_a_few_ulps_on_the_whole_grid():
    """Uniforms on the engine's 52-bit grid, the central region, both tails, both rational
    pairs (z < 8 and z ≥ 8, y = e^−32 ≈ 1.3e-14 between them) and the extreme grid points."""
    rng = np.random.default_rng(0)
    grid = (np.floor(rng.random(200_000) * 2.0**52) + 0.5) / 2.0**52
    edges = np.array([0.5 / 2**52, 1 - 0.5 / 2**52, 1e-300, 1e-14, 1.3e-14, np.exp(-32.0),
                      np.exp(-2.0), 1 - np.exp(-2.0), 0.5, 0.25, 0.75, 1e-5, 1 - 1e-5])
    u = np.concatenate([grid, edges, 10.0 ** -rng.uniform(0, 300, 20_000)])
    got = _ndtri(u)
    want = torch.special.ndtri(torch.from_numpy(u)).numpy()
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)  # Φ⁻¹(1/2) = 0 exactly
    assert np.all(np.isfinite(got))
    assert rel.max() < 4e-15, (u[rel.argmax()], got[rel.argmax()], want[rel.argmax()])
    # and it inverts the normal CDF
    np.testing.assert_allclose(special.ndtr(got[:1000]), u[:1000], rtol=1e-13)


def test_ndtri_comparison_can_fail():
    u = np.array([0.3, 0.9, 1e-20])
    assert not np.allclose(_ndtri(u), special.ndtri(u * (1 + 1e-12)), rtol=1e-15, atol=0)


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return np.abs(got - exact) / np.spacing(np.maximum(np.abs(exact), 1e-300))


def test_tanh64_is_within_two_ulps_of_mpmath():
    """Both branches (|x| < 0.625 and beyond), the switch between them, the tiny and the huge,
    against tanh to 120 bits; ±inf and NaN."""
    import mpmath

    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(-25, 25, 4001), rng.normal(0, 3, 4000),
                        np.geomspace(1e-300, 40, 2000), -np.geomspace(1e-300, 40, 2000),
                        [0.625, -0.625, np.nextafter(0.625, 0), 19.06, 20.0, 1e300, -1e300]])
    with mpmath.workprec(120):
        exact = np.array([float(mpmath.tanh(mpmath.mpf(float(v)))) for v in x])
    got = _tanh64(x)
    assert _ulps(got, exact).max() <= 2, x[_ulps(got, exact).argmax()]
    assert np.all(_tanh64(np.array([np.inf, -np.inf])) == [1.0, -1.0])
    assert np.isnan(_tanh64(np.array([np.nan]))[0])


def test_tanh64_comparison_can_fail():
    x = np.linspace(-3, 3, 101)
    assert _ulps(_tanh64(x) * (1 + 4e-16), np.tanh(x)).max() > 2


def _parameter_counts():
    for path in sorted((ROOT / "simulations").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                count = len(names) + bool(a.vararg) + bool(a.kwarg)
                count -= bool(names) and names[0] in ("self", "cls")
                yield count, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"


def test_no_function_in_simulations_takes_more_than_eight_parameters():
    counts = list(_parameter_counts())
    assert len(counts) > 300  # the walk saw the package
    too_many = [where for count, where in counts if count > 8]
    assert not too_many, too_many
    assert max(count for count, _ in counts) == 8


def test_a_student_t_law_with_real_df_goes_to_the_torch_step():
    """The kernel draws Student-t with an integer ν only: ``supports`` is false for ν = 2.5
    (so the engine runs the torch step) and ``problem_args`` refuses it; ν = 3.0 stays."""
    from simulations.engine.problems import make_problem
    from simulations.engine.rules import ClipRule

    rule = ClipRule("classic", lam=1.0)
    real = make_problem("quadratic", noise="student-t", df=2.5)
    assert not kernel.supports(real, rule, "cpu")
    try:
        kernel.problem_args(real, 1, np.float64)
    except ValueError as error:
        assert "integer df" in str(error)
    else:
        raise AssertionError("problem_args accepted df = 2.5")
    whole = make_problem("quadratic", noise="student-t", df=3.0)
    assert kernel.supports(whole, rule, "cpu")
    assert kernel.problem_args(whole, 1, np.float64).df == 3

