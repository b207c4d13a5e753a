"""Adaptive multilevel splitting against plain Monte Carlo on the ±1 walk, p ≈ 1e-3 … 1e-12.

The walk: quadratic, two-point law ±1000, classic clipping λ = 1, a(t) = 1, θ(0) = 0, T = 200,
so every step is ±1; the event max_{s≤T}|θ(s)| ≥ r (``exit``, level r − 1/2). The exact p comes
from dynamic programming over the walk (rationals). For each r, AMS (N particles, kill k,
n replicas) is timed; plain Monte Carlo needs (1 − p)/(p·ρ²) paths of T steps for the relative
error ρ that AMS reached, and its wall time is that cost over the engine's measured rate
(trajectory-steps/s of ``simulate`` on the same walk). Plain MC is actually run only where that
is under ``--mc-budget`` seconds.

    python benchmarks/rare.py [--particles 100 --kill 20 --replicas 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from simulations.engine.rare import Splitting, ams
from simulations.engine.run import simulate
from simulations.engine.spec import Chain, Execution, RunSpec
from theory.walk import walk_probability

STEPS = 200
LEVELS = (48, 70, 86, 100)  # p ≈ 1e-3, 1e-6, 1e-9, 1e-12 at T = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--kill", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--mc-budget", type=float, default=60.0,
                        help="run plain MC where it takes less than this many seconds")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    # the engine's rate on this walk (trajectory-steps per second)
    paths = 100_000
    start = time.perf_counter()
    walk = {"problem": {"name": "quadratic", "noise": "discrete", "values": [-1000.0, 1000.0],
                        "probs": [0.5, 0.5], "theta0": 0.0},
            "clip": {"rule": "classic", "lam": 1.0}, "schedule": "1", "steps": STEPS,
            "record": ["running_max"]}
    quiet = Execution(progress=False)
    simulate(RunSpec.from_dict({**walk, "paths": paths, "seed": 1}), quiet)
    rate = paths * STEPS / (time.perf_counter() - start)
    rows = []
    print(f"torch threads {torch.get_num_threads()}, load {os.getloadavg()}, "
          f"plain MC rate {rate:.3g} trajectory-steps/s")
    print("| r | exact p | AMS p | 95% interval | rel. err. ρ | AMS steps | AMS wall s "
          "| MC steps at ρ | MC wall s at ρ | MC run: p (ρ) | steps ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in args.levels:
        exact = float(walk_probability(STEPS, r))
        start = time.perf_counter()
        chain = Chain.from_dict({**{k: walk[k] for k in ("problem", "clip", "schedule",
                                                          "steps")}, "seed": r})
        res = ams(chain, Splitting(event="exit", level=r - 0.5, particles=args.particles,
                                   kill=args.kill, replicas=args.replicas))
        wall = time.perf_counter() - start
        rho = res.relative_error
        mc_paths = (1 - exact) / (exact * rho**2)
        mc_steps = mc_paths * STEPS
        mc_wall = mc_steps / rate
        mc = None
        if mc_wall < args.mc_budget:
            n = int(np.ceil(mc_paths))
            sim = simulate(RunSpec.from_dict({**walk, "paths": n, "seed": 10_000 + r}), quiet)
            hits = sim.arrays["max_deviation"] >= r - 0.5
            p_mc = float(hits.mean())
            mc = (p_mc, float(np.sqrt(p_mc * (1 - p_mc) / n) / p_mc) if p_mc else None)
        row = {"r": r, "exact": exact, "probability": res.probability,
               "interval": list(res.interval), "relative_error": rho,
               "trajectory_steps": res.trajectory_steps, "iterations": res.iterations,
               "wall_s": wall, "mc_steps": mc_steps, "mc_wall_s": mc_wall, "mc_run": mc,
               "extinct": res.extinct}
        rows.append(row)
        mc_text = "—" if mc is None else f"{mc[0]:.3g} ({mc[1]:.2f})"
        ratio = mc_steps / res.trajectory_steps
        print(f"| {r} | {exact:.3e} | {res.probability:.3e} | [{res.interval[0]:.2e}, "
              f"{res.interval[1]:.2e}] | {rho:.3f} | {res.trajectory_steps:.3g} | {wall:.1f} | "
              f"{mc_steps:.2g} | {mc_wall:.2g} | {mc_text} | {ratio:.2g} |",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setting": vars(args), "rate": rate, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
