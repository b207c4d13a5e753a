r"""A slow, independent reference for :mod:`simulations.engine.run`: one path at a time, plain
Python
and numpy float64.

Nothing here calls the engine, ``problem.grad``/``problem.loss``/``problem.sample``,
:mod:`simulations.engine.rules`, :mod:`simulations.engine.observers` or :mod:`theory.clipping`.
What it takes
from the package is only the *randomness* and the *data*:

* the random 32-bit words ``sampling.words(seed, [r], range(T), B·m)`` of path r (a pure
  function of (seed, r, t, j)), which it decodes itself (uniform indices, 52-bit uniforms,
  normals by ``scipy.special.ndtri``, Student-t, discrete laws);
* the data arrays (``x``, ``y``, ``x0``), the law's parameters, the problem's sizes and θ(0).

The losses, gradients (derived by hand from the problems' docstrings), the parameter layout
(layers and units), the clip rules (from SCIENCE.md), the blow-up convention and the observers
are all written again here.

Conventions (those documented in :mod:`simulations.engine.run` and
:mod:`simulations.engine.observers`):

* θ(s) is the iterate after s updates; θ(t+1) = θ(t) − a(t)·g(t)/c(t), and for the projection
  rule θ(t+1) = Π(θ(t) − a(t)·g(t)) onto the ball ‖θ‖ ≤ ball about 0.
* Blow-up at step s = t + 1: ‖g(t)‖ is not finite, or ‖θ(s)‖ > guard (or not finite). The path
  is then frozen at θ(t) = θ(s − 1) for good.
* ``first_exit[j]``: first s ≥ 1 with ‖θ(s) − θ(0)‖ > M_j; ``first_exit_norm[j]``: first s ≥ 0
  with ‖θ(s)‖ > M_j; a blown-up path that has not exited counts as exiting at its blow-up step;
  −1 if neither.
* running maxima over s ≤ T of ‖θ(s) − θ(0)‖ and ‖θ(s)‖; +inf for a blown-up path.
* ``claim2_ratio``: max over the steps t that were attempted (t < T, up to and including the
  blow-up step) of ‖g(t)/c(t)‖/(1 + ‖θ(t)‖), ignoring a NaN ratio; 0 if there is none.
* ``clipped_steps``: the number of attempted steps with c(t) > 1.
* ``norms[:, s]``/``deviations[:, s]``: ‖θ(s)‖ and ‖θ(s) − θ(0)‖, +inf from the blow-up step
  on (s ≥ blown_step); ``trajectory[:, s]`` θ(s), frozen after a blow-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtri

from simulations.engine import sampling

__all__ = [
    "Rule",
    "clip",
    "exits",
    "gradient",
    "layer_shapes",
    "minibatches",
    "reference",
    "run_path",
    "words_per_sample",
]

TWO32 = 4294967296.0
TWO52 = 4503599627370496.0


@dataclass(frozen=True)
class Rule:
    """A clip rule by its parameters only (no code from :mod:`simulations.engine.rules`)."""

    kind: str
    lam: float | None = None
    eps: float | None = None
    ball: float | None = None


def _norm(v: np.ndarray) -> float:
    """Euclidean norm as sqrt(Σ v²) in float64 (overflows to inf as the engine's does)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(v * v)))


# ---------------------------------------------------------------------------------------------
# The parameter layout, from the problems' docstrings
# ---------------------------------------------------------------------------------------------


def layer_shapes(problem) -> list[tuple[int, ...]]:
    """The layers of θ in order, each weight matrix (out, in) and each bias its own layer."""
    name = problem.name
    if name in ("quadratic", "stiff"):
        return [(int(problem.dim),)]
    if name in ("linear-regression", "logistic"):
        dim = problem.arrays()["x"].shape[1]
        return [(1, dim), (1,)]
    if name in ("mlp-regression", "mlp-classification"):
        dim = problem.arrays()["x"].shape[1]
        hidden = int(problem.params["hidden"])
        out = 1 if name == "mlp-regression" else int(problem.params["classes"])
        return [(hidden, dim), (hidden,), (out, hidden), (out,)]
    if name == "rnn-cliff":
        return [(1, 1), (1,)]
    raise NotImplementedError(name)


def _groups(shapes: list[tuple[int, ...]], unitwise: bool) -> list[tuple[int, int]]:
    """(start, stop) of each layer, or of each unit (a matrix row; a bias whole)."""
    out, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        if unitwise and len(shape) >= 2:
            width = size // shape[0]
            out += [(offset + i * width, offset + (i + 1) * width) for i in range(shape[0])]
        else:
            out.append((offset, offset + size))
        offset += size
    return out


# ---------------------------------------------------------------------------------------------
# Decoding the random words into minibatches
# ---------------------------------------------------------------------------------------------


def words_per_sample(problem) -> int:
    """Random words per minibatch element (the problems' docstrings and sampling.py)."""
    if problem.name in ("quadratic", "stiff"):
        law, d = problem.law, int(problem.dim)
        if law.kind == "normal":
            return 2 * d
        if law.kind == "student-t":
            return 2 * (int(law.df) + 1) * d
        return 1  # discrete: one word per sample; point: none used, but one is drawn
    return 1


def _u32(w: np.ndarray) -> np.ndarray:
    return np.asarray(w, dtype=np.int64) & 0xFFFFFFFF


def _normals_from_pairs(w: np.ndarray) -> np.ndarray:
    """Standard normals Φ^{-1}(u) from pairs of words (hi, lo) along the last axis, with u on
    the 52-bit grid u = (hi·2^20 + floor(lo/2^12) + 1/2)/2^52 (sampling.py)."""
    u = _u32(w)
    hi, lo = u[..., 0::2], u[..., 1::2]
    grid = hi * 1048576 + (lo >> 12)  # < 2^52: exact in int64, and + 1/2 exact in float64
    return ndtri((grid.astype(np.float64) + 0.5) / TWO52)


def minibatches(problem, seed: int, path: int, steps: int, batch: int) -> list[list]:
    """The minibatch of ``path`` at each step t < steps: a list of B samples per step.

    Samples are dataset indices (finite data) or target vectors y (quadratic family).
    """
    m = words_per_sample(problem)
    w = sampling.words(seed, range(path, path + 1), range(steps), batch * m)
    w = w[:, 0, :].numpy().astype(np.int64)  # (T, B·m)
    out = []
    for t in range(steps):
        row = w[t].reshape(batch, m)
        if problem.name in ("quadratic", "stiff"):
            out.append([_quadratic_target(problem, row[j]) for j in range(batch)])
        else:
            n = int(problem.n)
            out.append([int((int(_u32(row[j, 0])) * n) >> 32) for j in range(batch)])
    return out


def _quadratic_target(problem, w: np.ndarray) -> np.ndarray:
    law, d = problem.law, int(problem.dim)
    if law.kind == "point":
        return np.full(d, float(law.mean))
    if law.kind == "discrete":
        u = (float(_u32(w[0])) + 0.5) / TWO32
        cum = np.cumsum(np.asarray(law.probs, dtype=np.float64))[:-1]
        k = int(np.sum(cum <= u))
        return np.full(d, float(law.values[k]))
    z = _normals_from_pairs(w.reshape(d, -1))  # (d, pairs)
    if law.kind == "normal":
        noise = z[:, 0]
    else:  # student-t with df = pairs − 1
        noise = z[:, 0] / np.sqrt(np.mean(z[:, 1:] ** 2, axis=1))
    return float(law.mean) + float(law.sd) * noise


# ---------------------------------------------------------------------------------------------
# Gradients, by hand, one sample at a time
# ---------------------------------------------------------------------------------------------


def _sigmoid(f: float) -> float:
    if f >= 0:
        return 1.0 / (1.0 + math.exp(-f))
    e = math.exp(f)
    return e / (1.0 + e)


def _sample_grad(problem, theta: np.ndarray, sample) -> np.ndarray:
    name = problem.name
    if name in ("quadratic", "stiff"):
        # ℓ = (L/2)‖θ − y‖²  →  ∇ = L(θ − y)
        return float(problem.curvature) * (theta - sample)
    data = problem.arrays()
    if name == "rnn-cliff":
        return _rnn_grad(problem, theta, float(data["x0"][sample]))
    x, y = data["x"][sample], data["y"][sample]
    dim = x.shape[0]
    if name in ("linear-regression", "logistic"):
        w, b = theta[:dim], theta[dim]
        f = float(np.dot(w, x)) + b
        # squared loss (f − y)²: ∂/∂f = 2(f − y); logistic log(1+e^f) − y f: ∂/∂f = σ(f) − y
        e = 2.0 * (f - y) if name == "linear-regression" else _sigmoid(f) - y
        return np.concatenate([e * x, [e]])
    # one-hidden-layer tanh MLP, θ = [W1 (h, d), b1 (h), W2 (k, h), b2 (k)]
    (h, _), _, (k, _), _ = layer_shapes(problem)
    o = 0
    w1 = theta[o : o + h * dim].reshape(h, dim)
    o += h * dim
    b1 = theta[o : o + h]
    o += h
    w2 = theta[o : o + k * h].reshape(k, h)
    o += k * h
    b2 = theta[o : o + k]
    act = np.tanh(w1 @ x + b1)  # (h,)
    f = w2 @ act + b2  # (k,)
    if name == "mlp-regression":
        e = 2.0 * (f - y)  # ∂(f − y)²/∂f, k = 1
    else:
        z = f - np.max(f)
        p = np.exp(z) / np.sum(np.exp(z))
        e = p.copy()
        e[int(y)] -= 1.0  # ∂(−log softmax(f)_y)/∂f = softmax(f) − e_y
    dz = (w2.T @ e) * (1.0 - act * act)  # (h,)
    return np.concatenate([np.outer(dz, x).ravel(), dz, np.outer(e, act).ravel(), e])


def _rnn_grad(problem, theta: np.ndarray, x0: float) -> np.ndarray:
    """x_k = w·tanh(x_{k−1}) + b, k = 1..N; ℓ = (x_N − target)²; θ = (w, b)."""
    w, b = float(theta[0]), float(theta[1])
    n_steps, target = int(problem.params["length"]), float(problem.params["target"])
    xs = [x0]
    for _ in range(n_steps):
        xs.append(w * math.tanh(xs[-1]) + b)
    delta = 2.0 * (xs[-1] - target)  # ∂ℓ/∂x_N
    dw = db = 0.0
    for k in range(n_steps, 0, -1):
        h = math.tanh(xs[k - 1])
        dw += delta * h  # ∂x_k/∂w (direct) = tanh(x_{k−1})
        db += delta  # ∂x_k/∂b (direct) = 1
        delta = delta * w * (1.0 - h * h)  # ∂x_k/∂x_{k−1} = w·sech²(x_{k−1})
    return np.array([dw, db])


def gradient(problem, theta: np.ndarray, batch: list) -> np.ndarray:
    """∇ of the minibatch-mean loss (1/B) Σ_j ℓ(θ; ξ_j)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = sum(_sample_grad(problem, theta, s) for s in batch)
        return total / len(batch)


# ---------------------------------------------------------------------------------------------
# Clip rules (SCIENCE.md)
# ---------------------------------------------------------------------------------------------


def clip(rule: Rule, g: np.ndarray, theta: np.ndarray, shapes) -> tuple[np.ndarray, bool]:
    """(g/c, c > 1). For ``projection`` g/c = g (the projection acts on θ after the step)."""
    kind = rule.kind
    with np.errstate(over="ignore", invalid="ignore"):
        if kind in ("none", "projection"):
            return g.copy(), False
        if kind in ("classic", "adaptive"):
            gn = _norm(g)
            tau = rule.lam if kind == "classic" else rule.lam * max(_norm(theta), rule.eps)
            if gn > tau:
                return g * (tau / gn), True
            return g.copy(), False
        if kind == "value":
            clamped = np.minimum(np.maximum(g, -rule.lam), rule.lam)
            return clamped, bool(np.any(np.abs(g) > rule.lam))
        if kind in ("layerwise", "unitwise"):
            out, clipped = g.copy(), False
            for start, stop in _groups(shapes, kind == "unitwise"):
                gn = _norm(g[start:stop])
                tau = rule.lam * max(_norm(theta[start:stop]), rule.eps)
                if gn > tau:
                    out[start:stop] = g[start:stop] * (tau / gn)
                    clipped = True
            return out, clipped
    raise ValueError(f"unknown rule {kind!r}")


# ---------------------------------------------------------------------------------------------
# One path, and many
# ---------------------------------------------------------------------------------------------


def run_path(problem, rule: Rule, a: np.ndarray, path: int, *, batch: int = 1, seed: int = 0,
             guard: float = 1e100) -> dict:
    """One path of T = len(a) steps; see the module docstring for what is returned."""
    a = np.asarray(a, dtype=np.float64)
    steps = len(a)
    shapes = layer_shapes(problem)
    theta0 = problem.initial(torch.tensor([path]), seed, torch.float64, "cpu")[0].numpy()
    theta0 = np.array(theta0, dtype=np.float64)
    if theta0.shape != (sum(math.prod(s) for s in shapes),):
        raise AssertionError("the reference's layout does not match θ(0)")
    batches = minibatches(problem, seed, path, steps, batch)
    theta = theta0.copy()
    traj = [theta0.copy()]
    blown, ratio, clipped = -1, 0.0, 0
    for t in range(steps):
        if blown >= 0:
            traj.append(theta.copy())
            continue
        g = gradient(problem, theta, batches[t])
        d, was_clipped = clip(rule, g, theta, shapes)
        with np.errstate(over="ignore", invalid="ignore"):
            new = theta - a[t] * d
            if rule.kind == "projection":
                dist = _norm(new)
                if dist > rule.ball:
                    new = new * (rule.ball / dist)
            r = _norm(d) / (1.0 + _norm(theta))
        if not math.isnan(r):
            ratio = max(ratio, r)
        clipped += int(was_clipped)
        new_norm = _norm(new)
        if not (math.isfinite(_norm(g)) and new_norm <= guard):
            blown = t + 1
            traj.append(theta.copy())  # frozen at θ(s − 1)
            continue
        theta = new
        traj.append(theta.copy())
    traj = np.array(traj)  # (T+1, P)
    norms = np.array([_norm(v) for v in traj])
    devs = np.array([_norm(v - theta0) for v in traj])
    if blown >= 0:
        norms[blown:] = np.inf
        devs[blown:] = np.inf
    return {"endpoint": theta, "blown_step": blown, "claim2_ratio": ratio,
            "clipped_steps": clipped, "trajectory": traj, "norms": norms, "deviations": devs,
            "max_deviation": float(np.max(devs)), "max_norm": float(np.max(norms))}


def exits(norms: np.ndarray, devs: np.ndarray, blown: np.ndarray, radii) -> tuple:
    """(first_exit, first_exit_norm), (R, n_radii) each, from the per-step norms (R, T+1)."""
    rows = norms.shape[0]
    first = np.full((rows, len(radii)), -1, dtype=np.int64)
    first_norm = np.full((rows, len(radii)), -1, dtype=np.int64)
    for r in range(rows):
        last = norms.shape[1] - 1 if blown[r] < 0 else blown[r] - 1  # last real iterate
        for j, m in enumerate(radii):
            for s in range(1, last + 1):
                if devs[r, s] > m:
                    first[r, j] = s
                    break
            for s in range(0, last + 1):
                if norms[r, s] > m:
                    first_norm[r, j] = s
                    break
            if blown[r] >= 0:
                if first[r, j] < 0:
                    first[r, j] = blown[r]
                if first_norm[r, j] < 0:
                    first_norm[r, j] = blown[r]
    return first, first_norm


def reference(problem, rule: Rule, a, *, paths: int, batch: int = 1, seed: int = 0,
              radii=(), guard: float = 1e100) -> dict[str, np.ndarray]:
    """``paths`` paths, stacked: the engine's array names plus ``trajectory`` (R, T+1, P),
    ``norms`` and ``deviations`` (R, T+1)."""
    runs = [run_path(problem, rule, a, r, batch=batch, seed=seed, guard=guard)
            for r in range(paths)]
    out = {
        "endpoints": np.array([p["endpoint"] for p in runs]),
        "blown_step": np.array([p["blown_step"] for p in runs], dtype=np.int64),
        "max_deviation": np.array([p["max_deviation"] for p in runs]),
        "max_norm": np.array([p["max_norm"] for p in runs]),
        "claim2_ratio": np.array([p["claim2_ratio"] for p in runs]),
        "clipped_steps": np.array([p["clipped_steps"] for p in runs], dtype=np.int64),
        "trajectory": np.array([p["trajectory"] for p in runs]),
        "norms": np.array([p["norms"] for p in runs]),
        "deviations": np.array([p["deviations"] for p in runs]),
    }
    out["first_exit"], out["first_exit_norm"] = exits(out["norms"], out["deviations"],
                                                      out["blown_step"], list(radii))
    return out
