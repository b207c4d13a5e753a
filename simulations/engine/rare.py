r"""Rare events of clipped SGD by generalized adaptive multilevel splitting (AMS).

The probability p = P(max_{s≤T} z(s) ≥ L) of a path of (10) reaching a level L (the running
maximum), or with ``endpoint=True`` p = P(z(T) ≥ L) (the value at the horizon, the event of
Lemma 1 as printed), for the score z(s) of the event:

* ``exit``:   z(s) = ‖θ(s) − θ(0)‖  (Lemma 1's deviation);
* ``xi``:     z(s) = ‖ξ(s)‖, ξ(s) = Σ_{t<s} a(t)(g(t)/c(t) − H(θ(t))) (the martingale of L1-mart;
  H from :func:`simulations.engine.mean_field.mean_field`, as the engine's ``xi`` observer);
* ``blowup``: z(s) = ‖θ(s)‖  (A3's blow-up).

A path that blows up (see :mod:`simulations.engine.run`) gets z = +inf from that step on.

A call is ``ams(chain, splitting, execution)``: the :class:`~simulations.engine.spec.Chain` whose
paths
are split (problem, clip rule, schedule, T, minibatch, seed, dtype, guard), the
:class:`Splitting` (the event, its level, the importance function and the sizes N, k, n), both
values, and the :class:`~simulations.engine.spec.Execution` (device, compilation, replicas run
together), which changes nothing in the result. The store keeps results under the key of the
chain and the splitting (:meth:`simulations.engine.store.RunStore.rare`).

Algorithm (Bréhier, Gazeau, Goudenège, Lelièvre, Rousset, "Unbiasedness of some generalized
adaptive multilevel splitting algorithms", Ann. Appl. Probab. 26 (2016)). The chain is the
state (s, θ(s), ξ(s)) with s ≤ T; the importance function is φ(s) = (z(s) − L)/w(s) with w > 0
(:func:`importance_scale`), so φ(s) ≥ 0 exactly when z(s) ≥ L; a particle's score is
S = max_{s≤T} φ(s), and a particle stops when it reaches φ ≥ 0. (With ``max`` and the running
maximum the code takes φ = z itself and the target L in place of 0: the same algorithm, with
levels in z units.) Start from N independent particles; at iteration q:

1. the level Z_q is the k-th smallest score; if Z_q ≥ 0, stop;
2. kill ALL particles with S ≤ Z_q (ties are killed together); their number is K_q; if K_q = N,
   stop with the estimate 0;
3. replace each killed particle by a clone of a survivor chosen uniformly (independently for
   each killed particle), equal to the survivor up to its FIRST step s* with running score
   > Z_q, and resimulated from (s*, θ(s*), ξ(s*)) with fresh randomness.

The estimate p̂ = Π_q (1 − K_q/N) · #{n : S_n ≥ 0}/N is unbiased, E[p̂] = p, for any N ≥ 2,
1 ≤ k < N and any importance function. Independent replicas give the mean, its 95% interval
and the relative error s.e./mean (:class:`RareEventResult`). The interval is taken on the log
scale (:func:`log_interval`, Cox's interval for a log-normal mean), because the estimator is
skewed and its logarithm is not: log p̂ = Σ_q log(1 − K_q/N) + log(count/N) is a sum over the
≈ log(1/p)/(k/N) iterations, nearly normal (on the ±1 walk with 100 particles, 2000 replicas at
p = 1e-6, 1e-9, 1e-12 had a skewness of 1.1–1.7 for p̂ and −0.03 to −0.07 for log p̂), so the
mean ± t·s.e. of 10 replicas missed on the low side (a low mean comes with a low s.e.). Where
some replica is 0 (died out) there is no log: the interval is the mean ± t·s.e. (clipped at 0;
t Student's 97.5% quantile with n − 1 degrees of freedom, :func:`interval`). The coverage of
both on the walk is measured by ``benchmarks/coverage.py``. Replicas that show no spread (all
extinct, all stopped at ``max_iterations``, or all equal, as with too few particles) give no
interval: the estimate is ``inconclusive``, with the reason, and its interval (nan, nan).
The relative variance of one replica is about log(1/p)/N for small k/N with a good importance
function, so the cost grows like log(1/p) rather than 1/p.

Which importance function: with ``importance="max"`` (w ≡ 1) the level of a path is its
running maximum of z, blind to the time left. Conditioned on a high maximum, a path reaches it
late, so the clones branch nearer and nearer to T and cannot climb further: on the ±1 walk with
T = 200 and p ≈ 1e-12, 19 of 20 replicas of 100 particles ended with all particles tied (estimate
0). The default ``scaled`` divides by the spread still ahead, w(s)² = Σ_{t≥s} a(t)² (+ a(T−1)²),
the normal approximation of the committor's quantile, and prefers paths that climb early.

A whole curve from one run (``levels``, importance ``max`` and the running maximum only). With
φ = z (the levels Z_q in z units), the algorithm run to L coincides with the one run to any
ℓ ≤ L up to its first iteration with Z_q ≥ ℓ (same scores below ℓ, same kills, same clones, same
words), where the run to ℓ stops. So

    p̂(ℓ) = Π_{q: Z_q < ℓ} (1 − K_q/N) · #{n : S_n ≥ ℓ}/N,

the count taken at the first iteration with Z_q ≥ ℓ (or at the end of the run, or 0 past an
extinction), is the run-to-ℓ estimate itself, unbiased for P(max_{s≤T} z(s) ≥ ℓ) at every ℓ,
and p̂(L) is the final estimate. It costs a sort of the N scores per iteration, nothing per
step. Not for ``scaled``: there φ = (z − L)/w(s) and {max_s φ ≥ c} for c < 0 is the event of
crossing the moving boundary L + c·w(s), not a level of z; not for the endpoint event either
(its φ below 0 measures the running maximum, below). Refused with a ``ValueError``.

The endpoint event. GAMS is unbiased for any importance function as long as the event is
{S ≥ 0} (S the path's maximum of φ, the path stopping when φ ≥ 0 or at T). So take φ < 0 at
every s < T and, at s = T, φ ≥ 0 exactly when z(T) ≥ L: with x(s) = (z(s) − L)/w(s),

    φ(s) = min(log σ(x(s)), −tiny)  for s < T,     φ(T) = x(T) if x(T) ≥ 0, else log σ(x(T)),

σ the logistic function and tiny the smallest positive float64 (log σ(x) underflows to −0 only
for x > 745). log σ is strictly increasing, ≈ x for x ≪ 0 (so far below the level it orders the
paths as ``scaled``/``max`` do) and tends to 0⁻ as x → ∞ (a path far above L before T is
promising but not yet a success). Being strictly increasing in x it creates no ties that x does
not have: a clamp of x at a constant below 0 (say min(x, −1)) would tie every path that once
stood above L − w(s) and kill those together. With ``scaled``, w is the spread still ahead, so
Φ(x(s)) approximates the committor P(z(T) ≥ L | θ(s)); with ``max``, w ≡ 1.

Memory O(N·P) per replica, no per-step storage. Each particle keeps only its starting point:
the step b where its own segment of randomness begins, θ(b), ξ(b), the running score at b,
θ(0) (for ``exit``), its final score, and the counter of its segment. A path is the prefix of its
ancestor up to b followed by its own segment, so the survivor's first crossing s* of a new
level Z_q > (the level at which it was born) is never before b: the clone replays the survivor's
own segment from b (the same words, so the same path) and switches to its fresh words at the
first step whose running score exceeds Z_q, detected on the fly. (Scores are in φ, so
"running score" is max_{s'≤s} φ(s').) The replay costs s* − b steps (counted in
``trajectory_steps``), in exchange for memory O(N·P) instead of O(N·T·P).

Randomness: the words of a segment at step t are those of :mod:`simulations.engine.sampling` for the
path counter ``generation·N + particle`` in the stream ``STREAM_AMS + 2·replica`` (generation 0:
the initial particles, generation q: the clones made at iteration q); the survivor that killed
particle j of iteration q copies comes from the word of counter j at step q of stream
``STREAM_AMS + 2·replica + 1``; θ(0) of initial particle j of replica r is the problem's
:meth:`~simulations.engine.problems.Problem.initial` for path r·N + j. So a replica's estimate
depends
on (seed, replica) only, not on how many replicas run together (``Execution.replica_chunk``).

All clones of an iteration, of all replicas of a chunk, run as one batch. On the CPU that batch
runs on the compiled step, one loop per clone (:func:`simulations.engine.kernel.advance_rows`:
the replay, the switch to fresh words and the score written once, beside the engine's runner;
for the xi event with the kernel's exact H, as the engine's ``xi`` observer); elsewhere (the xi
event with a Monte Carlo H, another device, ``Execution(backend="torch")``) on the engine's
torch step (:class:`simulations.engine.run.TorchStep`), so every problem, clip rule and dtype
works. On the ±1 walk both give the same estimates bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from simulations.engine import distributed, kernel, progress, sampling
from simulations.engine.catalog import EVENTS, IMPORTANCE
from simulations.engine.mean_field import mean_field
from simulations.engine.rules import norms
from simulations.engine.run import DEFAULT_GUARD, WORD_BUDGET, TorchStep
from simulations.engine.spec import Chain, Execution
from simulations.engine.threads import use_threads
from theory.errors import BadArgument, integer, require_memory
from theory.records import to_json

__all__ = ["EVENTS", "IMPORTANCE", "STREAM_AMS", "RareCurve", "RareEventResult", "Splitting",
           "ams", "importance_scale", "inconclusive", "interval", "log_interval", "memory_bytes",
           "summarize"]

STREAM_AMS = 16
"""First stream of the AMS draws: replica r uses streams STREAM_AMS + 2r (steps) and
STREAM_AMS + 2r + 1 (choice of survivors)."""
_TINY = 5e-324  # the smallest positive float64: log σ(x) is clamped at −_TINY before T


@dataclass(frozen=True)
class RareCurve:
    """AMS estimates of P(max_{s≤T} z(s) ≥ ℓ) at several levels ℓ ≤ L from the run to L.

    ``levels`` (m,); ``probability``, ``interval`` (m, 2), ``relative_error`` as in
    :class:`RareEventResult`, level by level; ``estimates`` (replicas, m).
    """

    levels: np.ndarray
    probability: np.ndarray
    interval: np.ndarray
    relative_error: np.ndarray
    estimates: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a number that is not finite, a relative error, becomes None)."""
        return to_json({"levels": self.levels, "probability": self.probability,
                        "interval": self.interval, "relative_error": self.relative_error})


@dataclass(frozen=True)
class RareEventResult:
    """An AMS estimate of p = P(max_{s≤T} z(s) ≥ L) (or P(z(T) ≥ L), ``setting["endpoint"]``)
    over independent replicas.

    ``probability`` the mean p̄ of the replicas' estimates; ``interval`` the 95% interval of
    :func:`summarize` (on the log scale, :func:`log_interval`, where every replica is above 0;
    else (p̄ − t·se, p̄ + t·se) with its low end clipped at 0; the high end at most 1);
    ``relative_error`` se/p̄, se = sd/√n (inf when
    p̄ = 0); ``trajectory_steps`` the steps simulated (replays included) over all replicas;
    ``iterations`` the AMS iterations over all replicas; ``estimates`` and
    ``replica_iterations`` per replica; ``extinct`` replicas whose particles were all killed
    at once (estimate 0); ``capped`` replicas stopped at ``max_iterations`` (their estimate
    is the running Π(1 − K/N)·#{S ≥ L}/N); ``curve`` the :class:`RareCurve` at the
    ``levels`` of :func:`ams` (None without); ``inconclusive`` why the estimate gives no
    interval (None when it does): every replica died out or stopped at ``max_iterations``, or
    the replicas' estimates have no spread (too few particles or replicas to see any), and then
    ``interval`` is (nan, nan), never an interval of width 0 (:func:`inconclusive`).
    """

    probability: float
    interval: tuple[float, float]
    relative_error: float
    replicas: int
    trajectory_steps: int
    iterations: int
    estimates: np.ndarray = field(repr=False)
    replica_iterations: np.ndarray = field(repr=False)
    extinct: int = 0
    capped: int = 0
    setting: dict[str, Any] = field(default_factory=dict, repr=False)
    curve: RareCurve | None = field(default=None, repr=False)
    inconclusive: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary numbers, the setting and the per-replica estimates (a
        number that is not finite, the relative error when p̄ = 0 or the interval of an
        inconclusive estimate, becomes None)."""
        return {
            "probability": self.probability, "interval": to_json(self.interval),
            "inconclusive": self.inconclusive,
            "relative_error": to_json(self.relative_error), "replicas": self.replicas,
            "trajectory_steps": self.trajectory_steps, "iterations": self.iterations,
            "extinct": self.extinct, "capped": self.capped, "setting": self.setting,
            "estimates": self.estimates.tolist(),
            **({"curve": self.curve.to_dict()} if self.curve is not None else {}),
        }

    @classmethod
    def from_replicas(cls, estimates: np.ndarray, replica_iterations: np.ndarray,
                      trajectory_steps: int, extinct: int, capped: int,
                      setting: dict[str, Any],
                      levels: Sequence[float] | None = None) -> RareEventResult:
        """The result of the replicas' ``estimates`` (replicas, m + 1): one column per level
        of ``levels`` (the curve's, m of them) and the last at the level L; the summaries are
        computed here (:func:`summarize`), so a result rebuilt from saved replicas is the
        one that was saved, bit for bit."""
        estimates = np.asarray(estimates, dtype=np.float64).reshape(len(replica_iterations), -1)
        mean, interval, rel = summarize(estimates[:, -1])
        why = inconclusive(estimates[:, -1], int(extinct), int(capped))
        if why is not None:
            interval = (math.nan, math.nan)
        curve = None
        if levels:
            cols = [summarize(estimates[:, i]) for i in range(len(levels))]
            curve = RareCurve(np.asarray(levels, dtype=np.float64),
                              np.array([c[0] for c in cols]), np.array([c[1] for c in cols]),
                              np.array([c[2] for c in cols]), estimates[:, :-1].copy())
        iterations = np.asarray(replica_iterations, dtype=np.int64)
        return cls(mean, interval, rel, len(iterations), int(trajectory_steps),
                   int(iterations.sum()), estimates[:, -1].copy(), iterations, int(extinct),
                   int(capped), setting, curve, why)

    def replica_estimates(self) -> np.ndarray:
        """The replicas' estimates (replicas, m + 1) as :meth:`from_replicas` takes them."""
        if self.curve is None:
            return self.estimates[:, None].copy()
        return np.column_stack([self.curve.estimates, self.estimates])


@dataclass(frozen=True)
class Splitting:
    """How a rare event of a :class:`~simulations.engine.spec.Chain` is estimated by :func:`ams`: a
    value, checked on construction (:class:`~theory.errors.BadArgument` naming the
    parameter), with the default ``kill`` filled in, so that one estimate has one
    :meth:`to_dict` (and one key in the store, :mod:`simulations.engine.store`).

    ``event`` the score z (``exit``, ``xi``, ``blowup``); ``level`` L > 0; ``endpoint`` the
    event z(T) ≥ L instead of max_{s≤T} z(s) ≥ L; ``levels`` (running maximum with ``max``
    only) levels 0 < ℓ ≤ L at which the same run also estimates P(max_{s≤T} z(s) ≥ ℓ) (the
    result's ``curve``); ``importance`` the importance function φ (:func:`importance_scale`);
    ``particles`` N ≥ 2; ``replicas`` n ≥ 2 independent replicas; ``kill`` k, the rank of the
    level among the scores, 1 ≤ k < N (default max(1, N // 10)); ``max_iterations`` after
    which a replica is stopped.
    """

    event: str
    level: float
    endpoint: bool = False
    levels: tuple[float, ...] | None = None
    importance: str = "scaled"
    particles: int = 100
    replicas: int = 20
    kill: int | None = None
    max_iterations: int = 100_000

    def __post_init__(self):
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.event not in EVENTS:
            raise BadArgument("event", f"must be one of {', '.join(EVENTS)}, got {self.event!r}")
        if self.importance not in IMPORTANCE:
            raise BadArgument("importance", f"must be one of {', '.join(IMPORTANCE)}, got "
                             f"{self.importance!r}")
        level = self.level
        if isinstance(level, bool) or not isinstance(level, (int, float, np.integer,
                                                             np.floating)) \
                or not 0 < float(level) < math.inf:
            raise BadArgument("level", f"must satisfy 0 < level < inf, got {level!r}")
        put("level", float(level))
        if not isinstance(self.endpoint, (bool, np.bool_)):
            raise BadArgument("endpoint", f"must be true or false, got {self.endpoint!r}")
        put("endpoint", bool(self.endpoint))
        levels = _check_levels(self.levels, self.level, self.importance, self.endpoint)
        put("levels", tuple(levels) if levels else None)
        particles = integer(self.particles, "particles", 2)
        put("particles", particles)
        replicas = integer(self.replicas, "replicas", 2)
        put("replicas", replicas)
        kill = max(1, particles // 10) if self.kill is None else integer(self.kill, "kill", 1)
        if kill >= particles:
            raise BadArgument("kill", f"must be smaller than particles ({particles}), got {kill}")
        put("kill", kill)
        max_iterations = integer(self.max_iterations, "max_iterations", 1)
        if particles * (max_iterations + 1) >= 1 << 32:
            raise BadArgument("max_iterations", "must satisfy particles·(max_iterations + 1) < "
                             f"2**32 (the path counters), got {max_iterations}")
        put("max_iterations", max_iterations)
        if replicas * particles >= 1 << 32:
            raise BadArgument("replicas", "replicas·particles must be < 2**32")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Splitting:
        """The splitting of ``data`` (keys as in :meth:`to_dict`; ``event`` and ``level``
        required, the others default as in the class); an unknown key, a missing one or a bad
        value raises :class:`~theory.errors.BadArgument` naming it."""
        known = [f.name for f in fields(cls)]
        if not isinstance(data, Mapping):
            raise BadArgument("splitting", f"expected a table of settings, got {data!r}")
        for key in data:
            if key not in known:
                raise BadArgument(key, f"unknown key (expected one of {', '.join(known)})")
        for key in ("event", "level"):
            if key not in data:
                raise BadArgument(key, "required")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``Splitting.from_dict(s.to_dict()) == s``."""
        return {"event": self.event, "level": self.level, "endpoint": self.endpoint,
                "levels": None if self.levels is None else list(self.levels),
                "importance": self.importance, "particles": self.particles,
                "replicas": self.replicas, "kill": self.kill,
                "max_iterations": self.max_iterations}


def summarize(estimates: np.ndarray) -> tuple[float, tuple[float, float], float]:
    """(mean p̄, 95% interval, se/p̄) with se = sd(ddof=1)/√n over the n replicas.

    The interval is :func:`log_interval` where every estimate is above 0 (stretched to
    contain p̄ should it not: it is centred on the log-normal fit's exp(ȳ + s²/2), which
    with many replicas of a large spread on the log scale can stray from p̄), else the Student-t
    interval of the mean :func:`interval`, (max(0, p̄ − t·se), p̄ + t·se) with t = t_{0.975, n−1}
    (a replica that died out, estimate 0, has no logarithm, and the estimates are then no
    longer near log-normal); either way its high end is at most 1, a probability. Replicas
    without spread (se = 0, or n < 2) estimate no standard error: the interval is (nan, nan)
    and the relative error inf, never an interval of width 0."""
    est = np.asarray(estimates, dtype=np.float64)
    mean = float(est.mean())
    se = float(est.std(ddof=1) / math.sqrt(len(est))) if len(est) > 1 else math.nan
    if not se > 0:
        return mean, (math.nan, math.nan), math.inf
    if np.all(est > 0):
        low, high = log_interval(est)
        # Cox's centre is exp(ȳ + s²/2), not p̄: keep p̄ inside (for n ≤ 10 it always is)
        low, high = min(low, mean), max(high, mean)
    else:
        low, high = (float(x) for x in interval(mean, se, len(est)))
    return mean, (low, min(high, 1.0)), se / mean if mean > 0 else math.inf


def log_interval(estimates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    r"""Cox's interval for the mean of log-normal replicas: with y_i = log p̂_i (every p̂_i > 0),
    ȳ their mean and s² their variance (ddof 1) over the n replicas,

        exp(ȳ + s²/2 ∓ t·√(s²/n + s⁴/(2(n − 1)))),   t = t_{(1+level)/2, n−1} (Student).

    Why: if log p̂ ~ N(μ, σ²), then p = E[p̂] = exp(μ + σ²/2); ȳ + s²/2 estimates μ + σ²/2
    with variance σ²/n + σ⁴/(2(n − 1)) (ȳ and s² independent, Var s² = 2σ⁴/(n − 1)), and t
    with n − 1 degrees of freedom allows for that variance being estimated from n replicas
    (Cox's method: Land, Technometrics 14 (1972); Zhou and Gao, Statistics in Medicine 16
    (1997); with Student's t, the "modified Cox" interval of Olsson, J. Statistics Education
    13 (2005)). The AMS estimator is close to log-normal (module docstring):
    a low mean of skewed replicas comes with a low standard error, so mean ± t·se missed low
    (13 of 16 runs on the walk covered), while s² on the log scale does not shrink with the
    mean. Measured on the ±1 walk at 1e-6 … 1e-12 with 200 runs of 10 replicas of 100
    particles: coverage 0.935–0.955 at nominal 0.95 (``benchmarks/coverage.py``,
    benchmarks/RESULTS.md). Raises ValueError where an estimate is ≤ 0 or n < 2."""
    est = np.asarray(estimates, dtype=np.float64)
    n = len(est)
    if n < 2 or not np.all(est > 0):
        raise ValueError(f"log_interval: need n >= 2 estimates, all > 0, got {est!r}")
    y = np.log(est)
    s2 = float(y.var(ddof=1))
    centre = float(y.mean()) + s2 / 2
    half = _student_t((1 + level) / 2, n - 1) * math.sqrt(s2 / n + s2**2 / (2 * (n - 1)))
    return math.exp(centre - half), math.exp(centre + half)


def inconclusive(estimates: np.ndarray, extinct: int, capped: int) -> str | None:
    """Why the replicas' ``estimates`` (of which ``extinct`` died out and ``capped`` stopped at
    ``max_iterations``) give no interval, or None when they do."""
    n = len(estimates)
    if extinct == n:
        return f"every one of the {n} replicas died out (estimate 0)"
    if capped == n:
        return f"every one of the {n} replicas stopped at max_iterations before the level"
    if extinct + capped == n:
        return f"every one of the {n} replicas died out or stopped at max_iterations"
    if not np.std(estimates) > 0:
        return (f"all {n} replicas estimated {float(estimates[0]):.4g}: no spread, so no "
                "interval (too few particles or replicas)")
    return None


def interval(mean: float | np.ndarray, se: float | np.ndarray,
             replicas: int) -> tuple[Any, Any]:
    """The 95% interval (max(0, p̄ − t·se), p̄ + t·se) of a mean p̄ over ``replicas`` = n
    independent replicas with standard error se, t = t_{0.975, n−1} (Student); NaN ends for
    n < 2. Elementwise on arrays of means and standard errors."""
    t = _student_t(0.975, replicas - 1) if replicas > 1 else math.nan
    return np.maximum(0.0, mean - t * se), mean + t * se


def _student_t(q: float, df: int) -> float:
    """The quantile t_{q, df} of Student's t law with ``df`` degrees of freedom: the t with
    P(T ≤ t) = q. scipy.stats is imported here, not with the module: it costs about a second,
    and the store imports this module on every run."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def importance_scale(a: np.ndarray, importance: str = "scaled") -> np.ndarray:
    """The scale w(s), s = 0..T, of the importance function φ(s) = (z(s) − L)/w(s).

    ``scaled``: w(s) = √(Σ_{t=s}^{T−1} a(t)² + a(T−1)²), the spread left to a martingale with
    steps of size ∝ a(t) (the a(T−1)² keeps w(T) > 0); ``max``: w ≡ 1, so the level of a path
    is its running maximum of z itself. φ ≥ 0 exactly when z ≥ L, for either.
    """
    a = np.asarray(a, dtype=np.float64)
    if importance == "max":
        return np.ones(len(a) + 1)
    tail = np.concatenate([np.cumsum((a**2)[::-1])[::-1], [0.0]])
    return np.sqrt(tail + a[-1] ** 2)


def _signed(x: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2^32) as the int32 with the same bits."""
    x = x & 0xFFFFFFFF
    return torch.where(x >= 1 << 31, x - (1 << 32), x).to(torch.int32)


class _Words:
    """:func:`simulations.engine.sampling.words` for rows that each have their own stream.

    ``w = mix32(mix32(K_r + K_t) + K_j)`` with the keys of :mod:`simulations.engine.sampling`
    computed
    from the words (s0, s1, s2, s3) of each row's (seed, stream): equal, row by row, to
    ``sampling.words(seed, [counter], steps, count, stream=stream)``.
    """

    def __init__(self, seed: int, streams: list[int], device: torch.device):
        table = torch.tensor([list(sampling.seed_words(seed, s)) for s in streams],
                             dtype=torch.int64, device=device)
        self.s = _signed(table)  # (n_streams, 4) int32

    def path_keys(self, stream: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
        """K_r = mix32(mix32(r + s0) ^ s1) of each row's counter ``counter`` (R,) in its stream
        ``stream`` (R,)."""
        s, mix = self.s[stream], sampling.mix32
        return mix(mix(_signed(counter) + s[:, 0]) ^ s[:, 1])

    def step_keys(self, steps: torch.Tensor) -> torch.Tensor:
        """K_t = mix32(t·0x9E3779B9 + s2) of each stream: (streams, K) for the steps (K,)."""
        return sampling.mix32(_signed(steps * 0x9E3779B9)[None, :] + self.s[:, 2:3])

    def word_keys(self, count: int) -> torch.Tensor:
        """K_j = mix32(j·0x85EBCA6B + s3) of each stream: (streams, count)."""
        j = torch.arange(count, dtype=torch.int64, device=self.s.device)
        return sampling.mix32(_signed(j * 0x85EBCA6B)[None, :] + self.s[:, 3:4])

    def __call__(self, stream: torch.Tensor, counter: torch.Tensor, steps: range,
                 count: int) -> torch.Tensor:
        """Words (K, R, count) for rows with stream indices ``stream`` (R,) and path counters
        ``counter`` (R,) at the steps ``steps``."""
        t = torch.tensor(list(steps), dtype=torch.int64, device=counter.device)
        pair = sampling.mix32(self.path_keys(stream, counter)[None, :]
                              + self.step_keys(t)[stream].T)
        if count == 1:
            return pair[:, :, None]
        return sampling.mix32(pair[:, :, None] + self.word_keys(count)[stream][None])


@dataclass
class _Batch:
    """Rows to advance: each replays ``parent`` (its segment from ``start``) and switches to
    its own fresh segment ``counter`` at the first step whose running score exceeds ``level``.
    """

    replica: torch.Tensor  # (R,) local replica index (stream index)
    level: torch.Tensor  # (R,) float64
    start: torch.Tensor  # (R,) int64 b of the replayed segment
    parent_counter: torch.Tensor  # (R,) int64
    counter: torch.Tensor  # (R,) int64
    theta: torch.Tensor  # (R, P) θ(b)
    theta0: torch.Tensor  # (R, P)
    xi: torch.Tensor | None  # (R, P) float64 ξ(b)
    runmax: torch.Tensor  # (R,) float64 running max at b


def _memory_parts(chain: Chain, splitting: Splitting, replicas: int,
                  n_params: int) -> dict[str, int]:
    """Bytes of a splitting run's arrays: about 64 a step (the schedule and its sums) and, for
    each of the ``replicas`` run together, three copies of each particle's state (θ and its
    scores)."""
    item = 8 if chain.dtype == "float64" else 4
    return {"steps": 64 * chain.steps,
            "particles": 3 * replicas * splitting.particles * (item * n_params + 64)}


def memory_bytes(chain: Chain, splitting: Splitting, replicas: int, n_params: int) -> int:
    """The peak bytes of a splitting run with ``replicas`` run together (:func:`_memory_parts`)."""
    return sum(_memory_parts(chain, splitting, replicas, n_params).values())


def _check_memory(chain: Chain, splitting: Splitting, replicas: int, n_params: int) -> None:
    """Refuse up front a run whose arrays would not fit in memory (:func:`memory_bytes`)."""
    parts = _memory_parts(chain, splitting, replicas, n_params)
    worst = max(parts, key=parts.__getitem__)
    require_memory(worst, sum(parts.values()),
                   f"this splitting run (T = {chain.steps}, {replicas} replicas × "
                   f"{splitting.particles} particles, P = {n_params})")


class _Sampler:
    """The pieces shared by every batch of one run: schedule, step function, words, event."""

    def __init__(self, chain: Chain, splitting: Splitting, execution: Execution,
                 streams: list[int]):
        problem, rule = chain.make_problem(), chain.make_rule()
        dtype, device = chain.torch_dtype(), torch.device(execution.device)
        _check_memory(chain, splitting, len(streams) // 2, problem.n_params)
        a = np.asarray(chain.schedule_obj()(np.arange(chain.steps)), dtype=np.float64)
        guard = DEFAULT_GUARD[dtype] if chain.guard is None else float(chain.guard)
        self.problem, self.rule, self.a, self.event = problem, rule, a, splitting.event
        self.level, self.batch, self.dtype, self.device = (splitting.level, chain.batch, dtype,
                                                           device)
        self.seed, self.backend, self.guard = chain.seed, execution.backend, guard
        self.scale = torch.as_tensor(importance_scale(a, splitting.importance),
                                     dtype=torch.float64, device=device)
        self.step = TorchStep(problem, rule, guard, self.event == "xi", dtype, device,
                              execution.compile)
        self.words = _Words(chain.seed, streams, device)
        self.words_per_step = chain.batch * problem.words_per_sample
        self.a_t = torch.as_tensor(a, dtype=dtype, device=device)
        self.done_t = torch.arange(1, len(a) + 1, device=device)
        self.endpoint = splitting.endpoint
        # φ = z itself (target L) for the running maximum with w ≡ 1, so that the levels of a
        # curve are compared with z exactly; else φ = (z − L)/w, target 0
        self.plain = splitting.importance == "max" and not self.endpoint
        self.top = self.level if self.plain else 0.0
        self.fast = _KernelAdvance.for_sampler(self)

    def phi(self, z: torch.Tensor, s: int) -> torch.Tensor:
        """The importance function at step s of the scores z (float64): z (``max``, running
        maximum), x = (z − L)/w(s) (``scaled``), and for the endpoint event
        min(log σ(x), −tiny) before T, at T x where x ≥ 0 and log σ(x) below."""
        z = z.to(torch.float64)
        if self.plain:
            return z
        x = (z - self.level) / self.scale[s]
        if not self.endpoint:
            return x
        # log σ(x) = min(x, 0) − log1p(e^−|x|), written out: torch's logsigmoid kernel runs
        # multi-threaded and was 10× slower on 2 busy cores
        below = torch.clamp(torch.clamp(x, max=0.0) - torch.log1p(torch.exp(-x.abs())),
                            max=-_TINY)
        return torch.where(x >= 0, x, below) if s == len(self.a) else below

    def advance(self, b: _Batch):
        """Run the rows of ``b`` to T; returns (start step, θ, ξ, running max at that start;
        final score; steps simulated per row) of each row's own segment."""
        if self.fast is not None:
            return self.fast(b)
        steps, device = len(self.a), self.device
        rows = len(b.level)
        theta, xi, runmax = b.theta.clone(), None if b.xi is None else b.xi.clone(), b.runmax
        tnorm = norms(theta)
        switched = runmax > b.level
        new_start, new_theta, new_xi, new_max = b.start, theta, xi, runmax
        running = runmax < self.top
        work = torch.zeros(rows, dtype=torch.int64, device=device)
        blown = torch.full((rows,), -1, dtype=torch.int64, device=device)
        inf = torch.tensor(math.inf, dtype=torch.float64, device=device)
        first = int(b.start.min()) if rows else steps
        block = max(1, min(steps, WORD_BUDGET // max(1, 2 * rows * self.words_per_step)))
        for t0 in range(first, steps, block):
            stop = min(steps, t0 + block)
            span = range(t0, stop)
            w_old = self.words(b.replica, b.parent_counter, span, self.words_per_step)
            w_new = self.words(b.replica, b.counter, span, self.words_per_step)
            for k, t in enumerate(span):
                active = running & (b.start <= t)
                w = torch.where(switched[:, None], w_new[k], w_old[k])
                theta_prev = theta
                theta, tnorm, _, _, newly, _, direction = self.step.fn(
                    theta, tnorm, active, blown, w, self.a_t[t], self.done_t[t])
                if self.event == "exit":
                    z = norms(theta - b.theta0)
                elif self.event == "blowup":
                    z = tnorm
                else:
                    h = mean_field(self.problem, self.rule, theta_prev, batch=self.batch).value
                    m = direction.to(torch.float64) - h.to(torch.float64)
                    assert xi is not None  # the xi event carries ξ
                    xi = torch.where(active[:, None], xi + float(self.a[t]) * m, xi)
                    z = torch.linalg.vector_norm(xi, dim=1)
                z = torch.where(newly, inf, self.phi(z, t + 1))
                runmax = torch.where(active, torch.maximum(runmax, z), runmax)
                cross = active & ~switched & (runmax > b.level)
                switched = switched | cross
                new_start = torch.where(cross, t + 1, new_start)
                new_theta = torch.where(cross[:, None], theta, new_theta)
                if xi is not None and new_xi is not None:
                    new_xi = torch.where(cross[:, None], xi, new_xi)
                new_max = torch.where(cross, runmax, new_max)
                running = active & (runmax < self.top) | running & ~active
                work += active
        return new_start, new_theta, new_xi, new_max, runmax, work


class _KernelAdvance:
    """:meth:`_Sampler.advance` on the compiled step
    (:func:`simulations.engine.kernel.advance_rows`): the same rows, words, scores and switches,
    one loop per row. On the CPU, for every event (for ``xi`` where the kernel has the mean
    field H exactly, :func:`simulations.engine.kernel.mean_field_args`), unless the execution
    asks for the torch step (``backend="torch"``, or ``compile``)."""

    def __init__(self, sampler: _Sampler):
        problem, dtype = sampler.problem, sampler.a_t.numpy().dtype
        self.sampler = sampler
        self.problem = kernel.problem_args(problem, sampler.batch, dtype)
        self.rule = kernel.rule_args(sampler.rule, problem.layout)
        self.limits = kernel.limits(float(sampler.step.guard), dtype)
        self.a = np.ascontiguousarray(sampler.a, dtype=np.float64)
        words, count = sampler.words, sampler.words_per_step
        self.step_keys = _unsigned(words.step_keys(torch.arange(len(self.a))))
        self.word_keys = _unsigned(words.word_keys(count if count > 1 else 0))
        field = kernel.mean_field_args(problem, sampler.rule, sampler.batch) \
            if sampler.event == "xi" else None
        field_code, atoms, weights = field or (0, np.zeros(0), np.zeros(0))
        self.score = kernel.Score(kernel.EVENT_CODES[sampler.event], sampler.plain,
                                  sampler.endpoint, float(sampler.level),
                                  sampler.scale.numpy(), float(sampler.top), field_code, atoms,
                                  weights)

    @staticmethod
    def for_sampler(sampler: _Sampler) -> _KernelAdvance | None:
        """The sampler's compiled runner, or None where the torch step runs."""
        usable = (not sampler.step.compiled
                  and kernel.supports(sampler.problem, sampler.rule, sampler.device)
                  and (sampler.event != "xi" or kernel.mean_field_args(
                      sampler.problem, sampler.rule, sampler.batch) is not None))
        if sampler.backend == "compiled" and not usable:
            raise BadArgument("backend", "'compiled' runs the catalog's problems on the "
                                         "CPU, the xi event where H is exact")
        return _KernelAdvance(sampler) if usable and sampler.backend != "torch" else None

    def __call__(self, b: _Batch):
        rows = len(b.level)
        state = kernel.State(b.theta.contiguous().numpy().copy(), b.theta0.contiguous().numpy(),
                             np.ones(rows, np.bool_), np.full(rows, -1, np.int64))
        branch = kernel.Branch(
            b.level.numpy().astype(np.float64), b.start.numpy().astype(np.int64),
            b.runmax.numpy().astype(np.float64), np.empty(rows), np.zeros(rows, np.int64),
            _unsigned(self.sampler.words.path_keys(b.replica, b.parent_counter)),
            _unsigned(self.sampler.words.path_keys(b.replica, b.counter)),
            b.replica.numpy().astype(np.int64), self.step_keys, self.word_keys, self.a,
            np.zeros((rows, 0)) if b.xi is None else b.xi.numpy().copy())
        kernel.advance_rows(state, branch, self.problem, self.rule, self.limits, self.score)
        start, theta, runmax, score, work = (torch.from_numpy(x) for x in (
            branch.start, state.theta, branch.runmax, branch.score, branch.work))
        xi = None if b.xi is None else torch.from_numpy(branch.xi)
        return start, theta, xi, runmax, score, work


def _unsigned(x: torch.Tensor) -> np.ndarray:
    """int32 words as the kernel's uint64 keys (the same 32 bits)."""
    return np.ascontiguousarray((x.numpy().astype(np.int64) & 0xFFFFFFFF).astype(np.uint64))


def ams(chain: Chain, splitting: Splitting,
        execution: Execution | None = None) -> RareEventResult:
    """Estimate p = P(max_{s≤T} z(s) ≥ L), or P(z(T) ≥ L) with ``endpoint``, on the paths of
    ``chain`` by AMS as ``splitting`` says (see the module docstring and :class:`Splitting`).

    Of ``execution`` (default :class:`~simulations.engine.spec.Execution()`), only ``device``,
    ``backend`` (the compiled step or the torch step; the result's ``setting["backend"]``
    says which ran), ``compile``, ``replica_chunk`` (the replicas run together; default
    all; the result does not depend on it) and ``progress`` (the iterations, the replicas
    finished and the lowest level reached, :mod:`simulations.engine.progress`) are read. Raises
    :class:`~theory.errors.BadArgument` naming the parameter for a chain of 0 steps (the
    checks of the chain and of the splitting are theirs:
    :meth:`~simulations.engine.spec.Chain.from_dict`, :class:`Splitting`).
    """
    execution = Execution() if execution is None else execution
    comm = distributed.communicator(execution.distributed, execution.rank_timeout)
    use_threads(execution.threads)
    steps = chain.steps
    if steps < 1:
        raise BadArgument("steps", f"must be an integer >= 1, got {steps!r}")
    s = splitting
    chunk = execution.replica_chunk or s.replicas
    # the levels tracked in φ units: the curve's (φ = z with max), then the target
    curve_levels = list(s.levels or ())
    targets = [*curve_levels, s.level if s.importance == "max" and not s.endpoint else 0.0]
    lo, hi = distributed.shares(s.replicas, comm.world)[comm.rank]  # this rank's replicas
    estimates = np.zeros((hi - lo, len(targets)))
    iterations = np.zeros(hi - lo, dtype=np.int64)
    work, extinct, capped, backend = 0, 0, 0, None
    where = "at T" if s.endpoint else "max"
    bar = progress.bar(None, f"AMS {s.event} ({where}) ≥ {s.level:g}", "iterations",
                       execution.progress if comm.rank == 0 else False)
    with comm.guarded():
        for first in range(lo, hi, chunk):
            reps = list(range(first, min(hi, first + chunk)))
            sampler = _Sampler(chain, s, execution, [STREAM_AMS + 2 * r + i for r in reps
                                                     for i in (0, 1)])
            out = _run(sampler, s, reps, targets, bar)
            estimates[first - lo:reps[-1] + 1 - lo], iterations[first - lo:reps[-1] + 1 - lo] \
                = out[0], out[1]
            work += out[2]
            extinct += out[3]
            capped += out[4]
            backend = "compiled" if sampler.fast is not None else "torch"
        bar.close()
        parts = comm.gather((estimates, iterations, work, extinct, capped, backend),
                            execution.all_ranks)
    if parts is None:  # a rank other than 0: the estimate is rank 0's
        parts = [(estimates, iterations, work, extinct, capped, backend)]
    estimates, iterations = np.concatenate([p[0] for p in parts]), np.concatenate(
        [p[1] for p in parts])
    work, extinct, capped = (sum(p[i] for p in parts) for i in (2, 3, 4))
    backend = next(p[5] for p in parts if p[5] is not None)
    problem, rule = chain.make_problem(), chain.make_rule()
    guard = DEFAULT_GUARD[chain.torch_dtype()] if chain.guard is None else float(chain.guard)
    setting = {**problem.settings(), **rule.to_dict(), "schedule": chain.schedule_obj().source,
               "steps": steps, "batch": chain.batch, "seed": chain.seed, "dtype": chain.dtype,
               "guard": guard, "event": s.event, "endpoint": s.endpoint, "level": s.level,
               "importance": s.importance, "particles": s.particles, "kill": s.kill,
               "replicas": s.replicas, "max_iterations": s.max_iterations, "backend": backend}
    return RareEventResult.from_replicas(estimates, iterations, work, extinct, capped, setting,
                                         curve_levels)


def _check_levels(levels, level: float, importance: str, endpoint: bool) -> list[float]:
    """The curve's levels as floats, checked: 0 < ℓ ≤ L, finite, running maximum with ``max``."""
    if levels is None:
        return []
    try:
        values = [float(x) for x in levels]
    except (TypeError, ValueError):
        raise BadArgument("levels", f"must be a sequence of numbers, got {levels!r}") from None
    if endpoint or importance != "max":
        raise BadArgument("levels", "need importance='max' and the running maximum (endpoint "
                         "False): with 'scaled' φ = (z − L)/w(s) and with the endpoint event "
                         "φ's levels below 0 are not levels of z")
    bad = [x for x in values if not 0 < x <= level]
    if not values or bad:
        raise BadArgument("levels", f"must be a non-empty sequence of numbers in (0, level = "
                         f"{level:g}], got {levels!r}")
    return values


def _run(sampler: _Sampler, splitting: Splitting, reps: list[int], targets: list[float],
         bar: Any):
    """AMS on the replicas ``reps`` together (the sampler's streams), each iteration counted
    on the progress ``bar``; returns (estimates (n, len(targets)) at the φ-levels
    ``targets``, iterations, steps simulated, extinct, capped)."""
    n, n_part, kill = len(reps), splitting.particles, splitting.kill
    assert kill is not None  # Splitting fills in its default
    problem, dtype, device, seed = sampler.problem, sampler.dtype, sampler.device, sampler.seed
    event, max_iterations = splitting.event, splitting.max_iterations
    rows = n * n_part
    local = torch.arange(n, device=device).repeat_interleave(n_part)  # replica of each row
    j = torch.arange(n_part, device=device).repeat(n)  # particle index of each row
    paths = torch.tensor(reps, device=device).repeat_interleave(n_part) * n_part + j
    theta0 = problem.initial(paths, seed, dtype, device)
    f64: dict[str, Any] = dict(dtype=torch.float64, device=device)
    xi0 = torch.zeros(rows, problem.n_params, **f64) if event == "xi" else None
    z0 = norms(theta0).to(torch.float64) if event == "blowup" else torch.zeros(rows, **f64)
    # generation 0: every row is its own parent, switched from the start (level −inf)
    start, theta, xi, zmax, score, cost = sampler.advance(_Batch(
        2 * local, torch.full((rows,), -math.inf, **f64), torch.zeros_like(j), j, j,
        theta0, theta0, xi0, sampler.phi(z0, 0)))
    counter = j.clone()
    work = int(cost.sum())
    log_weight = torch.zeros(n, **f64)
    # p̂(ℓ) = Π_{q: Z_q < ℓ}(1 − K_q/N)·#{S ≥ ℓ}/N, the count taken at the first iteration with
    # Z_q ≥ ℓ (where the run to ℓ stops), or at the end
    target = torch.tensor(targets, **f64)
    curve = torch.zeros(n, len(targets), **f64)
    pending = torch.ones(n, len(targets), dtype=torch.bool, device=device)

    def at_levels(scores):
        above = n_part - torch.searchsorted(scores.sort(1).values,
                                            target.expand(n, -1).contiguous())
        return torch.exp(log_weight)[:, None] * above / n_part

    going = torch.ones(n, dtype=torch.bool, device=device)
    iterations = torch.zeros(n, dtype=torch.int64, device=device)
    extinct = torch.zeros(n, dtype=torch.bool, device=device)
    q = 0
    while q < max_iterations and bool(going.any()):
        q += 1
        scores = score.view(n, n_part)
        lvl = torch.kthvalue(scores, kill, dim=1).values
        done = pending & going[:, None] & (lvl[:, None] >= target)
        curve = torch.where(done, at_levels(scores), curve)
        pending &= ~done
        killed = scores <= lvl[:, None]
        k_count = killed.sum(1)
        extinct |= going & (lvl < sampler.top) & (k_count == n_part)
        going = going & (lvl < sampler.top) & (k_count < n_part)
        killed &= going[:, None]
        log_weight = torch.where(going, log_weight + torch.log1p(-k_count / n_part), log_weight)
        iterations += going
        left = int(going.sum())
        if bar.due():  # the lowest level of the replicas still going (φ units), and the target
            shown = f", lowest level {float(lvl[going].min()):.4g} → {sampler.top:g}" if left \
                else ""
            bar.set_postfix_str(f"replicas {reps[0] + n - left}/{splitting.replicas} done"
                                + shown, refresh=False)
        bar.update(1)
        if not left:
            break
        # a survivor for each killed particle: index floor(u·M) among the M survivors, in order
        order = torch.argsort(killed.to(torch.int8), dim=1, stable=True)
        survivors = (n_part - k_count)[:, None]
        u = sampler.words(2 * torch.arange(n, device=device)[:, None].expand(-1, n_part)
                          .reshape(-1) + 1, j, range(q, q + 1), 1)[0, :, 0]
        pick = ((u.to(torch.int64) & 0xFFFFFFFF) * survivors.reshape(-1).repeat_interleave(
            n_part)) >> 32
        parent_j = order.reshape(-1)[local * n_part + pick]
        rows_k = torch.nonzero(killed.reshape(-1)).squeeze(1)
        parent = (local * n_part + parent_j)[rows_k]
        out = sampler.advance(_Batch(
            2 * local[rows_k], lvl[local[rows_k]], start[parent], counter[parent],
            q * n_part + j[rows_k], theta[parent], theta0[parent],
            None if xi is None else xi[parent], zmax[parent]))
        start[rows_k], theta[rows_k], zmax[rows_k], score[rows_k] = out[0], out[1], out[3], \
            out[4]
        if xi is not None:
            xi[rows_k] = out[2]
        theta0[rows_k] = theta0[parent]
        counter[rows_k] = q * n_part + j[rows_k]
        work += int(out[5].sum())
    # replicas stopped by extinction count 0 above their last level, capped ones their state
    curve = torch.where(pending, at_levels(score.view(n, n_part)), curve)
    capped = int((going & (iterations == max_iterations)).sum())
    return (curve.cpu().numpy(), iterations.cpu().numpy(), work, int(extinct.sum()), capped)
