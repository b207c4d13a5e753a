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

from simulations.engine import distributed
from simulations.engine.progress import bar as progress_bar
from simulations.engine.progress import mode as progress_mode
from simulations.engine.run import simulate
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Execution, RunSpec
from simulations.engine.store import RunStore
from simulations.verify import claims as claims_mod
from simulations.verify.scenarios import Scenario

__all__ = ["run_of", "run_scenario", "verify"]


def claims_for(sc: Scenario, claims: Sequence[str] | None = None) -> tuple[str, ...]:
    """The claims to check on ``sc``: its own, or those of ``claims`` that apply to it."""
    return tuple(sc.claims) if claims is None else tuple(
        c for c in claims if claims_mod.applicable(c, sc) is None)


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
    runs' lines every few seconds; False nothing (:mod:`simulations.engine.progress`).

    Under ``torch.distributed`` (:mod:`simulations.engine.distributed`) rank r of W holds the
    claims of scenarios r, r + W, … against runs of its own (each whole on its rank: the same
    bits as in one process) and rank 0 gathers the rows in the scenarios' order, saves the
    other ranks' runs and alone writes the store (the other ranks neither reuse saved runs nor
    save their claims' AMS estimates); the rows are rank 0's (the other ranks get [])."""
    comm = distributed.ranks()
    if comm.world > 1:
        with comm.guarded(), distributed.alone():
            mine = list(range(comm.rank, len(scenarios), comm.world))
            done = [(i, sim, rows) for i, (sim, rows) in zip(mine, _verify(
                [scenarios[i] for i in mine], claims, out=out if comm.rank == 0 else None,
                resume=resume and comm.rank == 0, progress=progress, device=device),
                strict=True)]
            parts = comm.gather([(i, None if comm.rank == 0 else sim, rows)
                                 for i, sim, rows in done])
        if parts is None:
            return []
        store = None if out is None else RunStore(Path(out) / "runs")
        gathered = sorted((item for part in parts for item in part), key=lambda item: item[0])
        for i, sim, _ in gathered:
            if sim is not None and store is not None:  # another rank's run, saved here
                sc = scenarios[i]
                store.save(sim, name=sc.name, device=device, extra={"scenario": sc.to_dict()})
        return [row for _, _, rows in gathered for row in rows]
    return [row for _, rows in _verify(scenarios, claims, out=out, resume=resume,
                                       progress=progress, device=device) for row in rows]


def _verify(scenarios: Sequence[Scenario], claims: Sequence[str] | None, *,
            out: str | Path | None, resume: bool, progress: bool | None, device: str
            ) -> list[tuple[Simulation | None, list[claims_mod.ClaimResult]]]:
    """:func:`verify` in one process: (the run, the rows) of each scenario (no run where no
    claim applies)."""
    done: list[tuple[Simulation | None, list[claims_mod.ClaimResult]]] = []
    store = None if out is None else RunStore(Path(out) / "runs")
    lines = progress_mode(progress) == "lines"
    bar = progress_bar(len(scenarios), "scenarios", "scenario",
                       False if lines else progress)
    start = time.perf_counter()
    for i, sc in enumerate(scenarios, 1):
        bar.set_postfix_str(sc.name)
        chosen = claims_for(sc, claims)
        if not chosen:
            done.append((None, []))
        else:
            began = time.perf_counter()
            sim = run_scenario(sc, chosen, out=out, resume=resume, progress=progress,
                               device=device)
            done.append((sim, claims_mod.evaluate(sc, sim, chosen, store=store, reuse=resume)))
            if lines:
                now = time.perf_counter()
                left = (now - start) / i * (len(scenarios) - i)
                print(f"scenario {i}/{len(scenarios)} {sc.name}: {now - began:.1f} s, about "
                      f"{left:.0f} s left", file=sys.stderr, flush=True)
        bar.update(1)
    bar.close()
    return done
