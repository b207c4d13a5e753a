"""``--dry-run`` estimates against the times taken: ``python benchmarks/dry_run.py [--rounds 2]``.

For the quick paper suite (``python -m simulations verify``) and a user-like scenario
(``benchmarks/scenarios/student-t-10d.toml``), each round runs the command with ``--dry-run``
(its printed total) and then for real (wall time of the process, a fresh output folder, so the
compiled kernel is loaded from its cache as a user's second run would), alternating, and prints
actual / estimate with the load average. The results are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"quick suite": [], "student-t-10d": [
    "--scenario", str(ROOT / "benchmarks" / "scenarios" / "student-t-10d.toml")]}


def seconds(text: str) -> float:
    """The table's time ("0.4 s", "12 s", "3 min 4 s", "2 h 5 min") in seconds."""
    m = re.fullmatch(r"(?:(\d+) h )?(?:(\d+) min)? ?(?:([\d.]+) s)?", text.strip())
    if not m:
        raise ValueError(text)
    return 3600 * int(m.group(1) or 0) + 60 * int(m.group(2) or 0) + float(m.group(3) or 0)


def timed(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "simulations", "verify", "--quiet", *args],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    rounds = parser.parse_args().rounds
    for name, args in TARGETS.items():
        for i in range(rounds):
            load = os.getloadavg()[0]
            dry_wall, table = timed([*args, "--dry-run"])
            total = next(line for line in table.splitlines() if line.startswith("total"))
            estimate = seconds(re.split(r"\s{2,}", total)[3])
            with tempfile.TemporaryDirectory() as out:
                actual, _ = timed([*args, "--out", out])
            print(f"{name} round {i + 1}: estimate {estimate:.1f} s, actual {actual:.1f} s, "
                  f"actual/estimate {actual / estimate:.2f}; the dry run took {dry_wall:.1f} s; "
                  f"load {load:.1f} → {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
