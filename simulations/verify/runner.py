r"""Run scenarios and hold their claims against the paths: the work behind
``python -m simulations verify``.

:func:`run_scenario` simulates one scenario with the observers its claims need and, given
``out``, saves the run in the store ``OUT/runs`` (:mod:`simulations.engine.store`: one folder per
:meth:`~simulations.engine.spec.RunSpec.key`, the scenario's name in ``OUT/runs/index.json``); with
``resume=True`` a run saved there with the same spec (or the scenario's run for all its
claims, which records a superset of the observers) is loaded instead of run again, so an
interrupted suite loses only the scenario it was in. The claims' AMS estimates go into the
same store (:meth:`~simulations.engine.store.RunStore.rare`), and ``resume=True`` reuses them too.
:func:`verify` does this for a list of scenarios and returns the rows of
:mod:`simulations.verify.claims`, with a progress bar on a terminal and, elsewhere, one line per
scenario on stderr (time taken, about how long is left) beside the runs' own lines every few
seconds (:mod:`simulations.engine.progress`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from simulations.engine.progress import bar as progress_bar
from simulations.engine.progress import mode as progress_mode
from simulations.engine.run import simulate
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Execution, RunSpec
from simulations.engine.store import RunStore
from simulations.verify import claims as claims_mod
from simulations.verify.scenarios import Scenario

__all__ = ["run_of", "run_scenario", "verify"]


def run_of(sc: Scenario, claims: Sequence[str] | None = None) -> RunSpec:
    """The RunSpec of scenario ``sc`` recording what ``claims`` (default: all its claims)
    need."""
    record = claims_mod.observers_for(sc.claims if claims is None else claims)
    return sc.run if record == sc.run.record else sc.run.replace(record=record)


def run_scenario(sc: Scenario, claims: Sequence[str] | None = None, *,
                 out: str | Path | None = None, resume: bool = False,
                 progress: bool | None = None, device: str = "cpu") -> Simulation:
    """The run of scenario ``sc`` (its claims' observers recorded), saved in the store
    ``out/runs`` when ``out`` is given; see the module docstring for ``resume``."""
    run = run_of(sc, claims)
    execution = Execution(device=device, progress=progress)
    if out is None:
        return simulate(run, execution)
    store = RunStore(Path(out) / "runs")
    if resume:  # this very run, or the scenario's run for all its claims if a superset
        superset = set(run.record) <= set(sc.run.record)
        for saved in filter(None, map(store.load, dict.fromkeys((run, sc.run if superset
                                                                 else run)))):
            return saved
    return store.run(run, lambda: simulate(run, execution), reuse=False, name=sc.name,
                     device=device, extra={"scenario": sc.to_dict()})


def verify(scenarios: Sequence[Scenario], claims: Sequence[str] | None = None, *,
           out: str | Path | None = None, resume: bool = False,
           progress: bool | None = None, device: str = "cpu") -> list[claims_mod.ClaimResult]:
    """Every scenario's claims as table rows; given ``claims`` (registered ids), those of them
    that apply to each scenario instead, whether or not the scenario lists them.

    ``progress``: None shows a bar on a terminal and, otherwise, a line per scenario and the
    runs' lines every few seconds; False nothing (:mod:`simulations.engine.progress`)."""
    rows: list[claims_mod.ClaimResult] = []
    store = None if out is None else RunStore(Path(out) / "runs")
    lines = progress_mode(progress) == "lines"
    bar = progress_bar(len(scenarios), "scenarios", "scenario",
                       False if lines else progress)
    start = time.perf_counter()
    for i, sc in enumerate(scenarios, 1):
        bar.set_postfix_str(sc.name)
        chosen = sc.claims if claims is None else tuple(
            c for c in claims if claims_mod.applicable(c, sc) is None)
        if chosen:
            began = time.perf_counter()
            sim = run_scenario(sc, chosen, out=out, resume=resume, progress=progress,
                               device=device)
            rows.extend(claims_mod.evaluate(sc, sim, chosen, store=store, reuse=resume))
            if lines:
                now = time.perf_counter()
                left = (now - start) / i * (len(scenarios) - i)
                print(f"scenario {i}/{len(scenarios)} {sc.name}: {now - began:.1f} s, about "
                      f"{left:.0f} s left", file=sys.stderr, flush=True)
        bar.update(1)
    bar.close()
    return rows
