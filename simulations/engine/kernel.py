r"""The compiled step: one CPU kernel (numba) composed of a problem's gradient, a rule's factor
and the observers, for every cell of the catalog.

The torch step of :mod:`simulations.engine.run` makes several passes over the (R, P) parameters
per step. On a CPU the fastest way to run many small, independent SGD paths is one loop per
path that keeps the path's θ in the L1 cache for a whole block of steps, with the paths spread
over the cores (``numba.prange``). This module writes each part once, as a small compiled
function, and composes them:

* the draws: the counter-based words of :mod:`simulations.engine.sampling` (:func:`_words`),
  uniforms
  on the 52-bit grid and Φ⁻¹ (:func:`ndtri`, Cephes' rational approximation, the algorithm of
  ``torch.special.ndtri``);
* a problem's gradient g of the minibatch-mean loss (:func:`_gradient`: the quadratic with each
  law and the stiff family, linear and logistic regression, both tanh MLPs, the RNN cliff);
* a rule's g/c (:func:`_clip`: none, classic, adaptive, layerwise, unitwise, value,
  projection), the candidate θ(t+1), the projection and the blow-up guard (:func:`step`);
* the observers' updates (:func:`_observe`), on the arrays that
  :data:`simulations.engine.observers.ARRAYS` declares.

The inputs are named tuples (:class:`ProblemArgs`, :class:`RuleArgs`, :class:`Block`,
:class:`State`, :class:`Limits`, :class:`ObserverArrays` with :class:`Observe`'s flags), whose
integer codes select the parts; the kernel is compiled once per dtype and cached on disk. Two
runners share :func:`step`: :func:`run_block` (the engine: steps [t, stop) of every path,
observers in place) and :func:`advance_rows` (the splitting of :mod:`simulations.engine.rare`: each
row replays its parent's words from its branching step and switches to its own at the first
step whose running score passes its level).

The kernel computes the same quantities as the torch step, one path at a time, so its results
do not depend on the chunk size or the number of threads. In float64 they agree with the torch
path up to the order of floating-point summation (about 1e-15 relative; LLVM may reassociate
sums, see ``FASTMATH``). In float32 tanh is Eigen's rational approximation (relative error
below 4e-7, as good as float32 resolves) in the MLPs' and the RNN's gradients, because libm's
scalar tanh would dominate the step. Squared norms are accumulated in float64; as in the torch
path, a step whose ‖g/c‖ exceeds the square root of the dtype's largest value counts as a
blow-up. Where the chain itself is chaotic the two steps' rounding differences grow with the
steps like any perturbation (the softmax MLP at a(0) = 0.5: 2.5e-16 after one step, 2.3e-3
relative after 600).

The ``xi`` observer needs the mean field H(θ) = E[g/c] at every step: the kernel evaluates it
where :mod:`simulations.engine.mean_field` has it exactly: for the quadratic by its closed form
(normal or Student-t law) or its finite sum over the atoms (point law, discrete law with B = 1),
for a dataset problem (B = 1, a dataset small enough to be summed) by the finite sum over its
samples, always accumulated in float64 (see :func:`_mean_field`), for the observer and for the
splitting's ``xi`` event alike; Monte Carlo H runs on the torch step.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

__all__ = ["EVENT_CODES", "LAW_CODES", "PROBLEM_CODES", "RULE_CODES", "Block", "Limits",
           "ObserverArrays", "Observe", "ProblemArgs", "RuleArgs", "State", "advance_rows",
           "ndtri", "run_block", "step"]

#: the problems of the catalog the kernel runs (``stiff`` is a quadratic)
PROBLEM_CODES = {"quadratic": 0, "linear-regression": 1, "logistic": 2, "mlp-regression": 3,
                 "mlp-classification": 4, "rnn-cliff": 5}
LAW_CODES = {"normal": 0, "student-t": 1, "discrete": 2, "point": 3}
#: the splitting's events (:class:`Score`)
EVENT_CODES = {"exit": 0, "blowup": 1, "xi": 2}
RULE_CODES = {"none": 0, "classic": 1, "adaptive": 2, "layerwise": 3, "unitwise": 4,
              "value": 5, "projection": 6}
_M32 = np.uint64(0xFFFFFFFF)
#: LLVM may reassociate sums (so reductions vectorise) and fuse multiply-adds; NaN and inf keep
#: their IEEE meaning (no 'nnan'/'ninf'), which the blow-up check relies on. Every reduction
#: loop only reads: a loop that also writes gets a run-time aliasing check choosing between a
#: vectorised and a scalar sum, whose bits differ with where the arrays lie in memory.
FASTMATH = {"reassoc", "contract", "nsz"}
#: Every function is compiled with ``error_model="numpy"``: a division by zero gives ±inf or NaN
#: (which the blow-up guard sees) instead of a check and a raise after each division, which
#: kept LLVM from vectorising any loop with a division in it (:func:`_tanh64`: 1.6 ns a call
#: vectorised, 8.5 ns with the check; libm's tanh 16 ns).


class ProblemArgs(NamedTuple):
    """A problem as the kernel sees it: its code, its sizes and its arrays (empty where unused).

    Quadratic: ℓ = (L/2)‖θ − y‖² with y from the law ``law`` (mean, sd, df; discrete: values
    and cumulative probabilities). Datasets: rows ``x`` (n, dim), float targets ``y`` (n,)
    (regression, logistic; the RNN's x_0), class labels ``labels`` (n,).
    """

    code: int
    batch: int  #: B, the minibatch size
    words: int  #: random words per minibatch element
    law: int
    dim: int
    hidden: int
    classes: int
    length: int  #: the RNN's length
    df: int
    n: int
    curvature: float
    mean: float
    sd: float
    target: float
    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    values: np.ndarray
    cumprobs: np.ndarray


class RuleArgs(NamedTuple):
    """A clip rule: its code, λ, ε, the projection's ball, and (layerwise, unitwise) the group
    of each coordinate ``ids`` (P,) among ``groups`` groups."""

    code: int
    lam: float
    eps: float
    ball: float
    ids: np.ndarray
    groups: int


class Block(NamedTuple):
    """A block of steps t = ``first``, ``first`` + 1, … : their step sizes a(t), and the keys of
    :mod:`simulations.engine.sampling` per path (rows,), per step of the block, per word of a step
    (words per step; empty for a single word)."""

    a: np.ndarray
    path: np.ndarray
    step: np.ndarray
    word: np.ndarray
    first: int


class State(NamedTuple):
    """The chain's state per path, updated in place: θ (rows, P), θ(0), alive, blow-up step."""

    theta: np.ndarray
    theta0: np.ndarray
    alive: np.ndarray
    blown: np.ndarray


class Limits(NamedTuple):
    """The blow-up guard on ‖θ‖, the largest finite norm of the dtype (√max), and whether the
    MLPs use the rational tanh (float32)."""

    guard: float
    gmax: float
    rational: bool


class Observe(IntEnum):
    """The observers the kernel runs: the index of each one's flag in
    :attr:`ObserverArrays.record` (see :mod:`simulations.engine.observers`)."""

    EXITS = 0
    RUNNING_MAX = 1
    CLAIM2 = 2
    CLIPPED = 3
    CHECKPOINTS = 4
    PATHS = 5
    XI = 6

    @classmethod
    def flags(cls, record) -> np.ndarray:
        """The flags (int8, one per member) of the observers named in ``record``."""
        return np.array([m.name.lower() in record for m in cls], dtype=np.int8)


class ObserverArrays(NamedTuple):
    """The observers' arrays (as :data:`simulations.engine.observers.ARRAYS` declares them; empty
    for
    an observer not recorded), the exit radii, the checkpoint steps and which observers run (a
    flat tuple: numba's parallel loops refuse nested ones)."""

    first_exit: np.ndarray
    first_exit_norm: np.ndarray
    max_deviation: np.ndarray
    max_norm: np.ndarray
    claim2_ratio: np.ndarray
    clipped_steps: np.ndarray
    norm_at: np.ndarray
    deviation_at: np.ndarray
    path: np.ndarray
    xi: np.ndarray
    xi_norm_at: np.ndarray
    xi_at_anchor: np.ndarray
    xi_sup_after: np.ndarray
    xi_sum_sq: np.ndarray
    xi_max: np.ndarray
    radii: np.ndarray
    checkpoint_steps: np.ndarray
    anchors: np.ndarray  #: the steps of ``xi_sup_after`` (int64)
    field: int  #: how the kernel evaluates H for ``xi``: 0 closed form, 1 sum over atoms,
    #: 2 sum over the dataset
    atom_values: np.ndarray  #: the atoms y_s = v_s·(1, …, 1) of μ (float64)
    atom_weights: np.ndarray  #: their probabilities (float64)
    record: np.ndarray  #: int8 flags, indexed by :class:`Observe`


class _Scratch(NamedTuple):
    """Per-path work arrays."""

    words: np.ndarray  # (words per step,) uint64
    th: np.ndarray  # (P,) θ of the path being run
    g: np.ndarray  # (P,) the gradient
    d: np.ndarray  # (P,) g/c for the rules that change the direction
    cand: np.ndarray  # (P,) the candidate θ(t+1)
    h: np.ndarray  # (P,) float64 the mean field H(θ(t)) for the xi observer
    xi: np.ndarray  # (P,) float64 ξ of the splitting's row being run (the xi event)
    gsq: np.ndarray  # (groups,) float64
    tsq: np.ndarray  # (groups,) float64
    act: np.ndarray  # (max(hidden, length, classes, 1),)
    act2: np.ndarray  # (max(hidden, classes, 1),)
    xt: np.ndarray  # (dim, B)  the MLP's minibatch, transposed
    zt: np.ndarray  # (hidden, B)
    yb: np.ndarray  # (B,)
    fb: np.ndarray  # (B,)
    idx: np.ndarray  # (B,) int64


# ---- draws ------------------------------------------------------------------------------------

@njit(inline="always", error_model="numpy")
def _mix32(x):
    """lowbias32 on the low 32 bits of a uint64 (see :mod:`simulations.engine.sampling`)."""
    x = x & _M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & _M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & _M32
    x ^= x >> np.uint64(16)
    return x


@njit(inline="always", error_model="numpy")
def _words(key_path, key_step, key_word, out):
    """The step's words w_j = mix32(mix32(K_r + K_t) + K_j) (just mix32(K_r + K_t) for a single
    word) into ``out``."""
    pair = _mix32(key_path + key_step)
    if key_word.shape[0] == 0:
        out[0] = pair
    else:
        for j in range(out.shape[0]):
            out[j] = _mix32(pair + np.uint64(key_word[j]))


@njit(inline="always", error_model="numpy")
def _uniform52(hi, lo):
    """u = (hi·2^20 + ⌊lo/2^12⌋ + 1/2)/2^52 in (0, 1), exact in float64."""
    return (np.float64(hi) * 1048576.0 + np.float64(lo >> np.uint64(12)) + 0.5) \
        / 4503599627370496.0


_EXP_M2 = 0.13533528323661269189  # e^−2
_S2PI = 2.50662827463100050242


# Cephes' coefficients, written out as Horner's rule (a tuple indexed in a loop is copied to
# the stack at every call of the function it is inlined into)
@njit(inline="always", error_model="numpy")
def _r0(x):
    """P0(x)/Q0(x) for |y − 1/2| ≤ 1/2 − e^−2 (Q0 monic)."""
    p = ((((-5.99633501014107895267e1 * x + 9.80010754185999661536e1) * x
            - 5.66762857469070293439e1) * x + 1.39312609387279679503e1) * x
          - 1.23916583867381258016e0)
    q = ((((((((x + 1.95448858338141759834e0) * x + 4.67627912898881538453e0) * x
               + 8.63602421390890590575e1) * x - 2.25462687854119370527e2) * x
             + 2.00260212380060660359e2) * x - 8.20372256168333339912e1) * x
           + 1.59056225126211695515e1) * x - 1.18331621121330003142e0)
    return p / q


@njit(inline="always", error_model="numpy")
def _r1(z):
    """P1(z)/Q1(z) for 2 ≤ √(−2 log y) < 8 (Q1 monic)."""
    p = ((((((((4.05544892305962419923e0 * z + 3.15251094599893866154e1) * z
               + 5.71628192246421288162e1) * z + 4.40805073893200834700e1) * z
             + 1.46849561928858024014e1) * z + 2.18663306850790267539e0) * z
           - 1.40256079171354495875e-1) * z - 3.50424626827848203418e-2) * z
         - 8.57456785154685413611e-4)
    q = ((((((((z + 1.57799883256466749731e1) * z + 4.53907635128879210584e1) * z
              + 4.13172038254672030440e1) * z + 1.50425385692907503408e1) * z
            + 2.50464946208309415979e0) * z - 1.42182922854787788574e-1) * z
          - 3.80806407691578277194e-2) * z - 9.33259480895457427372e-4)
    return p / q


@njit(inline="always", error_model="numpy")
def _r2(z):
    """P2(z)/Q2(z) for √(−2 log y) ≥ 8 (Q2 monic)."""
    p = ((((((((3.23774891776946035970e0 * z + 6.91522889068984211695e0) * z
               + 3.93881025292474443415e0) * z + 1.33303460815807542389e0) * z
             + 2.01485389549179081538e-1) * z + 1.23716634817820021358e-2) * z
           + 3.01581553508235416007e-4) * z + 2.65806974686737550832e-6) * z
         + 6.23974539184983293730e-9)
    q = ((((((((z + 6.02427039364742014255e0) * z + 3.67983563856160859403e0) * z
              + 1.37702099489081330271e0) * z + 2.16236993594496635890e-1) * z
            + 1.34204006088543189037e-2) * z + 3.28014464682127739104e-4) * z
          + 2.89247864745380683936e-6) * z + 6.79019408009981274425e-9)
    return p / q


@njit(inline="always", error_model="numpy")
def _ndtri_central(y):
    """Φ⁻¹(y) for |y − 1/2| ≤ 1/2 − e^−2: √(2π)(w + w·w²R(w²)), w = y − 1/2."""
    y = y - 0.5
    y2 = y * y
    return (y + y * (y2 * _r0(y2))) * _S2PI


@njit(inline="always", error_model="numpy")
def _ndtri_tail(y):
    """−Φ⁻¹(y) for 0 < y ≤ e^−2: z = √(−2 log y), z − log(z)/z − P(1/z)/(z·Q(1/z))."""
    x = math.sqrt(-2.0 * math.log(y))
    z = 1.0 / x
    return (x - math.log(x) / x) - z * (_r1(z) if x < 8.0 else _r2(z))


@njit(inline="always", error_model="numpy")
def ndtri(y0):
    r"""Φ⁻¹(y) for 0 < y < 1 (Cephes' ndtri, as ``torch.special.ndtri``): for
    |y − 1/2| ≤ 1/2 − e^−2, x = √(2π)(w + w³R(w²)/S(w²)) with w = y − 1/2; in the tails
    z = √(−2 log y), x = z − log(z)/z − P(1/z)/(z·Q(1/z)) (one rational pair for z < 8, one
    beyond). Relative error below 1e-15 on (0, 1); the same bits as torch's (libm's log)."""
    if y0 > 1.0 - _EXP_M2:
        return _ndtri_tail(1.0 - y0)
    if y0 > _EXP_M2:
        return _ndtri_central(y0)
    return -_ndtri_tail(y0)


@njit(inline="always", error_model="numpy")
def _normal(words, j):
    """The standard normal of words j, j + 1."""
    return ndtri(_uniform52(words[j], words[j + 1]))


# ---- gradients ----------------------------------------------------------------------------------

@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
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


#: 2^−n for n = 0 … 63 (the scale of :func:`_exp_neg`)
_POW2_NEG = np.ldexp(1.0, -np.arange(64))
_LN2_HI = 6.93147180369123816490e-01  # ln 2 to 32 bits: n·ln2_hi is exact for n < 2^21
_LN2_LO = 1.90821492927058770002e-10  # ln 2 − ln2_hi


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp_neg(v):
    r"""e^{−v} for 0 ≤ v ≤ 40 in float64 without a libm call (so loops over it vectorise):
    n = ⌊v/ln 2 + 1/2⌋, r = (n·ln2_hi − v) + n·ln2_lo ∈ [−ln2/2, ln2/2] (Cody–Waite),
    e^{−v} = 2^{−n}·Σ_{k≤13} r^k/k! (the Taylor remainder is below 5e-18 relative)."""
    n = math.floor(v * 1.44269504088896340736 + 0.5)
    r = (n * _LN2_HI - v) + n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _POW2_NEG[int(n)]


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _tanh64(x):
    r"""tanh in float64 from arithmetic alone (a loop of them vectorises; libm's tanh is a call
    of about 20 ns): for |x| < 0.625 Cephes' x + x·z·P(z)/Q(z), z = x²; else
    sign(x)·(1 − t)/(1 + t) with t = e^{−2 min(|x|, 20)} (:func:`_exp_neg`; tanh(20) is 1 in
    float64). Both are computed and one is selected, so the function has no branch. Error
    within 2 ulp of the exact value (tests: against mpmath)."""
    z = x * x
    small = x + x * (z * (((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                           - 1.61468768441708447952e3)
                          / (((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                             + 4.84406305325125486048e3)))
    a = min(abs(x), 20.0)
    t = _exp_neg(2.0 * a)
    large = (1.0 - t) / (1.0 + t)
    large = large if x >= 0.0 else -large
    return small if abs(x) < 0.625 else large


@njit(inline="always", error_model="numpy")
def _tanh(x, rational):
    """tanh: :func:`_tanh_rational` (float32 kernels) or :func:`_tanh64`."""
    return _tanh_rational(x) if rational else _tanh64(x)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _quadratic_grad(th, pb, w, g, ysum):
    r"""g = L(θ − ȳ), ȳ the minibatch mean of y: normal y = m + s·z; Student-t
    y = m + s·z_0/√(Σ_{k=1}^{ν} z_k²/ν); discrete y = v_k·(1, …, 1) with k = #{j : C_j ≤ u},
    u = (w + 1/2)/2^32; point y = m. (The point law, the discrete law and B = 1 take loops of
    one level: nested loops cost 2–3× the step on one coordinate.)"""
    d, batch = pb.dim, pb.batch
    if pb.law >= 2:  # one value ȳ for every coordinate
        ybar = pb.mean
        if pb.law == 2:  # discrete
            ybar = 0.0
            for b in range(batch):
                u = (np.float64(w[b * pb.words]) + 0.5) / 4294967296.0
                k = 0
                for j in range(pb.cumprobs.shape[0]):
                    if pb.cumprobs[j] <= u:
                        k += 1
                ybar += pb.values[k]
            ybar = ybar / batch
        for c in range(d):
            g[c] = pb.curvature * (th[c] - ybar)
    elif batch == 1 and pb.law == 0:
        for c in range(d):
            g[c] = pb.curvature * (th[c] - (pb.mean + pb.sd * _normal(w, 2 * c)))
    else:
        for c in range(d):
            ysum[c] = 0.0
        for b in range(batch):
            base = b * pb.words
            if pb.law == 0:  # normal
                for c in range(d):
                    ysum[c] += pb.mean + pb.sd * _normal(w, base + 2 * c)
            else:  # student-t with df degrees of freedom
                per = 2 * (pb.df + 1)
                for c in range(d):
                    j = base + c * per
                    z0 = _normal(w, j)
                    s2 = 0.0
                    for k in range(1, pb.df + 1):
                        zk = _normal(w, j + 2 * k)
                        s2 += zk * zk
                    ysum[c] += pb.mean + pb.sd * (z0 / math.sqrt(s2 / pb.df))
        for c in range(d):
            g[c] = pb.curvature * (th[c] - ysum[c] / batch)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _linear_grad(th, pb, idx, g):
    r"""f = w·x + b; squared loss g = (2/B)Σ_j (f_j − y_j)[x_j, 1]; logistic
    g = (1/B)Σ_j (σ(f_j) − y_j)[x_j, 1]."""
    dim = pb.dim
    for k in range(dim + 1):
        g[k] = 0.0
    logistic = pb.code == 2
    inv = 1.0 / pb.batch if logistic else 2.0 / pb.batch
    for b in range(pb.batch):
        i = idx[b]
        f = th[dim]
        for c in range(dim):
            f += th[c] * pb.x[i, c]
        if logistic:
            r = inv * (1.0 / (1.0 + math.exp(-f)) - pb.y[i])
        else:
            r = inv * (f - pb.y[i])
        for c in range(dim):
            g[c] += r * pb.x[i, c]
        g[dim] += r


@njit(_nrt=False, fastmath=FASTMATH, error_model="numpy")
def _mlp_grad(th, pb, idx, sc, rational):
    r"""The tanh MLP d–h–1 with squared loss: f = W2 tanh(W1 x + b1) + b2,
    e_j = (2/B)(f_j − y_j), ∂W2 = Σ_j e_j a_j, ∂b2 = Σ_j e_j, dz_j = e_j W2 ⊙ (1 − a_j²),
    ∂W1 = Σ_j dz_j x_jᵀ, ∂b1 = Σ_j dz_j; every inner loop runs over the minibatch."""
    g, xt, zt, yb, fb = sc.g, sc.xt, sc.zt, sc.yb, sc.fb
    batch, hidden, dim = pb.batch, pb.hidden, pb.dim
    inv = 2.0 / batch
    ob1 = hidden * dim
    ow2 = ob1 + hidden
    ob2 = ow2 + hidden
    for b in range(batch):
        i = idx[b]
        yb[b] = pb.y[i]
        for c in range(dim):
            xt[c, b] = pb.x[i, c]
    for j in range(hidden):
        for b in range(batch):
            zt[j, b] = th[ob1 + j]
        for c in range(dim):
            w = th[j * dim + c]
            for b in range(batch):
                zt[j, b] += w * xt[c, b]
        for b in range(batch):
            zt[j, b] = _tanh(zt[j, b], rational)
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


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _hidden(th, pb, i, act, rational):
    """The hidden layer a = tanh(W1 x_i + b1) of sample i into ``act``."""
    ob1 = pb.hidden * pb.dim
    for j in range(pb.hidden):
        s = th[ob1 + j]
        for c in range(pb.dim):
            s += th[j * pb.dim + c] * pb.x[i, c]
        act[j] = s
    for j in range(pb.hidden):  # apart from the sums, so that this loop vectorises
        act[j] = _tanh(act[j], rational)


@njit(_nrt=False, fastmath=FASTMATH, error_model="numpy")
def _softmax_mlp_grad(th, pb, idx, sc, rational):
    r"""The tanh MLP d–h–C with cross-entropy: f = W2 a + b2, a = tanh(W1 x + b1),
    e = (softmax(f) − e_y)/B, ∂W2 = e aᵀ, ∂b2 = e, dz = (W2ᵀ e) ⊙ (1 − a²), ∂W1 = dz xᵀ,
    ∂b1 = dz, summed over the minibatch."""
    g, act, f = sc.g, sc.act, sc.act2
    dim, hidden, classes = pb.dim, pb.hidden, pb.classes
    ob1 = hidden * dim
    ow2 = ob1 + hidden
    ob2 = ow2 + classes * hidden
    for k in range(g.shape[0]):
        g[k] = 0.0
    for b in range(pb.batch):
        i = idx[b]
        _hidden(th, pb, i, act, rational)
        top = -np.inf
        for m in range(classes):
            s = th[ob2 + m]
            for j in range(hidden):
                s += th[ow2 + m * hidden + j] * act[j]
            f[m] = s
            top = max(top, s)
        total = 0.0
        for m in range(classes):
            f[m] = math.exp(f[m] - top)
            total += f[m]
        for m in range(classes):
            e = f[m] / total - (1.0 if m == pb.labels[i] else 0.0)
            f[m] = e / pb.batch
        for m in range(classes):
            g[ob2 + m] += f[m]
            for j in range(hidden):
                g[ow2 + m * hidden + j] += f[m] * act[j]
        for j in range(hidden):
            s = 0.0
            for m in range(classes):
                s += f[m] * th[ow2 + m * hidden + j]
            dz = s * (1.0 - act[j] * act[j])
            g[ob1 + j] += dz
            for c in range(dim):
                g[j * dim + c] += dz * pb.x[i, c]


@njit(_nrt=False, fastmath=FASTMATH, error_model="numpy")
def _rnn_grad(th, pb, idx, sc, rational):
    r"""x_k = w·tanh(x_{k−1}) + b, ℓ = (x_length − target)²: δ = 2(x_length − target)/B,
    ∂w += δ_k tanh(x_{k−1}), ∂b += δ_k, δ_{k−1} = δ_k·w·(1 − tanh²(x_{k−1}))."""
    g, h = sc.g, sc.act
    w, bias = th[0], th[1]
    dw = 0.0
    db = 0.0
    for b in range(pb.batch):
        x = pb.y[idx[b]]
        for k in range(pb.length):
            h[k] = _tanh(x, rational)
            x = w * h[k] + bias
        delta = (x - pb.target) * (2.0 / pb.batch)
        for k in range(pb.length - 1, -1, -1):
            dw += delta * h[k]
            db += delta
            delta = delta * w * (1.0 - h[k] * h[k])
    g[0] = dw
    g[1] = db


@njit(inline="always", error_model="numpy")
def _gradient(th, pb, sc, rational):
    """The problem's minibatch gradient into ``sc.g`` from the step's words ``sc.words``."""
    if pb.code == 0:
        _quadratic_grad(th, pb, sc.words, sc.g, sc.cand)
        return
    idx = sc.idx
    for b in range(pb.batch):
        idx[b] = np.int64((sc.words[b] * np.uint64(pb.n)) >> np.uint64(32))
    _data_gradient(th, pb, sc, rational)


@njit(inline="always", error_model="numpy")
def _data_gradient(th, pb, sc, rational):
    """A dataset problem's gradient into ``sc.g`` on the minibatch of samples ``sc.idx``."""
    idx = sc.idx
    if pb.code <= 2:
        _linear_grad(th, pb, idx, sc.g)
    elif pb.code == 3:
        if pb.batch > 1:
            _mlp_grad(th, pb, idx, sc, rational)
        else:
            _mlp_grad1(th, pb, idx[0], sc, rational)
    elif pb.code == 4:
        _softmax_mlp_grad(th, pb, idx, sc, rational)
    else:
        _rnn_grad(th, pb, idx, sc, rational)


@njit(_nrt=False, fastmath=FASTMATH, error_model="numpy")
def _mlp_grad1(th, pb, i, sc, rational):
    """:func:`_mlp_grad` for one sample (B = 1), without the transposed minibatch."""
    g, act = sc.g, sc.act
    hidden, dim = pb.hidden, pb.dim
    ob1 = hidden * dim
    ow2 = ob1 + hidden
    ob2 = ow2 + hidden
    _hidden(th, pb, i, act, rational)
    f = th[ob2]
    for j in range(hidden):
        f += th[ow2 + j] * act[j]
    r = 2.0 * (f - pb.y[i])
    g[ob2] = r
    for j in range(hidden):
        g[ow2 + j] = r * act[j]
        dz = r * th[ow2 + j] * (1.0 - act[j] * act[j])
        g[ob1 + j] = dz
        for c in range(dim):
            g[j * dim + c] = dz * pb.x[i, c]


# ---- the rule and the step ---------------------------------------------------------------

@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _sq(x):
    """Σ_k x_k² in float64."""
    s = 0.0
    for k in range(x.shape[0]):
        s += np.float64(x[k]) * np.float64(x[k])
    return s


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _clip(th, tnorm, rule, sc, gmax):
    r"""The rule's g/c: returns (factor, ‖g/c‖, clipped, finite), with g/c = factor·g for
    none, classic (factor = λ/max(‖g‖, λ)), adaptive (τ = λ·max(‖θ‖, ε)) and projection
    (factor 1), and factor = −1 when g/c is written to ``sc.d``: value (clamp to [−λ, λ]),
    layerwise and unitwise (per group, τ_l = λ·max(‖θ_l‖, ε)). ``finite``: every norm the
    torch step takes in the dtype is at most √max (else it would overflow)."""
    g, code = sc.g, rule.code
    if code <= 2 or code == 6:
        gn = math.sqrt(_sq(g))
        if code == 0 or code == 6:
            factor = 1.0
        else:
            thr = rule.lam if code == 1 else rule.lam * max(tnorm, rule.eps)
            factor = thr / max(gn, thr)
        return factor, gn * factor, factor < 1.0, gn <= gmax
    d = sc.d
    clipped = False
    finite = True
    if code == 5:  # selects, not branches, so that the loop vectorises
        lam = rule.lam
        hits = 0
        for k in range(g.shape[0]):
            v = g[k]
            hits += (v > lam) | (v < -lam)
            v = lam if v > lam else v
            d[k] = -lam if v < -lam else v
        clipped = hits > 0
    else:
        gsq, tsq, ids = sc.gsq, sc.tsq, rule.ids
        for q in range(rule.groups):
            gsq[q] = 0.0
            tsq[q] = 0.0
        for k in range(g.shape[0]):
            q = ids[k]
            gsq[q] += np.float64(g[k]) * np.float64(g[k])
            tsq[q] += np.float64(th[k]) * np.float64(th[k])
        for q in range(rule.groups):
            gn = math.sqrt(gsq[q])
            finite = finite and gn <= gmax
            thr = rule.lam * max(math.sqrt(tsq[q]), rule.eps)
            gsq[q] = thr / max(gn, thr)  # gsq now holds the factors
            clipped = clipped or gsq[q] < 1.0
        for k in range(g.shape[0]):
            d[k] = g[k] * gsq[ids[k]]
    dn = math.sqrt(_sq(d))
    return -1.0, dn, clipped, finite and dn <= gmax


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def step(th, tnorm, a, pb, rule, limits, sc):
    r"""One step from θ = ``th`` (norm ``tnorm``) with the words in ``sc.words``: the candidate
    θ(t+1) = Π(θ − a·g/c) into ``sc.cand`` (Π the projection rule's ball, else the identity).
    Returns (ok, ‖θ(t+1)‖, ‖g/c‖, clipped, factor) (g/c = factor·``sc.g``, or ``sc.d`` when
    factor < 0); not ok (a blow-up) when ‖θ(t+1)‖ > guard or a norm is not finite (then
    ``sc.cand`` must not be taken)."""
    _gradient(th, pb, sc, limits.rational)
    factor, clip_norm, clipped, finite = _clip(th, tnorm, rule, sc, limits.gmax)
    cand = sc.cand
    p = th.shape[0]
    if factor >= 0.0:
        s = a * factor
        for k in range(p):
            cand[k] = th[k] - s * sc.g[k]
    else:
        for k in range(p):
            cand[k] = th[k] - a * sc.d[k]
    cnorm = math.sqrt(_sq(cand))
    if rule.code == 6 and not cnorm <= rule.ball:
        shrink = rule.ball / cnorm
        for k in range(p):
            cand[k] = cand[k] * shrink
        cnorm = math.sqrt(_sq(cand))
    ok = finite and cnorm <= limits.guard and cnorm <= limits.gmax
    return ok, cnorm, clip_norm, clipped, factor


# ---- the mean field H(θ) = E[g/c] of the quadratic, for the xi observer -----------------------

_SQRT1_2 = 0.70710678118654752440


@njit(error_model="numpy")
def _ndtr(x):
    """(Φ(x), Φ(−x)), each as ``torch.special.ndtr`` computes it: 1/2 ± erf(x/√2)/2 for
    |x| < 1, else from y = erfc(|x|/√2)/2 (one erf or erfc for both)."""
    z = x * _SQRT1_2
    if abs(z) < _SQRT1_2:
        e = 0.5 * math.erf(z)
        return 0.5 + e, 0.5 - e
    y = 0.5 * math.erfc(abs(z))
    return (1.0 - y, y) if z > 0 else (y, 1.0 - y)


@njit(error_model="numpy")
def _t_cdf(x, df):
    r"""(F_ν(x), F_ν(−x)) for Student-t with integer ν = ``df`` (Abramowitz & Stegun
    26.7.3–4, as :func:`simulations.engine.mean_field.t_cdf`): with ϑ = arctan(x/√ν),
    2F − 1 = (2/π)[ϑ + sinϑ cosϑ Σ_k c_k cos^{2k}ϑ] (ν odd; ϑ alone for ν = 1),
    sinϑ Σ_k e_k cos^{2k}ϑ (ν even), c_k = Π_{j≤k} 2j/(2j+1), e_k = Π_{j≤k} (2j−1)/(2j)."""
    th = math.atan(x / math.sqrt(df))
    c2 = math.cos(th) ** 2
    odd = df % 2 == 1
    total = 0.0
    for k in range((df - 3) // 2 if odd else (df - 2) // 2, -1, -1):  # Horner in cos²ϑ
        coef = 1.0
        for j in range(1, k + 1):
            coef *= 2 * j / (2 * j + 1) if odd else (2 * j - 1) / (2 * j)
        total = coef + c2 * total
    if not odd:
        twice = math.sin(th) * total
    elif df > 1:
        twice = (2 / math.pi) * (th + math.sin(th) * math.cos(th) * total)
    else:
        twice = (2 / math.pi) * th
    return 0.5 * (1.0 + twice), 0.5 * (1.0 - twice)


@njit(error_model="numpy")
def _cdf(x, law, df):
    """(F(x), F(−x)) of the law's standardised T: Φ (normal), F_ν (Student-t)."""
    return _ndtr(x) if law == 0 else _t_cdf(x, df)


@njit(error_model="numpy")
def _partial(a, b, law, df):
    r"""E[T·1{a < T ≤ b}]: φ(a) − φ(b) (normal); [(ν + a²)f_ν(a) − (ν + b²)f_ν(b)]/(ν − 1)
    (Student-t, ν > 1), [ln(1 + b²) − ln(1 + a²)]/(2π) (ν = 1), f_ν the t density."""
    if law == 0:
        return (math.exp(-0.5 * a * a) - math.exp(-0.5 * b * b)) / _S2PI
    if df == 1:
        return (math.log1p(b * b) - math.log1p(a * a)) / (2 * math.pi)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    fa = math.exp(log_c - 0.5 * (df + 1) * math.log1p(a * a / df))
    fb = math.exp(log_c - 0.5 * (df + 1) * math.log1p(b * b / df))
    return ((df + a * a) * fa - (df + b * b) * fb) / (df - 1)


@njit(error_model="numpy")
def _clamp_mean(m, s, tau, law, df):
    r"""E[clamp(m + sT, −τ, τ)] = m[F(β) − F(α)] + s·E[T·1{α < T ≤ β}] + τ[F(−β) − F(α)],
    α = (−τ − m)/s, β = (τ − m)/s (see :mod:`simulations.engine.mean_field`)."""
    a, b = (-tau - m) / s, (tau - m) / s
    fa = _cdf(a, law, df)[0]
    fb, f_minus_b = _cdf(b, law, df)
    return m * (fb - fa) + s * _partial(a, b, law, df) + tau * (f_minus_b - fa)


@njit(inline="always", error_model="numpy")
def _mean_field(th, tnorm, pb, rule, obs, sc, limits):
    r"""H(θ) into ``sc.h`` (float64). Closed form (``obs.field`` 0), per coordinate,
    m = L(θ_c − mean): H_c = m without clipping or with the projection, else
    E[clamp(m + sT, −τ, τ)] with s = |L|·sd/√B and τ = λ (classic, value) or λ·max(|θ|, ε)
    (the adaptive rules, d = 1). Atoms (``obs.field`` 1): H = Σ_s w_s·clip(L(θ − v_s·1)), the
    rule applied to each atom's gradient. Dataset (``obs.field`` 2, B = 1):
    H = (1/n)Σ_i clip(∇ℓ(θ; x_i, y_i)) over the n samples. (Uses ``sc.g``, ``sc.d`` and
    ``sc.idx`` as work arrays.)"""
    h, p, gmax = sc.h, th.shape[0], limits.gmax
    if obs.field == 2:
        for c in range(p):
            h[c] = 0.0
        w = 1.0 / pb.n
        for i in range(pb.n):
            sc.idx[0] = i
            _data_gradient(th, pb, sc, limits.rational)
            factor, _, _, _ = _clip(th, tnorm, rule, sc, gmax)
            for c in range(p):
                h[c] += w * (factor * np.float64(sc.g[c]) if factor >= 0.0
                             else np.float64(sc.d[c]))
        return
    if obs.field == 0:
        s = abs(pb.curvature) * pb.sd / math.sqrt(pb.batch)
        for c in range(p):
            m = pb.curvature * (np.float64(th[c]) - pb.mean)
            if rule.code == 0 or rule.code == 6:
                h[c] = m
                continue
            tau = rule.lam
            if rule.code in (2, 3, 4):
                tau = rule.lam * max(abs(np.float64(th[c])), rule.eps)
            h[c] = _clamp_mean(m, s, tau, pb.law, pb.df)
        return
    for c in range(p):
        h[c] = 0.0
    for j in range(obs.atom_values.shape[0]):
        for c in range(p):
            sc.g[c] = pb.curvature * (th[c] - obs.atom_values[j])
        factor, _, _, _ = _clip(th, tnorm, rule, sc, gmax)
        w = obs.atom_weights[j]
        for c in range(p):
            h[c] += w * (factor * np.float64(sc.g[c]) if factor >= 0.0 else np.float64(sc.d[c]))


@njit(inline="always", error_model="numpy")
def _observe_xi(r, done, a, factor, sc, obs, here):
    r"""Fold step s = ``done`` into path r's martingale: M = g/c − H(θ(t)), ξ += a·M,
    Σa²‖M‖², max‖ξ‖, ‖ξ‖ at checkpoint ``here`` (−1: s is not one), and
    sup_{s>t}‖ξ(s) − ξ(t)‖ past each anchor t."""
    xi, p = obs.xi, sc.h.shape[0]
    msq = 0.0
    n2 = 0.0
    for k in range(p):
        gc = factor * np.float64(sc.g[k]) if factor >= 0.0 else np.float64(sc.d[k])
        m = gc - sc.h[k]
        msq += m * m
        xi[r, k] = xi[r, k] + a * m
        n2 += xi[r, k] * xi[r, k]
    obs.xi_sum_sq[r] += a * a * msq
    xn = math.sqrt(n2)
    obs.xi_max[r] = max(obs.xi_max[r], xn)
    if here >= 0:
        obs.xi_norm_at[r, here] = xn
    _observe_anchors(r, done, obs)


@njit(inline="always", error_model="numpy")
def _observe_anchors(r, done, obs):
    """At an anchor step t keep ξ(t); past it, the running sup of ‖ξ(s) − ξ(t)‖."""
    xi, at = obs.xi, obs.xi_at_anchor
    for i in range(obs.anchors.shape[0]):
        if done == obs.anchors[i]:
            for k in range(xi.shape[1]):
                at[r, i, k] = xi[r, k]
        elif done > obs.anchors[i]:
            g2 = 0.0
            for k in range(xi.shape[1]):
                diff = xi[r, k] - at[r, i, k]
                g2 += diff * diff
            obs.xi_sup_after[r, i] = max(obs.xi_sup_after[r, i], math.sqrt(g2))


@njit(inline="always", error_model="numpy")
def _observe_xi_blowup(r, done, obs):
    """A ξ path blown up at step ``done``: ξ stays, and so does ‖ξ‖ at the later checkpoints."""
    n2 = 0.0
    for k in range(obs.xi.shape[1]):
        n2 += obs.xi[r, k] * obs.xi[r, k]
    for c in range(obs.checkpoint_steps.shape[0]):
        if obs.checkpoint_steps[c] >= done:
            obs.xi_norm_at[r, c] = math.sqrt(n2)


@njit(inline="always", error_model="numpy")
def _scratch(pb, rule, p, dtype_like):
    """Fresh work arrays for the paths of one task (reused from path to path)."""
    width = max(pb.hidden, pb.length, pb.classes, pb.dim, 1)
    return _Scratch(
        np.empty(max(1, pb.batch * pb.words), dtype=np.uint64),
        np.empty(p, dtype=dtype_like.dtype),
        np.empty(p, dtype=dtype_like.dtype), np.empty(p, dtype=dtype_like.dtype),
        np.empty(p, dtype=dtype_like.dtype), np.empty(p, dtype=np.float64),
        np.empty(p, dtype=np.float64), np.empty(max(rule.groups, 1), dtype=np.float64),
        np.empty(max(rule.groups, 1), dtype=np.float64),
        np.empty(width, dtype=dtype_like.dtype),
        np.empty(max(pb.hidden, pb.classes, 1), dtype=dtype_like.dtype),
        np.empty((max(pb.dim, 1), pb.batch), dtype=dtype_like.dtype),
        np.empty((max(pb.hidden, 1), pb.batch), dtype=dtype_like.dtype),
        np.empty(pb.batch, dtype=dtype_like.dtype), np.empty(pb.batch, dtype=dtype_like.dtype),
        np.empty(pb.batch, dtype=np.int64))


# ---- the engine's runner ------------------------------------------------------------------------

@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _deviation(th, theta0, r):
    """‖θ − θ(0)‖ in float64."""
    d2 = 0.0
    for k in range(th.shape[0]):
        diff = np.float64(th[k]) - np.float64(theta0[r, k])
        d2 += diff * diff
    return math.sqrt(d2)


@njit(inline="always", error_model="numpy")
def _checkpoint_at(steps, ck, done):
    """(here, next): the index of step ``done`` among the sorted checkpoint ``steps`` (−1 if it
    is not one), given ``ck``, the first index not yet passed, and that pointer after it."""
    if ck < steps.shape[0] and steps[ck] == done:
        return ck, ck + 1
    return -1, ck


@njit(inline="always", error_model="numpy")
def _observe_blowup(r, done, th, obs):
    """A path blown up at step ``done``: it exits every radius then, its maxima and later
    checkpoints are +inf, and its kept path stays at its last iterate."""
    rec = obs.record
    if rec[Observe.EXITS]:
        for m in range(obs.radii.shape[0]):
            if obs.first_exit[r, m] < 0:
                obs.first_exit[r, m] = done
            if obs.first_exit_norm[r, m] < 0:
                obs.first_exit_norm[r, m] = done
    if rec[Observe.RUNNING_MAX]:
        obs.max_deviation[r] = np.inf
        obs.max_norm[r] = np.inf
    if rec[Observe.CHECKPOINTS]:
        for c in range(obs.checkpoint_steps.shape[0]):
            if obs.checkpoint_steps[c] >= done:
                obs.norm_at[r, c] = np.inf
                obs.deviation_at[r, c] = np.inf
    if rec[Observe.PATHS] and r < obs.path.shape[0]:
        for u in range(done, obs.path.shape[1]):
            for k in range(th.shape[0]):
                obs.path[r, u, k] = th[k]


@njit(inline="always", error_model="numpy")
def _observe(r, done, th, cnorm, theta0, obs, here):
    """Fold θ(s) (norm ``cnorm``) at step s = ``done`` into the observers of path r (``here``:
    the index of s among the checkpoint steps, −1 if it is not one)."""
    rec = obs.record
    dev = 0.0
    if rec[Observe.EXITS] or rec[Observe.RUNNING_MAX] or rec[Observe.CHECKPOINTS]:
        dev = _deviation(th, theta0, r)
    if rec[Observe.EXITS]:
        for m in range(obs.radii.shape[0]):
            if obs.first_exit[r, m] < 0 and dev > obs.radii[m]:
                obs.first_exit[r, m] = done
            if obs.first_exit_norm[r, m] < 0 and cnorm > obs.radii[m]:
                obs.first_exit_norm[r, m] = done
    if rec[Observe.RUNNING_MAX]:
        if dev > obs.max_deviation[r]:
            obs.max_deviation[r] = dev
        if cnorm > obs.max_norm[r]:
            obs.max_norm[r] = cnorm
    if rec[Observe.CHECKPOINTS] and here >= 0:
        obs.norm_at[r, here] = cnorm
        obs.deviation_at[r, here] = dev
    if rec[Observe.PATHS] and r < obs.path.shape[0]:
        for k in range(th.shape[0]):
            obs.path[r, done, k] = th[k]


@njit(inline="always", error_model="numpy")
def _observe_clip(r, ratio, clipped, obs):
    """Claim 2's ratio ‖g/c‖/(1 + ‖θ(t)‖) and the count of clipped steps of path r."""
    if obs.record[Observe.CLAIM2] and ratio > obs.claim2_ratio[r]:
        obs.claim2_ratio[r] = ratio
    if obs.record[Observe.CLIPPED] and clipped:
        obs.clipped_steps[r] += 1


@njit(inline="always", error_model="numpy")
def _blow_up(r, done, state):
    """Mark path r blown up at step ``done``."""
    state.alive[r] = False
    state.blown[r] = done


@njit(inline="always", error_model="numpy")
def _tasks(rows):
    """(tasks, rows per task): at most ``_TASKS`` tasks for the parallel loops."""
    per = 1 + (rows - 1) // _TASKS if rows > 0 else 1
    return (rows + per - 1) // per, per


_TASKS = 256


# The loops over paths, and the networks' gradients they call, are compiled without reference
# counting (``_nrt=False``): every read of an array of a named tuple counted a reference up and
# down, two atomic operations, and these made 80% of a step on one coordinate (260 ns against
# 53 ns). Arrays are made outside them. The networks' gradients are called, not inlined: the
# kernel compiles in 43 s instead of 55 s, at the same speed.

@njit(_nrt=False, fastmath=FASTMATH, error_model="numpy")
def _rows_loop(task, state, block, pb, rule, limits, obs, sc):
    """:func:`run_block` for the rows of one task, with the work arrays ``sc``."""
    theta, th = state.theta, sc.th
    rows, p = theta.shape
    tasks, per = _tasks(rows)
    for r in range(task * per, min(rows, (task + 1) * per)):
        if not state.alive[r]:
            continue
        for k in range(p):
            th[k] = theta[r, k]
        kp = np.uint64(block.path[r])
        tnorm = math.sqrt(_sq(th))
        xi_row = obs.record[Observe.XI] and r < obs.xi.shape[0]
        ck = np.searchsorted(obs.checkpoint_steps, block.first + 1)  # the next checkpoint
        for s in range(block.a.shape[0]):
            done = block.first + s + 1
            here, ck = _checkpoint_at(obs.checkpoint_steps, ck, done)
            _words(kp, np.uint64(block.step[s]), block.word, sc.words)
            if xi_row:
                _mean_field(th, tnorm, pb, rule, obs, sc, limits)
            ok, cnorm, clip_norm, clipped, factor = step(th, tnorm, block.a[s], pb, rule,
                                                         limits, sc)
            _observe_clip(r, clip_norm / (1.0 + tnorm), clipped, obs)
            if not ok:
                _blow_up(r, done, state)
                _observe_blowup(r, done, th, obs)
                if xi_row:
                    _observe_xi_blowup(r, done, obs)
                break
            if xi_row:
                _observe_xi(r, done, block.a[s], factor, sc, obs, here)
            for k in range(p):
                th[k] = sc.cand[k]
            tnorm = cnorm
            _observe(r, done, th, cnorm, state.theta0, obs, here)
        for k in range(p):
            theta[r, k] = th[k]


@njit(error_model="numpy")
def _run_rows(task, state, block, pb, rule, limits, obs):
    """:func:`_rows_loop` with fresh work arrays. (The parallel loop calls this function once
    per task: writes into the named tuples' arrays inlined into its own body were lost.)"""
    _rows_loop(task, state, block, pb, rule, limits, obs,
               _scratch(pb, rule, state.theta.shape[1], state.theta[0]))


@njit(parallel=True, cache=True, error_model="numpy")
def run_block(state, block, pb, rule, limits, obs):
    """Steps t = ``block.first`` .. ``block.first`` + len(block.a) − 1 of every path, in place:
    ``state`` and the observers ``obs``."""
    tasks, _ = _tasks(state.theta.shape[0])
    for task in prange(tasks):
        _run_rows(task, state, block, pb, rule, limits, obs)


# ---- the splitting's runner -------------------------------------------------------------------

class Branch(NamedTuple):
    """Rows of the splitting to advance (see :func:`advance_rows`): each replays the words of
    ``parent`` from ``start`` and switches to its own (``own``) at the first step whose running
    score passes ``level``; keys per row (parent's and own path keys, its stream's words)."""

    level: np.ndarray  # (R,) float64
    start: np.ndarray  # (R,) int64, in and out
    runmax: np.ndarray  # (R,) float64 the running score at start, in and out
    score: np.ndarray  # (R,) float64, out: the final running score
    work: np.ndarray  # (R,) int64, out: the steps simulated
    parent_key: np.ndarray  # (R,) uint64
    own_key: np.ndarray  # (R,) uint64
    stream: np.ndarray  # (R,) int64: the row of step_keys / word_keys
    step_keys: np.ndarray  # (streams, T) uint64
    word_keys: np.ndarray  # (streams, words) uint64 (width 0: one word per step)
    a: np.ndarray  # (T,) float64 the step sizes a(t)
    xi: np.ndarray  # (R, P) float64 ξ at start, in and out (the xi event; (R, 0) otherwise)


class Score(NamedTuple):
    """The splitting's score φ(s) of a row: the event (0 exit ‖θ − θ(0)‖, 1 blow-up ‖θ‖,
    2 ‖ξ‖ with ξ(s) = Σ_{t<s} a(t)(g/c − H(θ(t)))), and φ = z (``plain``), (z − L)/w(s), or
    the endpoint event's log σ form (``endpoint``); for ``xi``, how H is evaluated (``field``,
    ``atom_values``, ``atom_weights`` as in :class:`ObserverArrays`, from
    :func:`mean_field_args`)."""

    event: int
    plain: bool
    endpoint: bool
    level: float
    scale: np.ndarray  # (T + 1,) float64 w(s)
    top: float  # the target in φ units
    field: int
    atom_values: np.ndarray
    atom_weights: np.ndarray


_TINY = 5e-324


@njit(inline="always", error_model="numpy")
def _phi(z, s, steps, sco):
    """The importance function at step s (see :mod:`simulations.engine.rare`)."""
    if sco.plain:
        return z
    x = (z - sco.level) / sco.scale[s]
    if not sco.endpoint:
        return x
    below = min(min(x, 0.0) - math.log1p(math.exp(-abs(x))), -_TINY)
    if s == steps and x >= 0:
        return x
    return below


@njit(inline="always", error_model="numpy")
def _xi_score(a, factor, sc):
    r"""ξ += a·(g/c − H(θ(t))) in ``sc.xi`` (g/c = factor·``sc.g``, or ``sc.d``; H in
    ``sc.h``); returns ‖ξ‖ (float64), summed in a loop that only reads."""
    xi = sc.xi
    for k in range(xi.shape[0]):
        gc = factor * np.float64(sc.g[k]) if factor >= 0.0 else np.float64(sc.d[k])
        xi[k] = xi[k] + a * (gc - sc.h[k])
    return math.sqrt(_sq(xi))


@njit(_nrt=False, fastmath=FASTMATH, error_model="numpy")
def _advance_loop(task, state, branch, pb, rule, limits, sco, sc):
    """:func:`advance_rows` for the rows of one task, with the work arrays ``sc``."""
    theta, th, a, xi = state.theta, sc.th, branch.a, sc.xi
    rows, p = theta.shape
    steps = a.shape[0]
    tasks, per = _tasks(rows)
    xi_event = sco.event == 2
    for r in range(task * per, min(rows, (task + 1) * per)):
        for k in range(p):
            th[k] = theta[r, k]
        if xi_event:
            for k in range(p):
                xi[k] = branch.xi[r, k]
        stream = branch.stream[r]
        kw = branch.word_keys[stream]
        level = branch.level[r]
        best = branch.runmax[r]
        switched = best > level
        tnorm = math.sqrt(_sq(th))
        t = branch.start[r]
        work = 0
        while t < steps and best < sco.top:
            key = branch.own_key[r] if switched else branch.parent_key[r]
            _words(key, branch.step_keys[stream, t], kw, sc.words)
            if xi_event:
                _mean_field(th, tnorm, pb, rule, sco, sc, limits)
            ok, cnorm, _, _, factor = step(th, tnorm, a[t], pb, rule, limits, sc)
            work += 1
            z = np.inf
            if ok:
                for k in range(p):
                    th[k] = sc.cand[k]
                tnorm = cnorm
                if sco.event == 0:
                    z = _deviation(th, state.theta0, r)
                elif sco.event == 1:
                    z = cnorm
                else:
                    z = _xi_score(a[t], factor, sc)
                z = _phi(z, t + 1, steps, sco)
            best = max(best, z)
            t += 1
            if not switched and best > level:
                switched = True
                branch.start[r] = t
                branch.runmax[r] = best
                for k in range(p):
                    theta[r, k] = th[k]
                if xi_event:
                    for k in range(p):
                        branch.xi[r, k] = xi[k]
            if not ok:
                break
        branch.score[r] = best
        branch.work[r] = work


@njit(error_model="numpy")
def _advance(task, state, branch, pb, rule, limits, sco):
    """:func:`_advance_loop` with fresh work arrays (see :func:`_run_rows`)."""
    _advance_loop(task, state, branch, pb, rule, limits, sco,
                  _scratch(pb, rule, state.theta.shape[1], state.theta[0]))


@njit(parallel=True, cache=True, error_model="numpy")
def advance_rows(state, branch, pb, rule, limits, sco):
    """Run each row of the splitting to T (or until its running score reaches ``sco.top``).

    In: ``state.theta`` θ (rows, P) at each row's ``branch.start``, ``state.theta0`` θ(0),
    ``branch.runmax`` the running score there (and ``branch.xi`` ξ there, for the xi event).
    Out, in place: ``state.theta``, ``branch.start``, ``branch.runmax`` and ``branch.xi`` at the
    step where the row's own words began, ``branch.score`` its
    final running score and ``branch.work`` the steps it simulated."""
    tasks, _ = _tasks(state.theta.shape[0])
    for task in prange(tasks):
        _advance(task, state, branch, pb, rule, limits, sco)


# ---- from the catalog's objects to the kernel's inputs -----------------------------------------

def supports(problem, rule, device) -> bool:
    """Whether the kernel runs this cell: a problem of :data:`PROBLEM_CODES` (the stiff family
    is a quadratic; a Student-t law only with an integer df, which the kernel draws as a sum
    of squared normals: the torch step draws the others), any rule, on the CPU (with the
    ``xi`` observer only where :func:`mean_field_args` gives H)."""
    from simulations.engine.problems import Quadratic

    if isinstance(problem, Quadratic):
        known = problem.law.kind != "student-t" or problem.law.integer_df
    else:
        known = problem.name in PROBLEM_CODES
    return known and rule.kind in RULE_CODES and str(device) == "cpu"


def mean_field_args(problem, rule, batch: int) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(``ObserverArrays.field``, atom values, atom weights) for the ``xi`` observer: how the
    kernel evaluates H = E[g/c] of ``problem`` under ``rule`` (the method
    :class:`simulations.engine.mean_field.MeanField` chooses, where exact: the quadratic's
    closed form or atoms, a dataset's finite sum for B = 1), or None where only the torch step
    has H
    (Monte Carlo H, or a problem the kernel does not run)."""
    from simulations.engine.mean_field import evaluator
    from simulations.engine.problems import Quadratic

    if not isinstance(problem, Quadratic):
        known = problem.name in PROBLEM_CODES and batch == 1
        if known and evaluator(problem, rule, batch=batch).kind == "atoms":
            return 2, np.zeros(0), np.zeros(0)
        return None
    kind = evaluator(problem, rule, batch=batch).kind
    law = problem.law
    if kind == "closed":
        return 0, np.zeros(0), np.zeros(0)
    if kind == "atoms":
        if law.kind == "point":
            return 1, np.array([float(law.mean)]), np.ones(1)
        return 1, np.asarray(law.values, np.float64), np.asarray(law.probs, np.float64)
    return None


def problem_args(problem, batch: int, dtype: np.dtype) -> ProblemArgs:
    """The kernel's view of ``problem`` for minibatches of ``batch`` in ``dtype``."""
    from simulations.engine.problems import Quadratic

    empty_f, empty_i = np.zeros(0, dtype), np.zeros(0, np.int64)
    fields: dict[str, Any] = dict(
                  code=0, batch=int(batch), words=int(problem.words_per_sample), law=0, dim=0,
                  hidden=0, classes=0, length=0, df=0, n=1, curvature=0.0, mean=0.0, sd=0.0,
                  target=0.0, x=np.zeros((0, 0), dtype), y=empty_f, labels=empty_i,
                  values=np.zeros(0), cumprobs=np.zeros(0))
    params = problem.params
    if isinstance(problem, Quadratic):
        law = problem.law
        if law.kind == "student-t" and not law.integer_df:
            raise ValueError(f"the kernel draws Student-t laws with an integer df only, got "
                             f"df = {law.df} (kernel.supports routes it to the torch step)")
        fields.update(law=LAW_CODES[law.kind], dim=int(problem.dim),
                      curvature=float(problem.curvature), mean=float(law.mean),
                      sd=float(law.sd), df=int(law.df))
        if law.kind == "discrete":
            fields.update(values=np.asarray(law.values, np.float64),
                          cumprobs=np.cumsum(law.probs)[:-1].astype(np.float64))
        return ProblemArgs(**fields)
    fields.update(code=PROBLEM_CODES[problem.name], n=int(problem.n))
    if problem.name == "rnn-cliff":
        fields.update(length=int(problem.length), target=float(problem.target),
                      y=np.ascontiguousarray(problem.x0, dtype))
        return ProblemArgs(**fields)
    fields.update(x=np.ascontiguousarray(problem.x, dtype), dim=int(problem.x.shape[1]),
                  hidden=int(params.get("hidden", 0)))
    if problem.name == "mlp-classification":
        fields.update(labels=np.ascontiguousarray(problem.y, np.int64),
                      classes=int(problem.classes))
    else:
        fields.update(y=np.ascontiguousarray(problem.y, dtype))
    return ProblemArgs(**fields)


def rule_args(rule, layout) -> RuleArgs:
    """The kernel's view of ``rule`` (group ids from ``layout`` for layerwise and unitwise)."""
    ids = np.zeros(0, np.int64)
    if rule.kind in ("layerwise", "unitwise"):
        ids = np.asarray(layout.group_ids(rule.kind == "unitwise"), np.int64)
    return RuleArgs(RULE_CODES[rule.kind], float(rule.lam or 1.0), float(rule.eps or 1.0),
                    float(rule.ball or 0.0), ids, int(ids.max()) + 1 if len(ids) else 0)


def limits(guard: float, dtype: np.dtype) -> Limits:
    """The guard, √(largest finite value) of ``dtype`` and the rational tanh in float32."""
    dtype = np.dtype(dtype)
    return Limits(float(guard), math.sqrt(float(np.finfo(dtype).max)), dtype == np.float32)
