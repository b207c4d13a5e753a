"""Coverage of the 95% intervals against exact probabilities on the ±1 walk.

The walk: quadratic, two-point law ±1000, classic clipping λ = 1, a(t) = 1, θ(0) = 0, so every
step is ±1; the event max_{s≤T}|θ(s)| ≥ r (``exit``, level r − 1/2), whose exact p comes from
dynamic programming over the walk in rationals (``benchmarks/rare.py``).

* Splitting (:func:`simulations.engine.rare.ams`): one seeded call with runs × replicas replicas per
  level r; a replica depends on (seed, replica) only, so the disjoint blocks of ``--replicas``
  consecutive replicas are ``--runs`` independent runs of that many replicas, each summarised
  as a run would be. For each run: the interval :func:`simulations.engine.rare.summarize` gives (the
  log-scale :func:`~simulations.engine.rare.log_interval`) and, on the same replicas, the Student-t
  interval of the mean (:func:`~simulations.engine.rare.interval`, the rule before it).
* Plain Monte Carlo (:func:`simulations.engine.run.simulate`): ``--runs`` disjoint blocks of
  ``--paths`` paths (T = ``--mc-steps``) per level, each giving k events in n paths and the
  Clopper–Pearson interval of :func:`simulations.verify.claims.verdicts.clopper_pearson`; beside it
  the exact coverage Σ_k P(Binomial(n, p) = k)·[p ∈ CP(k)].

Printed: one table row per case, level, interval (level × nominal × observed × runs), with the
runs whose interval lies below p ("low") and above p ("high"), the runs without an interval
(inconclusive) and the median ratio high end / low end.

    python -m benchmarks.coverage [--runs 200 --replicas 10 --particles 100 --kill 10
        --steps 200 --levels 70 86 100 --mc-steps 40 --mc-levels 14 18 22 --paths 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from scipy import stats

from benchmarks.cpu import cpu_name
from simulations.engine.rare import Splitting, ams, interval, summarize
from simulations.engine.run import simulate
from simulations.engine.spec import Chain, Execution, RunSpec
from simulations.verify.claims.verdicts import clopper_pearson
from theory.walk import walk_probability

WALK = {"problem": {"name": "quadratic", "noise": "discrete", "values": [-1000.0, 1000.0],
                    "probs": [0.5, 0.5], "theta0": 0.0},
        "clip": {"rule": "classic", "lam": 1.0}, "schedule": "1"}


def splitting_runs(steps: int, r: int, runs: int, replicas: int, particles: int, kill: int,
                   seed: int = 1) -> np.ndarray:
    """The replicas' estimates (runs, replicas) of P(max_{s≤T}|S_s| ≥ r): one call to ``ams``
    with runs·replicas replicas, on one thread, cut into blocks."""
    chain = Chain.from_dict({**WALK, "steps": steps, "seed": seed})
    res = ams(chain, Splitting(event="exit", level=r - 0.5, particles=particles, kill=kill,
                               replicas=runs * replicas), Execution(threads=1))
    return res.estimates.reshape(runs, replicas)


def splitting_coverage(estimates: np.ndarray, exact: float) -> dict[str, dict[str, float]]:
    """Per interval rule ("log", the one of ``summarize``; "t", mean ± t·se): covered, low,
    high, inconclusive run counts and the median high/low ratio, over the rows of
    ``estimates``."""
    rows = {"log": [], "t": []}
    for est in estimates:
        mean, new, _ = summarize(est)
        se = est.std(ddof=1) / np.sqrt(len(est))
        old = tuple(float(x) for x in interval(mean, se, len(est))) if se > 0 else new
        rows["log"].append(new)
        rows["t"].append(old)
    return {name: _count(np.array(ends, dtype=np.float64), exact) for name, ends in rows.items()}


def _count(ends: np.ndarray, exact: float) -> dict[str, float]:
    lo, hi = ends[:, 0], ends[:, 1]
    ok = np.isfinite(lo)
    with np.errstate(divide="ignore"):
        ratio = hi[ok] / lo[ok]
    return {"covered": int(np.sum(ok & (lo <= exact) & (exact <= hi))),
            "low": int(np.sum(ok & (hi < exact))), "high": int(np.sum(ok & (lo > exact))),
            "inconclusive": int(np.sum(~ok)), "runs": len(ends),
            "ratio": float(np.median(ratio)) if ok.any() else float("nan")}


def clopper_pearson_coverage(steps: int, r: int, runs: int, paths: int,
                             seed: int = 1) -> tuple[dict[str, float], float, float]:
    """(counts as :func:`splitting_coverage`, exact p, exact coverage) of the Clopper–Pearson
    interval of k/n, n = ``paths``, over ``runs`` blocks of one ``simulate`` run."""
    exact = float(walk_probability(steps, r))
    sim = simulate(RunSpec.from_dict({**WALK, "steps": steps, "paths": runs * paths,
                                      "seed": seed, "record": ["running_max"]}),
                   Execution(progress=False, threads=1))
    k = (np.asarray(sim.arrays["max_deviation"]) >= r - 0.5).reshape(runs, paths).sum(1)
    lo, hi = clopper_pearson(k, paths)
    counts = _count(np.column_stack([lo, hi]), exact)
    every = np.arange(paths + 1)
    lo_all, hi_all = clopper_pearson(every, paths)
    inside = (lo_all <= exact) & (exact <= hi_all)
    return counts, exact, float(np.sum(stats.binom.pmf(every, paths, exact)[inside]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--kill", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--levels", type=int, nargs="+", default=[70, 86, 100])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mc-steps", type=int, default=40)
    parser.add_argument("--mc-levels", type=int, nargs="*", default=[14, 18, 22])
    parser.add_argument("--paths", type=int, default=1000)
    args = parser.parse_args()
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    print("| case | level | exact p | interval | nominal | observed | runs | low | high "
          "| inconclusive | median high/low |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in args.levels:
        start = time.perf_counter()
        exact = float(walk_probability(args.steps, r))
        est = splitting_runs(args.steps, r, args.runs, args.replicas, args.particles,
                             args.kill, args.seed)
        case = (f"AMS T={args.steps} N={args.particles} k={args.kill} "
                f"n={args.replicas}")
        for name, c in splitting_coverage(est, exact).items():
            label = {"log": "log scale (summarize)", "t": "mean ± t·se (before)"}[name]
            _row(case, f"r={r}", exact, label, c)
        print(f"<!-- r={r}: {time.perf_counter() - start:.1f} s -->", flush=True)
    for r in args.mc_levels:
        c, exact, exact_cover = clopper_pearson_coverage(args.mc_steps, r, args.runs,
                                                         args.paths, args.seed)
        _row(f"plain MC T={args.mc_steps} n={args.paths}", f"r={r}", exact,
             f"Clopper–Pearson (exact coverage {exact_cover:.4f})", c)


def _row(case: str, level: str, exact: float, label: str, c: dict[str, float]) -> None:
    print(f"| {case} | {level} | {exact:.3e} | {label} | 0.95 | "
          f"{c['covered'] / c['runs']:.3f} | {c['runs']} | {c['low']} | {c['high']} | "
          f"{c['inconclusive']} | {c['ratio']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
