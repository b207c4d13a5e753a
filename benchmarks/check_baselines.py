"""Self-check of benchmarks/baselines.py: correctness in float64, then a quick float32 timing.

Run: ``python benchmarks/check_baselines.py``. Exits 1 if any correctness check fails.

Tolerance: max|impl - ref| / max|ref| <= 1e-10 against :func:`reference_numpy`. ``loop_torch``
uses ``torch.nn.utils.clip_grad_norm_``, which scales by min(1, lam / (||g|| + 1e-6)), so it is
checked against the reference with ``norm_eps=1e-6``; its distance to the exact formula
(norm_eps=0) is printed too, for information.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from baselines import (
    initial_theta,
    jax_indices,
    jax_scan,
    loop_torch,
    make_data,
    reference_numpy,
    step_sizes,
    time_jax_scan,
    time_loop_torch,
    time_vmap_torch,
    vmap_torch,
)

TOL, LAM, SEED = 1e-10, 1.0, 0


def rel_err(u: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(u - ref).max() / np.abs(ref).max())


def check(R: int = 8, T: int = 50) -> bool:
    X, y = make_data(np.float64)
    a, ok = step_sizes(T), True

    def report(name: str, err: float, note: str = "") -> None:
        nonlocal ok
        ok &= err <= TOL
        print(f"{'PASS' if err <= TOL else 'FAIL'}  {name:<44} rel err {err:.1e}{note}")

    for model in ("linear", "mlp"):
        for B in (1, 32):
            tag = f"{model:<6} B={B:<2}"
            theta0 = initial_theta(model, SEED, np.float64)
            keep = theta0.copy()
            idx = np.random.default_rng(SEED + B).integers(0, 1000, size=(T, R, B))
            ref = reference_numpy(model, X, y, theta0, idx, a, LAM)
            ref_torch = reference_numpy(model, X, y, theta0, idx, a, LAM, norm_eps=1e-6)
            out = loop_torch(model, X, y, theta0, idx, a, LAM)
            report(f"{tag} loop_torch (vs ref, norm_eps=1e-6)", rel_err(out, ref_torch),
                   f"   [vs exact formula: {rel_err(out, ref):.1e}]")
            report(f"{tag} vmap_torch", rel_err(vmap_torch(model, X, y, theta0, idx, a, LAM), ref))
            out = jax_scan(model, X, y, theta0, idx, a, LAM, R, T, B, SEED)
            report(f"{tag} jax_scan (idx given)", rel_err(out, ref))
            idx_jax = jax_indices(SEED, T, R, B)
            ref_jax = reference_numpy(model, X, y, theta0, idx_jax, a, LAM)
            out = jax_scan(model, X, y, theta0, None, a, LAM, R, T, B, SEED)
            report(f"{tag} jax_scan (idx=None)", rel_err(out, ref_jax))
            if not np.array_equal(theta0, keep):
                print(f"FAIL  {tag} theta0 was modified in place")
                ok = False
    return ok


def timing(R: int = 1024, T: int = 200, B: int = 32, R_loop: int = 64) -> None:
    import torch

    print(f"timing: float32, torch threads {torch.get_num_threads()}, "
          f"os.cpu_count() {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    X, y = make_data(np.float32)
    a, rng = step_sizes(T), np.random.default_rng(SEED)
    for model in ("linear", "mlp"):
        theta0 = initial_theta(model, SEED, np.float32)
        idx = rng.integers(0, 1000, size=(T, R, B))
        jax_args = (LAM, R, T, B, SEED)
        runs = [
            (f"loop_torch     R={R_loop}", time_loop_torch, (idx[:, :R_loop], a, LAM)),
            (f"vmap_torch     R={R}", time_vmap_torch, (idx, a, LAM)),
            (f"jax_scan idx   R={R}", time_jax_scan, (idx, a, *jax_args)),
            (f"jax_scan None  R={R}", time_jax_scan, (None, a, *jax_args)),
        ]
        for name, fn, args in runs:
            out, sec = fn(model, X, y, theta0, *args)
            n_traj = out.shape[0]
            print(f"{model:<6} B={B} T={T} {name:<20} {sec:8.3f} s  "
                  f"{n_traj * T / sec:12.4g} trajectory-steps/s")


if __name__ == "__main__":
    passed = check()
    print("correctness:", "PASS" if passed else "FAIL")
    timing()
    sys.exit(0 if passed else 1)
