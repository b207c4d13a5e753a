r"""Strong scaling of one run across torch.distributed ranks (gloo, this machine, one thread
each): the same run on 1 and on 2 processes, alternated, with each rank's compute time, rank
0's gather time and the bytes gathered.

    python -m benchmarks.scaling [--paths 40000] [--steps 2000] [--repeats 3]

Each measurement starts the ranks as torchrun does (RANK, WORLD_SIZE, MASTER_ADDR, ...) and
times :func:`simulations.engine.run.simulate` inside them, so process start-up and the
compilation cache are left out. Efficiency E(2) = T(1) / (2·T(2)), T the wall time of the
slowest rank. The arrays of both world sizes are checked to be bit-identical. Prints a table
and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RANK = r"""
import hashlib, json, sys, time
import numpy as np
import torch.distributed as dist
from simulations.engine import distributed
from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec

world = int(sys.argv[3])
if world > 1:
    dist.init_process_group("gloo")
spec = RunSpec.from_dict({"problem": {"name": "quadratic", "noise": "normal", "mean": 1.0,
    "sd": 2.0, "dim": 2}, "clip": {"rule": "classic", "lam": 0.5}, "schedule": "1/(t+1)^0.6",
    "paths": int(sys.argv[1]), "steps": int(sys.argv[2]), "radii": [1.0, 3.0]})
gather = [0.0, 0]
original = distributed.Communicator.gather
def timed(self, obj, everywhere=False):
    began = time.perf_counter()
    out = original(self, obj, everywhere)
    gather[0] += time.perf_counter() - began
    gather[1] += sum(a.nbytes for _, arrays in obj for a in arrays.values())
    return out
distributed.Communicator.gather = timed
began = time.perf_counter()
sim = simulate(spec, Execution(threads=1, progress=False))
wall = time.perf_counter() - began
sha = {k: hashlib.sha256(sim.arrays[k].tobytes()).hexdigest()[:12] for k in sorted(sim.arrays)}
print(json.dumps({"wall": wall, "gather": gather[0], "bytes": gather[1], "sha": sha}))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(world: int, paths: int, steps: int) -> list[dict]:
    """Each rank's {wall, gather, bytes, sha} for one run on ``world`` processes."""
    port, procs = _port(), []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world),
               "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", RANK, str(paths), str(steps), str(world)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, text=True))
    out = []
    for proc in procs:
        text, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"rank failed with status {proc.returncode}")
        out.append(json.loads(text.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling")
    parser.add_argument("--paths", type=int, default=40000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from benchmarks.cpu import cpu_name

    measure(1, 64, 10)  # the kernel's compilation cache, loaded once before timing
    times: dict[int, list[float]] = {1: [], 2: []}
    gathers, sizes, shas = [], [], set()
    for _ in range(args.repeats):
        for world in (1, 2):  # alternated, so that a change of load hits both
            ranks = measure(world, args.paths, args.steps)
            times[world].append(max(r["wall"] for r in ranks))
            shas.add(json.dumps(ranks[0]["sha"], sort_keys=True))
            if world == 2:
                gathers.append(ranks[0]["gather"])
                sizes.append(sum(r["bytes"] for r in ranks))
    best = {w: min(t) for w, t in times.items()}
    work = args.paths * args.steps
    record = {
        "paths": args.paths, "steps": args.steps, "cpu": cpu_name(), "cores": os.cpu_count(),
        "load": os.getloadavg()[0], "T1_s": best[1], "T2_s": best[2],
        "efficiency": best[1] / (2 * best[2]),
        "rate_per_rank_path_steps_s": work / best[1],
        "gather_s": min(gathers), "gathered_bytes": sizes[0],
        "bytes_per_path": sizes[0] / args.paths, "bit_identical": len(shas) == 1,
        "times": times, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(f"{args.paths} paths × {args.steps} steps, one thread per rank, {record['cpu']}, "
          f"load {record['load']:.1f}")
    print(f"1 rank {best[1]:.2f} s, 2 ranks {best[2]:.2f} s: efficiency "
          f"{record['efficiency']:.2f}; gather {record['gather_s'] * 1e3:.1f} ms for "
          f"{sizes[0] / 1e6:.1f} MB; bit-identical: {record['bit_identical']}")
    print(json.dumps(record))
    return 0 if record["bit_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
