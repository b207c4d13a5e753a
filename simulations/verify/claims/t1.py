r"""``T1``: Theorem 1, θ(t) → {θ : H(θ) = 0}, H = E[g/c]. The row gives the zero set of H, the
minimiser of E[ℓ], and which of the two the mean endpoint matches.

* The zero set. In 1-D: :func:`theory.equilibria.search_zeros_1d` on a window that contains
  θ(0), every endpoint (10 beyond them) and the option ``zero_range``, widened while no zero is
  found and the flow dθ/dτ = −H points out of it; the window searched is reported. In d > 1:
  :func:`theory.equilibria.search_zeros` from the mean endpoint, θ(0) and a few endpoints (the
  mean endpoint and θ(0) only from P = ``LARGE_P`` parameters on), with H's batched Jacobian,
  within a budget of ``zero_budget`` evaluations of H (a Jacobian costs P + 1) and
  ``zero_seconds`` seconds, shared by the starts (the BFGS search for argmin E[ℓ] has the same
  budget). Each zero has a stability for dθ/dτ = −H (the sign of H on either side in 1-D, the
  eigenvalues of the Jacobian in d > 1).
* Where H is a Monte Carlo estimate (B > 1, or a continuous law in d > 1) it is evaluated with
  the same minibatches at every point, so that it is continuous in θ, and the zero set is the set
  where the estimate is within 1.96 standard errors of 0 (in 1-D; an interval, never an exact
  point), or a zero with its standard error σ = √diag(J⁻¹ diag(s_H²) J⁻ᵀ) (in d > 1).
* The verdict: ``does not apply`` when H has no zero in the window searched (in d > 1: none
  was found), or every zero is repelling, and ‖θ‖ still grows at the end of the run (the mean
  of the paired ‖θ(T)‖ − ‖θ(s)‖ over the paths, s the last checkpoint at or before T/2, is
  more than 3 standard errors above 0): the iterates are not bounded as far as the run shows,
  and Theorem 1 assumes bounded iterates, so it says nothing here (the separable logistic
  problem); ``violated`` in those two cases when ‖θ‖ does not grow measurably (or the run has
  no checkpoints to tell): iterates that stay bounded and converge nowhere contradict the
  theorem; ``holds`` when the mean endpoint agrees with a zero that is
  not repelling (|z| ≤ 3, :func:`simulations.verify.claims.verdicts.mean_agreement`, the distance to
  an interval of zeros taken to its nearest point); ``inconclusive`` otherwise (the endpoints
  have not reached the zero set), and when the search in d > 1 ran out of its budget before it
  found a zero that is not repelling, or found none from its two starts at P ≥ ``LARGE_P`` (the
  reason gives the limit, the evaluations spent and the smallest ‖H‖ reached): that shows
  nothing about whether H has a zero.
* The minimiser x* of E[ℓ] and what the reason says of it, each sentence only where its facts
  hold: where E[ℓ] = ∞ at every θ (the quadratic family under a Student-t law with ν ≤ 2) there
  is no minimiser and the row says so; otherwise the endpoints "also match" x* (|z| ≤ 3) or
  "do not match" it, and only on a row that holds, where the zero of H the endpoints match
  differs from x* by more than 3 standard errors, "the reading 'minimum of E[ℓ]' is false
  here" (see :func:`_minimiser_text`).
* In 1-D the zero set is judged against H's own error: where H is exact, a point is a zero when
  |H| is within the bound on its rounding error (``field(...).rounding``, derived in
  :mod:`simulations.engine.mean_field`), so a flat stretch of H (e.g. the interval of zeros of a
  two-point law with a gap > 2λ) is one interval however large λ, and only values of H beyond
  that error make a zero repelling or touching.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.verdicts import Z_AGREE, mean_agreement
from theory import equilibria

ID = "T1"
STATEMENT = "Theorem 1: θ(t) → {θ : E[g/c](θ) = 0}"
RULES = None
OBSERVERS = ("checkpoints",)
OPTIONS = {"zero_range": None, "zero_grid": 4001, "zero_budget": 20_000, "zero_seconds": 60.0}
BAND_Z = 1.96  #: half-width of the band of an estimated H, in standard errors
MC_GRID = 401  #: grid points of the 1-D search where H is estimated (one estimate per point)
PAD = 10.0  #: the window reaches this far beyond θ(0) and the endpoints
LARGE_P = 50  #: from this many parameters on, the search in d > 1 starts from the mean endpoint
#: and θ(0) only (each start costs Jacobians of P + 1 evaluations of H)


def applicable(scenario) -> str | None:
    zr = scenario.options.get("zero_range")
    if zr is not None and not (isinstance(zr, list) and len(zr) == 2 and all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in zr) and zr[0] < zr[1]):
        return f"options.zero_range must be [lo, hi] with lo < hi, got {zr!r}"
    grid = scenario.options.get("zero_grid", 4001)
    if not isinstance(grid, int) or grid < 3:
        return f"options.zero_grid must be an integer >= 3, got {grid!r}"
    budget = scenario.options.get("zero_budget", 20_000)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        return f"options.zero_budget must be an integer >= 1 (evaluations of H), got {budget!r}"
    seconds = scenario.options.get("zero_seconds", 60.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            math.isfinite(seconds) and seconds > 0):
        return f"options.zero_seconds must be a number > 0, got {seconds!r}"
    return None


def _budget(ctx: Context) -> equilibria.Budget:
    return equilibria.Budget(int(ctx.opt("zero_budget")), float(ctx.opt("zero_seconds")))


def _infinite_loss(problem) -> str | None:
    """Why E[ℓ] = ∞ at every θ, or None where it is finite. For the quadratic family
    E[ℓ] = (L/2)E‖θ − y‖² is finite iff E[y_k²] is (Law.moment_finite): for a Student-t law iff
    ν > 2. The other problems average a bounded loss over finitely many samples."""
    from simulations.engine.problems import Quadratic

    if isinstance(problem, Quadratic) and not problem.law.moment_finite(2):
        return (f"E[ℓ] = ∞ at every θ (y has a Student-t law with ν = {problem.law.df} ≤ 2: "
                f"E[y²] = ∞), so there is no minimiser of E[ℓ] to compare with")
    return None


def _minimiser(ctx: Context, start: np.ndarray) -> tuple[np.ndarray | None, str]:
    """argmin E[ℓ]: none where E[ℓ] is infinite or concave, E[y] for the quadratic family,
    else BFGS on the exact expected loss."""
    import torch

    from simulations.engine.mean_field import field
    from simulations.engine.problems import Quadratic
    from simulations.engine.rules import ClipRule

    problem = ctx.problem
    infinite = _infinite_loss(problem)
    if infinite is not None:
        return None, infinite
    if isinstance(problem, Quadratic):
        if problem.curvature < 0:
            return None, "E[ℓ] is concave: no minimiser"
        return np.full(problem.dim, problem.law.mean_value()), "E[y]"
    grad = field(problem, ClipRule("none"))
    atoms, weights = problem.atoms(torch.float64, "cpu")

    def loss(theta: np.ndarray) -> float:
        th = torch.as_tensor(theta, dtype=torch.float64)[None].expand(len(weights), -1)
        return float((problem.loss(th, problem.batch_of(atoms, torch.arange(len(weights))))
                      * weights).sum())

    m = equilibria.minimise(loss, grad, start, budget=_budget(ctx))
    if m.exhausted is not None:
        return None, (f"argmin E[ℓ] not found: BFGS ran out of its budget of {m.exhausted} "
                      f"(‖∇E[ℓ]‖ = {fmt(m.grad_norm)} at its last point)")
    if not m.converged:
        return None, (f"E[ℓ] has no minimiser found (BFGS stopped at ‖θ‖ = "
                      f"{fmt(float(np.linalg.norm(m.point)))} with ‖∇E[ℓ]‖ = {fmt(m.grad_norm)})")
    return m.point, "BFGS on the exact E[ℓ]"


def _growth(ctx: Context, alive: np.ndarray) -> dict[str, Any] | None:
    """Whether ‖θ‖ still grows at the end of the run: over the paths that did not blow up, the
    paired difference d = ‖θ(T)‖ − ‖θ(s)‖ with s the last checkpoint at or before T/2, its mean
    and standard error, and ``grows`` when mean d > ``Z_AGREE`` standard errors (> 0 when every
    path has the same d). None where the run has no checkpoints (the observer was not
    recorded) or fewer than two live paths."""
    arr = ctx.sim.arrays
    if "norm_at" not in arr or "checkpoint_steps" not in arr or int(alive.sum()) < 2:
        return None
    steps = np.asarray(arr["checkpoint_steps"])
    half = int(np.searchsorted(steps, steps[-1] // 2, side="right")) - 1
    if half < 0 or steps[half] == steps[-1]:
        return None
    norms = np.asarray(arr["norm_at"], dtype=np.float64)[alive]
    d = norms[:, -1] - norms[:, half]
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
    return {"from_step": int(steps[half]), "to_step": int(steps[-1]),
            "norm_from": float(norms[:, half].mean()), "norm_to": float(norms[:, -1].mean()),
            "growth": mean, "growth_se": se,
            "grows": bool(mean > Z_AGREE * se and mean > 0)}


def _point_text(point: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in point[:3]) + (", …" if len(point) > 3 else "") + ")"


def _zeros_1d(ctx: Context, end: np.ndarray, theta0: np.ndarray) -> equilibria.ZeroSet:
    lo = float(min(end.min(), theta0[0])) - PAD
    hi = float(max(end.max(), theta0[0])) + PAD
    zr = ctx.opt("zero_range")
    if zr is not None:
        lo, hi = min(lo, float(zr[0])), max(hi, float(zr[1]))
    grid = int(ctx.opt("zero_grid"))
    h = ctx.field()

    def rounding(x: np.ndarray) -> np.ndarray:
        return h.rounding(x[:, None])[:, 0]

    if ctx.h_exact:
        return equilibria.search_zeros_1d(lambda x: h(x[:, None])[:, 0], lo, hi, grid=grid,
                                          rounding=rounding)
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def estimate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.asarray(x, dtype=np.float64).tobytes()
        if key not in cache:
            value, se = ctx.field_with_se(np.asarray(x, dtype=np.float64)[:, None])
            cache[key] = (value[:, 0], se[:, 0])
        return cache[key]

    return equilibria.search_zeros_1d(lambda x: estimate(x)[0], lo, hi, grid=min(grid, MC_GRID),
                                      band=lambda x: BAND_Z * estimate(x)[1], rounding=rounding)


def _check_1d(ctx, end, mean, se, theta0, details) -> tuple[str, Any, float | None, str]:
    zs = _zeros_1d(ctx, end, theta0)
    details.update(zeros=zs.points.tolist(), intervals=zs.intervals,
                   residuals=zs.residuals.tolist(), pieces=[p.to_dict() for p in zs.pieces],
                   window=[zs.lo, zs.hi], zeros_estimated=zs.estimated)
    text = zs.describe() + f", searched [{zs.lo:.4g}, {zs.hi:.4g}]"
    if zs.empty:
        return "none", None, None, text
    stable = zs.only("attracting", "touching", "unknown")
    if stable.empty:
        return "repelling", zs, None, text
    target = stable.nearest(float(mean[0]))
    piece = min(stable.pieces, key=lambda p: max(p.lo - target, 0.0, target - p.hi))
    if zs.estimated:  # the zero is known to within the band: [lo, hi] is its uncertainty
        details["zero_band"] = [piece.lo, piece.hi]
    z = float(abs(mean[0] - target) / max(se[0], 1e-12 * (1 + abs(mean[0]))))
    if stable.distance(float(mean[0])) == 0:
        z = 0.0
    return "found", np.array([target]), z, text


def _check_nd(ctx, end, mean, se, theta0, details) -> tuple[str, Any, float | None, str]:
    if ctx.h_exact:
        h = ctx.field()
        jac = getattr(h, "jacobian", None)
    else:
        def h(v):
            v = np.asarray(v, dtype=np.float64)
            return ctx.field_with_se(v.reshape(-1, v.shape[-1]))[0].reshape(v.shape)

        def jac(v):
            return equilibria.jacobian(h, v)
    if len(mean) >= LARGE_P:
        starts = np.vstack([mean, theta0])
    else:
        starts = np.vstack([mean, theta0, end[: min(4, len(end))]])
    budget = _budget(ctx)
    search = equilibria.search_zeros(h, starts, tol=1e-12 if ctx.h_exact else 1e-8, jac=jac,
                                     budget=budget)
    found = [z for z in search.zeros if z.converged]
    text = f"none found from {len(starts)} starts" if not found else "{" + ", ".join(
        _point_text(z.point) + ("" if z.stability == "attracting" else f" ({z.stability})")
        for z in found[:3]) + "}"
    details.update(zeros=[z.point.tolist() for z in found],
                   residuals=[z.residual for z in found],
                   stability=[z.stability for z in found], zeros_estimated=not ctx.h_exact,
                   zero_evaluations=search.evaluations, zero_seconds=budget.elapsed(),
                   zero_budget_exhausted=search.exhausted)
    if search.exhausted is not None and not any(z.stability != "repelling" for z in found):
        text = (f"unknown (the search stopped at its budget of {search.exhausted} after "
                f"{search.evaluations} evaluations of H in {budget.elapsed():.3g} s; smallest "
                f"‖H‖ reached {fmt(search.best_residual)}"
                + ("" if not found else f"; found {text}") + ")")
        return "unknown", None, None, text
    if not found and len(mean) >= LARGE_P:
        text = (f"unknown (none found from {len(starts)} starts in {search.evaluations} "
                f"evaluations of H; smallest ‖H‖ reached {fmt(search.best_residual)}; with "
                f"P = {len(mean)} a failed local search from so few starts shows nothing)")
        return "unknown", None, None, text
    if not found:
        return "none", None, None, text
    stable = [z for z in found if z.stability != "repelling"]
    if not stable:
        return "repelling", found, None, text
    best = min(stable, key=lambda z: np.linalg.norm(z.point - mean))
    target_se = None
    if not ctx.h_exact:
        se_h = ctx.field_with_se(best.point[None])[1][0]
        assert best.jacobian is not None  # the zeros found carry their Jacobian
        inv = np.linalg.pinv(best.jacobian)
        target_se = np.sqrt(np.einsum("ij,j,ij->i", inv, se_h**2, inv))
        details["zero_se"] = target_se.tolist()
        text += " ± " + ", ".join(f"{s:.2g}" for s in target_se[:3])
    return "found", best.point, mean_agreement(mean, se, best.point, target_se), text


def _minimiser_text(verdict: str, z_min: float, target: Any, target_se: Any, se: np.ndarray,
                    minimiser: np.ndarray, band: list[float] | None = None
                    ) -> tuple[str, float | None]:
    """The sentences on the minimiser x* of E[ℓ], each only where the numbers make it true, and
    the |z| of the difference between the zero of H the endpoints match and x*.

    * the endpoints match x* (|z| ≤ 3): "the endpoints also match the minimiser";
    * they do not: "the endpoints do not match the minimiser"; then, where the row ``holds``
      (the endpoints match a zero θ̂ of H), the difference θ̂ − x* is judged at the endpoints'
      resolution, |z| = max_k |θ̂_k − x*_k|/√(s_k² + σ_k²) (s the standard error of the mean
      endpoint, σ that of θ̂ where H is estimated): |z| > 3, the zero the iterates converge to
      is not the minimiser, and "the reading 'minimum of E[ℓ]' is false here"; |z| ≤ 3, the
      two cannot be told apart here, and the row says so (the run does not show whether the
      limit is x*). In 1-D with an estimated H the zero is only known to within its
      95% band [lo, hi] (``band``): x* inside it cannot be told apart from it (|z| = 0)."""
    if z_min <= Z_AGREE:
        return f"; the endpoints also match the minimiser of E[ℓ] (|z| = {z_min:.3g})", None
    text = f"; the endpoints do not match the minimiser of E[ℓ] (|z| = {z_min:.3g})"
    if verdict != "holds" or target is None:
        return text, None
    if band is not None and band[0] <= float(minimiser[0]) <= band[1]:
        z_gap = 0.0
    else:
        z_gap = mean_agreement(np.atleast_1d(target), se, minimiser, target_se)
    if z_gap > Z_AGREE:
        return text + (f", and the zero of H they match is not that minimiser (|z| = "
                       f"{z_gap:.3g}): the reading 'minimum of E[ℓ]' is false here"), z_gap
    return text + (f", but the zero of H they match and the minimiser cannot be told apart at "
                   f"this resolution (|z| = {z_gap:.3g}): this run does not show whether the "
                   f"limit of the iterates is the minimiser"), z_gap


def check(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    alive = arr["blown_step"] < 0
    end = arr["endpoints"][alive]
    mean = end.mean(0)
    se = end.std(0, ddof=1) / math.sqrt(len(end)) if len(end) > 1 else np.zeros_like(mean)
    theta0 = ctx.theta0()
    details: dict[str, Any] = {"mean_endpoint": mean.tolist(), "se": se.tolist(),
                               "h_method": ctx.h_method, "h_exact": ctx.h_exact}
    search = _check_1d if ctx.problem.n_params == 1 else _check_nd
    status, target, z_zero, zero_text = search(ctx, end, mean, se, theta0, details)
    minimiser, how = _minimiser(ctx, mean)
    details["minimiser"] = None if minimiser is None else minimiser.tolist()
    details["loss_finite"] = _infinite_loss(ctx.problem) is None
    z_min = None if minimiser is None else mean_agreement(mean, se, minimiser)
    mean_text = ", ".join(f"{m:.5g} ± {s:.2g}" for m, s in zip(mean[:3], se[:3], strict=False))
    if minimiser is not None:
        min_text = ", ".join(f"{v:.5g}" for v in minimiser[:3])
    else:
        min_text = "none (E[ℓ] = ∞)" if not details["loss_finite"] else "none"
    spread = float(np.median(np.linalg.norm(end - mean, axis=1)))
    growth = _growth(ctx, alive) if status in ("none", "repelling") else None
    details["growth"] = growth
    none = "H has no zero" if len(mean) == 1 else "no zero of H was found"
    if status in ("none", "repelling") and growth is not None and growth["grows"]:
        verdict = "does not apply"
        why = ((none if status == "none" else "every zero of H is repelling for dθ/dτ = −H")
               + f" ({zero_text}) and ‖θ‖ still grows at T: mean ‖θ‖ from "
               f"{fmt(growth['norm_from'])} at s = {growth['from_step']} to "
               f"{fmt(growth['norm_to'])} at T = {growth['to_step']} (paired difference "
               f"{fmt(growth['growth'])} ± {fmt(growth['growth_se'])}): the iterates are not "
               f"bounded, as far as this run shows, and Theorem 1 assumes they are")
        target = None
    elif status == "unknown":
        verdict = "inconclusive"
        why = f"the zero set of H is {zero_text}; this does not show that H has no zero"
    elif status == "none":
        verdict = "violated"
        why = (f"{none} ({zero_text}); the iterates cannot converge to one: mean ‖θ(T)‖ "
               f"= {fmt(float(np.mean(np.linalg.norm(end, axis=1))))} from ‖θ(0)‖ = "
               f"{fmt(float(np.linalg.norm(theta0)))}")
    elif status == "repelling":
        verdict = "violated"
        why = (f"every zero of H is repelling for dθ/dτ = −H ({zero_text}): the iterates leave "
               f"it (median ‖θ(T) − mean θ(T)‖ = {fmt(spread)})")
        target = None
    else:
        assert z_zero is not None  # a stable zero was found
        verdict = "holds" if z_zero <= Z_AGREE else "inconclusive"
        why = (f"endpoints {'match' if z_zero <= Z_AGREE else 'do not (yet) match'} the zero "
               f"of H (|z| = {z_zero:.2g}; zeros {zero_text})")
    if verdict == "violated" and growth is not None:  # "none" or "repelling", ‖θ‖ not growing
        why += (f", and ‖θ‖ does not grow measurably at T (paired difference "
                f"{fmt(growth['growth'])} ± {fmt(growth['growth_se'])} since s = "
                f"{growth['from_step']})")
    z_gap = None
    if z_min is not None and minimiser is not None:
        text, z_gap = _minimiser_text(verdict, z_min, target, details.get("zero_se"), se,
                                      minimiser, details.get("zero_band"))
        why += text
    else:
        why += f"; {how}"
    why += f"; H by {ctx.h_method}"
    details.update(z_zero=z_zero, z_minimiser=z_min, z_zero_minimiser=z_gap)
    return [ctx.row(
        prediction=f"zeros of H {zero_text}; argmin E[ℓ] = {min_text}",
        measurement=f"mean θ(T) = {mean_text}",
        interval=(float(mean[0] - 1.96 * se[0]), float(mean[0] + 1.96 * se[0])),
        verdict=verdict, reason=why,
        prediction_value=None if target is None else float(np.atleast_1d(target)[0]),
        measurement_value=float(mean[0]), details=details)]
