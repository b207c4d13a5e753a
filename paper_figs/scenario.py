r"""Figures for a user's scenario: ``python -m paper_figs --scenario my.toml [--out DIR]``.

A scenario (a TOML file, :mod:`simulations.verify.scenarios`) is run once through
:func:`simulations.verify.runner.run_scenario` with the observers its claims need, kept in the run
store ``OUT/runs`` (a rerun loads it), and every figure that applies to its claims is drawn from
that one run. Each figure module declares the claims it shows in ``CLAIMS`` (``ALWAYS`` when it
is drawn for every scenario; a function ``claims_of(scenario)`` instead, when they depend on the
scenario) and draws them with ``draw_scenario(ctx, scenario, sim, name)``,
sharing its drawing functions with the built-in figure:

==============  =========================================================================
module          claims: what is drawn
==============  =========================================================================
fig_blowup      L1-paper, L1-mart, A3: tail fractions (Clopper–Pearson bands) and bounds
fig_growth      C2-growth, L1-det (+ A3's radius): ‖θ(s)‖ or ‖θ(s) − θ(0)‖ and the envelope
fig_claim2      C2: histogram of max_t ‖g/c‖/(1 + ‖θ‖) over the paths, with both K
fig_equilibria  T1 (1-D problems): H and its zero set, the endpoints' histogram
fig_ode         ODE: kept paths and the ODE in τ-time, the tracking gap
fig_lemma3      L3: sup_{s>t} ‖ξ(s) − ξ(t)‖ at the anchors, Doob's bound (classic)
fig_schedules   always (A2): Σa and Σa² of the scenario's schedule
fig_marchaud    L2: ‖H(θ)‖/(1 + ‖θ‖) on the claim's shells against ‖θ‖, with K
fig_bounds      the scenario's ``[[bound]]`` tables (``claims_of``): bound, fraction, rows
==============  =========================================================================

Files are ``OUT/<scenario>_<figure>.{pdf,png,csv}``, the scenario's name sanitized
(:func:`safe_name`). The manifest lists, per scenario, each claim's figures or ``"no figure"``.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from tqdm.auto import tqdm

from paper_figs.runs import Context
from simulations.engine.simulation import Simulation
from simulations.engine.store import RunStore
from simulations.verify.runner import run_scenario
from simulations.verify.scenarios import Scenario, load_scenario
from theory.command import describe, traceback_wanted
from theory.files import disk_full

__all__ = ["NO_FIGURE", "figure_modules", "load", "record_failure", "safe_name",
           "scenario_figures"]

NO_FIGURE = "no figure"


def safe_name(name: str) -> str:
    """``name`` as a file-name prefix: runs of characters other than letters, digits, ``_``,
    ``.`` and ``-`` become ``-``, leading and trailing ``.-_`` are dropped (so the prefix has no
    path separator and cannot be ``.`` or ``..``), at most 80 characters; "scenario" if
    nothing is left."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-_")[:80] or "scenario"


def load(paths: list[Path], full: bool) -> list[Scenario]:
    """The scenarios in ``paths`` (with their ``[full]`` overrides when ``full``); ValueError
    for a missing or invalid file, or two scenarios whose file prefixes coincide."""
    scenarios = [load_scenario(p).sized(full) for p in paths]
    seen: dict[str, str] = {}
    for sc in scenarios:
        prefix = safe_name(sc.name)
        if prefix in seen:
            raise ValueError(f"--scenario: {sc.source} and {seen[prefix]} both write figures "
                             f"named {prefix}_*; give them different names")
        seen[prefix] = str(sc.source)
    return scenarios


def figure_modules(names: tuple[str, ...]) -> list[ModuleType]:
    """The figure modules ``paper_figs.<name>`` that draw scenarios."""
    modules = [importlib.import_module(f"paper_figs.{name}") for name in names]
    return [m for m in modules if hasattr(m, "draw_scenario")]


def _saved_run(sc: Scenario, source: Path) -> Simulation:
    sim = RunStore(source / "runs", read_only=True).load(sc.run)
    if sim is None:
        raise FileNotFoundError(f"no saved run of scenario {sc.name!r} in {source / 'runs'}")
    return sim


def record_failure(manifest: dict[str, Any], name: str, err: Exception,
                   what: str = "failed") -> None:
    """Record in ``manifest`` that ``name`` failed with ``err`` and say so in one line on
    stderr (and the traceback where ``CLIPVERIFY_TRACEBACK`` asks for it); an error that every
    later file would meet too (a full disk, :func:`~theory.files.disk_full`) is raised, to stop
    the run there."""
    full = disk_full(err)
    if full is not None:
        raise full from None
    manifest["failed"][name] = describe(err)
    tqdm.write(f"{name} {what}: {describe(err)}", file=sys.stderr)
    if traceback_wanted():
        traceback.print_exc(file=sys.stderr)


def scenario_figures(ctx: Context, sc: Scenario, modules: list[ModuleType],
                     manifest: dict[str, Any], source: Path | None = None,
                     only: set[str] | None = None) -> None:
    """Run scenario ``sc`` (or load its run from ``source/runs``) and draw each of
    ``modules`` that applies to its claims (those named in ``only``, when given), recording
    the files, failures and times in ``manifest``."""
    prefix = safe_name(sc.name)
    entry: dict[str, Any] = {"source": sc.source, "prefix": prefix, "claims": {}}
    manifest["scenarios"][sc.name] = entry
    start = time.perf_counter()
    try:
        sim = (_saved_run(sc, source) if source is not None
               else run_scenario(sc, out=ctx.out, resume=True, progress=None))
    except Exception as err:  # the other scenarios still get their figures
        record_failure(manifest, sc.name, err, "run failed")
        return
    entry["run_seconds"] = round(time.perf_counter() - start, 2)
    drawn: dict[str, list[str]] = {claim: [] for claim in sc.claims}
    skipped: dict[str, str] = {}
    for module in modules:
        claims = (module.claims_of(sc) if hasattr(module, "claims_of")
                  else [c for c in module.CLAIMS if c in sc.claims])
        if not claims and not getattr(module, "ALWAYS", False):
            continue
        if only is not None and module.__name__.rsplit(".", 1)[1] not in only:
            skipped.update({claim: "not drawn (--only)" for claim in claims})
            continue
        name = f"{prefix}_{module.NAME}"
        start = time.perf_counter()
        try:
            manifest["figures"][name] = [str(p) for p in module.draw_scenario(ctx, sc, sim,
                                                                              name)]
            for claim in claims:
                drawn[claim].append(name)
        except NotImplementedError as why:  # the figure does not apply to this setting
            skipped.update({claim: f"{NO_FIGURE} ({why})" for claim in claims})
        except Exception as err:  # one figure failing must not lose the others
            record_failure(manifest, name, err)
            skipped.update({claim: f"figure {name} failed" for claim in claims})
        manifest["seconds"][name] = round(time.perf_counter() - start, 2)
    entry["claims"] = {claim: names or skipped.get(claim, NO_FIGURE)
                       for claim, names in drawn.items()}
