r"""Run scenarios and hold their claims against the paths: the work behind
``python -m simulations verify``.

:func:`run_scenario` simulates one scenario with the observers its claims need and saves the run
into ``OUT/runs/<name>`` (:func:`simulations.results.save`, atomic); with ``resume=True`` a run
already saved there with the same setting is loaded instead of run again, so an interrupted
suite loses only the scenario it was in. :func:`verify` does this for a list of scenarios and
returns the rows of :mod:`simulations.claims`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from simulations import claims as claims_mod
from simulations import results
from simulations.engine import Simulation, simulate
from simulations.scenarios import Scenario

__all__ = ["run_scenario", "verify"]


def _simulate_kwargs(sc: Scenario, claims: Sequence[str]) -> dict:
    record = claims_mod.observers_for(claims)
    return dict(paths=sc.paths, steps=sc.steps, batch=sc.batch, seed=sc.seed,
                radii=list(sc.exit_radii), dtype=getattr(torch, sc.dtype), record=record,
                keep_paths=sc.keep_paths if "paths" in record else 0,
                xi_paths=sc.xi_paths)


def run_scenario(sc: Scenario, claims: Sequence[str] | None = None, *,
                 out: str | Path | None = None, resume: bool = False,
                 progress: bool | None = None, device: str = "cpu") -> Simulation:
    """The run of scenario ``sc`` (its claims' observers recorded), saved under
    ``out/runs/<name>`` when ``out`` is given; see the module docstring for ``resume``."""
    claims = sc.claims if claims is None else tuple(claims)
    problem, rule = sc.make_problem(), sc.make_rule()
    kwargs = _simulate_kwargs(sc, claims)
    folder = None if out is None else Path(out) / "runs" / sc.name
    if folder is not None and resume and (folder / results.RESULT).exists():
        saved = json.loads((folder / results.RESULT).read_text(encoding="utf-8"))
        if saved.get("scenario") == results.to_json(sc.describe()) and set(kwargs["record"]) <= set(
                saved["setting"]["record"]):
            return results.load(folder)
    sim = simulate(problem, rule, sc.schedule, progress=progress, device=device, **kwargs)
    if folder is not None:
        results.save(sim, folder, device=device, extra={"scenario": sc.describe()})
    return sim


def verify(scenarios: Sequence[Scenario], claims: Sequence[str] | None = None, *,
           out: str | Path | None = None, resume: bool = False,
           progress: bool | None = None, device: str = "cpu") -> list[claims_mod.ClaimResult]:
    """Every scenario's claims (or those of ``claims`` each scenario checks) as table rows."""
    rows: list[claims_mod.ClaimResult] = []
    bar = tqdm(scenarios, desc="scenarios", unit="scenario", leave=False,
               disable=None if progress is None else not progress)
    for sc in bar:
        bar.set_postfix_str(sc.name)
        chosen = sc.claims if claims is None else tuple(c for c in sc.claims if c in claims)
        if not chosen:
            continue
        sim = run_scenario(sc, chosen, out=out, resume=resume, progress=progress,
                           device=device)
        rows.extend(claims_mod.evaluate(sc, sim, chosen))
    bar.close()
    return rows
