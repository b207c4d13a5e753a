r"""Fused CPU kernels (numba) for the engine's most common settings.

The torch step of :mod:`simulations.engine` makes several passes over the (R, P) parameters per
step. On a CPU the fastest way to run many small, independent SGD paths is instead one loop per
path that keeps the path's θ in the L1 cache for a whole block of steps, with the paths spread
over the cores (``numba.prange``). This module does that for

* problems: ``linear-regression`` and ``mlp-regression`` (any n, dim, hidden, batch B);
* rules: ``none``, ``classic`` (11) and ``adaptive`` (17);
* observers: ``exits``, ``running_max``, ``claim2``, ``clipped``, ``checkpoints``, ``paths``
  (not ``xi``, which needs the mean field);
* float64 and float32 on the CPU.

The kernel computes the same quantities as the torch path — the minibatch indices from the same
counter-based words (:mod:`simulations.sampling`), the gradient of the minibatch-mean squared
loss, g/c, the candidate θ(t+1) and its guard check, and every observer — one path at a time, so
its results do not depend on the chunk size. In float64 they agree with the torch path up to
the order of floating-point summation (about 1e-15 relative; LLVM may reassociate sums, see
``FASTMATH``). In float32 tanh is Eigen's rational approximation (relative error below 4e-7, as
good as float32 resolves), because libm's scalar tanh would dominate the step; float32 results
agree with the torch path to about 1e-6. A candidate that fails the guard is never written, so a
blown-up path stays frozen at θ(s−1).

Squared norms are accumulated in float64; as in the torch path, a step whose ‖g‖ exceeds the
dtype's largest value counts as a blow-up.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a core dependency; keep the engine usable
    numba = None

__all__ = ["AVAILABLE", "RULE_CODES", "supports", "run_block"]

AVAILABLE = numba is not None
RULE_CODES = {"none": 0, "classic": 1, "adaptive": 2}
OBSERVERS = ("exits", "running_max", "claim2", "clipped", "checkpoints", "paths")
_M32 = np.uint64(0xFFFFFFFF)
#: LLVM may reassociate sums (so reductions vectorise) and fuse multiply-adds; NaN and inf keep
#: their IEEE meaning (no 'nnan'/'ninf'), which the blow-up check relies on. Every reduction
#: loop only reads: a loop that also writes gets a run-time aliasing check choosing between a
#: vectorised and a scalar sum, whose bits differ with where the arrays lie in memory.
FASTMATH = {"reassoc", "contract", "nsz"}


def supports(problem, rule, record, device) -> bool:
    """Whether the fused kernel can run this setting (see the module docstring)."""
    from simulations.problems import LinearRegression, MLPRegression

    return (
        AVAILABLE
        and str(device) == "cpu"
        and type(problem) in (LinearRegression, MLPRegression)
        and rule.kind in RULE_CODES
        and set(record) <= set(OBSERVERS)
    )


if AVAILABLE:

    @njit(inline="always")
    def _mix32(x):
        x = x & _M32
        x ^= x >> np.uint64(16)
        x = (x * np.uint64(0x7FEB352D)) & _M32
        x ^= x >> np.uint64(15)
        x = (x * np.uint64(0x846CA68B)) & _M32
        x ^= x >> np.uint64(16)
        return x

    @njit(inline="always", fastmath=FASTMATH)
    def _tanh_rational(x):
        """tanh by Eigen's rational approximation (float32 kernels; max relative error 4e-7)."""
        x = min(max(x, -7.90531110763549805), 7.90531110763549805)
        x2 = x * x
        p = x * (4.89352455891786e-03 + x2 * (6.37261928875436e-04 + x2 * (
            1.48572235717979e-05 + x2 * (5.12229709037114e-08 + x2 * (
                -8.60467152213735e-11 + x2 * (2.00018790482477e-13
                                              + x2 * -2.76076847742355e-16))))))
        q = 4.89352518554385e-03 + x2 * (2.26843463243900e-03 + x2 * (
            1.18534705686654e-04 + x2 * 1.19825839466702e-06))
        return p / q

    @njit(inline="always", fastmath=FASTMATH)
    def _mlp_batch_grad(th, x, y, idx, batch, hidden, dim, g, xt, zt, yb, fb, rational):
        """The MLP gradient for B >= 2, with every inner loop running over the minibatch."""
        inv = 2.0 / batch
        ob1 = hidden * dim
        ow2 = ob1 + hidden
        ob2 = ow2 + hidden
        for b in range(batch):
            i = idx[b]
            yb[b] = y[i]
            for c in range(dim):
                xt[c, b] = x[i, c]
        for j in range(hidden):
            for b in range(batch):
                zt[j, b] = th[ob1 + j]
            for c in range(dim):
                w = th[j * dim + c]
                for b in range(batch):
                    zt[j, b] += w * xt[c, b]
            if rational:
                for b in range(batch):
                    zt[j, b] = _tanh_rational(zt[j, b])
            else:
                for b in range(batch):
                    zt[j, b] = math.tanh(zt[j, b])
        for b in range(batch):
            fb[b] = th[ob2]
        for j in range(hidden):
            w = th[ow2 + j]
            for b in range(batch):
                fb[b] += w * zt[j, b]
        for b in range(batch):
            fb[b] = inv * (fb[b] - yb[b])
        total = 0.0
        for b in range(batch):
            total += fb[b]
        g[ob2] = total
        for j in range(hidden):
            w = th[ow2 + j]
            s2 = 0.0
            for b in range(batch):
                s2 += fb[b] * zt[j, b]
            g[ow2 + j] = s2
            for b in range(batch):
                a = zt[j, b]
                zt[j, b] = fb[b] * w * (1.0 - a * a)  # zt now holds dz
            s1 = 0.0
            for b in range(batch):
                s1 += zt[j, b]
            g[ob1 + j] = s1
            for c in range(dim):
                acc = 0.0
                for b in range(batch):
                    acc += zt[j, b] * xt[c, b]
                g[j * dim + c] = acc

    @njit(inline="always", fastmath=FASTMATH)
    def _forward_backward(th, x, y, idx, batch, hidden, dim, g, act, rational):
        """Loss gradient g (P,) of the minibatch ``idx`` at θ = th; linear when hidden == 0."""
        p = th.shape[0]
        for k in range(p):
            g[k] = 0.0
        inv = 2.0 / batch
        if hidden == 0:
            for b in range(batch):
                i = idx[b]
                f = th[dim]
                for c in range(dim):
                    f += th[c] * x[i, c]
                r = inv * (f - y[i])
                for c in range(dim):
                    g[c] += r * x[i, c]
                g[dim] += r
            return
        ob1 = hidden * dim
        ow2 = ob1 + hidden
        ob2 = ow2 + hidden
        for b in range(batch):
            i = idx[b]
            f = th[ob2]
            for j in range(hidden):
                s = th[ob1 + j]
                for c in range(dim):
                    s += th[j * dim + c] * x[i, c]
                act[j] = _tanh_rational(s) if rational else math.tanh(s)
                f += th[ow2 + j] * act[j]
            r = inv * (f - y[i])
            g[ob2] += r
            for j in range(hidden):
                g[ow2 + j] += r * act[j]
                dz = r * th[ow2 + j] * (1.0 - act[j] * act[j])
                g[ob1 + j] += dz
                for c in range(dim):
                    g[j * dim + c] += dz * x[i, c]

    @njit(parallel=True, cache=True, fastmath=FASTMATH)
    def run_block(theta, theta0, alive, blown, x, y, key_path, key_step, key_word, n,
                  a, t_start, batch, hidden, rule, lam, eps, guard, gmax, rational,
                  radii, first_exit, first_exit_norm, max_dev, max_norm, claim2, clipped,
                  ck_steps, norm_at, dev_at, path, flags):
        """Steps t_start .. t_start + len(a) − 1 for every path, in place.

        ``flags``: (exits, running_max, claim2, clipped, checkpoints, paths) as 0/1;
        ``rational``: use the rational tanh (float32) in the minibatch MLP gradient.
        """
        rows, p = theta.shape
        dim = x.shape[1]
        steps = a.shape[0]
        n_radii = radii.shape[0]
        keep = path.shape[0]
        for r in prange(rows):
            if not alive[r]:
                continue
            th = theta[r].copy()
            g = np.empty(p, dtype=theta.dtype)
            cand = np.empty(p, dtype=theta.dtype)
            act = np.empty(max(hidden, 1), dtype=theta.dtype)
            xt = np.empty((dim, batch), dtype=theta.dtype)
            zt = np.empty((max(hidden, 1), batch), dtype=theta.dtype)
            yb = np.empty(batch, dtype=theta.dtype)
            fb = np.empty(batch, dtype=theta.dtype)
            idx = np.empty(batch, dtype=np.int64)
            kp = np.uint64(key_path[r])
            tn2 = 0.0
            for k in range(p):
                tn2 += np.float64(th[k]) * np.float64(th[k])
            tnorm = math.sqrt(tn2)
            for s in range(steps):
                t = t_start + s
                pair = _mix32(kp + np.uint64(key_step[s]))
                for b in range(batch):
                    w = pair if key_word.shape[0] == 0 else _mix32(pair + np.uint64(key_word[b]))
                    idx[b] = np.int64((w * np.uint64(n)) >> np.uint64(32))
                if hidden > 0 and batch > 1:
                    _mlp_batch_grad(th, x, y, idx, batch, hidden, dim, g, xt, zt, yb, fb,
                                    rational)
                else:
                    _forward_backward(th, x, y, idx, batch, hidden, dim, g, act, rational)
                gn2 = 0.0
                for k in range(p):
                    gn2 += np.float64(g[k]) * np.float64(g[k])
                gn = math.sqrt(gn2)
                if rule == 0:
                    factor = 1.0
                else:
                    thr = lam if rule == 1 else lam * max(tnorm, eps)
                    factor = thr / max(gn, thr)
                step = a[s] * factor
                for k in range(p):
                    cand[k] = th[k] - step * g[k]
                cn2 = 0.0
                for k in range(p):
                    cn2 += np.float64(cand[k]) * np.float64(cand[k])
                cnorm = math.sqrt(cn2)
                ok = cnorm <= guard and gn <= gmax
                if flags[2]:
                    ratio = gn * factor / (1.0 + tnorm)
                    if ratio > claim2[r]:
                        claim2[r] = ratio
                if flags[3] and factor < 1.0:
                    clipped[r] += 1
                done = t + 1
                if not ok:
                    alive[r] = False
                    blown[r] = done
                    if flags[0]:
                        for m in range(n_radii):
                            if first_exit[r, m] < 0:
                                first_exit[r, m] = done
                            if first_exit_norm[r, m] < 0:
                                first_exit_norm[r, m] = done
                    if flags[1]:
                        max_dev[r] = np.inf
                        max_norm[r] = np.inf
                    if flags[4]:
                        for c in range(ck_steps.shape[0]):
                            if ck_steps[c] >= done:
                                norm_at[r, c] = np.inf
                                dev_at[r, c] = np.inf
                    if flags[5] and r < keep:
                        for u in range(done, path.shape[1]):
                            for k in range(p):
                                path[r, u, k] = th[k]
                    break
                for k in range(p):
                    th[k] = cand[k]
                tnorm = cnorm
                dev = 0.0
                if flags[0] or flags[1] or flags[4]:
                    d2 = 0.0
                    for k in range(p):
                        diff = np.float64(th[k]) - np.float64(theta0[r, k])
                        d2 += diff * diff
                    dev = math.sqrt(d2)
                if flags[0]:
                    for m in range(n_radii):
                        if first_exit[r, m] < 0 and dev > radii[m]:
                            first_exit[r, m] = done
                        if first_exit_norm[r, m] < 0 and cnorm > radii[m]:
                            first_exit_norm[r, m] = done
                if flags[1]:
                    if dev > max_dev[r]:
                        max_dev[r] = dev
                    if cnorm > max_norm[r]:
                        max_norm[r] = cnorm
                if flags[4]:
                    for c in range(ck_steps.shape[0]):
                        if ck_steps[c] == done:
                            norm_at[r, c] = cnorm
                            dev_at[r, c] = dev
                if flags[5] and r < keep:
                    for k in range(p):
                        path[r, done, k] = th[k]
            for k in range(p):
                theta[r, k] = th[k]
