"""Every cell (problem × clip rule × dtype) of the engine against a JAX reference, with a numba
ceiling for the quadratic, in trajectory-steps per second (R·T / seconds).

    python benchmarks/cells.py                      # every cell (~10 min on 2 quiet cores)
    python benchmarks/cells.py --quick              # smoke run (~1-1.5 min)
    python benchmarks/cells.py --cells quadratic-1d/classic 'mlp-*/*' --dtypes float32
    python benchmarks/cells.py --out benchmarks/cells.json --markdown benchmarks/cells.md

Cells. Problems (catalog defaults unless said): ``quadratic-1d`` (y ~ N(0, 1)),
``quadratic-10d`` (y ~ N(0, I_10)), ``quadratic-1d-t3`` (Student-t, df = 3),
``quadratic-1d-pm1`` (the discrete ±1 law), ``linear-regression``, ``logistic``,
``mlp-regression``, ``mlp-classification``, ``rnn-cliff``, ``stiff``; rules ``none``,
``classic`` (λ = 1), ``adaptive`` (λ = 1, ε = 1e-3), ``layerwise`` (λ = 1, ε = 1e-3),
``unitwise`` (λ = 1, ε = 1e-3), ``value`` (λ = 1), ``projection`` (ball = 10); float32 and
float64; a(t) = 0.05/(1 + t/100); minibatch B = 1; θ(0) the problem's own. ``--cells`` takes
``problem/rule`` patterns (shell wildcards).

Implementations:

* ``engine``: ``simulate(RunSpec.from_dict({...,"record": ["running_max"]}),
  Execution(progress=False))``, the backend it picks by itself (recorded), its own
  counter-based draws.
* ``jax``: the same chain written in JAX: ``jax.grad`` of the same minibatch loss, the same rule
  (``optax.clip_by_global_norm`` for classic, the others by hand), the engine's blow-up guard
  and its running maxima ‖θ(s) − θ(0)‖ and ‖θ(s)‖; ``jax.vmap`` over paths, ``jax.jit``,
  ``lax.scan`` over blocks of ``BLOCK`` steps inside a ``lax.fori_loop`` over the blocks (the
  block count is a traced argument, so one compilation serves every T). It draws its own
  randomness with ``jax.random`` inside the scan, as much as the engine: the same minibatch
  size, the same number of normals per sample (df + 1 per coordinate for Student-t), one uniform
  per discrete sample, one index per dataset sample.
* ``numba`` (quadratic, normal law, classic rule only): the ceiling, a minimal hand-written
  loop: ``prange`` over paths, a scalar loop over steps, one ``np.random.standard_normal()`` per
  step and coordinate, classic clipping and the running maxima.

Timing. Per cell: one warm-up of every implementation (compilation excluded; JAX is compiled
once at the timed shapes), then pilot runs with T doubling from 2 (engine) or BLOCK (JAX, numba)
until one takes ``--budget``/2, and T scaled from it so that one measurement takes about
``--budget`` seconds (R fixed per problem, see ``PATHS``; each implementation gets its own T, at
the same R). The engine's per-call setup is inside its time, as a caller of ``simulate`` pays
it; its measurement lasts at least 10× a one-step run (at most 5 budgets), so the setup is at
most about a tenth.
Then ``--rounds`` rounds, the implementations alternating in a rotating order; medians and
min–max are reported. The load average is recorded at the start and the end, with versions and
the core count.

Correctness, once per cell, before any timing (float64, R = 3 paths, T = 6 steps): the JAX step
and a numpy reference written here are fed the same raw draws (normals, uniforms, indices) and
must agree to 1e-12 relative, or the script stops; and the engine's endpoints are compared
with the same numpy reference fed the engine's own draws (``simulations.engine.sampling``), to 1e-10
relative (reported in the ``check`` column: a mismatch is reported, not fatal).

Whole process (``--process``, on by default, off with ``--no-process``): ``python -m simulations
run`` against ``python benchmarks/jax_quadratic.py`` as subprocesses, quadratic 1-D and 10-D,
65 536 paths × 1000 steps, classic λ = 1, the running maximum recorded, float64; wall seconds
including start-up, imports, compilation and writing the results; ``--process-rounds`` rounds
(default 1: each run takes tens of seconds).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cpu import cpu_name  # noqa: E402  (benchmarks/cpu.py, beside this script)

SCHEDULE = "0.05/(1+t/100)"
BLOCK = 10  #: steps per lax.scan block (JAX) and the granularity of T
CHECK_PATHS, CHECK_STEPS = 3, 6
CHECK_RTOL_JAX, CHECK_RTOL_ENGINE = 1e-12, 1e-10

#: name -> the RunSpec's problem table
PROBLEMS: dict[str, dict] = {
    "quadratic-1d": {"name": "quadratic", "dim": 1},
    "quadratic-10d": {"name": "quadratic", "dim": 10},
    "quadratic-1d-t3": {"name": "quadratic", "noise": "student-t", "df": 3},
    "quadratic-1d-pm1": {"name": "quadratic", "noise": "discrete", "values": [-1.0, 1.0],
                         "probs": [0.5, 0.5]},
    "linear-regression": {"name": "linear-regression"},
    "logistic": {"name": "logistic"},
    "mlp-regression": {"name": "mlp-regression"},
    "mlp-classification": {"name": "mlp-classification"},
    "rnn-cliff": {"name": "rnn-cliff"},
    "stiff": {"name": "stiff"},
}
#: name -> the RunSpec's clip table
RULES: dict[str, dict] = {
    "none": {"rule": "none"},
    "classic": {"rule": "classic", "lam": 1.0},
    "adaptive": {"rule": "adaptive", "lam": 1.0, "eps": 1e-3},
    "layerwise": {"rule": "layerwise", "lam": 1.0, "eps": 1e-3},
    "unitwise": {"rule": "unitwise", "lam": 1.0, "eps": 1e-3},
    "value": {"rule": "value", "lam": 1.0},
    "projection": {"rule": "projection", "ball": 10.0},
}
#: paths per problem where the default is too many for short measurements (the engine runs
#: the MLP classifier and the 50-step recurrence as batched torch operations)
PATHS = {"mlp-regression": 2048, "mlp-classification": 1024, "rnn-cliff": 4096}
DEFAULT_PATHS = 16384
GUARD = {"float64": 1e100, "float32": 1e18}  #: the engine's default blow-up guard
NUMBA_CELLS = {"quadratic-1d": 1, "quadratic-10d": 10}  #: the ceiling: classic rule only
PROCESS_DIMS = (1, 10)


# ============================================================================ the problems
@dataclass
class Cell:
    """What the JAX and numpy implementations need to know of a problem (from the catalog's
    own object, so the data and θ(0) are the engine's)."""

    name: str
    kind: str  # quadratic | linear | logistic | mlp-reg | mlp-cls | rnn
    theta0: np.ndarray
    groups: dict[str, np.ndarray]  # "layer"/"unit" -> ids (P,)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    law: str = "point"
    dim: int = 1

    @property
    def n_params(self) -> int:
        return self.theta0.size


def make_cell(name: str) -> Cell:
    from simulations.engine.spec import RunSpec

    run = RunSpec.from_dict({"problem": PROBLEMS[name], "clip": RULES["none"],
                             "schedule": SCHEDULE, "paths": 1, "steps": 1})
    p = run.make_problem()
    groups = {"layer": np.asarray(p.layout.group_ids(False)),
              "unit": np.asarray(p.layout.group_ids(True))}
    theta0 = np.asarray(p.theta0, dtype=np.float64)
    pname = p.name
    if pname in ("quadratic", "stiff"):
        law = p.law
        params = {"curvature": p.curvature, "mean": law.mean, "sd": law.sd, "df": law.df}
        arrays = {}
        if law.kind == "discrete":
            arrays = {"values": np.asarray(law.values, np.float64),
                      "cumprobs": np.cumsum(law.probs)[:-1]}
        return Cell(name, "quadratic", theta0, groups, arrays, params, law.kind, p.dim)
    if pname == "rnn-cliff":
        return Cell(name, "rnn", theta0, groups, {"x0": np.asarray(p.x0, np.float64)},
                    {"n": p.n, "length": p.length, "target": p.target})
    kind = {"linear-regression": "linear", "logistic": "logistic", "mlp-regression": "mlp-reg",
            "mlp-classification": "mlp-cls"}[pname]
    params = {"n": p.n, "hidden": p.params.get("hidden", 0),
              "classes": getattr(p, "classes", 1)}
    return Cell(name, kind, theta0, groups, {"x": np.asarray(p.x, np.float64),
                                             "y": np.asarray(p.y)}, params)


def raw_shape(cell: Cell, batch: int) -> tuple[tuple[int, ...], str]:
    """Shape (per path) and kind of the raw draws of one step: normals, uniforms or indices."""
    if cell.kind == "quadratic":
        if cell.law == "normal":
            return (batch, cell.dim), "normal"
        if cell.law == "student-t":
            return (batch, cell.dim, cell.params["df"] + 1), "normal"
        if cell.law == "discrete":
            return (batch,), "uniform"
        return (0,), "none"
    return (batch,), "index"


def _mlp_split(theta, cell: Cell):
    x = cell.arrays["x"]
    d, h = x.shape[1], cell.params["hidden"]
    k = cell.params["classes"] if cell.kind == "mlp-cls" else 1
    w1 = theta[: h * d].reshape(h, d)
    b1 = theta[h * d: h * d + h]
    w2 = theta[h * d + h: h * d + h + k * h].reshape(k, h)
    b2 = theta[h * d + h + k * h:]
    return w1, b1, w2, b2


# ============================================================================ numpy reference
def np_sample(cell: Cell, raw: np.ndarray) -> np.ndarray:
    """One path's minibatch from its raw draws (y (B, d) for the quadratic, indices else)."""
    if cell.kind != "quadratic":
        return raw
    p = cell.params
    if cell.law == "normal":
        return p["mean"] + p["sd"] * raw
    if cell.law == "student-t":
        return p["mean"] + p["sd"] * raw[..., 0] / np.sqrt(np.mean(raw[..., 1:] ** 2, -1))
    if cell.law == "discrete":
        k = (raw[:, None] >= cell.arrays["cumprobs"]).sum(-1)
        return np.repeat(cell.arrays["values"][k][:, None], cell.dim, 1)
    return np.full((1, cell.dim), p["mean"])


def np_grad(cell: Cell, theta: np.ndarray, s: np.ndarray) -> np.ndarray:
    """∇ of the minibatch-mean loss, by hand (the engine's formulas, one path)."""
    if cell.kind == "quadratic":
        return cell.params["curvature"] * (theta - s.mean(0))
    if cell.kind == "rnn":
        p = cell.params
        x = cell.arrays["x0"][s]
        w, b = theta
        hs = []
        for _ in range(p["length"]):
            h = np.tanh(x)
            hs.append(h)
            x = w * h + b
        delta = (x - p["target"]) * (2.0 / len(s))
        dw = np.zeros_like(delta)
        db = np.zeros_like(delta)
        for h in reversed(hs):
            dw = dw + delta * h
            db = db + delta
            delta = delta * w * (1.0 - h * h)
        return np.array([dw.sum(), db.sum()])
    xb, yb, bsz = cell.arrays["x"][s], cell.arrays["y"][s], len(s)
    if cell.kind in ("linear", "logistic"):
        f = xb @ theta[:-1] + theta[-1]
        e = (f - yb) * (2.0 / bsz) if cell.kind == "linear" else (
            1.0 / (1.0 + np.exp(-f)) - yb) / bsz
        return np.concatenate([e @ xb, [e.sum()]])
    w1, b1, w2, b2 = _mlp_split(theta, cell)
    a = np.tanh(xb @ w1.T + b1)                       # (B, h)
    f = a @ w2.T + b2                                  # (B, k)
    if cell.kind == "mlp-reg":
        e = (f - yb[:, None]) * (2.0 / bsz)
    else:
        z = np.exp(f - f.max(1, keepdims=True))
        e = (z / z.sum(1, keepdims=True) - np.eye(f.shape[1])[yb]) / bsz
    dz = (e @ w2) * (1.0 - a * a)
    return np.concatenate([(dz.T @ xb).ravel(), dz.sum(0), (e.T @ a).ravel(), e.sum(0)])


def np_clip(rule: dict, cell: Cell, g: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """g/c of one path (theory.clipping's formulas)."""
    kind = rule["rule"]
    if kind in ("none", "projection"):
        return g
    if kind == "value":
        return np.clip(g, -rule["lam"], rule["lam"])
    if kind in ("classic", "adaptive"):
        thr = rule["lam"] if kind == "classic" else rule["lam"] * max(np.linalg.norm(theta),
                                                                       rule["eps"])
        return g * (thr / max(np.linalg.norm(g), thr))
    ids = cell.groups["unit" if kind == "unitwise" else "layer"]
    gn = np.sqrt(np.bincount(ids, g * g))
    thr = rule["lam"] * np.maximum(np.sqrt(np.bincount(ids, theta * theta)), rule["eps"])
    return g * (thr / np.maximum(gn, thr))[ids]


def np_chain(cell: Cell, rule: dict, samples: np.ndarray) -> np.ndarray:
    """Endpoints (R, P) of the chain from minibatches ``samples`` (T, R, ...), float64."""
    steps, paths = samples.shape[:2]
    out = np.empty((paths, cell.n_params))
    for r in range(paths):
        theta = cell.theta0.copy()
        for t in range(steps):
            a = 0.05 / (1.0 + t / 100.0)
            d = np_clip(rule, cell, np_grad(cell, theta, samples[t, r]), theta)
            cand = theta - a * d
            if rule["rule"] == "projection":
                n = np.linalg.norm(cand)
                if n > rule["ball"]:
                    cand = cand * (rule["ball"] / n)
            if not (np.isfinite(np.linalg.norm(d)) and np.linalg.norm(cand) <= GUARD["float64"]):
                break
            theta = cand
        out[r] = theta
    return out


# ============================================================================ JAX
def jax_functions(cell: Cell, rule: dict, dtype: str, batch: int):
    """(transform(raw) -> sample, step(state, sample, a) -> state, draw(key, R) -> raw) for one
    path; the state is (theta, alive, max deviation, max norm). Build under the dtype's x64
    setting."""
    import jax
    import jax.numpy as jnp
    import optax

    dt = jnp.float64 if dtype == "float64" else jnp.float32
    p, arrays = cell.params, {k: jnp.asarray(v) if v.dtype.kind in "iu" else
                              jnp.asarray(v, dt) for k, v in cell.arrays.items()}
    theta0 = jnp.asarray(cell.theta0, dt)
    guard = GUARD[dtype]
    shape, raw_kind = raw_shape(cell, batch)

    def transform(raw):
        if cell.kind != "quadratic":
            return raw
        if cell.law == "normal":
            return p["mean"] + p["sd"] * raw
        if cell.law == "student-t":
            return p["mean"] + p["sd"] * raw[..., 0] / jnp.sqrt(jnp.mean(raw[..., 1:] ** 2, -1))
        if cell.law == "discrete":
            k = jnp.sum(raw[:, None] >= arrays["cumprobs"], -1)
            return jnp.broadcast_to(arrays["values"][k][:, None], (raw.shape[0], cell.dim))
        return jnp.full((1, cell.dim), p["mean"], dt)

    def loss(theta, s):
        if cell.kind == "quadratic":
            return 0.5 * p["curvature"] * jnp.mean(jnp.sum((theta - s) ** 2, -1))
        if cell.kind == "rnn":
            x = arrays["x0"][s]
            for _ in range(p["length"]):
                x = theta[0] * jnp.tanh(x) + theta[1]
            return jnp.mean((x - p["target"]) ** 2)
        xb, yb = arrays["x"][s], arrays["y"][s]
        if cell.kind in ("linear", "logistic"):
            f = xb @ theta[:-1] + theta[-1]
            if cell.kind == "linear":
                return jnp.mean((f - yb) ** 2)
            return jnp.mean(jax.nn.softplus(f) - yb * f)
        w1, b1, w2, b2 = _mlp_split(theta, cell)
        f = jnp.tanh(xb @ w1.T + b1) @ w2.T + b2
        if cell.kind == "mlp-reg":
            return jnp.mean((f[:, 0] - yb) ** 2)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(f), yb[:, None], 1))

    kind = rule["rule"]
    classic = optax.clip_by_global_norm(rule["lam"]) if kind == "classic" else None
    ids = None
    if kind in ("layerwise", "unitwise"):
        ids_np = cell.groups["unit" if kind == "unitwise" else "layer"]
        ids, n_groups = jnp.asarray(ids_np), int(ids_np.max()) + 1

    def clip(g, theta):
        if kind in ("none", "projection"):
            return g
        if kind == "classic":
            return classic.update(g, classic.init(g))[0]
        if kind == "value":
            return jnp.clip(g, -rule["lam"], rule["lam"])
        if kind == "adaptive":
            thr = rule["lam"] * jnp.maximum(jnp.linalg.norm(theta), rule["eps"])
            return g * (thr / jnp.maximum(jnp.linalg.norm(g), thr))
        gn = jnp.sqrt(jax.ops.segment_sum(g * g, ids, n_groups))
        thr = rule["lam"] * jnp.maximum(
            jnp.sqrt(jax.ops.segment_sum(theta * theta, ids, n_groups)), rule["eps"])
        return g * (thr / jnp.maximum(gn, thr))[ids]

    grad = jax.grad(loss)

    def step(state, s, a):
        theta, alive, mdev, mnorm = state
        d = clip(grad(theta, s), theta)
        cand = theta - a * d
        if kind == "projection":
            n = jnp.linalg.norm(cand)
            cand = jnp.where(n > rule["ball"], cand * (rule["ball"] / n), cand)
        cnorm = jnp.linalg.norm(cand)
        ok = alive & jnp.isfinite(jnp.linalg.norm(d)) & (cnorm <= guard)
        theta = jnp.where(ok, cand, theta)
        mdev = jnp.where(ok, jnp.maximum(mdev, jnp.linalg.norm(theta - theta0)), mdev)
        mnorm = jnp.where(ok, jnp.maximum(mnorm, cnorm), mnorm)
        return theta, ok, mdev, mnorm

    def draw(key, paths):
        if raw_kind == "normal":
            return jax.random.normal(key, (paths, *shape), dt)
        if raw_kind == "uniform":
            return jax.random.uniform(key, (paths, *shape), dt)
        if raw_kind == "index":
            return jax.random.randint(key, (paths, *shape), 0, p["n"], jnp.int32)
        return jnp.zeros((paths, 0), dt)

    return transform, step, draw


def jax_initial(cell: Cell, dtype: str, paths: int):
    import jax.numpy as jnp

    dt = jnp.float64 if dtype == "float64" else jnp.float32
    theta = jnp.broadcast_to(jnp.asarray(cell.theta0, dt), (paths, cell.n_params))
    return (theta, jnp.ones(paths, bool), jnp.zeros(paths, dt),
            jnp.broadcast_to(jnp.linalg.norm(jnp.asarray(cell.theta0, dt)), (paths,)))


def jax_check(cell: Cell, rule: dict, raw: np.ndarray) -> np.ndarray:
    """Endpoints (R, P) of the JAX step fed the raw draws ``raw`` (T, R, ...), float64."""
    import jax

    with jax.enable_x64(True):
        transform, step, _ = jax_functions(cell, rule, "float64", raw.shape[2])
        one = jax.vmap(lambda st, r, a: step(st, transform(r), a),  # eager: no compile
                       in_axes=((0, 0, 0, 0), 0, None))
        state = jax_initial(cell, "float64", raw.shape[1])
        for t in range(raw.shape[0]):
            state = one(state, raw[t], 0.05 / (1.0 + t / 100.0))
        return np.asarray(state[0])


def jax_program(cell: Cell, rule: dict, dtype: str, paths: int, batch: int, seed: int = 0):
    """A jitted ``run(state, key, t0, blocks)`` of ``blocks``·BLOCK steps from step t0, and its
    initial state. Build and call under ``jax.enable_x64(dtype == "float64")``."""
    import jax
    import jax.numpy as jnp

    transform, step, draw = jax_functions(cell, rule, dtype, batch)
    dt = jnp.float64 if dtype == "float64" else jnp.float32
    vstep = jax.vmap(step, in_axes=((0, 0, 0, 0), 0, None))

    @jax.jit
    def run(state, key, t0, blocks):
        def body(state, t):
            s = jax.vmap(transform)(draw(jax.random.fold_in(key, t), paths))
            a = (0.05 / (1.0 + t.astype(dt) / 100.0)).astype(dt)
            return vstep(state, s, a), None

        def block(b, state):
            ts = t0 + b * BLOCK + jnp.arange(BLOCK, dtype=jnp.int32)
            return jax.lax.scan(body, state, ts)[0]

        return jax.lax.fori_loop(0, blocks, block, state)

    return run, jax_initial(cell, dtype, paths), jax.random.key(seed)


class JaxRunner:
    """Compiled once per cell and dtype; ``time(steps)`` runs from θ(0) and returns seconds."""

    def __init__(self, cell, rule, dtype, paths, batch):
        import jax

        self.x64 = dtype == "float64"
        with jax.enable_x64(self.x64):
            self.fn, self.state0, self.key = jax_program(cell, rule, dtype, paths, batch)
            t0 = time.perf_counter()
            jax.block_until_ready(self.fn(self.state0, self.key, 0, 1))  # compile + warm-up
            self.compile_s = time.perf_counter() - t0

    def time(self, steps: int) -> float:
        import jax

        with jax.enable_x64(self.x64):
            t0 = time.perf_counter()
            jax.block_until_ready(self.fn(self.state0, self.key, 0, steps // BLOCK))
            return time.perf_counter() - t0


# ============================================================================ the engine
def engine_spec(name: str, rule: str, dtype: str, paths: int, steps: int, batch: int,
                record=("running_max",)):
    from simulations.engine.spec import RunSpec

    return RunSpec.from_dict({"problem": PROBLEMS[name], "clip": RULES[rule],
                              "schedule": SCHEDULE, "paths": paths, "steps": steps,
                              "batch": batch, "dtype": dtype, "record": list(record)})


def run_engine(spec):
    from simulations.engine.run import simulate
    from simulations.engine.spec import Execution

    sim = simulate(spec, Execution(progress=False))
    return sim.arrays["endpoints"], sim.setting["backend"]


def time_engine(name, rule, dtype, paths, steps, batch) -> tuple[float, str]:
    spec = engine_spec(name, rule, dtype, paths, steps, batch)  # built outside the clock
    t0 = time.perf_counter()
    _, backend = run_engine(spec)
    return time.perf_counter() - t0, backend


def engine_samples(cell: Cell, name: str, paths: int, steps: int, batch: int) -> np.ndarray:
    """The engine's own minibatches (T, R, ...) for paths 0..R-1, seed 0, float64."""
    import torch

    from simulations.engine import sampling

    spec = engine_spec(name, "none", "float64", paths, steps, batch)
    problem = spec.make_problem()
    w = sampling.words(spec.seed, torch.arange(paths), range(steps),
                       batch * problem.words_per_sample)
    return np.stack([np.asarray(problem.sample(w[t], torch.float64)) for t in range(steps)])


def check_cell(cell: Cell, name: str, rule: str, batch: int) -> dict:
    """JAX and the engine against the numpy reference (see the module docstring)."""
    rng = np.random.default_rng(12345)
    shape, kind = raw_shape(cell, batch)
    full = (CHECK_STEPS, CHECK_PATHS, *shape)
    raw = (rng.standard_normal(full) if kind == "normal" else rng.random(full)
           if kind == "uniform" else rng.integers(0, cell.params.get("n", 1), full)
           if kind == "index" else np.zeros(full))
    samples = np.stack([np.stack([np_sample(cell, raw[t, r]) for r in range(CHECK_PATHS)])
                        for t in range(CHECK_STEPS)])
    want = np_chain(cell, RULES[rule], samples)
    got = jax_check(cell, RULES[rule], raw)
    scale = max(np.abs(want).max(), 1e-300)
    out = {"jax_rel_err": float(np.abs(got - want).max() / scale)}
    try:
        samples = engine_samples(cell, name, CHECK_PATHS, CHECK_STEPS, batch)
        want_e = np_chain(cell, RULES[rule], samples)
        got_e, _ = run_engine(engine_spec(name, rule, "float64", CHECK_PATHS, CHECK_STEPS,
                                          batch))
        out["engine_rel_err"] = float(np.abs(got_e - want_e).max()
                                      / max(np.abs(want_e).max(), 1e-300))
    except Exception as err:  # the engine's internals changed: say so, keep benchmarking
        out["engine_rel_err"] = None
        out["engine_check_error"] = f"{type(err).__name__}: {err}"
    return out


# ============================================================================ numba ceiling
_NUMBA = {}


def numba_kernel():
    """The ceiling kernel (compiled on first use)."""
    if "k" not in _NUMBA:
        from numba import njit, prange

        @njit(parallel=True, cache=False)
        def quad_classic(theta_out, maxdev, maxnorm, steps, lam):
            paths, dim = theta_out.shape
            for r in prange(paths):
                th = np.zeros(dim, theta_out.dtype)
                g = np.empty(dim, theta_out.dtype)
                mdev = 0.0
                mnorm = 0.0
                for t in range(steps):
                    a = 0.05 / (1.0 + t / 100.0)
                    gsq = 0.0
                    for k in range(dim):
                        # numba implements the legacy np.random API (per-thread states)
                        g[k] = th[k] - np.random.standard_normal()  # noqa: NPY002
                        gsq += g[k] * g[k]
                    gn = math.sqrt(gsq)
                    f = a * (lam / max(gn, lam))
                    nsq = 0.0
                    for k in range(dim):
                        th[k] -= f * g[k]
                        nsq += th[k] * th[k]
                    n = math.sqrt(nsq)  # θ(0) = 0: deviation and norm coincide
                    mdev = max(mdev, n)
                    mnorm = max(mnorm, n)
                for k in range(dim):
                    theta_out[r, k] = th[k]
                maxdev[r] = mdev
                maxnorm[r] = mnorm

        _NUMBA["k"] = quad_classic
    return _NUMBA["k"]


def time_numba(dim: int, dtype: str, paths: int, steps: int) -> float:
    kernel = numba_kernel()
    out = np.empty((paths, dim), np.float64 if dtype == "float64" else np.float32)
    maxdev, maxnorm = np.empty(paths), np.empty(paths)
    t0 = time.perf_counter()
    kernel(out, maxdev, maxnorm, steps, 1.0)
    return time.perf_counter() - t0


# ============================================================================ measuring a cell
def choose_steps(fn, start: int, budget: float, max_steps: int, grain: int = BLOCK) -> int:
    """T for one measurement of at least about ``budget`` seconds: ``fn(T)`` (seconds) is run
    with T = ``start``, doubled until a run (the faster of two) takes ``budget``/2 (as
    timeit's autorange, so a per-call setup cannot keep T small), then T is scaled to
    ``budget`` from that run;
    T is a multiple of ``grain`` and at most ``max_steps``."""
    steps = start
    while True:
        seconds = min(fn(steps), fn(steps))  # the faster of two: one can hit a load spike
        if seconds >= budget / 2 or steps >= max_steps:
            break
        steps = min(max_steps, 2 * steps)
    want = steps * budget / max(seconds, 1e-9)
    return int(min(max_steps, max(grain, 2, math.ceil(want / grain) * grain)))


def measure(name: str, rule: str, dtype: str, args, cell: Cell) -> dict:
    paths = args.paths or PATHS.get(name, DEFAULT_PATHS)
    impls: dict[str, tuple] = {}
    # each: a warm-up (compilation, caches), then pilots that choose T (choose_steps)
    time_engine(name, rule, dtype, min(paths, 256), 2, args.batch)
    one_step, backend = time_engine(name, rule, dtype, paths, 1, args.batch)
    one_step = min(one_step, time_engine(name, rule, dtype, paths, 1, args.batch)[0])

    def engine(t):
        return time_engine(name, rule, dtype, paths, t, args.batch)[0]

    # simulate's per-call setup (θ(0), observers, keys, the schedule) is inside its time: a
    # measurement lasts at least 10 runs of one step (up to 5 budgets), so that setup is at
    # most ~10% of it
    budget = min(max(args.budget, 10 * one_step), 5 * args.budget)
    impls["engine"] = (engine, choose_steps(engine, 2, budget, args.max_steps, grain=1))
    jr = JaxRunner(cell, RULES[rule], dtype, paths, args.batch)
    impls["jax"] = (jr.time, choose_steps(jr.time, BLOCK, args.budget, args.max_steps))
    if name in NUMBA_CELLS and rule == "classic" and not args.skip_numba:
        dim = NUMBA_CELLS[name]
        time_numba(dim, dtype, 64, 2)  # compile

        def ceiling(t):
            return time_numba(dim, dtype, paths, t)

        impls["numba"] = (ceiling, choose_steps(ceiling, BLOCK, args.budget, args.max_steps))
    names = list(impls)
    rates: dict[str, list[float]] = {k: [] for k in names}
    for rnd in range(args.rounds):
        for impl in names[rnd % len(names):] + names[:rnd % len(names)]:
            fn, steps = impls[impl]
            rates[impl].append(paths * steps / fn(steps))
    return {"problem": name, "rule": rule, "dtype": dtype, "paths": paths, "batch": args.batch,
            "steps": {k: impls[k][1] for k in names}, "rates": rates, "backend": backend,
            "engine_one_step_s": one_step,
            "jax_compile_s": jr.compile_s}


# ============================================================================ whole process
def process_commands(dim: int, paths: int, steps: int, out: str) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "engine": [py, "-m", "simulations", "run", "--problem", "quadratic", "--dim", str(dim),
                   "--clip", "classic", "--lam", "1", "--schedule", SCHEDULE, "--paths",
                   str(paths), "--steps", str(steps), "--record", "running_max", "--dtype",
                   "float64", "--quiet", "--out", out],
        "jax": [py, str(ROOT / "benchmarks" / "jax_quadratic.py"), "--dim", str(dim),
                "--paths", str(paths), "--steps", str(steps), "--dtype", "float64", "--out",
                str(Path(out) / "jax.npz")],
    }


def whole_process(paths: int, steps: int, rounds: int) -> list[dict]:
    rows = []
    for dim in PROCESS_DIMS:
        secs: dict[str, list[float]] = {"engine": [], "jax": []}
        for rnd in range(rounds):
            order = ["engine", "jax"] if rnd % 2 == 0 else ["jax", "engine"]
            for impl in order:
                with tempfile.TemporaryDirectory() as tmp:  # a fresh run store each time
                    cmd = process_commands(dim, paths, steps, tmp)[impl]
                    t0 = time.perf_counter()
                    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                    secs[impl].append(time.perf_counter() - t0)
                if done.returncode:
                    raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
                print(f"  process dim={dim} round {rnd} {impl:6s} {secs[impl][-1]:.2f} s",
                      flush=True)
        rows.append({"dim": dim, "paths": paths, "steps": steps, "seconds": secs,
                     "commands": {k: " ".join(v[1:]) for k, v in
                                  process_commands(dim, paths, steps, "OUT").items()}})
    return rows


# ============================================================================ report
def machine() -> dict:
    import numba
    import torch

    cpu = cpu_name()
    info = {"cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
            "numpy": np.__version__}
    import jax
    import jaxlib
    import optax

    info.update(jax=jax.__version__, jaxlib=jaxlib.__version__, optax=optax.__version__,
                jax_devices=[str(d) for d in jax.devices()])
    return info


def _med(rates):
    return statistics.median(rates) if rates else None


def _fmt(rates) -> str:
    if not rates:
        return "—"
    return f"{statistics.median(rates):.3g} ({min(rates):.3g}–{max(rates):.3g})"


def markdown(result: dict) -> str:
    head = ["problem", "rule", "dtype", "engine", "jax", "numba ceiling", "engine / jax",
            "engine / ceiling", "backend", "check (jax, engine)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in result["cells"]:
        r = c["rates"]
        eng, jx, nb = _med(r["engine"]), _med(r["jax"]), _med(r.get("numba"))
        chk = c.get("check", {})
        e_err = chk.get("engine_rel_err")
        check = (f"{chk['jax_rel_err']:.0e}, " + ("n/a" if e_err is None else f"{e_err:.0e}")
                 if chk else "—")
        lines.append("| " + " | ".join([
            c["problem"], c["rule"], c["dtype"], _fmt(r["engine"]), _fmt(r["jax"]),
            _fmt(r.get("numba")), f"{eng / jx:.2f}", f"{eng / nb:.2f}" if nb else "—",
            c["backend"], check]) + " |")
    if result.get("process"):
        lines += ["", "| whole process (float64, classic λ = 1, running max) | engine s | jax s "
                      "| engine / jax (time) |", "|---|---|---|---|"]
        for p in result["process"]:
            s = p["seconds"]
            lines.append(f"| quadratic {p['dim']}-D, {p['paths']} × {p['steps']} | "
                         f"{_fmt(s['engine'])} | {_fmt(s['jax'])} | "
                         f"{_med(s['engine']) / _med(s['jax']):.2f} |")
    m = result["machine"]
    lines += ["", f"Load average {m['load_average_at_start']} at the start, "
                  f"{result.get('load_average_at_end')} at the end; {m['nproc']} cores; "
                  f"{m['cpu']}; torch {m['torch']}, jax {m['jax']}, numba {m['numba']}; "
                  f"wall {result.get('wall_s', 0):.0f} s."]
    return "\n".join(lines)


def _write(path: str | None, text: str) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def select(patterns: list[str] | None) -> list[tuple[str, str]]:
    cells = [(p, r) for p in PROBLEMS for r in RULES]
    if not patterns:
        return cells
    chosen = [c for c in cells if any(fnmatch.fnmatchcase(f"{c[0]}/{c[1]}", pat) or
                                      fnmatch.fnmatchcase(c[0], pat) for pat in patterns)]
    if not chosen:
        raise SystemExit(f"--cells {' '.join(patterns)} matches no cell; cells are "
                         f"problem/rule with problems {', '.join(PROBLEMS)} and rules "
                         f"{', '.join(RULES)}")
    return chosen


#: --quick: every problem once and every rule at least once
QUICK_CELLS = ["quadratic-1d/classic", "quadratic-10d/classic", "quadratic-1d-t3/value",
               "quadratic-1d-pm1/projection", "linear-regression/adaptive", "logistic/none",
               "mlp-regression/classic", "mlp-classification/unitwise", "rnn-cliff/layerwise",
               "stiff/adaptive"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: a few cells, float32, 1 round, short measurements, "
                             "small whole-process runs (about 1 min)")
    parser.add_argument("--cells", nargs="+", metavar="PROBLEM/RULE",
                        help="patterns of cells to run (shell wildcards), e.g. 'quadratic-*/*'")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                        choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.2,
                        help="seconds per measurement (T is chosen from a pilot run)")
    parser.add_argument("--max-steps", type=int, default=20000)
    parser.add_argument("--paths", type=int, default=None,
                        help=f"paths R for every cell (default {DEFAULT_PATHS}; "
                             + ", ".join(f"{k} {v}" for k, v in PATHS.items()) + ")")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--skip-numba", action="store_true")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for the engine (default: torch's own; the "
                             "whole-process runs get OMP_NUM_THREADS)")
    parser.add_argument("--process", action=argparse.BooleanOptionalAction, default=True,
                        help="time the whole-process runs (quadratic 1-D and 10-D)")
    parser.add_argument("--process-paths", type=int, default=65536)
    parser.add_argument("--process-steps", type=int, default=1000)
    parser.add_argument("--process-rounds", type=int, default=1,
                        help="rounds of the whole-process runs (each is tens of seconds; 1 "
                             "keeps the default run near 10 min)")
    parser.add_argument("--out", default="benchmarks/cells.json")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.budget, args.dtypes = 1, 0.05, ["float32"]
        args.process_paths, args.process_steps, args.process_rounds = 4096, 200, 1
        args.cells = args.cells or QUICK_CELLS
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError:
        raise SystemExit("JAX and optax are needed: pip install -e '.[bench]'") from None
    start = time.perf_counter()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)  # the subprocesses
    info = machine()
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(info), flush=True)
    result = {"machine": info, "command": " ".join([Path(sys.executable).name] + sys.argv),
              "settings": {k: v for k, v in vars(args).items()}, "cells": [], "process": []}
    cells_cache: dict[str, Cell] = {}
    chosen = select(args.cells)
    for name, rule in chosen:
        cell = cells_cache.setdefault(name, make_cell(name))
        t0 = time.perf_counter()
        check = check_cell(cell, name, rule, args.batch)
        check["wall_s"] = round(time.perf_counter() - t0, 2)
        if check["jax_rel_err"] > CHECK_RTOL_JAX:
            raise SystemExit(f"{name}/{rule}: the JAX chain differs from the numpy reference "
                             f"(relative {check['jax_rel_err']:.2e} > {CHECK_RTOL_JAX})")
        e_err = check["engine_rel_err"]
        note = (" ENGINE DIFFERS" if e_err is not None and not e_err <= CHECK_RTOL_ENGINE
                else "")
        for dtype in args.dtypes:
            t0 = time.perf_counter()
            row = measure(name, rule, dtype, args, cell)
            row["wall_s"] = round(time.perf_counter() - t0, 2)
            row["check"] = check
            result["cells"].append(row)
            r = row["rates"]
            print(f"{name:18s} {rule:10s} {dtype}  engine {_fmt(r['engine'])}  jax "
                  f"{_fmt(r['jax'])}" + (f"  numba {_fmt(r['numba'])}" if "numba" in r else "")
                  + f"  [{row['backend']}; check jax {check['jax_rel_err']:.0e}, engine "
                  + ("n/a" if e_err is None else f"{e_err:.0e}") + f"]{note}", flush=True)
            _write(args.out, json.dumps({**result, "partial": True}, indent=1))
    if args.process:
        result["process"] = whole_process(args.process_paths, args.process_steps,
                                          args.process_rounds)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = time.perf_counter() - start
    _write(args.out, json.dumps(result, indent=1))
    table = markdown(result)
    _write(args.markdown, table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
