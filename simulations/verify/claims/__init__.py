r"""Each claim of the paper held against what the paths did: a prediction, a measurement with its
95% interval, a verdict and a one-line reason.

One module per claim (SCIENCE.md's table), each declaring its ``ID``, ``STATEMENT``, the clip
``RULES`` it is stated for, the engine ``OBSERVERS`` it reads, the ``OPTIONS`` it takes (with
defaults) and ``check(ctx) -> list[ClaimResult]`` (:mod:`simulations.verify.claims.registry`):

* :mod:`~simulations.verify.claims.a1`, :mod:`~simulations.verify.claims.a2`: the assumptions (A1),
  (A2);
* :mod:`~simulations.verify.claims.l1_paper`: Lemma 1 as printed, P(‖θ(T) − θ(0)‖ > M) ≤
  2e^{−2M²/(γλ²)};
* :mod:`~simulations.verify.claims.l1_det`: ‖θ(s) − θ(0)‖ ≤ λΣ_{t<s}a(t) on every path;
* :mod:`~simulations.verify.claims.l1_mart`: Pinelis, P(max_s‖ξ(s)‖ ≥ r) ≤ 2exp(−r²/(8λ²γ_T));
* :mod:`~simulations.verify.claims.c2`, :mod:`~simulations.verify.claims.c2_growth`: Claim 2 and
  Grönwall;
* :mod:`~simulations.verify.claims.a3`: adaptive clipping is stable w.h.p.;
* :mod:`~simulations.verify.claims.l2`, :mod:`~simulations.verify.claims.l3`: H is Marchaud, ξ
  converges;
* :mod:`~simulations.verify.claims.t1`: θ(t) → {H = 0}; :mod:`~simulations.verify.claims.ode`: the
  ODE.

A scenario may also name a claim module of the user's (``claims = ["T1", "mypkg.my_claim"]``
or ``"./my_claim.py"``, the same interface) or declare ``[[bound]]`` tables
(:mod:`simulations.verify.claims.bound`). The verdict rules are in
:mod:`simulations.verify.claims.verdicts`.
"""

from __future__ import annotations

from collections.abc import Sequence

from simulations.verify.claims import (
    a1,
    a2,
    a3,
    c2,
    c2_growth,
    l1_det,
    l1_mart,
    l1_paper,
    l2,
    l3,
    ode,
    t1,
)
from simulations.verify.claims.context import Context
from simulations.verify.claims.registry import (
    Claim,
    applicable,
    failure,
    get,
    observers_for,
    register,
    resolve,
    unregister,
)
from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.verdicts import (
    VERDICTS,
    clopper_pearson,
    mean_agreement,
    pathwise_check,
    pathwise_verdict,
    probability_verdict,
)

__all__ = ["CLAIMS", "VERDICTS", "Claim", "ClaimResult", "Context", "applicable",
           "clopper_pearson", "evaluate", "get", "mean_agreement", "observers_for",
           "pathwise_check", "pathwise_verdict", "probability_verdict", "register", "resolve",
           "unregister"]

BUILT_IN = (a1, a2, l1_paper, l1_det, l1_mart, c2, c2_growth, a3, l2, l3, t1, ode)
#: the ids of the built-in claims, in table order
CLAIMS = tuple(register(module).id for module in BUILT_IN)


def evaluate(scenario, sim, claims: Sequence[str] | None = None, *, store=None,
             reuse: bool = False) -> list[ClaimResult]:
    """The rows of ``claims`` (default: the scenario's; ids of registered claims) for a
    finished run ``sim``; the AMS estimates of the probability claims are kept in ``store``
    (a :class:`~simulations.engine.store.RunStore`, or None) and, with ``reuse``, taken from it."""
    ctx = Context(scenario, sim, store=store, reuse=reuse)
    rows: list[ClaimResult] = []
    for claim_id in scenario.claims if claims is None else claims:
        ctx.claim = get(claim_id)
        if ctx.claim.check.__module__.startswith("simulations."):
            rows.extend(ctx.claim.check(ctx))  # a built-in claim: its errors are ours
            continue
        try:
            rows.extend(ctx.claim.check(ctx))
        except Exception as error:  # a user's claim: one line naming it and where it failed
            raise ValueError(f"claim {claim_id!r} ({ctx.claim.source}) failed on scenario "
                             f"{scenario.name!r}: {failure(error)}") from None
    return rows
