r"""The quadratic's step on many paths at once: :func:`run_block_lanes`, the lane form of
:func:`simulations.engine.kernel.run_block`.

:func:`~simulations.engine.kernel.run_block` runs one path at a time in scalar code. This
runner takes the rows in groups of ``W`` = 64 consecutive paths and writes every part of a
step as a loop over the lanes whose body has no branch (selects only), so that LLVM turns it
into vector instructions (8 float64 per AVX-512 register): the counter-based words (uint64
multiplies), Φ⁻¹ (the central region's rational on every lane; the tails, with libm's log as
torch's ndtri, lane by lane on the lanes that need them), the gradient g = L(θ − ȳ), the
rule's g/c, the candidate, the guard and the observers. A path blown up, or dead before the
block, keeps its state (its lane is masked); the last group, when the rows are not a multiple
of W, runs the same code with masked lanes.

Square roots are taken only where a norm's value is read. A norm tested against a bound
(the guard, √max, an exit radius, the projection's ball) is tested, bit for bit, as its
square against the largest square whose rounded root passes (:func:`_sqrt_bound`); a running
maximum keeps the largest square and takes its root when stored (the rounded root does not
decrease); and with one coordinate a norm is |x|, which the rounded root of fl(x²) equals
unless the square under- or overflowed (:func:`_roots_lanes`). Claim 2's ratio and the
clipped count are computed only when recorded.

It computes, per path, the same operations in the same order as the scalar kernel, so the
results agree bit for bit with it where LLVM orders the sums alike (one coordinate), and do
not depend on the chunk size or the number of threads (the groups are split into tasks as
:func:`simulations.engine.kernel._tasks` splits rows).

Scope (:func:`supports`): the quadratic (``stiff`` included) with every law (normal,
Student-t with an integer df, discrete, point) and ``rnn-cliff`` (its 50-step recurrence, a
serial chain per path, runs on 64 paths at once), every rule, the observers exits,
running_max, checkpoints, claim2 and clipped. Other cells (the other dataset problems) run on
the scalar kernel, and so do the rows whose ξ or path is recorded (``run._CompiledBlocks``
splits the chunk). ``rnn-cliff`` in float64 is within rounding of the scalar kernel, not bit
for bit: LLVM compiles the scalar recurrence's serial sums otherwise (contractions, order) than
the lane loops.

numba's on-disk cache of :func:`run_block_lanes` is keyed on this file only: after an edit of
the parts it takes from :mod:`simulations.engine.kernel` (the draws, Φ⁻¹, tanh), touch this file.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from simulations.engine.kernel import (
    _EXP_M2,
    FASTMATH,
    Block,
    Limits,
    Observe,
    ObserverArrays,
    ProblemArgs,
    RuleArgs,
    State,
    _blow_up,
    _checkpoint_at,
    _mix32,
    _ndtri_central,
    _observe_blowup,
    _tanh64,
    _tanh_rational,
    _tasks,
    _uniform52,
    ndtri,
)

__all__ = ["W", "run_block_lanes", "supports"]

#: paths per group. Each lane loop runs over all W lanes, a trip count LLVM knows: with 64 it
#: neither unrolls them fully (after which its SLP vectoriser, unable to prove that the
#: unrolled loads and stores do not alias, gives up) nor leaves them to a scalar remainder
#: (its vector loops take 8 float64 × 2–4 interleaved). Measured on the quadratic, 65 536
#: paths: W = 64 ran 2.3–4× the scalar kernel, 16 (a run-time count) or 32 at most 2.4×.
W = 64
#: the laws the lanes draw (kernel.LAW_CODES): all (Student-t with an integer df)
_LAWS = (0, 1, 2, 3)


class _Lanes(NamedTuple):
    """A group's work arrays, (…, W): one column per lane."""

    words: np.ndarray  # (words per step, W) uint64
    kp: np.ndarray  # (W,) uint64 path keys
    th: np.ndarray  # (P, W) θ
    th0: np.ndarray  # (P, W) θ(0)
    g: np.ndarray  # (P, W) the gradient
    d: np.ndarray  # (P, W) g/c for value, layerwise and unitwise
    cand: np.ndarray  # (P, W) the candidate θ(t+1)
    gsq: np.ndarray  # (groups, W) float64
    tsq: np.ndarray  # (groups, W) float64
    f: np.ndarray  # (15, W) float64: ybar, ‖θ‖, ‖candidate‖², ‖g/c‖, factor, ‖θ − θ(0)‖²,
    #: max dev and max norm as loaded, claim2, four work rows, and the squared maxima since
    #: the load
    flag: np.ndarray  # (5, W) bool: live, ok, clipped, finite, blew up at this step
    nclip: np.ndarray  # (W,) int64 clipped steps
    exit: np.ndarray  # (radii, W) int64 first exit of ‖θ − θ(0)‖
    exit_norm: np.ndarray  # (radii, W) int64 first exit of ‖θ‖
    idx: np.ndarray  # (W,) int64 the RNN's minibatch sample
    x: np.ndarray  # (W,) θ's dtype: the RNN's state x_k
    h: np.ndarray  # (max(length, 1), W) θ's dtype: the RNN's tanh(x_k)
    bounds: np.ndarray  # (3 + radii,) float64: the squared bounds of :func:`_sqrt_bound` on
    #: ‖θ(t+1)‖ (min(guard, √max)), on a norm of g/c (√max), on the projection's ball and on
    #: each exit radius


# rows of _Lanes.f and _Lanes.flag
_YBAR, _TNORM, _CSQ, _CLIPN, _FACTOR, _DSQ, _MAXDEV, _MAXNORM, _CLAIM2, _U, _Y, _Z, _S2, \
    _MAXDSQ, _MAXCSQ = range(15)
_LIVE, _OK, _CLIPPED, _FINITE, _BLEW = range(5)
# indices of _Lanes.bounds
_TAKE, _FINITE_NORM, _BALL, _RADII = 0, 1, 2, 3
_MAX = float(np.finfo(np.float64).max)
#: the smallest square taken as normal (2⁻¹⁰²¹, one binade above the subnormals, to be safe)
_NORMAL = 2.0 ** -1021


def supports(pb: ProblemArgs, rule: RuleArgs, record: np.ndarray) -> bool:
    """Whether :func:`run_block_lanes` runs this cell: the quadratic with a law of ``_LAWS`` or
    ``rnn-cliff``, any rule, and no ``paths`` or ``xi`` observer among the flags ``record``
    (:meth:`~simulations.engine.kernel.Observe.flags`)."""
    return (((pb.code == 0 and pb.law in _LAWS) or pb.code == 5) and 0 <= rule.code <= 6
            and not record[Observe.PATHS] and not record[Observe.XI])


@njit(error_model="numpy")
def _sqrt_bound(x):
    r"""The largest float64 y with fl(√y) ≤ x (−1 when x is negative or NaN). The correctly
    rounded square root does not decrease, so fl(√y) ≤ x ⇔ y ≤ that bound: a test of a norm
    against x is, bit for bit, a test of its square, and the lanes take no square root
    where only such tests (the guard, the exits) or a maximum (√ of the largest square) read
    the norm."""
    if not x >= 0.0:
        return -1.0
    y = min(x * x, _MAX)
    while y > 0.0 and math.sqrt(y) > x:
        y = np.nextafter(y, -np.inf)
    while y < np.inf and math.sqrt(np.nextafter(y, np.inf)) <= x:
        y = np.nextafter(y, np.inf)
    return y


# ---- the step on a group --------------------------------------------------------------------

@njit(inline="always", error_model="numpy")
def _words_lanes(ks, kw, ln):
    """Each lane's words w_j = mix32(mix32(K_r + K_t) + K_j) (or mix32(K_r + K_t) alone)."""
    words, kp = ln.words, ln.kp
    if kw.shape[0] == 0:
        for lane in range(W):
            words[0, lane] = _mix32(kp[lane] + ks)
        return
    for j in range(kw.shape[0]):
        kj = np.uint64(kw[j])
        for lane in range(W):
            words[j, lane] = _mix32(_mix32(kp[lane] + ks) + kj)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _atom_grad_lanes(pb, ln):
    r"""g = L(θ − ȳ), one ȳ for every coordinate: ȳ = m (point law); ȳ = (1/B)Σ_b v_{k_b},
    k_b = #{j : C_j ≤ u_b}, u_b = (w_b + 1/2)/2^32 (discrete law)."""
    ybar, th, g = ln.f[_YBAR], ln.th, ln.g
    if pb.law == 3:
        for c in range(th.shape[0]):
            for lane in range(W):
                g[c, lane] = pb.curvature * (th[c, lane] - pb.mean)
        return
    for lane in range(W):
        ybar[lane] = 0.0
    u, y = ln.f[_U], ln.f[_Y]
    for b in range(pb.batch):
        for lane in range(W):
            u[lane] = (np.float64(ln.words[b * pb.words, lane]) + 0.5) / 4294967296.0
            y[lane] = pb.values[0]
        # v_k with k = #{j : C_j ≤ u}: C is non-decreasing, so v at the last j with C_j ≤ u
        for j in range(pb.cumprobs.shape[0]):
            cj, vj = pb.cumprobs[j], pb.values[j + 1]
            for lane in range(W):
                yl = y[lane]  # loaded before the select: see _commit
                y[lane] = vj if cj <= u[lane] else yl
        for lane in range(W):
            ybar[lane] += y[lane]
    for lane in range(W):
        ybar[lane] = ybar[lane] / pb.batch
    for c in range(th.shape[0]):
        for lane in range(W):
            g[c, lane] = pb.curvature * (th[c, lane] - ybar[lane])


@njit(inline="always", error_model="numpy")
def _normal_lanes(j, ln, out):
    """The standard normal of words j, j + 1 of every lane into ``out``, as
    :func:`simulations.engine.kernel.ndtri` computes it: the central region's rational for every
    lane in a loop that vectorises, then, one lane at a time, the tails' formula (with libm's
    log, as torch's ndtri) for the lanes whose uniform lies in a tail (2e^−2 ≈ 27% of them)."""
    words, u = ln.words, ln.f[_U]
    for lane in range(W):
        u[lane] = _uniform52(words[j, lane], words[j + 1, lane])
        out[lane] = _ndtri_central(u[lane])
    for lane in range(W):
        if not _EXP_M2 < u[lane] <= 1.0 - _EXP_M2:
            out[lane] = ndtri(u[lane])


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _student_lanes(pb, j, ln):
    r"""Student-t's parts from words j, j + 1, …: z_0 into ``f[_Z]`` and Σ_{k=1}^{ν} z_k²
    into ``f[_S2]`` (summed in k order)."""
    s2, zk = ln.f[_S2], ln.f[_Y]
    for lane in range(W):
        s2[lane] = 0.0
    for k in range(1, pb.df + 1):
        _normal_lanes(j + 2 * k, ln, zk)
        for lane in range(W):
            s2[lane] += zk[lane] * zk[lane]
    _normal_lanes(j, ln, ln.f[_Z])


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _rnn_grad_lanes(pb, rational, ln):
    r"""The RNN's gradient per lane, as :func:`simulations.engine.kernel._rnn_grad`: sample
    i_b = ⌊w_b·n/2^32⌋, x_0 = y[i_b], forward x_k = w·tanh(x_{k−1}) + b (tanh stored in θ's
    dtype), δ = 2(x_length − target)/B, backward ∂w += δ_k tanh(x_{k−1}), ∂b += δ_k,
    δ_{k−1} = δ_k·w·(1 − tanh²(x_{k−1})); ∂w, ∂b and δ in float64, summed over b then k."""
    th, g, h, x, idx = ln.th, ln.g, ln.h, ln.x, ln.idx
    delta, dw, db = ln.f[_U], ln.f[_Y], ln.f[_Z]
    n = np.uint64(pb.n)
    for lane in range(W):
        dw[lane] = 0.0
        db[lane] = 0.0
    for b in range(pb.batch):
        for lane in range(W):
            idx[lane] = np.int64((ln.words[b, lane] * n) >> np.uint64(32))
        for lane in range(W):
            x[lane] = pb.y[idx[lane]]
        for k in range(pb.length):
            if rational:
                for lane in range(W):
                    h[k, lane] = _tanh_rational(x[lane])
                    x[lane] = th[0, lane] * h[k, lane] + th[1, lane]
            else:
                for lane in range(W):
                    h[k, lane] = _tanh64(x[lane])
                    x[lane] = th[0, lane] * h[k, lane] + th[1, lane]
        for lane in range(W):
            delta[lane] = (x[lane] - pb.target) * (2.0 / pb.batch)
        for k in range(pb.length - 1, -1, -1):
            for lane in range(W):
                dw[lane] += delta[lane] * h[k, lane]
                db[lane] += delta[lane]
                delta[lane] = delta[lane] * th[0, lane] * (1.0 - h[k, lane] * h[k, lane])
    for lane in range(W):
        g[0, lane] = dw[lane]
        g[1, lane] = db[lane]


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _grad_lanes(pb, rational, ln):
    r"""The gradient: ``rnn-cliff``'s by :func:`_rnn_grad_lanes`; the quadratic's
    g = L(θ − ȳ), ȳ the minibatch mean of y, as
    :func:`simulations.engine.kernel._quadratic_grad`: normal y = m + s·z; Student-t
    y = m + s·z_0/√(Σ_{k=1}^{ν} z_k²/ν); the point and discrete laws by
    :func:`_atom_grad_lanes`. The sum over the minibatch is kept in θ's dtype (in
    ``ln.cand``), as the scalar kernel keeps it."""
    th, g, z, s2 = ln.th, ln.g, ln.f[_Z], ln.f[_S2]
    d, batch = th.shape[0], pb.batch
    if pb.code == 5:
        _rnn_grad_lanes(pb, rational, ln)
        return
    if pb.law >= 2:
        _atom_grad_lanes(pb, ln)
        return
    if batch == 1 and pb.law == 0:
        for c in range(d):
            _normal_lanes(2 * c, ln, z)
            for lane in range(W):
                g[c, lane] = pb.curvature * (th[c, lane] - (pb.mean + pb.sd * z[lane]))
        return
    ysum = ln.cand
    for c in range(d):
        for lane in range(W):
            ysum[c, lane] = 0.0
    for b in range(batch):
        base = b * pb.words
        for c in range(d):
            if pb.law == 0:
                _normal_lanes(base + 2 * c, ln, z)
                for lane in range(W):
                    ysum[c, lane] += pb.mean + pb.sd * z[lane]
                continue
            _student_lanes(pb, base + c * 2 * (pb.df + 1), ln)
            for lane in range(W):
                ysum[c, lane] += pb.mean + pb.sd * (z[lane] / math.sqrt(s2[lane] / pb.df))
    for c in range(d):
        for lane in range(W):
            g[c, lane] = pb.curvature * (th[c, lane] - ysum[c, lane] / batch)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _sq_lanes(x, out):
    """out_l = Σ_k x_kl² in float64, summed in k order."""
    if x.shape[0] == 1:  # one loop instead of two (0 + x² is x²)
        for lane in range(W):
            out[lane] = np.float64(x[0, lane]) * np.float64(x[0, lane])
        return
    for lane in range(W):
        out[lane] = 0.0
    for k in range(x.shape[0]):
        for lane in range(W):
            out[lane] += np.float64(x[k, lane]) * np.float64(x[k, lane])


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _roots_lanes(x, sq, out):
    r"""out_l = fl(√sq_l), sq_l = Σ_k x_kl² the lane's squared norm (:func:`_sq_lanes`;
    ``out`` may be ``sq``). With one coordinate (x of shape (1, W)) that is |x_l|, with no
    root taken: in binary floating point with rounding to nearest, fl(√fl(x²)) = |x| whenever
    fl(x²) is a normal finite number (fl(x²) = x²(1 + δ) with |δ| below half the spacing of
    the floats at |x|, relative, and √(1 + δ) ≈ 1 + δ/2). The root is taken on the lanes
    where the square under- or overflowed (x ≠ 0 with fl(x²) subnormal or 0, or inf)."""
    if x.shape[0] != 1:
        for lane in range(W):
            out[lane] = math.sqrt(sq[lane])
        return
    odd = 0
    for lane in range(W):
        s, v = sq[lane], abs(np.float64(x[0, lane]))
        odd += 0 if (v == 0.0) | ((s >= _NORMAL) & (s <= _MAX)) else 1
        out[lane] = v
    if odd:
        for lane in range(W):
            v = np.float64(x[0, lane])
            s = v * v
            if not ((v == 0.0) | ((s >= _NORMAL) & (s <= _MAX))):
                out[lane] = math.sqrt(s)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _group_factors(rule, ln, gmax):
    r"""Layerwise and unitwise: per group q, τ_q = λ·max(‖θ_q‖, ε), g/c = g·τ_q/max(‖g_q‖, τ_q)
    into ``ln.d``; ``flag[_CLIPPED]`` and ``flag[_FINITE]`` (every ‖g_q‖ ≤ √max). With one
    coordinate the only group is g itself: ‖g‖ = |g| (:func:`_roots_lanes`) and ‖θ‖ the one
    kept in ``f[_TNORM]``."""
    g, d, clipped, finite = ln.g, ln.d, ln.flag[_CLIPPED], ln.flag[_FINITE]
    gsq, tsq, ids, th = ln.gsq, ln.tsq, rule.ids, ln.th
    if g.shape[0] == 1:
        gn, tn, fac = ln.f[_U], ln.f[_TNORM], gsq[0]
        _sq_lanes(g, fac)
        _roots_lanes(g, fac, gn)
        for lane in range(W):
            finite[lane] = gn[lane] <= gmax
            thr = rule.lam * max(tn[lane], rule.eps)
            fac[lane] = thr / max(gn[lane], thr)
            clipped[lane] = fac[lane] < 1.0
        for lane in range(W):
            d[0, lane] = g[0, lane] * fac[lane]
        return
    for lane in range(W):
        clipped[lane] = False
        finite[lane] = True
    for q in range(rule.groups):
        for lane in range(W):
            gsq[q, lane] = 0.0
            tsq[q, lane] = 0.0
    for k in range(g.shape[0]):
        q = ids[k]
        for lane in range(W):
            gsq[q, lane] += np.float64(g[k, lane]) * np.float64(g[k, lane])
            tsq[q, lane] += np.float64(th[k, lane]) * np.float64(th[k, lane])
    for q in range(rule.groups):
        for lane in range(W):
            gn = math.sqrt(gsq[q, lane])
            finite[lane] = finite[lane] & (gn <= gmax)
            thr = rule.lam * max(math.sqrt(tsq[q, lane]), rule.eps)
            gsq[q, lane] = thr / max(gn, thr)  # gsq now holds the factors
            clipped[lane] = clipped[lane] | (gsq[q, lane] < 1.0)
    for k in range(g.shape[0]):
        q = ids[k]
        for lane in range(W):
            d[k, lane] = g[k, lane] * gsq[q, lane]


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _clip_lanes(rule, ln, gmax, claim2):
    r"""The rule's g/c per lane, as :func:`simulations.engine.kernel._clip`: ``f[_FACTOR]``
    (g/c = factor·g; −1 when g/c is in ``ln.d``), ``flag[_CLIPPED]``, ``flag[_FINITE]``
    (every norm at most √max, tested on its square where the norm itself is not needed) and,
    when claim 2 is recorded (``claim2``) or the rule needs it, ``f[_CLIPN]`` ‖g/c‖."""
    g, code, f, flag = ln.g, rule.code, ln.f, ln.flag
    norm, factor = f[_CLIPN], f[_FACTOR]
    clipped, finite = flag[_CLIPPED], flag[_FINITE]
    fin = ln.bounds[_FINITE_NORM]
    if code == 0 or code == 6:
        _sq_lanes(g, norm)
        for lane in range(W):
            factor[lane] = 1.0
            clipped[lane] = False
            finite[lane] = norm[lane] <= fin
        if claim2:
            for lane in range(W):
                norm[lane] = math.sqrt(norm[lane])
        return
    if code <= 2:
        _sq_lanes(g, norm)
        _roots_lanes(g, norm, f[_U])
        for lane in range(W):
            gn = f[_U, lane]
            thr = rule.lam if code == 1 else rule.lam * max(f[_TNORM, lane], rule.eps)
            fac = thr / max(gn, thr)
            factor[lane] = fac
            norm[lane] = gn * fac
            clipped[lane] = fac < 1.0
            finite[lane] = gn <= gmax
        return
    d = ln.d
    if code == 5:
        for lane in range(W):
            clipped[lane] = False
            finite[lane] = True
        lam = rule.lam
        for k in range(g.shape[0]):
            for lane in range(W):
                v = g[k, lane]
                out = (v > lam) | (v < -lam)
                d[k, lane] = lam if v > lam else (-lam if v < -lam else v)
                clipped[lane] = clipped[lane] | out
    else:
        _group_factors(rule, ln, gmax)
    _sq_lanes(d, norm)
    for lane in range(W):
        factor[lane] = -1.0
        finite[lane] = finite[lane] & (norm[lane] <= fin)
    if claim2:
        for lane in range(W):
            norm[lane] = math.sqrt(norm[lane])


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _rule_lanes(a, rule, gmax, claim2, ln):
    r"""The rule's g/c (:func:`_clip_lanes`) and the candidate θ − a·g/c into ``ln.cand``,
    ‖θ − a·g/c‖² into ``f[_CSQ]``."""
    th, cand, f = ln.th, ln.cand, ln.f
    _clip_lanes(rule, ln, gmax, claim2)
    if rule.code == 3 or rule.code == 4 or rule.code == 5:
        for k in range(th.shape[0]):
            for lane in range(W):
                cand[k, lane] = th[k, lane] - a * ln.d[k, lane]
    else:
        factor = f[_FACTOR]
        for k in range(th.shape[0]):
            for lane in range(W):
                cand[k, lane] = th[k, lane] - (a * factor[lane]) * ln.g[k, lane]
    _sq_lanes(cand, f[_CSQ])


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _project_lanes(rule, ln):
    r"""The projection rule's Π: θ(t+1) ← θ(t+1)·ball/‖θ(t+1)‖ on the lanes outside the ball,
    ``f[_CSQ]`` again; nothing when every lane is inside (its factor is then 1)."""
    outside = 0
    csq = ln.f[_CSQ]
    if rule.code == 6:
        inside = ln.bounds[_BALL]
        for lane in range(W):
            outside += 0 if csq[lane] <= inside else 1
    if outside == 0:
        return
    ball, cnorm, cand = rule.ball, ln.f[_U], ln.cand
    for lane in range(W):
        cnorm[lane] = math.sqrt(csq[lane])
    for k in range(cand.shape[0]):
        for lane in range(W):
            shrink = ball / cnorm[lane] if not cnorm[lane] <= ball else 1.0
            cand[k, lane] = cand[k, lane] * shrink
    _sq_lanes(cand, csq)


# ---- observers ------------------------------------------------------------------------------

@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _observe_lanes(done, took, obs, ln):
    r"""Fold θ(s) of the lanes that took step s = ``done`` (``took``) into the running
    observers, on squares: ‖θ − θ(0)‖² into ``f[_DSQ]``, the first exits past each radius
    (a square past the radius's bound), the largest squares since the load."""
    rec, f = obs.record, ln.f
    dsq, csq = f[_DSQ], f[_CSQ]
    if not (rec[Observe.EXITS] or rec[Observe.RUNNING_MAX] or rec[Observe.CHECKPOINTS]):
        return
    if ln.th.shape[0] == 1:
        for lane in range(W):
            diff = np.float64(ln.th[0, lane]) - np.float64(ln.th0[0, lane])
            dsq[lane] = diff * diff
    else:
        for lane in range(W):
            dsq[lane] = 0.0
        for k in range(ln.th.shape[0]):
            for lane in range(W):
                diff = np.float64(ln.th[k, lane]) - np.float64(ln.th0[k, lane])
                dsq[lane] += diff * diff
    if rec[Observe.EXITS]:
        for m in range(obs.radii.shape[0]):
            bound = ln.bounds[_RADII + m]
            for lane in range(W):
                e = ln.exit[m, lane]
                ln.exit[m, lane] = done if took[lane] & (e < 0) & (dsq[lane] > bound) else e
                e = ln.exit_norm[m, lane]
                ln.exit_norm[m, lane] = done if took[lane] & (e < 0) & (csq[lane] > bound) \
                    else e
    if rec[Observe.RUNNING_MAX]:
        mdsq, mcsq = f[_MAXDSQ], f[_MAXCSQ]
        for lane in range(W):
            t, d2, md, c2, mc = took[lane], dsq[lane], mdsq[lane], csq[lane], mcsq[lane]
            mdsq[lane] = d2 if t & (d2 > md) else md
            mcsq[lane] = c2 if t & (c2 > mc) else mc


@njit(inline="always", error_model="numpy")
def _checkpoint(r0, n, here, took, obs, ln):
    """‖θ‖ and ‖θ − θ(0)‖ at checkpoint ``here`` of the lanes that took the step (a step on
    every lane's clock at once: rare, written directly)."""
    for lane in range(n):
        if took[lane]:
            obs.norm_at[r0 + lane, here] = math.sqrt(ln.f[_CSQ, lane])
            obs.deviation_at[r0 + lane, here] = math.sqrt(ln.f[_DSQ, lane])


@njit(inline="always", error_model="numpy")
def _blow_up_lane(r0, lane, done, state, obs, ln):
    """Lane ``lane`` (row r0 + lane) blown up at step ``done``: the scalar kernel's
    ``_blow_up`` and ``_observe_blowup`` on the row, the lane's observers written to it
    before and read back after."""
    r = r0 + lane
    _blow_up(r, done, state)
    _observers_out(r, lane, obs, ln)
    _observe_blowup(r, done, ln.th[:, lane], obs)
    _observers_in(r, lane, obs, ln)


# ---- a group, its loads and stores ------------------------------------------------------------

@njit(inline="always", error_model="numpy")
def _observers_in(r, lane, obs, ln):
    """Row r's running observers (maxima, claim 2, clipped count, first exits) into lane
    ``lane``; the squared maxima since the load start empty (−1)."""
    rec, f = obs.record, ln.f
    if rec[Observe.RUNNING_MAX]:
        f[_MAXDEV, lane] = obs.max_deviation[r]
        f[_MAXNORM, lane] = obs.max_norm[r]
        f[_MAXDSQ, lane] = -1.0
        f[_MAXCSQ, lane] = -1.0
    if rec[Observe.CLAIM2]:
        f[_CLAIM2, lane] = obs.claim2_ratio[r]
    if rec[Observe.CLIPPED]:
        ln.nclip[lane] = obs.clipped_steps[r]
    for m in range(ln.exit.shape[0]):
        ln.exit[m, lane] = obs.first_exit[r, m]
        ln.exit_norm[m, lane] = obs.first_exit_norm[r, m]


@njit(inline="always", error_model="numpy")
def _running_max(loaded, square):
    r"""The running maximum after the lanes' steps: √(largest square) where it exceeds the
    maximum loaded (max_t fl(√x_t) = fl(√max_t x_t), the rounded root not decreasing)."""
    root = math.sqrt(square) if square >= 0.0 else -np.inf
    return root if root > loaded else loaded


@njit(inline="always", error_model="numpy")
def _observers_out(r, lane, obs, ln):
    """Lane ``lane``'s running observers back into row r."""
    rec, f = obs.record, ln.f
    if rec[Observe.RUNNING_MAX]:
        obs.max_deviation[r] = _running_max(f[_MAXDEV, lane], f[_MAXDSQ, lane])
        obs.max_norm[r] = _running_max(f[_MAXNORM, lane], f[_MAXCSQ, lane])
    if rec[Observe.CLAIM2]:
        obs.claim2_ratio[r] = f[_CLAIM2, lane]
    if rec[Observe.CLIPPED]:
        obs.clipped_steps[r] = ln.nclip[lane]
    for m in range(ln.exit.shape[0]):
        obs.first_exit[r, m] = ln.exit[m, lane]
        obs.first_exit_norm[r, m] = ln.exit_norm[m, lane]


@njit(inline="always", error_model="numpy")
def _load(r0, n, state, block, obs, ln):
    """The group's rows r0 .. r0 + n − 1 into the lanes (lanes n .. W − 1: dead, zero)."""
    for lane in range(W):
        live = lane < n and state.alive[r0 + lane]
        ln.flag[_LIVE, lane] = live
        ln.kp[lane] = np.uint64(block.path[r0 + lane]) if lane < n else np.uint64(0)
        for k in range(ln.th.shape[0]):
            ln.th[k, lane] = state.theta[r0 + lane, k] if lane < n else 0.0
            ln.th0[k, lane] = state.theta0[r0 + lane, k] if lane < n else 0.0
        if lane < n:
            _observers_in(r0 + lane, lane, obs, ln)
        else:
            for m in range(ln.exit.shape[0]):
                ln.exit[m, lane] = 0
                ln.exit_norm[m, lane] = 0
    _sq_th(ln)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _sq_th(ln):
    """‖θ‖ of every lane into ``f[_TNORM]``."""
    tnorm = ln.f[_TNORM]
    _sq_lanes(ln.th, tnorm)
    for lane in range(W):
        tnorm[lane] = math.sqrt(tnorm[lane])


@njit(inline="always", error_model="numpy")
def _store(r0, n, state, obs, ln):
    """The lanes back into the group's rows (θ, and the observers kept in the lanes)."""
    for lane in range(n):
        for k in range(ln.th.shape[0]):
            state.theta[r0 + lane, k] = ln.th[k, lane]
        _observers_out(r0 + lane, lane, obs, ln)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _ratios(rec, ln):
    r"""Before the commit: each live lane's claim 2 ratio ‖g/c‖/(1 + ‖θ(t)‖) and clipped count
    (a blow-up step included, as the scalar kernel), when recorded."""
    f, flag = ln.f, ln.flag
    live, claim2, tnorm = flag[_LIVE], f[_CLAIM2], f[_TNORM]
    if rec[Observe.CLAIM2]:
        for lane in range(W):
            ratio = f[_CLIPN, lane] / (1.0 + tnorm[lane])
            c2 = claim2[lane]
            claim2[lane] = ratio if live[lane] & (ratio > c2) else c2
    if rec[Observe.CLIPPED]:
        for lane in range(W):
            ln.nclip[lane] += 1 if live[lane] & flag[_CLIPPED, lane] else 0


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _commit(tnorm_needed, ln):
    r"""The step's end: taken where live, every norm finite and ‖θ(t+1)‖ ≤ min(guard, √max)
    (``flag[_OK]``, then 'live and took it'; ``flag[_BLEW]`` the live lanes that did not),
    θ ← candidate there, ‖θ‖ ← ‖candidate‖ when read (``tnorm_needed``), and the live lanes.
    Returns (lanes that blew up, lanes live)."""
    f, flag = ln.f, ln.flag
    live, ok, blown = flag[_LIVE], flag[_OK], flag[_BLEW]
    tnorm, csq, take = f[_TNORM], f[_CSQ], ln.bounds[_TAKE]
    blew = 0
    alive = 0
    for lane in range(W):
        was = live[lane]
        took = was & flag[_FINITE, lane] & (csq[lane] <= take)
        blown[lane] = was & (not took)
        blew += 1 if blown[lane] else 0
        alive += 1 if took else 0
        ok[lane] = took
        live[lane] = took
    if tnorm_needed:
        root = f[_U]
        _roots_lanes(ln.cand, csq, root)
        for lane in range(W):
            new, old = root[lane], tnorm[lane]
            tnorm[lane] = new if ok[lane] else old
    # both sides loaded before the select: a load inside a branch of ``a if c else b`` is not
    # speculated by LLVM, and such a loop was not vectorised (a 64-lane select: 14 ns written
    # so, 31 ns with the loads in the branches)
    th, cand = ln.th, ln.cand
    for k in range(th.shape[0]):
        for lane in range(W):
            new, old = cand[k, lane], th[k, lane]
            th[k, lane] = new if ok[lane] else old
    return blew, alive


@njit(_nrt=False, fastmath=FASTMATH, error_model="numpy")
def _groups_loop(task, state, block, pb, rule, limits, obs, ln):
    """:func:`run_block_lanes` for the groups of one task, with the work arrays ``ln``."""
    rows = state.theta.shape[0]
    tasks, per = _tasks((rows + W - 1) // W)
    rec = obs.record
    draws = pb.law != 3  # the point law draws nothing
    claim2 = rec[Observe.CLAIM2] != 0
    # who reads ‖θ‖ (kept by _commit): claim 2, the adaptive rule, the group rules in 1-D
    tnorm_needed = claim2 or rule.code == 2 or (state.theta.shape[1] == 1 and
                                                (rule.code == 3 or rule.code == 4))
    live, ok = ln.flag[_LIVE], ln.flag[_OK]
    ln.bounds[_TAKE] = _sqrt_bound(min(limits.guard, limits.gmax))
    ln.bounds[_FINITE_NORM] = _sqrt_bound(limits.gmax)
    ln.bounds[_BALL] = _sqrt_bound(rule.ball)
    for m in range(ln.bounds.shape[0] - _RADII):
        ln.bounds[_RADII + m] = _sqrt_bound(obs.radii[m])
    for group in range(task * per, min((rows + W - 1) // W, (task + 1) * per)):
        r0 = group * W
        n = min(W, rows - r0)
        _load(r0, n, state, block, obs, ln)
        ck = np.searchsorted(obs.checkpoint_steps, block.first + 1)  # the next checkpoint
        alive = 0
        for lane in range(W):
            alive += 1 if live[lane] else 0
        for s in range(block.a.shape[0]):
            if alive == 0:
                break
            done = block.first + s + 1
            here, ck = _checkpoint_at(obs.checkpoint_steps, ck, done)
            if draws:
                _words_lanes(np.uint64(block.step[s]), block.word, ln)
            a = block.a[s]
            _grad_lanes(pb, limits.rational, ln)
            _rule_lanes(a, rule, limits.gmax, claim2, ln)
            _project_lanes(rule, ln)
            _ratios(rec, ln)
            blew, alive = _commit(tnorm_needed, ln)
            _observe_lanes(done, ok, obs, ln)
            if blew:
                for lane in range(n):
                    if ln.flag[_BLEW, lane]:
                        _blow_up_lane(r0, lane, done, state, obs, ln)
            if rec[Observe.CHECKPOINTS] and here >= 0:
                _checkpoint(r0, n, here, ok, obs, ln)
        _store(r0, n, state, obs, ln)


@njit(error_model="numpy")
def _run_groups(task, state, block, pb, rule, limits, obs):
    """:func:`_groups_loop` with fresh work arrays (see ``kernel._run_rows``)."""
    p = state.theta.shape[1]
    dt = state.theta.dtype
    groups = max(rule.groups, 1)
    radii = obs.radii.shape[0] if obs.record[Observe.EXITS] else 0
    ln = _Lanes(np.zeros((max(1, block.word.shape[0]), W), np.uint64),
                np.zeros(W, np.uint64), np.zeros((p, W), dt), np.zeros((p, W), dt),
                np.zeros((p, W), dt), np.zeros((p, W), dt), np.zeros((p, W), dt),
                np.zeros((groups, W), np.float64), np.zeros((groups, W), np.float64),
                np.zeros((15, W), np.float64), np.zeros((5, W), np.bool_),
                np.zeros(W, np.int64), np.zeros((radii, W), np.int64),
                np.zeros((radii, W), np.int64), np.zeros(W, np.int64), np.zeros(W, dt),
                np.zeros((max(pb.length, 1), W), dt), np.zeros(_RADII + radii, np.float64))
    _groups_loop(task, state, block, pb, rule, limits, obs, ln)


@njit(parallel=True, cache=True, error_model="numpy")
def run_block_lanes(state: State, block: Block, pb: ProblemArgs, rule: RuleArgs,
                    limits: Limits, obs: ObserverArrays) -> None:
    """:func:`simulations.engine.kernel.run_block` (same inputs, same in-place outputs) on
    groups of ``W`` paths in SIMD lanes, for the cells of :func:`supports`."""
    tasks, _ = _tasks((state.theta.shape[0] + W - 1) // W)
    for task in prange(tasks):
        _run_groups(task, state, block, pb, rule, limits, obs)
