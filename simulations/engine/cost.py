r"""What a run will cost, said before it is paid (``--dry-run``): its trajectory-steps, its peak
memory and its time on this machine, estimated from short calibration runs of the same cell
(same problem, rule, schedule, dtype, observers, device and threads). Nothing is saved.

A plain run (:func:`run_cost`). After a warm-up (1 path, 1 step: it loads or compiles the
kernel; the numba dispatchers' cache misses say which) and a second such run (the fixed cost
a of a call), the same spec runs on p₁ = 8 and p₂ paths for s₁ = s₂/4 and s₂ = min(T, 512)
steps (p₂ grows ×4 until the run takes 0.1 s, within one chunk; the ``paths`` and ``xi``
observers' rows in the same proportion as in the run). The time of a chunk of p rows over s
steps is modelled as t(p, s) = a + e·p + s·(c₀ + c₁·p) (a cost per path, setting up and
finishing its arrays, one per step, Python's on the torch step, and one per path-step),
the four runs give e, c₀ and c₁, and the run of R paths in chunks of the engine's size over
T steps takes

    a + e·R + T·(n_chunks·c₀ + c₁·R).

The peak memory is :meth:`~simulations.engine.spec.RunSpec.memory_bytes` (the result's arrays
twice while the chunks are joined, the schedule) plus one chunk's working rows
(:func:`~simulations.engine.run.row_bytes`).

A splitting run (:func:`rare_cost`). Its iterations I ≈ log(p)/log(1 − k/N) and, each
killing about k of N particles, do not depend on N at a fixed ratio k/N; each iteration
resimulates k clones, so the trajectory-steps of a replica, N·(initial path) + I·k·(clone), grow
like N. Two pilots of the same chain and splitting with N' ≈ N/10 particles (k' = k·N'/N,
at least 1), 2 and 8 replicas, give the iterations per replica and their work W and time t;
t = I·o + W·c (o the cost of one iteration whatever its size, c of one trajectory-step) is
solved from the two, and the run of n replicas of N particles in chunks of ``replica_chunk``
takes

    n_chunks·I·o + c·W·(n·N)/(6·N'),   I the pilots' largest iterations × log(1−k'/N')/log(1−k/N).

Both are estimates on a machine whose load changes: ``benchmarks/RESULTS.md`` records how far
they were from the times measured.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulations.engine.spec import Chain, Execution, RunSpec

__all__ = ["Cost", "PlanStore", "compile_misses", "rare_cost", "run_cost", "stand_in", "sub_run",
           "table"]

CAL_STEPS = 512  #: steps of the longer calibration runs
CAL_SECONDS = 0.1  #: the larger calibration run takes at least this long (or a whole chunk)


@dataclass(frozen=True)
class Cost:
    """The cost of one run: ``name``; ``trajectory_steps`` (paths × steps, or the splitting
    model's expectation); ``memory`` the peak in bytes; ``seconds`` the estimated time of the
    run itself; ``compile_seconds`` what compiling the kernel took in this process, where it
    was not cached (0 where it was: it is now, and the run will not pay it); ``note`` how the
    time was estimated."""

    name: str
    trajectory_steps: int
    memory: int
    seconds: float
    compile_seconds: float = 0.0
    note: str = ""

    @property
    def total_seconds(self) -> float:
        """``seconds + compile_seconds``."""
        return self.seconds + self.compile_seconds


def compile_misses() -> int:
    """How many of the compiled kernel's signatures this process compiled rather than loaded
    from numba's cache."""
    from simulations.engine import kernel

    return sum(sum(d.stats.cache_misses.values())
               for d in (kernel.run_block, kernel.advance_rows))


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds ``fn()`` took, its value)."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _warm(fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """Run ``fn`` twice: (start-up cost, compile cost, the second call's seconds and value),
    the start-up being what the first call took beyond the second (loading or compiling code),
    and the compile cost that, where the kernel was compiled rather than loaded from its
    cache (then the start-up is 0)."""
    misses = compile_misses()
    first, _ = _timed(fn)
    second, value = _timed(fn)
    startup = max(0.0, first - second)
    if compile_misses() > misses:
        return 0.0, startup, second, value
    return startup, 0.0, second, value


def _proportional(count: int, of: int, rows: int) -> int:
    """``count`` of ``of`` rows scaled to ``rows`` (at least 1 where ``count`` > 0)."""
    return 0 if count == 0 else max(1, min(rows, round(count * rows / of)))


def sub_run(run: RunSpec, paths: int, steps: int) -> RunSpec:
    """``run`` on its first ``paths`` paths and ``steps`` steps, the kept and ξ paths in the
    same proportion of the paths."""
    schedule = run.schedule if isinstance(run.schedule, str) else run.schedule[:max(steps, 1)]
    return run.replace(paths=paths, steps=steps, schedule=schedule,
                       keep_paths=_proportional(min(run.keep_paths, run.paths), run.paths, paths),
                       xi_paths=_proportional(min(run.xi_paths, run.paths), run.paths, paths))


STAND_IN_PATHS = 8  #: paths of the runs a ``--dry-run`` draws figures or checks claims on


def stand_in(run: RunSpec) -> RunSpec:
    """``run`` on its first :data:`STAND_IN_PATHS` paths (all its steps): what a ``--dry-run``
    hands to the code that reads a run (figures, claims) to time it and find the splitting
    runs it asks for."""
    return sub_run(run, min(run.paths, STAND_IN_PATHS), run.steps)


class PlanStore:
    """A run store for a ``--dry-run``: a splitting run asked of it (:meth:`rare`) appends its
    :class:`Cost` to ``plan`` and returns a stand-in run of 2 replicas of 10 particles;
    ``seconds`` the time spent so; nothing is saved."""

    def __init__(self, plan: list[Cost] | None = None, suffix: str = ""):
        self.plan: list[Cost] = [] if plan is None else plan
        self.suffix, self.seconds = suffix, 0.0

    def rare(self, chain: Chain, splitting: Any, compute: Callable[[], Any], *,
             name: str = "AMS", **_: Any) -> Any:
        """The stand-in estimate (``compute`` is not called), the cost appended to ``plan``."""
        from simulations.engine.rare import ams

        start = time.perf_counter()
        self.plan.append(rare_cost(chain, splitting, name=name + self.suffix))
        small = dataclasses.replace(splitting, particles=10, kill=5, replicas=2)
        result = ams(chain, small, Execution(progress=False))
        self.seconds += time.perf_counter() - start
        return result


def run_cost(run: RunSpec, execution: Execution | None = None, name: str = "run") -> Cost:
    """The :class:`Cost` of ``simulate(run, execution)`` (see the module docstring); runs the
    calibration runs, saves nothing."""
    from simulations.engine.run import chunk_rows, row_bytes, simulate

    ex = dataclasses.replace(execution or Execution(), checkpoint_dir=None, resume=False,
                             progress=False)
    problem = run.make_problem()
    chunk = min(run.paths, chunk_rows(problem, run.batch, run.torch_dtype(), ex.chunk_size))
    memory = (run.memory_bytes(problem.n_params)
              + chunk * row_bytes(problem, run.batch, run.torch_dtype()))
    if run.steps == 0:
        return Cost(name, 0, memory, 0.0, note="no steps")

    def timed(paths: int, steps: int) -> float:
        return _timed(lambda: simulate(sub_run(run, paths, steps), ex))[0]

    startup, compile_seconds, fixed, _ = _warm(lambda: simulate(sub_run(run, 1, 1), ex))
    s2 = min(run.steps, CAL_STEPS)
    s1 = max(1, s2 // 4)
    top = chunk if s2 < run.steps else max(1, min(chunk, run.paths // 2))
    p1 = p2 = min(top, 8)
    t22 = timed(p2, s2)
    while t22 - fixed < CAL_SECONDS and p2 < top:
        p2 = min(top, 4 * p2)
        t22 = timed(p2, s2)
    t11, t12, t21 = timed(p1, s1), timed(p1, s2), timed(p2, s1)
    # t(p, s) = fixed + e·p + s·(c0 + c1·p): per path (setting up and finishing its arrays),
    # per step (Python's, on the torch step) and per path-step
    u1 = (t12 - t11) / (s2 - s1) if s2 > s1 else 0.0
    u2 = (t22 - t21) / (s2 - s1) if s2 > s1 else (t22 - fixed) / s2
    c1 = (u2 - u1) / (p2 - p1) if p2 > p1 else 0.0
    c0 = u1 - c1 * p1 if p2 > p1 else u2
    e = (t21 - t11) / (p2 - p1) - s1 * c1 if p2 > p1 else 0.0
    if min(c0, c1, e) < 0:  # noise on a busy machine: the largest run alone, per path-step
        c0, c1, e = 0.0, max(0.0, t22 - fixed) / (p2 * s2), 0.0
    n_chunks = math.ceil(run.paths / chunk)
    seconds = (startup + fixed + e * run.paths
               + run.steps * (n_chunks * c0 + c1 * run.paths))
    note = f"calibrated on {p1} and {p2} paths × {s1} and {s2} steps"
    return Cost(name, run.paths * run.steps, memory, seconds, compile_seconds, note)


def _pilot_size(particles: int) -> tuple[int, int]:
    """(N', k') of the pilots: 10 particles (at most N), half of them killed at each
    iteration."""
    n = min(particles, 10)
    return n, max(1, n // 2)


def rare_cost(chain: Chain, splitting: Any, execution: Execution | None = None,
              name: str = "AMS") -> Cost:
    """The :class:`Cost` of ``ams(chain, splitting, execution)`` (see the module docstring);
    runs the two pilots, saves nothing."""
    from simulations.engine.rare import ams, memory_bytes

    ex = dataclasses.replace(execution or Execution(), progress=False)
    s = splitting
    problem = chain.make_problem()
    chunk = ex.replica_chunk or s.replicas
    memory = memory_bytes(chain, s, min(chunk, s.replicas), problem.n_params)
    n_pilot, k_pilot = _pilot_size(s.particles)

    def pilot(replicas: int):
        small = dataclasses.replace(s, particles=n_pilot, kill=k_pilot, replicas=replicas)
        return ams(chain, small, dataclasses.replace(ex, replica_chunk=None))

    startup, compile_seconds, t_a, a = _warm(lambda: pilot(2))
    t_b, b = _timed(lambda: pilot(8))
    # t = I·o + W·c over the two pilots (I the iterations of the loop, W the trajectory-steps)
    rows = np.array([[a.replica_iterations.max(), a.trajectory_steps],
                     [b.replica_iterations.max(), b.trajectory_steps]], dtype=np.float64)
    try:
        o, c = (float(x) for x in np.linalg.solve(rows, [t_a, t_b]))
    except np.linalg.LinAlgError:
        o, c = 0.0, -1.0
    if c < 0:  # noise on a busy machine: the larger pilot's time, all per iteration
        o, c = t_b / max(1, b.replica_iterations.max()), 0.0
    elif o < 0:  # all per trajectory-step
        o, c = 0.0, t_b / max(1, b.trajectory_steps)
    ratio = math.log1p(-k_pilot / n_pilot) / math.log1p(-s.kill / s.particles)
    mean_iterations = float(b.replica_iterations.mean())
    iterations = min(s.max_iterations, mean_iterations * ratio)  # per replica
    loop = min(s.max_iterations, float(b.replica_iterations.max()) * ratio)
    # a replica's work: N initial paths of w0 steps and I·k clones of L steps, from the pilot's
    initial = min(float(chain.steps), b.trajectory_steps / b.replicas / n_pilot)
    clone = max(0.0, b.trajectory_steps / b.replicas - n_pilot * initial) / max(
        1.0, mean_iterations * k_pilot)
    work = s.replicas * (s.particles * initial + iterations * s.kill * clone)
    seconds = float(startup + math.ceil(s.replicas / chunk) * loop * o + work * c)
    p = b.probability
    note = (f"pilots of {n_pilot} particles (k = {k_pilot}) × 2 and 8 replicas: about "
            f"{iterations:.0f} iterations" + (f", p ≈ {p:.2g}" if p > 0 else ""))
    return Cost(name, round(work), memory, seconds, compile_seconds, note)


def table(costs: list[Cost], left_out: str = "") -> str:
    """The costs as the table ``--dry-run`` prints: one row each (trajectory-steps, peak
    memory, estimated time, how it was estimated), their total, the compile cost where the
    kernel was not cached, and ``left_out``, a sentence on what the estimate leaves out."""
    from simulations.engine.progress import clock
    from theory.errors import format_bytes

    heads = ("run", "trajectory-steps", "peak memory", "time", "estimated from")
    rows = [(c.name, f"{c.trajectory_steps:.3g}", format_bytes(c.memory), clock(c.seconds),
             c.note) for c in costs]
    compiled = sum(c.compile_seconds for c in costs)
    total = sum(c.total_seconds for c in costs)
    rows.append(("total", f"{sum(c.trajectory_steps for c in costs):.3g}",
                 format_bytes(max((c.memory for c in costs), default=0)) + " (largest)",
                 clock(total), "with compiling" if compiled else ""))
    widths = [max(len(r[i]) for r in (heads, *rows)) for i in range(len(heads))]
    lines = ["  ".join(f"{x:<{w}}" for x, w in zip(r, widths, strict=True)).rstrip()
             for r in (heads, *rows)]
    lines.insert(1, "  ".join("─" * w for w in widths))
    if compiled:
        lines.append(f"the compiled kernel was not cached: compiling it took {clock(compiled)}, "
                     "included in the total (it is cached now)")
    lines.append("nothing was run in full and nothing was saved" + (f"; {left_out}"
                                                                  if left_out else ""))
    return "\n".join(lines)
