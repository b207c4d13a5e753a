"""Throughput of the torch step on a GPU: trajectory-steps per second for the quadratic and the
MLP at R = 10⁶ paths, eager and under ``torch.compile`` (``Execution(compile=True)``, which
fuses the step into one graph and so avoids a kernel launch per operation).

    python benchmarks/gpu.py [--paths 1000000] [--steps 200] [--dtype float32]

Prints one line per (problem, mode): the rate R·T/seconds of the second of two runs (the first
compiles and warms up), the device, and the largest difference of the endpoints from the
CPU's compiled kernel on the first 256 paths (the same draws, so the same paths up to
rounding). Needs CUDA; without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec

CELLS = {
    "quadratic": {"name": "quadratic", "noise": "normal"},
    "mlp-regression": {"name": "mlp-regression"},
}


def _run(problem: dict, paths: int, steps: int, dtype: str, execution: Execution):
    spec = RunSpec.from_dict({"problem": problem, "clip": {"rule": "classic", "lam": 1.0},
                              "schedule": "0.05/(1+t/100)", "paths": paths, "steps": steps,
                              "dtype": dtype, "record": ["running_max"]})
    start = time.perf_counter()
    sim = simulate(spec, execution)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return sim, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    device = torch.cuda.get_device_name(0)
    for name, problem in CELLS.items():
        check, _ = _run(problem, 256, args.steps, args.dtype, Execution(progress=False))
        for compile_step in (False, True):
            ex = Execution(device="cuda", compile=compile_step, progress=False,
                           chunk_size=args.paths)
            _run(problem, min(args.paths, 4096), args.steps, args.dtype, ex)  # warm-up
            sim, seconds = _run(problem, args.paths, args.steps, args.dtype, ex)
            gap = np.abs(sim.arrays["endpoints"][:256] - check.arrays["endpoints"]).max()
            print(f"{name:16s} {'compiled' if compile_step else 'eager':8s} "
                  f"{args.paths * args.steps / seconds:.3g} traj-steps/s  "
                  f"({seconds:.2f} s, R = {args.paths}, T = {args.steps}, {args.dtype}, "
                  f"{device}; max |θ(T) − CPU| = {gap:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
