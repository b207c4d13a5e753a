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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simulations.engine import kernel, progress, sampling
from simulations.engine.catalog import MEMORY_BUDGET
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
    """The checkpoint ``state.pt`` and any temporary file of it left by a killed process."""
    return [*ckdir.glob("state.pt*"), *ckdir.glob(".state.pt.*")]


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    """Write the checkpoint ``obj`` and its digest to ``path`` atomically. It is serialized in
    memory first, so that a full disk is the ``OSError`` of a file write (torch's own writer
    raises ``RuntimeError``)."""
    buffer = io.BytesIO()
    torch.save({**obj, "digest": digest(obj)}, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """The saved state, or one clear error when the file is damaged, edited or foreign (read
    with ``weights_only=True``: no pickled code runs; the content must match its digest)."""
    try:
        saved = torch.load(path, weights_only=True)
        if not isinstance(saved, dict) or set(saved) != {"setting", "chunk", "done", "partial",
                                                         "digest"}:
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
    use_threads(ex.threads)
    problem, rule = run.make_problem(), run.make_rule()
    run.check_memory(problem.n_params)
    dtype = run.torch_dtype()
    guard = DEFAULT_GUARD[dtype] if run.guard is None else run.guard
    device = _device(ex.device)
    use_compiled = _use_compiled(problem, rule, run, device, ex.backend)
    schedule = run.schedule_obj()
    a = np.asarray(schedule(np.arange(run.steps)), dtype=np.float64)
    chunk = min(chunk_rows(problem, run.batch, dtype, ex.chunk_size), run.paths)
    setting = {
        **problem.settings(), **rule.to_dict(), "schedule": schedule.source,
        "paths": run.paths, "steps": run.steps, "batch": run.batch, "seed": run.seed,
        "radii": list(run.radii), "dtype": run.dtype, "guard": guard, "record": list(run.record),
        "backend": "compiled" if use_compiled else "torch",
    }
    ckdir = None if ex.checkpoint_dir is None else Path(ex.checkpoint_dir)
    saved_chunks, partial = _saved_state(ckdir, ex.resume, setting, chunk)
    h_fn = None
    if "xi" in run.record:
        def h_fn(theta):
            return mean_field(problem, rule, theta, batch=run.batch).value

    n_chunks = math.ceil(run.paths / chunk)
    bar = progress.bar(run.paths * run.steps, f"{problem.name}/{rule.kind}",
                       "trajectory-steps", ex.progress)
    done_rows = sum(len(r["blown_step"]) for r in saved_chunks)
    bar.update(done_rows * run.steps
               + (partial["t"] * min(chunk, run.paths - done_rows) if partial else 0))
    results = list(saved_chunks)

    def save(state, rows_done=results):
        assert ckdir is not None  # save is called only with a checkpoint folder
        _atomic_save({"setting": setting, "chunk": chunk, "done": rows_done,
                      "partial": state}, ckdir / "state.pt")

    ctx = _Context(run, problem, rule, a, dtype, guard, h_fn, bar,
                   None if ckdir is None else (save, ex.checkpoint_every), use_compiled,
                   None if use_compiled else TorchStep(problem, rule, guard, "xi" in run.record,
                                                       dtype, device, ex.compile))
    for index in range(len(saved_chunks), n_chunks):
        rows = torch.arange(index * chunk, min(run.paths, (index + 1) * chunk), device=device)
        results.append(_run_chunk(ctx, rows, index * chunk, partial))
        partial = None
        if ckdir is not None:
            save(None)
    bar.close()
    arrays = {k: torch.cat([r[k] for r in results]).cpu().numpy() for k in results[0]}
    if "checkpoints" in run.record or "xi" in run.record:
        arrays["checkpoint_steps"] = checkpoint_steps(run.steps)
    if "xi" in run.record:
        arrays["xi_anchors"] = xi_anchor_steps(run.steps)
    if ckdir is not None:  # the run is complete: drop its checkpoint (and only that)
        for old in _checkpoint_files(ckdir):
            old.unlink()
        with contextlib.suppress(OSError):
            ckdir.rmdir()  # only if nothing else is in it
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


def _saved_state(ckdir: Path | None, resume: bool, setting: dict[str, Any], chunk: int
                 ) -> tuple[list[dict[str, torch.Tensor]], dict[str, Any] | None]:
    """(the finished chunks, the unfinished chunk's state) saved in ``ckdir`` when resuming a
    run of the same ``setting`` and ``chunk`` (else nothing; a fresh run first removes the old
    checkpoint files). A checkpoint of another setting is refused."""
    if ckdir is None:
        return [], None
    ckdir.mkdir(parents=True, exist_ok=True)
    state_file = ckdir / "state.pt"
    if resume and state_file.exists():
        saved = _load_checkpoint(state_file)
        if saved["setting"] != setting or saved["chunk"] != chunk:
            raise BadArgument("resume", "the checkpoint in checkpoint_dir was written by a "
                                        "different setting; refuse to resume it")
        return saved["done"], saved["partial"]
    if not resume:
        for old in _checkpoint_files(ckdir):
            old.unlink()
    return [], None


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
    """Steps [t, stop) of a chunk by :func:`simulations.engine.kernel.run_block` (in place)."""

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

    def __call__(self, theta, alive, blown, t, stop):
        theta, alive, blown = theta.contiguous(), alive.contiguous(), blown.contiguous()
        block = kernel.Block(np.ascontiguousarray(self.a[t:stop]), self.key_path,
                             sampling.step_keys(self.seed, range(t, stop)).numpy(),
                             self.key_word, t)
        state = kernel.State(theta.numpy(), self.theta0, alive.numpy(), blown.numpy())
        kernel.run_block(state, block, self.problem, self.rule, self.limits, self.observers)
        return theta, alive, blown
