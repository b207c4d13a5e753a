"""Time the splitting runs of Figure 1 (``paper_figs.fig_blowup.AMS_RUNS``, full size), as the
figure makes them, on the code found first on ``sys.path`` (so the same file times another
checkout: ``PYTHONPATH=OTHER python benchmarks/fig1_splitting.py``).

    python benchmarks/fig1_splitting.py --panel b [--replicas N] [--backend auto|torch]

``--replicas`` runs the first N replicas only (each replica's estimate depends on the seed and
its index alone, :mod:`simulations.rare`), to time the slow code at a fraction of its cost.
Prints the wall time, the iterations, the trajectory-steps and the estimates at the levels.
"""

from __future__ import annotations

import argparse
import time

from paper_figs.fig_blowup import AMS_IMPORTANCE, AMS_RUNS, LAM, SCENARIOS, SCHEDULE

try:
    from simulations.engine.rare import Splitting, ams
    from simulations.engine.spec import Chain, Execution
except ImportError:  # a checkout from before simulations/engine/
    from simulations.rare import Splitting, ams  # type: ignore[no-redef]
    from simulations.spec import Chain, Execution  # type: ignore[no-redef]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", choices=("a", "b"), default="b")
    parser.add_argument("--replicas", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3000, help="T of the full figure")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    run = AMS_RUNS[args.panel][1]
    chain = Chain.from_dict({
        "problem": {"name": "quadratic", "noise": "normal", "mean": SCENARIOS["near"],
                    "sd": 1.0, "theta0": 0.0},
        "clip": {"rule": "classic", "lam": LAM}, "schedule": SCHEDULE, "steps": args.steps,
        "seed": 5})
    split = Splitting(event="exit" if args.panel == "a" else "xi", level=max(run["levels"]),
                      levels=tuple(run["levels"]), importance=AMS_IMPORTANCE,
                      particles=run["particles"], kill=run["kill"],
                      replicas=args.replicas or run["replicas"])
    start = time.perf_counter()
    r = ams(chain, split, Execution(backend=args.backend))
    wall = time.perf_counter() - start
    assert r.curve is not None
    print(f"panel {args.panel}: {wall:.1f} s, backend {r.setting['backend']}, "
          f"{split.replicas} replicas, {r.iterations} iterations, "
          f"{r.trajectory_steps} trajectory-steps")
    print("estimates:", " ".join(f"{x:.3g}" for x in r.curve.probability))


if __name__ == "__main__":
    main()
