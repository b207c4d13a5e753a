"""(A2): a(t) > 0, Σa = ∞, Σa² < ∞, decided by the schedule (:mod:`theory.schedules`)."""

from __future__ import annotations

import numpy as np

from simulations.verify.claims.context import Context
from simulations.verify.claims.result import ClaimResult

ID = "A2"
STATEMENT = "(A2): a(t) > 0, Σa = ∞, Σa² < ∞"
RULES = None
OBSERVERS = ()
OPTIONS: dict = {}


def check(ctx: Context) -> list[ClaimResult]:
    v = ctx.schedule.a2()
    return [ctx.row(prediction="holds", measurement=f"a(t) = {ctx.scenario.schedule}",
                    interval=None,
                    verdict={True: "holds", False: "violated", None: "inconclusive"}[v.holds],
                    reason=v.reason, details={"gamma_T": float(np.sum(ctx.a**2))})]
