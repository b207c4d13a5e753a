"""The ``xi`` observer's cost: one run with ξ tracked on every path, on the compiled kernel and
on the torch step, and the same run without ξ on the kernel (alternating rounds in one process,
medians; the load average is printed because the machine is shared).

    python benchmarks/xi.py [--paths R] [--steps T] [--rounds N]

Settings: the quadratic with y ~ N(0, 1) (H in closed form) and with the two-point law
{0: 0.9, 10: 0.1} (H a sum over two atoms), classic λ = 1, a(t) = 1/(t+1), float64.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchmarks.cpu import cpu_name
from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec

PROBLEMS = {
    "normal": {"name": "quadratic", "noise": "normal", "mean": 0.0, "sd": 1.0},
    "two-point": {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0],
                  "probs": [0.9, 0.1]},
}


def _seconds(problem: dict, paths: int, steps: int, record: list[str], backend: str) -> float:
    spec = RunSpec.from_dict({"problem": problem, "clip": {"rule": "classic", "lam": 1.0},
                              "schedule": "1/(t+1)", "steps": steps, "paths": paths,
                              "xi_paths": paths, "record": record})
    start = time.perf_counter()
    simulate(spec, Execution(backend=backend, progress=False))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"# {cpu_name()}, {os.cpu_count()} CPUs; R = {args.paths}, T = {args.steps}")
    variants = {"compiled, xi": (["xi", "running_max"], "compiled"),
                "torch, xi": (["xi", "running_max"], "torch"),
                "compiled, no xi": (["running_max"], "compiled")}
    for name, problem in PROBLEMS.items():
        for record, backend in variants.values():  # compile and warm up
            _seconds(problem, 64, 8, record, backend)
        times: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for v, (record, backend) in variants.items():
                times[v].append(_seconds(problem, args.paths, args.steps, record, backend))
        load = os.getloadavg()[0]
        work = args.paths * args.steps
        for v, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:10s} {v:16s} median {med:7.2f} s  {work / med:9.3e} traj-steps/s  "
                  f"(rounds {', '.join(f'{t:.2f}' for t in ts)}; load {load:.1f})")


if __name__ == "__main__":
    main()
