"""The rate of one scenario's run with its claims' observers, and with fewer of them: the time of
``simulate`` alone (no claims, nothing saved), after a small warm-up run that loads or compiles
the kernel.

    python benchmarks/scenario_rate.py simulations/verify/suites/paper/01-paper-numbers.toml \\
        --paths 100000 --steps 1000

Prints, for the scenario's own record, the same without ``xi``, and ``running_max`` alone: the
wall seconds, the trajectory-steps per second (paths × steps / wall) and the process's CPU
seconds. The scenario's ``xi_paths`` and ``keep_paths`` are its quick sizes unless ``--full``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from simulations.engine.run import simulate  # noqa: E402 (after the path)
from simulations.engine.spec import Execution  # noqa: E402
from simulations.verify import runner  # noqa: E402
from simulations.verify.scenarios import load_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--paths", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--full", action="store_true", help="the scenario's [full] table")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario).sized(args.full)
    base = runner.run_of(scenario).replace(paths=args.paths, steps=args.steps)
    print(f"{scenario.name}: record {', '.join(base.record)}; xi_paths {base.xi_paths}")
    records = [base.record, tuple(r for r in base.record if r != "xi"), ("running_max",)]
    for record in dict.fromkeys(records):
        run = base.replace(record=record)
        simulate(run.replace(paths=64, steps=10), Execution(progress=False))
        wall, cpu = time.perf_counter(), time.process_time()
        simulate(run, Execution(progress=False))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"  {', '.join(record)}: {wall:.2f} s, {args.paths * args.steps / wall:.3g} "
              f"traj-steps/s, {cpu:.2f} CPU s")


if __name__ == "__main__":
    main()
