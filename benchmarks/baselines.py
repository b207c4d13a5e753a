"""Peer implementations of vectorized clipped SGD, for a throughput benchmark.

Problem (identical in every implementation)
-------------------------------------------
Data ``X, y = make_regression(n_samples=1000, n_features=20, noise=0.1, random_state=0)``,
targets unscaled. Parameters are one flat vector theta:

* ``"linear"``: f(x) = w.x + b,                     theta = [w (20), b (1)]                 P = 21
* ``"mlp"``:    f(x) = W2 tanh(W1 x + b1) + b2,      theta = [W1 (25x20, row-major), b1 (25),
                                                               W2 (1x25), b2 (1)]          P = 551

For trajectory r at step t, with minibatch indices i_1..i_B = idx[t, r] (iid, with replacement):

    L(theta) = (1/B) sum_j (f(x_{i_j}) - y_{i_j})^2,      g = grad_theta L   (global gradient)
    g/c      = g * min(1, lam / ||g||)                    (Euclidean norm of the whole flat g)
    theta   <- theta - a(t) * g/c,                        a(t) = 0.05 / (1 + t/100)

R independent trajectories start from the same theta0; idx has shape (T, R, B).

Implementations (each returns the endpoints as an (R, P) numpy array in the flat layout):

* :func:`reference_numpy` -- float64 numpy loops, gradient by hand (ground truth).
* :func:`loop_torch`      -- Python loop over trajectories, one nn.Module + torch.optim.SGD
  + ``clip_grad_norm_`` each. NB: torch clips with ``min(1, lam / (||g|| + 1e-6))``.
* :func:`vmap_torch`      -- ``torch.func.vmap(torch.func.grad(...))`` over R, loop over t.
* :func:`jax_scan`        -- ``jax.vmap`` + ``jax.jit`` + ``jax.lax.scan`` with
  ``optax.chain(optax.clip_by_global_norm(lam), optax.sgd(schedule))``; with ``idx=None`` the
  indices are drawn inside the scan (see :func:`jax_indices`).

``time_*`` wrappers return ``(endpoints, seconds)``; for JAX the compile is excluded by a
warm-up call at the same shapes. The dtype of ``theta0`` (float32 or float64) sets the dtype.
"""

from __future__ import annotations

import time

import numpy as np

N_SAMPLES, N_FEATURES, HIDDEN = 1000, 20, 25
N_PARAMS = {"linear": N_FEATURES + 1, "mlp": HIDDEN * N_FEATURES + HIDDEN + HIDDEN + 1}


# ----------------------------------------------------------------------------- problem setup
def make_data(dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """The regression data set, X (1000, 20) and y (1000,), cast to ``dtype``."""
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=N_SAMPLES, n_features=N_FEATURES, noise=0.1, random_state=0)
    return X.astype(dtype), y.astype(dtype)


def step_sizes(T: int) -> np.ndarray:
    """a(t) = 0.05 / (1 + t/100) for t = 0..T-1 (float64)."""
    return 0.05 / (1.0 + np.arange(T) / 100.0)


def initial_theta(model: str, seed: int = 0, dtype: type = np.float64) -> np.ndarray:
    """theta0: zeros for "linear", 0.1 * standard normal (seeded) for "mlp"."""
    if model == "linear":
        return np.zeros(N_PARAMS[model], dtype=dtype)
    return (0.1 * np.random.default_rng(seed).standard_normal(N_PARAMS[model])).astype(dtype)


def _split_mlp(theta):
    """Views (W1, b1, W2, b2) of a flat mlp theta (works for numpy, torch and jax arrays)."""
    h, d = HIDDEN, N_FEATURES
    return (theta[: h * d].reshape(h, d), theta[h * d : h * d + h],
            theta[h * d + h : h * d + 2 * h], theta[h * d + 2 * h])


def _check(model: str, theta0: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if model not in N_PARAMS:
        raise ValueError(f"model must be one of {sorted(N_PARAMS)}, got {model!r}")
    if theta0.shape != (N_PARAMS[model],):
        raise ValueError(f"theta0 must have shape ({N_PARAMS[model]},), got {theta0.shape}")
    if len(shape) != 3:
        raise ValueError(f"idx must have shape (T, R, B), got {shape}")
    return tuple(shape)


# ----------------------------------------------------------------------------- (d) numpy
def reference_numpy(model: str, X: np.ndarray, y: np.ndarray, theta0: np.ndarray,
                    idx: np.ndarray, a: np.ndarray, lam: float,
                    norm_eps: float = 0.0) -> np.ndarray:
    """Ground truth in float64, gradient by hand. ``norm_eps`` > 0 reproduces torch's
    ``clip_grad_norm_`` (scale min(1, lam / (||g|| + norm_eps))); 0 is the exact formula."""
    T, R, B = _check(model, theta0, np.shape(idx))
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    out = np.empty((R, theta0.size))
    for r in range(R):
        theta = theta0.astype(np.float64)
        for t in range(T):
            xb, yb = X[idx[t, r]], y[idx[t, r]]
            if model == "linear":
                res = xb @ theta[:-1] + theta[-1] - yb
                g = (2.0 / B) * np.concatenate([res @ xb, [res.sum()]])
            else:
                W1, b1, W2, b2 = _split_mlp(theta)
                h = np.tanh(xb @ W1.T + b1)                # (B, H)
                dout = (2.0 / B) * (h @ W2 + b2 - yb)      # dL/df, (B,)
                dz = np.outer(dout, W2) * (1.0 - h**2)     # dL/d(W1 x + b1), (B, H)
                g = np.concatenate([(dz.T @ xb).ravel(), dz.sum(0), dout @ h, [dout.sum()]])
            denom = np.linalg.norm(g) + norm_eps
            theta = theta - a[t] * g * (min(1.0, lam / denom) if denom > 0 else 1.0)
        out[r] = theta
    return out


# ----------------------------------------------------------------------------- torch
def _torch_module(model: str):
    from torch import nn

    if model == "linear":
        return nn.Linear(N_FEATURES, 1)
    return nn.Sequential(nn.Linear(N_FEATURES, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, 1))


def _torch_dtype(theta0: np.ndarray):
    import torch

    return torch.float64 if theta0.dtype == np.float64 else torch.float32


def loop_torch(model: str, X: np.ndarray, y: np.ndarray, theta0: np.ndarray, idx: np.ndarray,
               a: np.ndarray, lam: float) -> np.ndarray:
    """(a) One nn.Module + torch.optim.SGD per trajectory, Python loops over r and t."""
    import torch
    from torch.nn.utils import clip_grad_norm_, parameters_to_vector, vector_to_parameters

    T, R, _ = _check(model, theta0, np.shape(idx))
    dtype = _torch_dtype(theta0)
    Xt, yt = torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=dtype)
    idx_t, th0 = torch.as_tensor(idx), torch.as_tensor(theta0, dtype=dtype)
    out = np.empty((R, theta0.size), dtype=theta0.dtype)
    for r in range(R):
        net = _torch_module(model).to(dtype)
        vector_to_parameters(th0.clone(), net.parameters())  # it aliases, hence the clone
        opt = torch.optim.SGD(net.parameters(), lr=float(a[0]))
        for t in range(T):
            for group in opt.param_groups:
                group["lr"] = float(a[t])
            ii = idx_t[t, r]
            opt.zero_grad()
            loss = ((net(Xt[ii]).squeeze(-1) - yt[ii]) ** 2).mean()
            loss.backward()
            clip_grad_norm_(net.parameters(), lam)
            opt.step()
        out[r] = parameters_to_vector(net.parameters()).detach().numpy()
    return out


def vmap_torch(model: str, X: np.ndarray, y: np.ndarray, theta0: np.ndarray, idx: np.ndarray,
               a: np.ndarray, lam: float) -> np.ndarray:
    """(b) torch.func.vmap(torch.func.grad(loss)) over R, functional_call on a flat theta,
    Python loop over t; clipping and update batched over R."""
    import torch
    from torch.func import functional_call, grad, vmap

    T, R, _ = _check(model, theta0, np.shape(idx))
    dtype = _torch_dtype(theta0)
    Xt, yt, idx_t = torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=dtype), \
        torch.as_tensor(idx)
    net = _torch_module(model).to(dtype)
    layout = [(name, p.shape, p.numel()) for name, p in net.named_parameters()]

    def loss_fn(theta, xb, yb):
        params, k = {}, 0
        for name, shape, n in layout:          # flat theta -> views in nn.Module order
            params[name], k = theta[k : k + n].view(shape), k + n
        out = functional_call(net, params, (xb,))
        return ((out.squeeze(-1) - yb) ** 2).mean()

    grad_fn = vmap(grad(loss_fn))
    theta = torch.as_tensor(theta0, dtype=dtype).expand(R, -1).clone()
    for t in range(T):
        ii = idx_t[t]                                            # (R, B)
        g = grad_fn(theta, Xt[ii], yt[ii])                       # (R, P)
        norm = torch.linalg.vector_norm(g, dim=1, keepdim=True)
        theta.sub_(float(a[t]) * lam * g / norm.clamp(min=lam))  # g * min(1, lam/||g||)
    return theta.numpy()


def time_loop_torch(model: str, X: np.ndarray, y: np.ndarray, theta0: np.ndarray,
                    idx: np.ndarray, a: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """(endpoints, seconds) of :func:`loop_torch`; module/optimizer construction included."""
    t0 = time.perf_counter()
    out = loop_torch(model, X, y, theta0, idx, a, lam)
    return out, time.perf_counter() - t0


def time_vmap_torch(model: str, X: np.ndarray, y: np.ndarray, theta0: np.ndarray,
                    idx: np.ndarray, a: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """(endpoints, seconds) of :func:`vmap_torch`."""
    t0 = time.perf_counter()
    out = vmap_torch(model, X, y, theta0, idx, a, lam)
    return out, time.perf_counter() - t0


# ----------------------------------------------------------------------------- JAX
def _jax_forward(model: str, theta, xb):
    """f on a batch xb (B, d) for one flat theta."""
    if model == "linear":
        return xb @ theta[:-1] + theta[-1]
    import jax.numpy as jnp

    W1, b1, W2, b2 = _split_mlp(theta)
    return jnp.tanh(xb @ W1.T + b1) @ W2 + b2


def jax_indices(seed: int, T: int, R: int, B: int, n: int = N_SAMPLES) -> np.ndarray:
    """The (T, R, B) indices that :func:`jax_scan` with ``idx=None`` draws inside its scan."""
    import jax

    key = jax.random.key(seed)
    return np.stack([np.asarray(jax.random.randint(jax.random.fold_in(key, t), (R, B), 0, n,
                                                   dtype="int32")) for t in range(T)])


def _jax_program(model: str, X, y, theta0, idx, a, lam: float, R: int, T: int, B: int,
                 seed: int):
    """A jitted function and its (device) arguments; call as ``fn(*args)``. Must be built
    and called under the same ``jax.enable_x64`` setting."""
    import jax
    import jax.numpy as jnp
    import optax

    dtype = jnp.float64 if theta0.dtype == np.float64 else jnp.float32
    n = X.shape[0]

    def loss(theta, xb, yb):
        return jnp.mean((_jax_forward(model, theta, xb) - yb) ** 2)

    @jax.jit
    def run(X, y, theta0, a, xs, key):
        tx = optax.chain(optax.clip_by_global_norm(lam), optax.sgd(lambda count: a[count]))

        def one(theta, state, xb, yb):           # one trajectory, one step
            updates, state = tx.update(jax.grad(loss)(theta, xb, yb), state, theta)
            return optax.apply_updates(theta, updates), state

        def body(carry, x):
            ii = x if idx is not None else jax.random.randint(
                jax.random.fold_in(key, x), (R, B), 0, n, dtype=jnp.int32)
            theta, state = jax.vmap(one)(*carry, X[ii], y[ii])
            return (theta, state), None

        thetas = jnp.broadcast_to(theta0, (R, theta0.size))
        (thetas, _), _ = jax.lax.scan(body, (thetas, jax.vmap(tx.init)(thetas)), xs)
        return thetas

    xs = jnp.asarray(idx) if idx is not None else jnp.arange(T, dtype=jnp.int32)
    args = (jnp.asarray(X, dtype), jnp.asarray(y, dtype), jnp.asarray(theta0, dtype),
            jnp.asarray(a, dtype), xs, jax.random.key(seed))
    return run, jax.block_until_ready(args)


def _check_jax(model, theta0, idx, R, T, B) -> None:
    if idx is None:
        _check(model, theta0, (T, R, B))
    elif _check(model, theta0, np.shape(idx)) != (T, R, B):
        raise ValueError(f"idx shape {idx.shape} != (T, R, B) = {(T, R, B)}")


def jax_scan(model: str, X: np.ndarray, y: np.ndarray, theta0: np.ndarray,
             idx: np.ndarray | None, a: np.ndarray, lam: float, R: int, T: int, B: int,
             seed: int = 0) -> np.ndarray:
    """(c) jax.vmap + jit + lax.scan with optax clip_by_global_norm + sgd(schedule).

    ``idx=None`` draws the indices inside the scan (``jax_indices(seed, T, R, B)``). float64
    ``theta0`` runs under ``jax.enable_x64(True)`` locally, so float32 runs stay unaffected."""
    import jax

    _check_jax(model, theta0, idx, R, T, B)
    with jax.enable_x64(theta0.dtype == np.float64):
        fn, args = _jax_program(model, X, y, theta0, idx, a, lam, R, T, B, seed)
        return np.asarray(fn(*args))


def time_jax_scan(model: str, X: np.ndarray, y: np.ndarray, theta0: np.ndarray,
                  idx: np.ndarray | None, a: np.ndarray, lam: float, R: int, T: int, B: int,
                  seed: int = 0) -> tuple[np.ndarray, float]:
    """:func:`jax_scan` timed after a warm-up call at the same shapes (compile excluded)."""
    import jax

    _check_jax(model, theta0, idx, R, T, B)
    with jax.enable_x64(theta0.dtype == np.float64):
        fn, args = _jax_program(model, X, y, theta0, idx, a, lam, R, T, B, seed)
        fn(*args).block_until_ready()
        t0 = time.perf_counter()
        out = fn(*args).block_until_ready()
        seconds = time.perf_counter() - t0
        return np.asarray(out), seconds


__all__ = ["N_PARAMS", "make_data", "step_sizes", "initial_theta", "reference_numpy",
           "loop_torch", "vmap_torch", "jax_scan", "jax_indices", "time_loop_torch",
           "time_vmap_torch", "time_jax_scan"]
