"""``--dry-run`` of ``run``, ``rare`` and ``verify``: the cost of each run the command would make
(:mod:`simulations.engine.cost`: trajectory-steps, peak memory, the time estimated from short
calibration runs on this machine), printed as a table on stdout instead of running it.
Nothing is saved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["LEFT_OUT_VERIFY", "rare", "run", "verify", "verify_costs"]

#: what the estimate of ``verify`` leaves out
LEFT_OUT_VERIFY = ("not included: the claims' own computations, and the AMS estimates a claim "
                   "makes where its paths cannot resolve its bound (each costs about what "
                   "`python -m simulations rare --dry-run` says for its event)")


def run(spec: Any, execution: Any) -> int:
    """Print the cost of ``simulate(spec, execution)``; returns the exit status 0."""
    from simulations.engine.cost import run_cost, table

    print(table([run_cost(spec, execution)]))
    return 0


def rare(chain: Any, splitting: Any, execution: Any) -> int:
    """Print the cost of ``ams(chain, splitting, execution)``; returns 0."""
    from simulations.engine.cost import rare_cost, table

    print(table([rare_cost(chain, splitting, execution)]))
    return 0


def verify_costs(scenarios: Sequence[Any], claims: Sequence[str] | None = None,
                 device: str = "cpu") -> list[Any]:
    """The cost of each scenario's run with the observers its claims (or those of ``claims``
    that apply to it) need, as :func:`simulations.verify.runner.verify` would make it."""
    from simulations.engine.cost import run_cost
    from simulations.engine.spec import Execution
    from simulations.verify.claims import applicable
    from simulations.verify.runner import run_of

    costs = []
    for sc in scenarios:
        chosen = sc.claims if claims is None else tuple(
            c for c in claims if applicable(c, sc) is None)
        if chosen:
            costs.append(run_cost(run_of(sc, chosen), Execution(device=device), sc.name))
    return costs


def verify(scenarios: Sequence[Any], claims: Sequence[str] | None = None,
           device: str = "cpu") -> int:
    """Print the cost of the runs of ``verify`` (:func:`verify_costs`); returns 0."""
    from simulations.engine.cost import table

    print(table(verify_costs(scenarios, claims, device), LEFT_OUT_VERIFY))
    return 0
