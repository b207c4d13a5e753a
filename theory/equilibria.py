r"""Equilibria of a vector field H, the ODE the iterates track, and the Marchaud check of H.

Clipped SGD θ(t+1) = θ(t) − a(t)·g(t)/c(t) is a stochastic approximation of the ODE

    dθ/dτ = −H(θ),   H(θ) = E_μ[g/c],   τ(t) = Σ_{s<t} a(s)

(the paper's Section 4 writes dθ/dt ∈ H(θ): a sign slip). Theorem 1 says the iterates converge
to the zero set {θ : H(θ) = 0} when they stay bounded; that set need not contain the minimiser
of E[ℓ], because c depends on the sample.

Everything here takes H as a plain callable on numpy arrays, so it knows nothing of problems or
clip rules (see :func:`simulations.engine.mean_field.field` for H of a problem):

* :func:`zeros_1d`: the zero set of a scalar H on [lo, hi] as pieces (isolated zeros by
  ``brentq`` at every sign change of a grid, intervals on which |H| is within rounding, or
  within a confidence band where H is estimated, of 0; pieces closer than two grid steps
  merged), each attracting, repelling or touching for dθ/dτ = −H; :func:`search_zeros_1d`
  widens the window in the direction of the flow while no zero is found;
* :func:`search_zeros` (:func:`zeros`: its zeros): zeros of H: R^d → R^d from several starts
  (``scipy.optimize.root``, with H's own Jacobian where given), each with its residual
  ‖H(θ*)‖, its Jacobian (:func:`jacobian`) and stability (:func:`stability`: the eigenvalues of
  J), duplicates merged, within a :class:`Budget` of evaluations and seconds (a search that
  runs out says so: it has not shown that H has no zero);
* :func:`minimise`: the minimiser of a smooth function with its gradient (``scipy.optimize``),
  within a budget too;
* :func:`stochastic_time`, :func:`solve_ode`, :func:`tracking_gaps`: the ODE in τ-time and the
  gap between an interpolated SGD path and the ODE started on it, over windows of τ-length Δ;
* :func:`marchaud_check`: the linear-growth constant sup ‖H(θ)‖/(1 + ‖θ‖) over given points, and
  local increments ‖H(θ + δu) − H(θ)‖ for shrinking δ (continuity) with their ratio to δ
  (local Lipschitz estimates).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import integrate, optimize

from theory.schedules import Schedule, as_schedule

__all__ = [
    "MarchaudCheck",
    "Minimum",
    "Zero",
    "ZeroPiece",
    "Budget",
    "OutOfBudget",
    "ZeroSearch",
    "ZeroSet",
    "jacobian",
    "marchaud_check",
    "minimise",
    "search_zeros",
    "search_zeros_1d",
    "shell_points",
    "solve_ode",
    "stability",
    "stochastic_time",
    "tracking_gaps",
    "zeros",
    "zeros_1d",
]

Field = Callable[[np.ndarray], np.ndarray]


# ---- zeros ---------------------------------------------------------------------------------


STABILITY = ("attracting", "repelling", "touching", "unknown")


@dataclass(frozen=True)
class ZeroPiece:
    """One connected piece [lo, hi] of the zero set of a scalar H (lo == hi for an isolated
    zero), with ``residual`` = max |H| found on it and its ``stability`` for dθ/dτ = −H(θ):
    ``attracting`` when H < 0 left of it and H > 0 right of it, ``repelling`` for the reverse,
    ``touching`` when H has one sign on both sides, ``unknown`` at the edge of the window."""

    lo: float
    hi: float
    residual: float
    stability: str = "unknown"

    @property
    def is_point(self) -> bool:
        return self.lo == self.hi

    def describe(self) -> str:
        where = f"{self.lo:.6g}" if self.is_point else f"[{self.lo:.6g}, {self.hi:.6g}]"
        return where if self.stability == "attracting" else f"{where} ({self.stability})"

    def to_dict(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "residual": self.residual,
                "stability": self.stability}


@dataclass(frozen=True)
class ZeroSet:
    """The zeros of a scalar field on the window [lo, hi], as sorted :class:`ZeroPiece` s.
    ``estimated``: H was a Monte Carlo estimate and each piece is the set where it is within
    its confidence band of 0 (never an exact zero). ``points``, ``residuals`` and ``intervals``
    are the isolated zeros, their |H(θ*)|, and the pieces of positive length."""

    pieces: list[ZeroPiece] = field(default_factory=list)
    lo: float = -np.inf
    hi: float = np.inf
    estimated: bool = False

    @property
    def points(self) -> np.ndarray:
        return np.array([p.lo for p in self.pieces if p.is_point], dtype=np.float64)

    @property
    def residuals(self) -> np.ndarray:
        return np.array([p.residual for p in self.pieces if p.is_point], dtype=np.float64)

    @property
    def intervals(self) -> list[tuple[float, float]]:
        return [(p.lo, p.hi) for p in self.pieces if not p.is_point]

    @property
    def empty(self) -> bool:
        return not self.pieces

    def only(self, *stability: str) -> ZeroSet:
        """The pieces whose stability is one of ``stability``."""
        return ZeroSet([p for p in self.pieces if p.stability in stability], self.lo, self.hi,
                       self.estimated)

    def distance(self, x: float) -> float:
        """The distance from x to the zero set (inf when it is empty)."""
        return min((max(p.lo - x, 0.0, x - p.hi) for p in self.pieces), default=np.inf)

    def nearest(self, x: float) -> float:
        """The point of the zero set nearest to x (nan when it is empty)."""
        best = min(self.pieces, key=lambda p: max(p.lo - x, 0.0, x - p.hi), default=None)
        return np.nan if best is None else float(min(max(x, best.lo), best.hi))

    def describe(self, limit: int = 6) -> str:
        """The pieces as text, at most ``limit`` of them ("… and k more")."""
        if self.empty:
            return f"none in [{self.lo:g}, {self.hi:g}]"
        parts = [p.describe() for p in self.pieces[:limit]]
        if len(self.pieces) > limit:
            parts.append(f"… and {len(self.pieces) - limit} more")
        return "{" + ", ".join(parts) + "}" + (" (Monte Carlo, 95% band)" if self.estimated
                                                else "")

    def to_dict(self) -> dict:
        return {"pieces": [p.to_dict() for p in self.pieces], "window": [self.lo, self.hi],
                "estimated": self.estimated}


def _stability(left: float | None, right: float | None) -> str:
    if left is None or right is None or left == 0 or right == 0:
        return "unknown"
    if left < 0 < right:
        return "attracting"
    if left > 0 > right:
        return "repelling"
    return "touching"


def zeros_1d(h: Field, lo: float, hi: float, *, grid: int = 4001, atol: float | None = None,
             band: Field | None = None, rounding: Field | None = None,
             xtol: float = 1e-13) -> ZeroSet:
    """The zero set of a scalar field h on [lo, hi].

    h is evaluated on ``grid`` equally spaced points x_i (h takes and returns 1-D arrays). A
    grid point is *at zero* when |h(x_i)| ≤ tol_i, the largest of ``atol``, ``rounding(x_i)``
    and ``band(x_i)``: ``rounding`` bounds the rounding error of the evaluation of h at a point
    (e.g. (S + k)·ε·Σ_s|w_s t_s| for a sum of S terms t_s; default ``h.rounding`` where h has
    that attribute, as :func:`simulations.engine.mean_field.field` does), so that an H that is
    exactly
    0 on a stretch, and evaluates there to float noise of either sign, is one interval and not
    hundreds of sign changes; ``band`` is the half-width of a confidence band where h is an
    estimate (e.g. 1.96 standard errors); ``atol`` defaults to 0 where a rounding bound is
    given, else to 64·ε·max_i |h(x_i)| (the rounding of a sum of terms of that size: right when
    the terms are not much larger than h, e.g. not on a flat stretch where they cancel).
    Runs of points at zero become pieces, their ends refined by bisection on that predicate;
    every strict sign change between neighbours not at zero is refined by
    ``scipy.optimize.brentq`` to ``xtol``. Pieces closer than two grid steps are merged into
    one (finer structure is below the grid's resolution). Each piece's stability is read from
    the signs of h at the grid points just outside it, which are beyond the tolerance, so a
    piece is ``repelling`` or ``touching`` only by values of h that its error cannot explain. A
    zero that touches 0 without a sign change between grid points (a tangency) is found only if
    it lands on the grid.

    Example:
        >>> zeros_1d(lambda th: th**2 - 4, -5, 5).points.round(9).tolist()    # θ² = 4
        [-2.0, 2.0]
    """
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"zeros_1d: expected finite lo < hi, got lo={lo}, hi={hi}")
    if grid < 3:
        raise ValueError(f"zeros_1d: grid must be >= 3, got {grid}")
    if rounding is None:
        rounding = getattr(h, "rounding", None)
    x = np.linspace(lo, hi, grid)
    y = np.asarray(h(x), dtype=np.float64).reshape(grid)
    if not np.all(np.isfinite(y)):
        raise ValueError("zeros_1d: h is not finite on the grid")
    if atol is not None:
        base = atol
    elif rounding is not None:
        base = 0.0
    else:
        base = 64 * np.finfo(np.float64).eps * float(np.max(np.abs(y)))

    def tol(t: np.ndarray) -> np.ndarray:
        out = np.full(len(t), base)
        for extra in (rounding, band):
            if extra is not None:
                out = np.maximum(out, np.asarray(extra(t), dtype=np.float64).reshape(len(t)))
        return out

    def scalar(t: float) -> float:
        return float(np.asarray(h(np.array([t])), dtype=np.float64).reshape(-1)[0])

    def at_zero(t: float) -> bool:
        return abs(scalar(t)) <= float(tol(np.array([t]))[0])

    raw = _raw_pieces(x, y, np.abs(y) <= tol(x), scalar, at_zero, xtol)
    step = (hi - lo) / (grid - 1)
    merged = _merged(raw, step)
    pieces = []
    for a, b, li, ri, r in merged:
        if band is None and b - a < step:  # a simple zero that landed near the grid
            a = b = 0.5 * (a + b)
        pieces.append(ZeroPiece(a, b, r, _stability(None if li is None else y[li],
                                                     None if ri is None else y[ri])))
    return ZeroSet(pieces, float(lo), float(hi), band is not None)


def _raw_pieces(x: np.ndarray, y: np.ndarray, small: np.ndarray, scalar, at_zero,
                xtol: float) -> list[list]:
    """The zeros on the grid: each run of points at zero (``small``) as a piece with its ends
    refined by bisection, and each strict sign change between neighbours not at zero refined by
    brentq; as [a, b, index left of it or None, index right of it or None, residual]."""
    grid = len(x)
    raw = []
    i = 0
    while i < grid:
        if small[i]:
            j = i
            while j + 1 < grid and small[j + 1]:
                j += 1
            a = x[i] if i == 0 else _edge(at_zero, x[i - 1], x[i], xtol)
            b = x[j] if j == grid - 1 else _edge(at_zero, x[j + 1], x[j], xtol)
            raw.append([float(a), float(b), i - 1 if i > 0 else None,
                        j + 1 if j < grid - 1 else None, float(np.max(np.abs(y[i:j + 1])))])
            i = j + 1
            continue
        if i + 1 < grid and not small[i + 1] and np.sign(y[i]) != np.sign(y[i + 1]):
            p = optimize.brentq(scalar, x[i], x[i + 1], xtol=xtol, rtol=4 * np.finfo(float).eps)
            raw.append([float(p), float(p), i, i + 1, abs(scalar(p))])
        i += 1
    return raw


def _merged(raw: list[list], step: float) -> list[list]:
    """The pieces of :func:`_raw_pieces` with those closer than two grid steps joined."""
    merged: list[list] = []
    for piece in raw:
        if merged and piece[0] - merged[-1][1] <= 2 * step * (1 + 1e-9):
            last = merged[-1]
            merged[-1] = [last[0], piece[1], last[2], piece[3], max(last[4], piece[4])]
        else:
            merged.append(piece)
    return merged


def search_zeros_1d(h: Field, lo: float, hi: float, *, grid: int = 4001,
                    band: Field | None = None, rounding: Field | None = None,
                    max_widenings: int = 40) -> ZeroSet:
    """:func:`zeros_1d` on [lo, hi], widened while no zero is found and the flow dθ/dτ = −H
    points out of the window (the end where it does, H(hi) < 0 or H(lo) > 0, moves out by the
    window's width), or while a piece of zeros reaches an end of the window (that end moves out
    by the window's width, so that an interval of zeros is found whole, with its stability), at
    most ``max_widenings`` times. The returned set's ``lo``, ``hi`` is the window searched
    last.

    Example:
        >>> search_zeros_1d(lambda th: th - 50, -1, 1).points.round(9).tolist()  # widened to 50
        [50.0]
    """
    for _ in range(max_widenings + 1):
        zs = zeros_1d(h, lo, hi, grid=grid, band=band, rounding=rounding)
        width = hi - lo
        if not zs.empty:
            out_left, out_right = zs.pieces[0].lo <= lo, zs.pieces[-1].hi >= hi
        else:
            ends = np.asarray(h(np.array([lo, hi])), dtype=np.float64).reshape(2)
            out_left, out_right = ends[0] > 0, ends[1] < 0
        if not (out_left or out_right):
            return zs
        lo, hi = lo - width * out_left, hi + width * out_right
    return zs


def _edge(at_zero: Callable[[float], bool], outside: float, inside: float,
          xtol: float) -> float:
    """Bisection for the boundary of the zero set between ``outside`` (not at zero) and
    ``inside`` (at zero); returns the last point known to be inside."""
    for _ in range(200):
        if abs(outside - inside) <= xtol:
            break
        mid = 0.5 * (outside + inside)
        if mid in (outside, inside):  # neighbours in floating point
            break
        if at_zero(mid):
            inside = mid
        else:
            outside = mid
    return inside


@dataclass(frozen=True)
class Zero:
    """A zero θ* of H found from ``start``: ``residual`` = ‖H(θ*)‖, ``converged`` by the solver's
    own test, ``jacobian`` J = ∂H/∂θ at θ* (central differences) and ``stability`` for
    dθ/dτ = −H(θ): ``attracting`` when every eigenvalue of J has a positive real part,
    ``repelling`` when one has a negative real part, ``unknown`` otherwise."""

    point: np.ndarray
    residual: float
    start: np.ndarray
    converged: bool
    jacobian: np.ndarray | None = None
    stability: str = "unknown"

    def describe(self) -> str:
        """The point (first 3 coordinates), its residual and stability, as text."""
        head = ", ".join(f"{v:.6g}" for v in self.point[:3]) + (", …" if self.point.size > 3
                                                                 else "")
        return f"({head}), ‖H‖ = {self.residual:.2g}, {self.stability}"

    def to_dict(self) -> dict:
        return {"point": self.point.tolist(), "residual": self.residual,
                "start": self.start.tolist(), "converged": self.converged,
                "jacobian": None if self.jacobian is None else self.jacobian.tolist(),
                "stability": self.stability}


def jacobian(h: Field, x: np.ndarray, delta: float = 1e-6) -> np.ndarray:
    """J_ij = ∂H_i/∂θ_j at x by central differences, (H(x + δ_j e_j) − H(x − δ_j e_j))/(2δ_j),
    δ_j = delta·(1 + |x_j|); h is batched, (N, d) → (N, d), and is called once, on the 2d
    points x ± δ_j e_j.

    Example:
        >>> a = np.array([[2.0, 1.0], [0.0, 3.0]])       # H(θ) = (2θ₁, θ₁ + 3θ₂), batched
        >>> jacobian(lambda v: v @ a, np.zeros(2)).round(6).tolist()
        [[2.0, 0.0], [1.0, 3.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    d = x.size
    steps = delta * (1 + np.abs(x))
    points = np.concatenate([x + np.diag(steps), x - np.diag(steps)])
    values = np.asarray(h(points), dtype=np.float64).reshape(2 * d, d)
    return ((values[:d] - values[d:]) / (2 * steps[:, None])).T


def stability(jac: np.ndarray, tol: float = 1e-9) -> str:
    """``attracting`` when min Re eig(J) > tol·‖J‖, ``repelling`` when it is < −tol·‖J‖, else
    ``unknown`` (dθ/dτ = −H(θ) linearised at the zero: θ' = −Jθ).

    Example:
        >>> stability(np.eye(2)), stability(-np.eye(2))      # for dθ/dτ = −H: J = I attracts
        ('attracting', 'repelling')
    """
    eig = np.linalg.eigvals(np.atleast_2d(jac))
    scale = tol * max(float(np.max(np.abs(eig))), 1e-300)
    low = float(np.min(eig.real))
    return "attracting" if low > scale else "repelling" if low < -scale else "unknown"


class OutOfBudget(Exception):
    """Raised by :meth:`Budget.charge` when a search has spent its budget; the message says
    which limit."""


@dataclass
class Budget:
    """A limit on the work of a search: at most ``evaluations`` evaluations of H at a point (a
    batched call on N points costs N) and ``seconds`` of wall-clock time from the first charge
    (checked before each call, so one call may run past it); None is no limit. ``used`` counts
    the evaluations charged."""

    evaluations: int | None = None
    seconds: float | None = None
    used: int = 0
    started: float | None = None

    def charge(self, n: int) -> None:
        """Count n evaluations, or raise :class:`OutOfBudget` when they do not fit."""
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if self.evaluations is not None and self.used + n > self.evaluations:
            raise OutOfBudget(f"{self.evaluations} evaluations of H")
        if self.seconds is not None and now - self.started > self.seconds:
            raise OutOfBudget(f"{self.seconds:g} s")
        self.used += n

    def elapsed(self) -> float:
        """Seconds since the first charge."""
        return 0.0 if self.started is None else time.monotonic() - self.started


@dataclass(frozen=True)
class ZeroSearch:
    """The result of :func:`search_zeros`: the ``zeros`` found, ``exhausted`` (the limit of the
    budget that stopped the search, None when every start ran to its end), the ``evaluations``
    of H spent, and the smallest residual ‖H‖ seen at a single point with that point
    (``best_residual`` inf when none was seen)."""

    zeros: list[Zero]
    exhausted: str | None
    evaluations: int
    best_residual: float
    best_point: np.ndarray | None


def search_zeros(h: Field, starts: Sequence[np.ndarray] | np.ndarray, *, tol: float = 1e-8,
                 merge: float = 1e-6, method: str = "hybr", classify: bool = True,
                 jac: Callable[[np.ndarray], np.ndarray] | None = None,
                 budget: Budget | None = None) -> ZeroSearch:
    """Zeros of H: R^d → R^d from each start in turn (``scipy.optimize.root``), sorted by
    residual, within ``budget`` (one budget for all starts).

    Each solution with residual ‖H(θ*)‖ ≤ tol is kept; two solutions closer than
    ``merge``·(1 + ‖θ*‖) are one zero (the one with the smaller residual stays). ``jac`` is
    the Jacobian ∂H/∂θ (d,) → (d, d) given to the solver (else it differences H itself, d + 1
    calls of H per Jacobian); a call of ``jac`` costs d + 1 evaluations of the budget. When the
    budget runs out the search stops (``exhausted``) with the zeros found so far. With
    ``classify`` each zero gets its Jacobian and stability (:func:`jacobian`, one batched call
    of h outside the budget, and :func:`stability`).

    Example:
        >>> found = search_zeros(lambda v: v - np.array([1.0, 2.0]), [np.zeros(2)])
        >>> found.zeros[0].point.round(9).tolist(), found.zeros[0].stability, found.exhausted
        ([1.0, 2.0], 'attracting', None)
    """
    budget = Budget() if budget is None else budget
    best_residual = np.inf
    best_point: np.ndarray | None = None

    def h_counted(v: np.ndarray) -> np.ndarray:
        nonlocal best_residual, best_point
        v = np.asarray(v, dtype=np.float64)
        budget.charge(1 if v.ndim == 1 else len(v))
        out = np.asarray(h(v), dtype=np.float64)
        if v.ndim == 1:
            r = float(np.linalg.norm(out))
            if r < best_residual:
                best_residual, best_point = r, v.copy()
        return out

    def jac_counted(v: np.ndarray) -> np.ndarray:
        assert jac is not None
        budget.charge(np.asarray(v).size + 1)
        return np.asarray(jac(v), dtype=np.float64)

    found: list[Zero] = []
    exhausted: str | None = None
    for start in np.atleast_2d(np.asarray(starts, dtype=np.float64)):
        try:
            sol = optimize.root(h_counted, start, method=method, tol=tol * 1e-2,
                                jac=None if jac is None else jac_counted)
            point = np.asarray(sol.x, dtype=np.float64)
            residual = float(np.linalg.norm(h_counted(point)))
        except OutOfBudget as stop:
            exhausted = str(stop)
            break
        if not np.isfinite(residual) or residual > tol:
            continue
        zero = Zero(point, residual, start, bool(sol.success))
        twin = next((k for k, z in enumerate(found) if np.linalg.norm(z.point - point)
                     <= merge * (1 + np.linalg.norm(point))), None)
        if twin is None:
            found.append(zero)
        elif residual < found[twin].residual:
            found[twin] = zero
    if classify:
        found = [replace(z, jacobian=(j := jacobian(h, z.point)), stability=stability(j))
                 for z in found]
    return ZeroSearch(sorted(found, key=lambda z: z.residual), exhausted, budget.used,
                      float(best_residual), best_point)


def zeros(h: Field, starts: Sequence[np.ndarray] | np.ndarray, *, tol: float = 1e-8,
          merge: float = 1e-6, method: str = "hybr", classify: bool = True,
          jac: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Zero]:
    """The zeros of :func:`search_zeros` with no budget (an empty list: no start reached a
    zero).

    Example:
        >>> [z.point.round(9).tolist() for z in zeros(lambda v: v**3 - v, [np.array([0.9])])]
        [[1.0]]
    """
    return search_zeros(h, starts, tol=tol, merge=merge, method=method, classify=classify,
                        jac=jac).zeros


@dataclass(frozen=True)
class Minimum:
    """The result of :func:`minimise`: ``point``, ``value``, ``grad_norm`` there, ``converged``
    (the solver's test and ‖∇f‖ ≤ gtol), ``exhausted`` (the limit of the budget that stopped
    it, else None; then ``point`` is the last point the gradient was evaluated at)."""

    point: np.ndarray
    value: float
    grad_norm: float
    converged: bool
    exhausted: str | None = None


def minimise(f: Callable[[np.ndarray], float], grad: Field, x0: np.ndarray, *,
             gtol: float = 1e-8, max_iter: int = 10_000,
             budget: Budget | None = None) -> Minimum:
    """argmin f by BFGS with the exact gradient, from x0. ``converged`` needs the solver's own
    test, ‖∇f‖ ≤ 10·gtol, and f(2x) > f(x) at the point x ≠ 0 found, so that a function with no
    minimiser (one that keeps decreasing, or stays flat to rounding, as ‖θ‖ → ∞) ends with
    ``converged`` False. Each call of f or of grad costs one evaluation of ``budget``; when it
    runs out the result has ``converged`` False and ``exhausted`` set.

    Example:
        >>> m = minimise(lambda v: float(((v - 3) ** 2).sum()), lambda v: 2 * (v - 3), np.zeros(2))
        >>> m.point.round(6).tolist(), m.converged
        ([3.0, 3.0], True)
    """
    x0 = np.asarray(x0, dtype=np.float64)
    budget = Budget() if budget is None else budget
    last_x, last_g = x0, np.inf

    def f_counted(v: np.ndarray) -> float:
        budget.charge(1)
        return float(f(v))

    def grad_counted(v: np.ndarray) -> np.ndarray:
        nonlocal last_x, last_g
        budget.charge(1)
        g = np.asarray(grad(v), dtype=np.float64)
        last_x, last_g = np.array(v, dtype=np.float64), float(np.linalg.norm(g))
        return g

    try:
        sol = optimize.minimize(f_counted, x0, jac=grad_counted, method="BFGS",
                                options={"gtol": gtol, "maxiter": max_iter})
    except OutOfBudget as stop:
        return Minimum(last_x, float("nan"), last_g, False, str(stop))
    x = np.asarray(sol.x, dtype=np.float64)
    g = float(np.linalg.norm(np.asarray(grad(x), dtype=np.float64)))
    # a minimiser x ≠ 0 has f(2x) > f(x) (strictly, for a strict minimum); f(2x) ≤ f(x) means
    # the solver stopped on a ray along which f does not increase (e.g. a gradient that
    # underflowed far out along a separating direction)
    on_ray = bool(np.any(x != 0)) and float(f(2 * x)) <= float(sol.fun)
    return Minimum(x, float(sol.fun), g, bool(sol.success) and g <= 10 * gtol and not on_ray)


# ---- the ODE ---------------------------------------------------------------------------------


def stochastic_time(schedule: Schedule | str | float, steps: int) -> np.ndarray:
    """τ(t) = Σ_{s<t} a(s) for t = 0..steps (τ(0) = 0), summed in float64.

    Example:
        >>> stochastic_time("1/(t+1)", 3).tolist()           # 0, 1, 1 + 1/2, 1 + 1/2 + 1/3
        [0.0, 1.0, 1.5, 1.8333333333333333]
    """
    schedule = as_schedule(schedule, horizon=max(steps, 1))
    a = np.asarray(schedule(np.arange(steps)), dtype=np.float64)
    return np.concatenate([[0.0], np.cumsum(a)])


def solve_ode(h: Field, theta0: np.ndarray, tau_eval: np.ndarray, *, sign: float = -1.0,
              rtol: float = 1e-9, atol: float = 1e-11, method: str = "LSODA") -> np.ndarray:
    """θ(τ) at ``tau_eval`` (increasing, starting where θ = theta0) for dθ/dτ = sign·H(θ).

    ``sign = -1`` is the ODE clipped SGD tracks; ``sign = +1`` the paper's printed version.
    Solved by ``scipy.integrate.solve_ivp`` (LSODA: H of a clipped problem is only piecewise
    smooth, so a stiff/non-stiff switching method is used); returns (len(tau_eval), d).

    Example:
        >>> theta = solve_ode(lambda v: v, np.array([1.0]), np.array([0.0, 1.0]))  # e^(−τ)
        >>> theta.round(6).tolist()
        [[1.0], [0.367879]]
    """
    tau_eval = np.asarray(tau_eval, dtype=np.float64)
    theta0 = np.atleast_1d(np.asarray(theta0, dtype=np.float64))
    if tau_eval.ndim != 1 or len(tau_eval) == 0 or np.any(np.diff(tau_eval) < 0):
        raise ValueError("solve_ode: tau_eval must be a non-empty increasing 1-D array")
    if len(tau_eval) == 1 or tau_eval[-1] == tau_eval[0]:
        return np.repeat(theta0[None, :], len(tau_eval), axis=0)
    sol = integrate.solve_ivp(lambda _t, y: sign * np.asarray(h(y), dtype=np.float64),
                              (tau_eval[0], tau_eval[-1]), theta0, t_eval=tau_eval,
                              method=method, rtol=rtol, atol=atol)
    if sol.status != 0 or sol.y.shape[1] != len(tau_eval):
        raise RuntimeError(f"solve_ode: the integration failed: {sol.message}")
    return sol.y.T


def tracking_gaps(path: np.ndarray, tau: np.ndarray, h: Field, window: float,
                  starts: Sequence[int], *, sign: float = -1.0) -> np.ndarray:
    """For each start index n: max over t with τ(n) ≤ τ(t) ≤ τ(n) + window of
    ‖θ(t) − θ_ODE(τ(t))‖, the ODE dθ/dτ = sign·H(θ) started at θ(n) at τ(n).

    ``path`` is one SGD path θ(0..T) (T+1, d) and ``tau`` its τ(0..T). The SGD path interpolated
    linearly in τ meets the ODE's grid at the τ(t), so this is the gap of the interpolated path
    on that grid. A window that runs past τ(T) is cut at T.

    Example:
        >>> tau = np.linspace(0, 1, 11)
        >>> path = np.exp(-tau)[:, None]                      # the ODE's own solution: no gap
        >>> float(tracking_gaps(path, tau, lambda v: v, 0.5, [0])[0]) < 1e-8
        True
    """
    path = np.asarray(path, dtype=np.float64).reshape(len(tau), -1)
    out = []
    for n in starts:
        stop = int(np.searchsorted(tau, tau[n] + window, side="right"))
        grid = tau[n:stop]
        ode = solve_ode(h, path[n], grid, sign=sign)
        out.append(float(np.max(np.linalg.norm(path[n:stop] - ode, axis=1))))
    return np.asarray(out)


# ---- Marchaud -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarchaudCheck:
    """Lemma 2's Marchaud property of H, estimated on sample points.

    ``growth`` = max ‖H(θ)‖/(1 + ‖θ‖) over the points, ``growth_by_shell`` the same per group of
    points (as given), ``analytic_k`` the K with ‖H(θ)‖ ≤ K(1 + ‖θ‖) where one is known;
    ``increments[i]`` = max ‖H(θ + δ_i·u) − H(θ)‖ over the points (u random unit vectors) for the
    δ_i in ``deltas``, and ``lipschitz[i]`` = increments[i]/δ_i (local Lipschitz estimates).
    ``continuous`` is True when the increment at the smallest δ is at most √(δ_min/δ_max) times
    the one at the largest (a Lipschitz field shrinks like δ; a field with a jump between
    θ and θ + δu keeps an increment of the jump's size).
    """

    growth: float
    growth_by_shell: list[float]
    analytic_k: float | None
    deltas: list[float]
    increments: list[float]
    lipschitz: list[float]
    continuous: bool


def shell_points(center: np.ndarray, radii: Sequence[float], count: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` points at each distance r in ``radii`` from ``center``, in uniform random
    directions: a list of (count, d) arrays, one per radius.

    Example:
        >>> shells = shell_points(np.zeros(3), [1.0, 2.0], 4, np.random.default_rng(0))
        >>> [np.linalg.norm(s, axis=1).round(12).tolist() for s in shells]
        [[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]]
    """
    center = np.asarray(center, dtype=np.float64)
    out = []
    for r in radii:
        u = rng.standard_normal((count, center.size))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        out.append(center + r * u)
    return out


def marchaud_check(h: Field, shells: Sequence[np.ndarray], *, analytic_k: float | None = None,
                   deltas: Sequence[float] = (1e-2, 1e-4, 1e-6),
                   rng: np.random.Generator | None = None) -> MarchaudCheck:
    """Estimate the Marchaud constants of H (a batched callable (N, d) → (N, d)) on ``shells``
    (groups of points, e.g. from :func:`shell_points`); see :class:`MarchaudCheck`.

    The increments use δ relative to the point: θ + δ·(1 + ‖θ‖)·u.

    Example:
        >>> shells = shell_points(np.zeros(2), [1.0, 10.0], 8, np.random.default_rng(0))
        >>> check = marchaud_check(lambda v: np.clip(v, -1, 1), shells)   # ‖H‖ ≤ √2, Lipschitz
        >>> check.growth <= 2 ** 0.5 / 2, check.continuous
        (True, True)
    """
    rng = np.random.default_rng(0) if rng is None else rng
    points = np.concatenate([np.atleast_2d(s) for s in shells])
    values = np.asarray(h(points), dtype=np.float64).reshape(points.shape)
    scale = 1.0 + np.linalg.norm(points, axis=1)
    ratio = np.linalg.norm(values, axis=1) / scale
    by_shell, start = [], 0
    for s in shells:
        n = len(np.atleast_2d(s))
        by_shell.append(float(ratio[start:start + n].max()))
        start += n
    u = rng.standard_normal(points.shape)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    increments, lipschitz = [], []
    for delta in deltas:
        step = delta * scale[:, None] * u
        moved = np.asarray(h(points + step), dtype=np.float64).reshape(points.shape)
        inc = np.linalg.norm(moved - values, axis=1)
        increments.append(float(inc.max()))
        lipschitz.append(float((inc / (delta * scale)).max()))
    shrink = increments[-1] <= increments[0] * np.sqrt(deltas[-1] / deltas[0]) * 1.0001 + 1e-300
    return MarchaudCheck(float(ratio.max()), by_shell, analytic_k, [float(d) for d in deltas],
                         increments, lipschitz, bool(shrink))
