"""``--dry-run`` of ``run``, ``rare`` and ``verify``: the cost of each run the command would make
(:mod:`simulations.engine.cost`: trajectory-steps, peak memory, the time estimated from short
calibration runs on this machine), printed as a table on stdout instead of running it.
Nothing is saved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["LEFT_OUT_VERIFY", "rare", "run", "verify", "verify_costs"]

#: what the estimate of ``verify`` leaves out
LEFT_OUT_VERIFY = ("an AMS row \"(if needed)\" is run only where the scenario's paths cannot "
                   "resolve the claim's bound")


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
    """The cost of each scenario as :func:`simulations.verify.runner.verify` would check it:
    its run with the observers its claims (or those of ``claims`` that apply to it) need;
    its claims, timed on a stand-in run of a few paths
    (:func:`~simulations.engine.cost.stand_in`); and the AMS estimates the claims ask for
    on that stand-in, which the full run makes only where its paths cannot resolve a bound
    (named "if needed")."""
    import time

    from simulations.engine.cost import Cost, PlanStore, run_cost, stand_in
    from simulations.engine.run import simulate
    from simulations.engine.spec import Execution
    from simulations.verify import claims as claims_mod
    from simulations.verify.runner import claims_for, run_of

    costs = []
    for sc in scenarios:
        chosen = claims_for(sc, claims)
        if not chosen:
            continue
        run = run_of(sc, chosen)
        costs.append(run_cost(run, Execution(device=device), sc.name))
        small = simulate(stand_in(run), Execution(device=device, progress=False))
        store = PlanStore(suffix=" (if needed)")
        start = time.perf_counter()
        claims_mod.evaluate(sc, small, chosen, store=store, reuse=False)
        seconds = time.perf_counter() - start - store.seconds
        costs.append(Cost(f"{sc.name}: claims", 0, 0, seconds,
                          note=f"timed on a stand-in run of {small.paths} paths"))
        costs += store.plan
    return costs


def verify(scenarios: Sequence[Any], claims: Sequence[str] | None = None,
           device: str = "cpu") -> int:
    """Print the cost of the runs of ``verify`` (:func:`verify_costs`); returns 0."""
    from simulations.engine.cost import table

    print(table(verify_costs(scenarios, claims, device), LEFT_OUT_VERIFY))
    return 0
