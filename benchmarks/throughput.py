"""Throughput of the engine against its peers, in trajectory-steps per second (R·T / seconds).

    python benchmarks/throughput.py                 # the full table (about 20-40 min on 2 cores)
    python benchmarks/throughput.py --quick         # R = 1024 only, T = 50, one round
    python benchmarks/throughput.py --skip-jax      # without JAX (otherwise JAX is required)

Cells: linear regression (P = 21) and the 20-25-1 tanh MLP (P = 551) on
make_regression(1000, 20, noise 0.1); minibatch B = 1 and 32; R = 1024 and 65536 paths; T = 200
steps of classic clipping with λ = 1 and a(t) = 0.05/(1 + t/100); float32. Implementations:

* ``engine``: ``simulations.engine.run.simulate`` with ``record=()`` (only the blow-up guard), its
  own counter-based sampling, the backend it picks by itself (the compiled numba kernel here);
* ``jax``: ``jax.vmap`` + ``jax.jit`` + ``lax.scan`` with ``optax.clip_by_global_norm``, drawing
  its indices inside the scan;
* ``vmap``: ``torch.func.vmap(torch.func.grad(...))`` with a Python loop over steps;
* ``loop``: a Python loop over paths, each an ``nn.Module`` with ``torch.optim.SGD`` and
  ``clip_grad_norm_``; its rate does not depend on R, so it is measured at R = 64 only and
  reported as a rate (marked "R = 64"), with torch on one thread (faster for its tiny ops).

``vmap`` at R = 65536 is not run where its rate at R = 1024 predicts a run longer than
``VMAP_BUDGET`` seconds; the table says "not run" there rather than extrapolate.

Compilation is excluded for everyone: JAX and the engine's numba kernels run once at the same
shapes (JAX) or a small size (engine) before the clock starts. Each cell is measured in
``--rounds`` rounds, the implementations alternating in a rotating order, and the median is
reported with the spread (min-max); the engine wins a cell when its slowest round beats the
peer's fastest, and ties when the spreads overlap.

Before any timing, every implementation is checked to give the same endpoints as the float64
numpy reference for the same minibatch indices (the engine's own indices), to 1e-10 relative
(the loop to 1e-10 against the reference with ``clip_grad_norm_``'s ``1e-6`` added to the norm).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines as bl  # noqa: E402
from cpu import cpu_name  # noqa: E402

from simulations.engine import sampling  # noqa: E402
from simulations.engine.problems import make_problem  # noqa: E402
from simulations.engine.run import simulate  # noqa: E402
from simulations.engine.spec import Execution, RunSpec  # noqa: E402

SCHEDULE = "0.05/(1+t/100)"
LAM = 1.0
PROBLEMS = {"linear": "linear-regression", "mlp": "mlp-regression"}
#: vmap runs at a larger R are skipped (and reported as not run) when its rate measured at the
#: first R predicts more than this many seconds per run
VMAP_BUDGET = 60.0


def engine_indices(seed: int, paths: int, steps: int, batch: int) -> np.ndarray:
    """The engine's minibatch indices (T, R, B) for paths 0..R-1."""
    w = sampling.words(seed, torch.arange(paths), range(steps), batch)
    return sampling.uniform_indices(w, 1000).numpy()


@functools.cache
def run_spec(model: str, paths: int, steps: int, batch: int, dtype, seed: int) -> RunSpec:
    """The run (built and checked once per size, outside any timing)."""
    return RunSpec.from_dict({
        "problem": {"name": PROBLEMS[model]}, "clip": {"rule": "classic", "lam": LAM},
        "schedule": SCHEDULE, "paths": paths, "steps": steps, "batch": batch, "seed": seed,
        "dtype": dtype, "record": ()})


def run_engine(model: str, paths: int, steps: int, batch: int, dtype, seed: int = 0, **kw):
    """The engine's endpoints (``kw``: the Execution's settings, e.g. ``backend``)."""
    sim = simulate(run_spec(model, paths, steps, batch, dtype, seed),
                   Execution(progress=False, **kw))
    return sim.arrays["endpoints"], sim.setting["backend"]


def check(models=("linear", "mlp"), batches=(1, 32), paths=8, steps=50, skip_jax=False):
    """Endpoints of every implementation against the float64 reference; returns the rows."""
    rows, ok = [], True
    x, y = bl.make_data(np.float64)
    a = bl.step_sizes(steps)
    for model in models:
        problem = make_problem(PROBLEMS[model])
        theta0 = problem.initial(torch.arange(1), 0, torch.float64, "cpu")[0].numpy()
        for batch in batches:
            idx = engine_indices(0, paths, steps, batch)
            ref = bl.reference_numpy(model, x, y, theta0, idx, a, LAM)
            ref_eps = bl.reference_numpy(model, x, y, theta0, idx, a, LAM, norm_eps=1e-6)
            results = {
                "engine (auto)": (run_engine(model, paths, steps, batch, torch.float64)[0], ref),
                "engine (torch)": (run_engine(model, paths, steps, batch, torch.float64,
                                              backend="torch")[0], ref),
                "vmap": (bl.vmap_torch(model, x, y, theta0, idx, a, LAM), ref),
                "loop": (bl.loop_torch(model, x, y, theta0, idx, a, LAM), ref_eps),
            }
            if not skip_jax:
                results["jax"] = (bl.jax_scan(model, x, y, theta0, idx, a, LAM, paths, steps,
                                              batch), ref)
            for name, (got, want) in results.items():
                err = float(np.abs(got - want).max() / np.abs(want).max())
                ok &= err <= 1e-10
                rows.append({"model": model, "batch": batch, "impl": name, "rel_err": err})
                print(f"  check {model:6s} B={batch:<2d} {name:15s} rel err {err:.1e}",
                      flush=True)
    if not ok:
        raise SystemExit("correctness check failed: the implementations disagree")
    return rows


def time_cell(impl: str, model: str, paths: int, steps: int, batch: int, data, theta0) -> float:
    """Seconds for one run of ``impl`` (compilation excluded)."""
    x, y = data
    a = bl.step_sizes(steps).astype(np.float32)
    if impl == "engine":
        t0 = time.perf_counter()
        run_engine(model, paths, steps, batch, torch.float32)
        return time.perf_counter() - t0
    if impl == "jax":
        return bl.time_jax_scan(model, x, y, theta0, None, a, LAM, paths, steps, batch)[1]
    idx = np.random.default_rng(1).integers(0, 1000, (steps, paths, batch), dtype=np.int32)
    if impl == "vmap":
        return bl.time_vmap_torch(model, x, y, theta0, idx, a, LAM)[1]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the loop's tiny ops run faster on one thread than on two
    try:
        return bl.time_loop_torch(model, x, y, theta0, idx, a, LAM)[1]
    finally:
        torch.set_num_threads(threads)


def machine() -> dict:
    cpu = cpu_name()
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}
    try:
        import numba

        info["numba"], info["numba_threads"] = numba.__version__, numba.get_num_threads()
    except ImportError:
        pass
    try:
        import jax
        import optax

        info["jax"], info["optax"] = jax.__version__, optax.__version__
    except ImportError:
        pass
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="R = 1024 only, T = 50, 1 round")
    parser.add_argument("--skip-jax", action="store_true", help="leave JAX out")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--paths", type=int, nargs="+", default=[1024, 65536])
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.paths, args.steps, args.rounds = [1024], 50, 1
    if not args.skip_jax:
        try:
            import jax  # noqa: F401
            import optax  # noqa: F401
        except ImportError:
            raise SystemExit("JAX and optax are needed (pip install -e '.[bench]'), or pass "
                             "--skip-jax") from None
    info = machine()
    print(json.dumps(info), flush=True)
    print("correctness (float64, R = 8, T = 50):", flush=True)
    checks = check(skip_jax=args.skip_jax)
    impls = ["engine", "vmap"] + ([] if args.skip_jax else ["jax"])
    cells, vmap_rate = [], {}
    for model in ("linear", "mlp"):
        problem = make_problem(PROBLEMS[model])
        theta0 = problem.initial(torch.arange(1), 0, torch.float32, "cpu")[0].numpy()
        data = bl.make_data(np.float32)
        for batch in (1, 32):
            run_engine(model, 64, 4, batch, torch.float32)  # compile the kernel first
            loop_s = [time_cell("loop", model, 64, args.steps, batch, data, theta0)
                      for _ in range(args.rounds)]
            loop_rates = [64 * args.steps / s for s in loop_s]
            for paths in args.paths:
                rates = {name: [] for name in impls}
                for rnd in range(args.rounds):
                    order = impls[rnd % len(impls):] + impls[:rnd % len(impls)]
                    for name in order:
                        if name == "vmap" and vmap_rate.get((model, batch)) and (
                                paths * args.steps / vmap_rate[(model, batch)] > VMAP_BUDGET):
                            continue  # not run: see VMAP_BUDGET
                        secs = time_cell(name, model, paths, args.steps, batch, data, theta0)
                        rates[name].append(paths * args.steps / secs)
                        print(f"  {model:6s} B={batch:<2d} R={paths:<6d} round {rnd} {name:6s} "
                              f"{rates[name][-1]:.4g} traj-steps/s", flush=True)
                if rates["vmap"] and (model, batch) not in vmap_rate:
                    vmap_rate[(model, batch)] = statistics.median(rates["vmap"])
                cell = {"model": model, "batch": batch, "paths": paths, "steps": args.steps,
                        "rates": rates, "loop_rates_R64": loop_rates}
                cells.append(cell)
                _write(args.out, {"machine": info, "checks": checks, "cells": cells,
                                  "partial": True})
    result = {"machine": info, "command": " ".join(["python"] + sys.argv), "checks": checks,
              "cells": cells, "load_average_at_end": os.getloadavg()}
    _write(args.out, result)
    print(markdown(result))
    return 0


def _write(out: str, result: dict) -> None:
    """Write ``result`` as JSON atomically (after every cell, so a stopped run keeps its cells)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, out)


def _fmt(rates: list[float]) -> str:
    return (f"{statistics.median(rates):.3g} ({min(rates):.3g}–{max(rates):.3g})"
            if rates else "not run")


def markdown(result: dict) -> str:
    """The results table: median (min–max) rates and the engine's ratios."""
    impls = [k for k in ("engine", "jax", "vmap") if k in result["cells"][0]["rates"]]
    head = ["model", "B", "R"] + impls + ["loop (R = 64)", "engine / jax", "verdict vs jax",
                                          "engine / loop"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in result["cells"]:
        r = c["rates"]
        eng = statistics.median(r["engine"])
        row = [c["model"], str(c["batch"]), str(c["paths"])] + [_fmt(r[k]) for k in impls]
        row.append(_fmt(c["loop_rates_R64"]))
        if "jax" in r:
            verdict = ("win" if min(r["engine"]) > max(r["jax"]) else
                       "loss" if max(r["engine"]) < min(r["jax"]) else "tie")
            row += [f"{eng / statistics.median(r['jax']):.2f}", verdict]
        else:
            row += ["—", "—"]
        row.append(f"{eng / statistics.median(c['loop_rates_R64']):.0f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
