"""The ``xi`` observer on the compiled kernel against the torch step (float64), on every way
the kernel evaluates H (closed form: normal and Student-t laws, per-coordinate rules, B > 1;
finite sum over atoms: discrete and point laws) and on blow-ups: every array within 1e-12 of
the path's scale, integers equal. Where the kernel has no H (Monte Carlo), the torch step runs
and the record says so."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec

NORMAL = {"name": "quadratic", "noise": "normal", "mean": 1.0, "sd": 2.0, "theta0": 3.0}
T3 = {"name": "quadratic", "noise": "student-t", "df": 3, "mean": 0.5, "sd": 1.0, "theta0": 4.0}
TWO_POINT = {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0],
             "probs": [0.9, 0.1], "theta0": 0.0}
# g = −10θ is clipped to ‖g/c‖ = λ‖θ‖: θ(t+1) = (1 + λa(t))θ(t), Π(1 + 2/(t+2)) ≈ 2·10⁴ by
# T = 200, past the guard 10³
CONCAVE = {"name": "quadratic", "noise": "point", "mean": 0.0, "curvature": -10.0,
           "theta0": 1.0}

CASES = [
    (NORMAL, {"rule": "classic", "lam": 1.0}, 1),
    (NORMAL, {"rule": "adaptive", "lam": 0.5, "eps": 0.1}, 1),
    (NORMAL, {"rule": "unitwise", "lam": 0.5, "eps": 0.1}, 1),
    ({**NORMAL, "dim": 3}, {"rule": "value", "lam": 0.7}, 1),
    ({**NORMAL, "dim": 2}, {"rule": "none"}, 1),
    (NORMAL, {"rule": "projection", "ball": 2.0}, 1),
    (NORMAL, {"rule": "classic", "lam": 1.0}, 4),
    (T3, {"rule": "classic", "lam": 1.0}, 1),
    ({**T3, "df": 1}, {"rule": "classic", "lam": 1.0}, 1),
    ({**T3, "df": 4}, {"rule": "adaptive", "lam": 0.5, "eps": 0.1}, 1),
    (TWO_POINT, {"rule": "classic", "lam": 1.0}, 1),
    (TWO_POINT, {"rule": "adaptive", "lam": 0.3, "eps": 0.5}, 1),
    ({**TWO_POINT, "dim": 2}, {"rule": "classic", "lam": 1.0}, 1),
    ({**CONCAVE, "dim": 2}, {"rule": "adaptive", "lam": 2.0, "eps": 0.1}, 3),
]


def _run(problem, clip, batch, backend, **extra):
    spec = RunSpec.from_dict({"problem": problem, "clip": clip, "schedule": "1/(t+2)",
                              "steps": 200, "batch": batch, "paths": 40, "xi_paths": 28,
                              "record": ["xi", "exits", "running_max"], "radii": [2.0],
                              **extra})
    return simulate(spec, Execution(backend=backend, chunk_size=16, progress=False))


@pytest.mark.parametrize("problem, clip, batch", CASES)
def test_compiled_xi_is_the_torch_xi(problem, clip, batch):
    guard = {"guard": 1e3} if problem.get("curvature") == -10.0 else {}
    got = _run(problem, clip, batch, "compiled", **guard)
    want = _run(problem, clip, batch, "torch", **guard)
    assert got.setting["backend"] == "compiled" and want.setting["backend"] == "torch"
    assert set(got.arrays) == set(want.arrays)
    for key in ("blown_step", "first_exit", "first_exit_norm"):
        np.testing.assert_array_equal(got.arrays[key], want.arrays[key], err_msg=key)
    scale = np.maximum(1.0, want.arrays["xi_max"])  # per ξ path
    for key in ("xi", "xi_norm_at", "xi_sup_after", "xi_max", "xi_sum_sq"):
        g, w = got.arrays[key], want.arrays[key]
        s = scale.reshape((-1,) + (1,) * (w.ndim - 1)) ** (2 if key == "xi_sum_sq" else 1)
        assert np.all(np.abs(g - w) <= 1e-12 * s), (key, np.max(np.abs(g - w) / s))
    assert want.arrays["xi"].shape[0] == 28


def test_the_blowup_case_blows_up_and_the_xi_norms_stay():
    """The concave case is a blow-up case (else it tests nothing of the blow-up branch), and a
    blown-up path's ‖ξ‖ at later checkpoints is its last ‖ξ‖."""
    sim = _run({**CONCAVE, "dim": 2}, {"rule": "adaptive", "lam": 2.0, "eps": 0.1}, 3,
               "compiled", guard=1e3)
    blown = sim.arrays["blown_step"][:28]
    assert (blown > 0).all()
    ck = sim.arrays["checkpoint_steps"]
    for r in range(28):
        later = sim.arrays["xi_norm_at"][r, ck >= blown[r]]
        np.testing.assert_array_equal(later, np.linalg.norm(sim.arrays["xi"][r]))


def test_monte_carlo_h_runs_on_the_torch_step():
    sim = _run({**NORMAL, "dim": 2}, {"rule": "classic", "lam": 1.0}, 1, "auto")
    assert sim.setting["backend"] == "torch"
    with pytest.raises(ValueError, match="xi"):
        _run({**NORMAL, "dim": 2}, {"rule": "classic", "lam": 1.0}, 1, "compiled")
