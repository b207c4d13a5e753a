"""(A1): the loss is twice continuously differentiable in θ (activations C²), decided by
:func:`theory.assumptions.a1` for the problem's activation."""

from __future__ import annotations

from simulations.verify.claims.context import Context
from simulations.verify.claims.result import ClaimResult

ID = "A1"
STATEMENT = "(A1): activations are C²"
RULES = None
OBSERVERS = ()
OPTIONS: dict = {}

ACTIVATIONS = {"mlp-regression": "tanh", "mlp-classification": "tanh", "rnn-cliff": "tanh"}
VERDICT_OF = {True: "holds", False: "violated", None: "inconclusive"}


def check(ctx: Context) -> list[ClaimResult]:
    from theory.assumptions import a1

    act = ACTIVATIONS.get(ctx.problem.name)
    if act is None:
        return [ctx.row(statement="(A1): the loss is C² in θ", prediction="C²", measurement="—",
                        interval=None, verdict="holds",
                        reason=f"{ctx.problem.name}: no activation; the loss is smooth in θ")]
    v = a1(act)
    return [ctx.row(prediction="C²",
                    measurement=f"{act}: C^{v.order}" if v.order is not None else act,
                    interval=None, verdict=VERDICT_OF[v.holds], reason=f"{act}: {v.reason}")]
