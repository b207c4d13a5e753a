r"""The vectorized Monte Carlo engine: R paths of clipped SGD as one (R, P) tensor.

Each path follows (10): θ(t+1) = θ(t) − a(t)·g(t)/c(t), with g(t) the gradient of the
minibatch-mean loss on B samples drawn iid from μ (with replacement) and c(t) the clip rule's
denominator (:mod:`simulations.engine.rules`); the projection rule then projects θ(t+1) onto its
ball.
The minibatch of path r at step t comes from the words of :mod:`simulations.engine.sampling`, a pure
function of (seed, r, t), so the paths do not depend on how they are split into chunks.

Two steps compute the same chain. On the CPU the catalog's cells run on the compiled kernel of
:mod:`simulations.engine.kernel` (one loop per path over a block of steps, the paths spread over the
threads); the ``xi`` observer where the kernel has no H, other devices and
``Execution(backend="torch")`` run :class:`TorchStep`, the step as torch operations on (R, P)
tensors, with the words of a block of steps drawn at once. The run's ``setting["backend"]``
says which ran. Paths run in chunks of ``chunk_size`` rows (sized to a memory budget by
default), with no Python loop over paths and no host synchronisation inside the step loop.
Memory is O(R·P) (plus O(k·T·P) for the ``paths`` observer's k recorded paths): nothing of
size R·P·T is kept.

Blow-up: after each update the engine checks ‖θ(s)‖ ≤ ``guard`` (default 1e100 in float64 and
1e18 in float32, below the 1.8e19 where a float32 norm overflows) and that ‖g(t)‖ is finite; a
path that fails (a norm too large, infinite or NaN) is marked blown up at step s, its iterate is
frozen at θ(s−1), and the observers count it as having exited every radius at step s. (Value
clipping turns an infinite gradient into a finite ±λ step, so there ‖g/c‖ is what is checked.)

What is computed is a :class:`~simulations.engine.spec.RunSpec` (problem, rule, schedule, sizes,
seed,
dtype, guard, observers), how an :class:`~simulations.engine.spec.Execution` (device, chunk size,
backend, compile, checkpoints, progress, threads): :func:`simulate` takes the two. Long runs can
checkpoint: with ``Execution.checkpoint_dir`` the state is saved (atomically) every
``checkpoint_every`` steps and at the end of every chunk, and ``resume=True`` continues from
the last save; the result is bit-identical to an uninterrupted run. A checkpoint holds tensors,
lists, dicts and plain values only, with the SHA-256 of its content
(:func:`~theory.files.digest`), and is read with ``torch.load(weights_only=True)``, so a
planted pickle never runs; a damaged, edited or foreign checkpoint is refused with one
:class:`~theory.errors.BadArgument` naming ``resume`` (rerun without resuming to start
again: a careful user decides whether to throw the saved work away).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simulations.engine import distributed, kernel, lanes, progress, sampling
from simulations.engine.catalog import MEMORY_BUDGET
from simulations.engine.distributed import Communicator
from simulations.engine.mean_field import mean_field
from simulations.engine.observers import (
    ARRAYS,
    Observers,
    StepView,
    checkpoint_steps,
    xi_anchor_steps,
)
from simulations.engine.problems import Problem
from simulations.engine.rules import ClipRule, norms
from simulations.engine.simulation import Simulation
from simulations.engine.spec import DEFAULT_RECORD, Execution, RunSpec
from theory.errors import BadArgument
from theory.files import atomic_write, digest

__all__ = ["DEFAULT_GUARD", "DEFAULT_RECORD", "Execution", "RunSpec", "Simulation", "TorchStep",
           "chunk_rows", "default_chunk_size", "row_bytes", "simulate"]

DEFAULT_GUARD = {torch.float64: 1e100, torch.float32: 1e18}
WORD_BUDGET = 1 << 22  #: random words drawn at once


def row_bytes(problem: Problem, batch: int, dtype: torch.dtype) -> int:
    """An estimate of the bytes one path of a chunk needs per step: θ, θ(0), g, the candidate
    θ(t+1) and the minibatch's activations, about ``8·P + 4·B·(P + words)`` numbers."""
    itemsize = torch.finfo(dtype).bits // 8
    return (8 * problem.n_params + 4 * batch * (problem.n_params + 8)) * itemsize


def default_chunk_size(problem: Problem, batch: int, dtype: torch.dtype) -> int:
    """Rows per chunk: ``MEMORY_BUDGET`` over :func:`row_bytes`, capped at 2^16 rows."""
    return int(max(1, min(1 << 16, MEMORY_BUDGET // row_bytes(problem, batch, dtype))))


def chunk_rows(problem: Problem, batch: int, dtype: torch.dtype, chunk_size: int | None) -> int:
    """The rows of a chunk: ``chunk_size``, or :func:`default_chunk_size` where it is None."""
    return default_chunk_size(problem, batch, dtype) if chunk_size is None else chunk_size


def _checkpoint_files(ckdir: Path) -> list[Path]:
    """The checkpoint files (``state.pt`` of one process, ``state.g<generation>.<rank>-of-
    <world>.pt`` of a split run) and any temporary file of them left by a killed process."""
    return [*ckdir.glob("state*.pt*"), *ckdir.glob(".state*.pt.*")]


def has_checkpoint(ckdir: Path) -> bool:
    """Whether ``ckdir`` holds a checkpoint to resume from."""
    return ckdir.is_dir() and any(ckdir.glob("state*.pt"))


def _checkpoint_name(generation: int, rank: int, world: int) -> str:
    return "state.pt" if world == 1 else f"state.g{generation}.{rank}-of-{world}.pt"


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    """Write the checkpoint ``obj`` and its digest to ``path`` atomically. It is serialized in
    memory first, so that a full disk is the ``OSError`` of a file write (torch's own writer
    raises ``RuntimeError``)."""
    buffer = io.BytesIO()
    torch.save({**obj, "digest": digest(obj)}, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


CHECKPOINT_KEYS = {"setting", "generation", "rank", "world", "done", "partial", "digest"}


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """The saved state, or one clear error when the file is damaged, edited or foreign (read
    with ``weights_only=True``: no pickled code runs; the content must match its digest)."""
    try:
        saved = torch.load(path, weights_only=True)
        if not isinstance(saved, dict) or set(saved) != CHECKPOINT_KEYS:
            raise ValueError("not a checkpoint of this engine")
        if saved.pop("digest") != digest(saved):
            raise ValueError("its content does not match the SHA-256 saved with it")
    except Exception as error:  # a truncated, edited or foreign file: any unpickling error
        why = " ".join(str(error).split())[:120] or type(error).__name__
        raise BadArgument("resume", f"the checkpoint {path} is damaged ({why}); delete it, or "
                                    "run without resuming to start again") from None
    return saved


@dataclass
class _Context:
    """What every chunk of one run shares."""

    run: RunSpec
    problem: Problem
    rule: ClipRule
    a: np.ndarray  #: a(t), t < T
    dtype: torch.dtype
    guard: float
    mean_field: Any  #: θ ↦ H(θ) for the xi observer, or None
    bar: Any  #: the progress reporter (:func:`simulations.engine.progress.bar`)
    checkpointing: tuple[Any, int] | None  #: (save(state), every) or None
    compiled: bool
    torch_step: TorchStep | None


def simulate(run: RunSpec, execution: Execution | None = None) -> Simulation:
    """Run ``run.paths`` paths of clipped SGD for ``run.steps`` steps (see the module docstring)
    as ``execution`` says (default: :class:`~simulations.engine.spec.Execution` ()).

    Raises :class:`~theory.errors.BadArgument` (a ``ValueError``) for bad input, naming
    the argument; a run whose arrays would not fit in memory is refused before it starts.
    """
    if not isinstance(run, RunSpec):
        raise BadArgument("run", f"expected a RunSpec (RunSpec.from_dict), got {run!r}")
    ex = Execution() if execution is None else execution
    from simulations.engine.threads import use_threads
    comm = distributed.communicator(ex.distributed, ex.rank_timeout)
    use_threads(ex.threads)
    problem, rule = run.make_problem(), run.make_rule()
    run.check_memory(problem.n_params)
    dtype = run.torch_dtype()
    guard = DEFAULT_GUARD[dtype] if run.guard is None else run.guard
    device = _device(ex.device)
    if device.type == "cuda" and device.index is None and comm.world > 1:
        device = torch.device(distributed.rank_device(int(os.environ.get("LOCAL_RANK", 0))))
    use_compiled = _use_compiled(problem, rule, run, device, ex.backend)
    schedule = run.schedule_obj()
    a = np.asarray(schedule(np.arange(run.steps)), dtype=np.float64)
    chunk = chunk_rows(problem, run.batch, dtype, ex.chunk_size)
    setting = {
        **problem.settings(), **rule.to_dict(), "schedule": schedule.source,
        "paths": run.paths, "steps": run.steps, "batch": run.batch, "seed": run.seed,
        "radii": list(run.radii), "dtype": run.dtype, "guard": guard, "record": list(run.record),
        "backend": "compiled" if use_compiled else "torch",
    }
    ckdir = None if ex.checkpoint_dir is None else Path(ex.checkpoint_dir)
    h_fn = None
    if "xi" in run.record:
        def h_fn(theta):
            return mean_field(problem, rule, theta, batch=run.batch).value

    with comm.guarded():
        kept, work, generation = _resume(ckdir, ex.resume, setting, comm)
        work = _plan(run.paths, chunk, kept, work, comm)
        bar = progress.bar(sum(p["rows"][1] - p["rows"][0] for p in work) * run.steps,
                           f"{problem.name}/{rule.kind}", "trajectory-steps",
                           ex.progress if comm.rank == 0 else False)
        bar.update(sum(int(p["state"]["t"]) * (p["rows"][1] - p["rows"][0]) for p in work
                       if p["state"]))
        done = kept if comm.rank == 0 else []
        current: list[dict[str, Any]] = []

        def save(state=None):
            assert ckdir is not None  # save is called only with a checkpoint folder
            running = [{"rows": current[0]["rows"], "state": state}] if state else []
            _atomic_save({"setting": setting, "generation": generation, "rank": comm.rank,
                          "world": comm.world, "done": done,
                          "partial": running + [p for p in work if p["state"]]},
                         ckdir / _checkpoint_name(generation, comm.rank, comm.world))

        if ckdir is not None:  # every rank's file of this generation, then the old ones go
            save()
            comm.barrier()
            if comm.rank == 0:
                _drop_checkpoints(ckdir, keep=_checkpoint_name(generation, 0, comm.world)
                                  if comm.world == 1 else f"state.g{generation}.")
        ctx = _Context(run, problem, rule, a, dtype, guard, h_fn, bar,
                       None if ckdir is None else (save, ex.checkpoint_every), use_compiled,
                       None if use_compiled else TorchStep(problem, rule, guard,
                                                           "xi" in run.record, dtype, device,
                                                           ex.compile))
        while work:
            current[:] = [work.pop(0)]
            lo, hi = current[0]["rows"]
            rows = torch.arange(lo, hi, device=device)
            out = _run_chunk(ctx, rows, lo, current[0]["state"])
            done.append({"rows": [lo, hi], "arrays": out})
            current.clear()
            if ckdir is not None:
                save()
        bar.close()
        pieces = comm.gather([(p["rows"][0], p["arrays"]) for p in _numpy(done)],
                             ex.all_ranks)
    if ckdir is not None and comm.rank == 0:  # the run is complete: drop its checkpoint
        _drop_checkpoints(ckdir)
        with contextlib.suppress(OSError):
            ckdir.rmdir()  # only if nothing else is in it
    if pieces is None:  # another rank than 0 (the full result only on rank 0)
        return Simulation(setting, {}, run)
    ordered = [arrays for _, arrays in sorted((p for part in pieces for p in part),
                                              key=lambda p: p[0])]
    arrays = {k: np.concatenate([r[k] for r in ordered]) for k in ordered[0]}
    if "checkpoints" in run.record or "xi" in run.record:
        arrays["checkpoint_steps"] = checkpoint_steps(run.steps)
    if "xi" in run.record:
        arrays["xi_anchors"] = xi_anchor_steps(run.steps)
    return Simulation(setting, arrays, run)


def _device(name: Any) -> torch.device:
    """The torch device ``name``, or :class:`BadArgument`."""
    try:
        return torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise BadArgument("device", f"not a torch device: {name!r}") from None


def _use_compiled(problem: Problem, rule: ClipRule, run: RunSpec, device: torch.device,
                  backend: str) -> bool:
    """Whether the run goes to :mod:`simulations.engine.kernel` (its cell, device and observers
    allow it, and ``backend`` is not ``torch``); ``backend="compiled"`` where it cannot is
    refused."""
    h_args = kernel.mean_field_args(problem, rule, run.batch) if "xi" in run.record else ()
    can_compile = kernel.supports(problem, rule, device) and h_args is not None
    if backend == "compiled" and not can_compile:
        raise BadArgument("backend", "'compiled' runs the catalog's problems on the CPU, and "
                                     "the xi observer only where H is exact (a quadratic's closed "
                                     "form or atoms, a dataset's finite sum with B = 1)")
    return can_compile and backend != "torch"


def _drop_checkpoints(ckdir: Path, keep: str | None = None) -> None:
    """Remove the checkpoint files in ``ckdir`` but those whose name starts with ``keep``."""
    for old in _checkpoint_files(ckdir):
        if keep is None or not old.name.startswith(keep):
            old.unlink(missing_ok=True)


def _resume(ckdir: Path | None, resume: bool, setting: dict[str, Any], comm: Communicator
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(the finished pieces ``{"rows": [lo, hi], "arrays"}``, their arrays on rank 0 only; the
    unfinished
    pieces ``{"rows", "state"}``; the generation of the checkpoint files to write). Rank 0
    reads the latest complete generation of checkpoint files in ``ckdir`` when resuming a run
    of the same ``setting`` (written by any number of ranks), or removes the old files of a
    fresh run, and tells the other ranks. A checkpoint of another setting is refused."""
    if ckdir is None:
        return [], [], 0
    found: tuple[list[dict[str, Any]], list[dict[str, Any]], int] = ([], [], 0)
    if comm.rank == 0:
        try:
            found = _read_checkpoints(ckdir, resume, setting)
        except BaseException as error:  # the other ranks raise it too, not wait for rank 0
            comm.broadcast(error if isinstance(error, BadArgument) else None)
            raise
        comm.broadcast(([{"rows": p["rows"]} for p in found[0]], found[1], found[2]))
        return found
    told = comm.broadcast(None)
    if isinstance(told, BadArgument) or told is None:
        raise told or BadArgument("resume", "rank 0 could not read the checkpoint")
    return told


def _read_checkpoints(ckdir: Path, resume: bool, setting: dict[str, Any]
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """:func:`_resume`'s reading on rank 0 (all the finished pieces)."""
    ckdir.mkdir(parents=True, exist_ok=True)
    if not resume:
        _drop_checkpoints(ckdir)
        return [], [], 0
    files = sorted(ckdir.glob("state*.pt"))
    generations: dict[int, list[dict[str, Any]]] = {}
    for path in files:
        saved = _load_checkpoint(path)
        if saved["setting"] != setting:
            raise BadArgument("resume", "the checkpoint in checkpoint_dir was written by a "
                                        "different setting; refuse to resume it")
        generations.setdefault(int(saved["generation"]), []).append(saved)
    for generation in sorted(generations, reverse=True):
        parts = generations[generation]
        if sorted(int(p["rank"]) for p in parts) == list(range(int(parts[0]["world"]))):
            return ([piece for p in parts for piece in p["done"]],
                    [piece for p in parts for piece in p["partial"]], generation + 1)
    return [], [], 0  # no complete generation: every rank had not saved yet


def _plan(paths: int, chunk: int, done: list[dict[str, Any]], partial: list[dict[str, Any]],
          comm: Communicator) -> list[dict[str, Any]]:
    """This rank's pieces ``{"rows": [lo, hi], "state"}`` (the same plan on every rank): the
    unfinished pieces of a checkpoint in turn (the i-th to rank i mod W), then the rows no
    piece covers, split into W shares of equal size (:func:`distributed.shares` of their count)
    and each share into pieces of at most ``chunk`` rows."""
    covered = sorted([tuple(p["rows"]) for p in done] + [tuple(p["rows"]) for p in partial])
    gaps, at = [], 0
    for lo, hi in covered:
        if lo > at:
            gaps.append((at, lo))
        at = max(at, hi)
    if at < paths:
        gaps.append((at, paths))
    mine = [p for i, p in enumerate(sorted(partial, key=lambda p: p["rows"][0]))
            if i % comm.world == comm.rank]
    first, last = distributed.shares(sum(hi - lo for lo, hi in gaps), comm.world)[comm.rank]
    offset = 0
    for lo, hi in gaps:  # the gap rows at positions [first, last) of all gap rows
        start, stop = max(lo, lo + first - offset), min(hi, lo + last - offset)
        for row in range(start, stop, chunk):
            mine.append({"rows": [row, min(stop, row + chunk)], "state": None})
        offset += hi - lo
    return mine


def _numpy(pieces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished pieces with numpy arrays (what is gathered)."""
    return [{"rows": p["rows"], "arrays": {k: v.cpu().numpy() for k, v in p["arrays"].items()}}
            for p in pieces]


def _run_chunk(ctx: _Context, rows: torch.Tensor, first_row: int,
               partial: dict[str, Any] | None) -> dict[str, torch.Tensor]:
    """All steps for one chunk of paths (rows ``first_row``, ...), from the saved ``partial``
    state if given; returns its arrays (tensors, leading axis = rows)."""
    run, a, problem = ctx.run, ctx.a, ctx.problem
    steps = len(a)
    device = rows.device
    theta0 = problem.initial(rows, run.seed, ctx.dtype, device)
    obs = Observers(run.record, theta0, steps, run.radii, keep_paths=run.keep_paths,
                    xi_paths=run.xi_paths, mean_field=ctx.mean_field, first_row=first_row)
    if partial is None:
        theta = theta0.clone()
        start = 0
        alive = torch.ones(len(rows), dtype=torch.bool, device=device)
        blown = torch.full((len(rows),), -1, dtype=torch.int64, device=device)
    else:
        start, theta, alive, blown = (partial[k] for k in ("t", "theta", "alive", "blown"))
        obs.state = partial["observers"]
    words_per_step = run.batch * problem.words_per_sample
    block = max(1, min(steps, WORD_BUDGET // max(1, len(rows) * words_per_step)))
    blocks: _CompiledBlocks | _TorchBlocks
    if ctx.compiled:
        block = max(block, min(steps, 256))
        blocks = _CompiledBlocks(ctx, rows, theta0, obs)
    else:
        blocks = _TorchBlocks(ctx, rows, obs)
    checkpointing = ctx.checkpointing
    t = start
    while t < steps:
        stop = min(steps, t + block)
        if checkpointing is not None:
            every = checkpointing[1]
            stop = min(stop, (t // every + 1) * every)
        theta, alive, blown = blocks(theta, alive, blown, t, stop)
        ctx.bar.update((stop - t) * len(rows))
        t = stop
        if checkpointing is not None and t < steps and t % checkpointing[1] == 0:
            checkpointing[0]({"t": t, "theta": theta, "alive": alive, "blown": blown,
                              "observers": obs.state})
    return {"blown_step": blown, "endpoints": theta, **obs.finish()}


class TorchStep:
    """One step of a batch of paths (gradient, clip rule, candidate, guard, freeze) as a
    function of tensors only, so that with ``compile=True`` it runs under ``torch.compile`` as
    one fused graph (compiled once per run and shared by its chunks).

    The step on any device and for any problem (a user's own included); on the CPU the
    catalog's cells run on :mod:`simulations.engine.kernel` instead, which the tests hold against
    it.
    ``fn(theta, ‖θ‖, alive, blown, words, a(t), t + 1)`` returns (θ(t+1) with blown-up rows
    frozen, ‖θ(t+1)‖, alive, blown, newly blown, the :class:`~simulations.engine.rules.Clipped` g/c,
    g/c as a tensor when ``need_step``)."""

    def __init__(self, problem, rule, guard, need_step, dtype, device, compile):
        self.problem, self.rule, self.need_step = problem, rule, need_step
        self.guard = torch.tensor(guard, dtype=torch.float64, device=device)
        problem.data(dtype, device)  # fill the data cache outside any trace
        self.compiled = compile
        self.fn = torch.compile(self._step, dynamic=False) if compile else self._step

    def _step(self, theta, tnorm, alive, blown, words, at, done):
        problem, rule = self.problem, self.rule
        g = problem.grad(theta, problem.sample(words, theta.dtype))
        c = rule.apply(g, theta, problem.layout, theta_norm=tnorm)
        if c.scale is not None:
            cand = theta - (at * c.scale)[:, None] * g
            direction = g * c.scale[:, None] if self.need_step else None
        else:
            cand = theta - at * c.direction
            direction = c.direction
        cand = rule.project(cand)
        cnorm = norms(cand)
        ok = alive & (cnorm <= self.guard) & torch.isfinite(c.norm)
        newly = alive & ~ok
        return (torch.where(ok[:, None], cand, theta), torch.where(ok, cnorm, tnorm), ok,
                torch.where(newly, done, blown), newly, c, direction)


class _TorchBlocks:
    """Steps [t, stop) of a chunk as torch operations on (R, P) tensors."""

    def __init__(self, ctx: _Context, rows: torch.Tensor, obs: Observers):
        assert ctx.torch_step is not None  # the torch backend builds its step
        self.step, self.a, self.rows, self.seed, self.obs = (ctx.torch_step, ctx.a, rows,
                                                             ctx.run.seed, obs)
        self.words_per_step = ctx.run.batch * ctx.problem.words_per_sample
        self.tnorm: torch.Tensor | None = None

    def __call__(self, theta, alive, blown, t, stop):
        tnorm = norms(theta) if self.tnorm is None else self.tnorm
        words = sampling.words(self.seed, self.rows, range(t, stop), self.words_per_step)
        a = torch.as_tensor(self.a[t:stop], dtype=theta.dtype, device=theta.device)
        done = torch.arange(t + 1, stop + 1, device=theta.device)
        for k in range(stop - t):
            theta_prev, norm_prev, alive_prev = theta, tnorm, alive
            theta, tnorm, alive, blown, newly, c, direction = self.step.fn(
                theta, tnorm, alive, blown, words[k], a[k], done[k])
            self.obs.update(StepView(t + k + 1, float(self.a[t + k]), theta_prev, theta,
                                     norm_prev, tnorm, c.norm, direction, c.clipped, alive,
                                     alive_prev, newly))
        self.tnorm = tnorm
        return theta, alive, blown


class _CompiledBlocks:
    """Steps [t, stop) of a chunk by :func:`simulations.engine.kernel.run_block` (in place), or
    by :func:`simulations.engine.lanes.run_block_lanes` for the cells it runs."""

    def __init__(self, ctx: _Context, rows: torch.Tensor, theta0: torch.Tensor, obs: Observers):
        problem, run = ctx.problem, ctx.run
        dtype = theta0.numpy().dtype
        self.seed, self.a = run.seed, ctx.a
        self.problem = kernel.problem_args(problem, run.batch, dtype)
        self.rule = kernel.rule_args(ctx.rule, problem.layout)
        self.limits = kernel.limits(ctx.guard, dtype)
        count = run.batch * problem.words_per_sample
        self.key_path = sampling.path_keys(run.seed, rows).numpy()
        self.key_word = (sampling.word_keys(run.seed, count).numpy() if count > 1
                         else np.zeros(0, np.int32))
        self.theta0 = theta0.numpy()
        # the observers' state as the kernel's arrays (views: the kernel updates them in place;
        # those of an observer not recorded are empty, and the kernel reads them only when its
        # flag is set)
        st, rec = obs.state, obs.record
        empty = {"int64": np.int64, "float64": np.float64, "theta": self.theta0.dtype}
        arrays = {spec.name: (st[spec.name].numpy() if name in rec
                              else np.zeros((0,) * len(spec.shape), empty[spec.dtype]))
                  for name, specs in ARRAYS.items() for spec in specs}
        h_args = kernel.mean_field_args(problem, ctx.rule, run.batch) if "xi" in rec else None
        field, values, weights = h_args or (0, np.zeros(0), np.zeros(0))
        self.observers = kernel.ObserverArrays(
            **arrays, radii=obs.radii.numpy(), checkpoint_steps=obs.ck.astype(np.int64),
            anchors=np.asarray(obs.anchors, np.int64), field=field, atom_values=values,
            atom_weights=weights, record=kernel.Observe.flags(rec))
        # the lanes run every row but the first ones, whose ξ (the first xi_rows) or path (the
        # kept ones) the scalar kernel records
        rest = self.observers.record.copy()
        rest[kernel.Observe.XI] = rest[kernel.Observe.PATHS] = 0
        first = max(self.observers.xi.shape[0], self.observers.path.shape[0])
        self.split = first if lanes.supports(self.problem, self.rule, rest) else len(rows)
        self.lane_observers = self.observers._replace(record=rest)
        self.row_arrays = tuple(arrays)  # every observer array's first axis is a row

    def __call__(self, theta, alive, blown, t, stop):
        theta, alive, blown = theta.contiguous(), alive.contiguous(), blown.contiguous()
        steps = (np.ascontiguousarray(self.a[t:stop]),
                 sampling.step_keys(self.seed, range(t, stop)).numpy())
        state = kernel.State(theta.numpy(), self.theta0, alive.numpy(), blown.numpy())
        k, parts = self.split, (self.problem, self.rule, self.limits)
        if k > 0:
            rows, block, observers = self._rows(state, steps, t, self.observers, 0, k)
            kernel.run_block(rows, block, *parts, observers)
        if k < len(self.key_path):
            rows, block, observers = self._rows(state, steps, t, self.lane_observers, k, None)
            lanes.run_block_lanes(rows, block, *parts, observers)
        return theta, alive, blown

    def _rows(self, state, steps, t, observers, lo, hi):
        """(state, block, observers) of rows [lo, hi) of the chunk (views): the arrays of a row
        sliced, the rest as they are."""
        rows = slice(lo, hi)
        state = kernel.State(*(x[rows] for x in state))
        block = kernel.Block(steps[0], self.key_path[rows], steps[1], self.key_word, t)
        per_row = {name: getattr(observers, name)[rows] for name in self.row_arrays}
        return state, block, observers._replace(**per_row)
