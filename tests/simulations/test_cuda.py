"""The torch step on CUDA against the CPU's compiled kernel (skipped without a GPU): the same
draws give the same paths up to rounding, eager and under torch.compile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("problem, rule", [
    ({"name": "quadratic", "noise": "normal", "dim": 3}, {"rule": "classic", "lam": 1.0}),
    ({"name": "quadratic", "noise": "student-t", "df": 3}, {"rule": "adaptive", "lam": 1.0,
                                                            "eps": 0.1}),
    ({"name": "mlp-regression", "n": 50, "dim": 4, "hidden": 5}, {"rule": "layerwise",
                                                                  "lam": 50.0, "eps": 1.0}),
])
@pytest.mark.parametrize("compile_step", [False, True])
def test_cuda_matches_the_cpu(problem, rule, compile_step):
    spec = RunSpec.from_dict({"problem": problem, "clip": rule, "schedule": "0.05/(1+t/100)",
                              "paths": 64, "steps": 50, "radii": [0.5, 2.0]})
    cpu = simulate(spec, Execution(progress=False))
    gpu = simulate(spec, Execution(device="cuda", compile=compile_step, progress=False))
    assert cpu.setting["backend"] == "compiled" and gpu.setting["backend"] == "torch"
    for key, want in cpu.arrays.items():
        got = gpu.arrays[key]
        if want.dtype.kind in "iu":
            np.testing.assert_array_equal(got, want, err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=key)
