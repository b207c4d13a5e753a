r"""The one store of finished runs, content-addressed: ``ROOT/<key>/`` with ``result.json`` and
``arrays.npz`` (:mod:`simulations.engine.results`), ``key`` =
:meth:`simulations.engine.spec.RunSpec.key`.
Rare-event estimates (:func:`simulations.engine.rare.ams`) live there too, under :func:`rare_key`,
the
hash of their chain, their splitting and the kind ``ams`` (:meth:`RunStore.rare`).

``python -m simulations run`` and ``verify`` keep their runs in ``OUT/runs``, ``python -m
paper_figs`` its (reduced) arrays in ``OUT/runs`` too. A folder's name is the 16 hex digits of
a hash of everything that determines the numbers, so a saved run is reused only for the very
same spec (problem, rule, schedule, sizes, seed, dtype, guard, observers, radii, kept paths,
ξ paths), a name given by a user (a scenario's, a figure's) never becomes a path, and two runs
with one name never overwrite each other. ``ROOT/index.json`` lists, for the reader, the names
each key was saved under: ``{key: [name, ...]}``.

Each entry is written as one unit (:func:`simulations.engine.results.write_unit`), its
``result.json`` with the SHA-256 of its content; an entry that cannot be read back (truncated,
half-deleted, or content that does not match its SHA-256: edited after it was saved) is
reported on stderr in one line and computed again, and refused (``FileNotFoundError``, one line)
by a read-only store, which computes nothing.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from simulations.engine import results
from simulations.engine.rare import RareEventResult, Splitting
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Chain, RunSpec
from theory.files import atomic_write
from theory.records import content_key

__all__ = ["INDEX", "RunStore", "rare_key"]

INDEX = "index.json"
KEY = re.compile(r"[0-9a-f]{16}")
Arrays = dict[str, np.ndarray]


def rare_key(chain: Chain, splitting: Splitting) -> str:
    """The name in the store of the AMS estimate of ``splitting`` on ``chain``:
    :func:`~theory.records.content_key` of ``{"kind": "ams", "chain": ..., "splitting":
    ...}``
    (their ``to_dict()``)."""
    return content_key({"kind": "ams", "chain": chain.to_dict(),
                        "splitting": splitting.to_dict()})


class RunStore:
    """Runs under ``root``; ``read_only`` refuses to compute or write anything."""

    def __init__(self, root: str | os.PathLike, *, read_only: bool = False):
        self.root = Path(root)
        self.read_only = read_only

    def folder(self, key: str) -> Path:
        """``root/<key>``; ``key`` must be 16 hex digits (so it never leaves ``root``)."""
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise ValueError(f"a store key is 16 hex digits, got {key!r}")
        return self.root / key

    # ---- whole runs ---------------------------------------------------------------------------
    def load(self, run: RunSpec) -> Simulation | None:
        """The saved run of ``run``, or None (nothing saved, or a damaged entry, said on
        stderr)."""
        folder = self.folder(run.key())
        if not folder.exists():
            return None
        try:
            sim = results.load(folder)
        except ValueError as error:
            self._unreadable(error)
            return None
        if sim.run != run:  # a hash collision, or a hand-edited entry
            return None
        return sim

    def save(self, sim: Simulation, *, name: str | None = None, device: str | None = None,
             command: str | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Save ``sim`` (which carries its RunSpec) under its key; returns its
        ``result.json``."""
        if sim.run is None:
            raise ValueError("only a run with its RunSpec can be stored")
        key = sim.run.key()
        extra = {**(extra or {}), **({"name": name} if name is not None else {})}
        path = results.save(sim, self.folder(key), device=device, command=command, extra=extra)
        self._index(key, name)
        return path

    def run(self, run: RunSpec, compute: Callable[[], Simulation], *, reuse: bool = True,
            name: str | None = None, **save: Any) -> Simulation:
        """The saved run of ``run`` when ``reuse``, else ``compute()`` saved first."""
        sim = self.load(run) if reuse else None
        if sim is None:
            self._refuse_read_only(run.key(), name)
            sim = compute()
            self.save(sim, name=name, **save)
        return sim

    # ---- rare-event estimates (AMS) -------------------------------------------------------------
    def load_rare(self, chain: Chain, splitting: Splitting) -> RareEventResult | None:
        """The saved AMS estimate of ``splitting`` on ``chain``, or None (nothing saved, or a
        damaged entry, said on stderr). Rebuilt from the saved replicas' estimates
        (:meth:`~simulations.engine.rare.RareEventResult.from_replicas`): the result that was
        saved."""
        folder = self.folder(rare_key(chain, splitting))
        if not (folder / results.RESULT).exists():
            return None
        try:
            saved, arrays = results.load_unit(folder)
        except ValueError as error:
            self._unreadable(error)
            return None
        try:
            if saved.get("kind") != "ams" or Chain.from_dict(saved["chain"]) != chain \
                    or Splitting.from_dict(saved["splitting"]) != splitting:
                return None  # a hash collision, or a hand-edited entry
            res = saved["result"]
            return RareEventResult.from_replicas(
                arrays["estimates"], arrays["replica_iterations"], res["trajectory_steps"],
                res["extinct"], res["capped"], res["setting"], splitting.levels)
        except (ValueError, KeyError, TypeError) as error:
            why = " ".join(str(error).split())[:160]
            self._unreadable(ValueError(f"{folder}: not a complete saved estimate ({why})"))
            return None

    def save_rare(self, result: RareEventResult, chain: Chain, splitting: Splitting, *,
                  name: str | None = None, device: str | None = None,
                  command: str | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Save the AMS ``result`` of ``splitting`` on ``chain`` under :func:`rare_key`:
        ``arrays.npz`` the replicas' estimates (replicas, levels + 1) and iterations,
        ``result.json`` the kind ``ams``, the key, the chain, the splitting, the result
        (:meth:`~simulations.engine.rare.RareEventResult.to_dict`), the provenance
        (:func:`simulations.engine.results.provenance`) and ``extra``; returns its
        ``result.json``."""
        key = rare_key(chain, splitting)
        arrays = {"estimates": result.replica_estimates(),
                  "replica_iterations": result.replica_iterations}
        meta = {"kind": "ams", "key": key, "chain": chain.to_dict(),
                "splitting": splitting.to_dict(), "result": result.to_dict(),
                **results.provenance(device=device, command=command), **(extra or {}),
                **({"name": name} if name is not None else {})}
        path = results.write_unit(self.folder(key), arrays, meta)
        self._index(key, name)
        return path

    def rare(self, chain: Chain, splitting: Splitting, compute: Callable[[], RareEventResult],
             *, reuse: bool = True, name: str | None = None, **save: Any) -> RareEventResult:
        """The saved AMS estimate of ``splitting`` on ``chain`` when ``reuse``, else
        ``compute()`` saved first (:meth:`save_rare`)."""
        result = self.load_rare(chain, splitting) if reuse else None
        if result is None:
            self._refuse_read_only(rare_key(chain, splitting), name)
            result = compute()
            self.save_rare(result, chain, splitting, name=name, **save)
        return result

    # ---- arrays derived from a run (figures) --------------------------------------------------
    def arrays(self, key: str, compute: Callable[[], Arrays], *, name: str | None = None,
               meta: dict[str, Any] | None = None) -> Arrays:
        """The arrays saved under ``key``, or ``compute()`` saved first with ``meta`` (and the
        provenance) in its ``result.json``."""
        folder = self.folder(key)
        if (folder / results.RESULT).exists():
            try:
                return results.load_unit(folder)[1]
            except ValueError as error:
                self._unreadable(error)
        self._refuse_read_only(key, name)
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        results.write_unit(folder, arrays, {"name": name, "key": key, **(meta or {}),
                                            "package_version": results.package_version(),
                                            "git_revision": _revision()})
        self._index(key, name)
        return arrays

    def _unreadable(self, error: ValueError) -> None:
        """A saved entry that cannot be used: said on stderr (it is computed again), or refused
        in one line by a read-only store."""
        if self.read_only:
            raise FileNotFoundError(f"{error}; run without --from to compute it again")
        print(f"note: {error}; computing it again", file=sys.stderr)

    def _refuse_read_only(self, key: str, name: str | None) -> None:
        if self.read_only:
            raise FileNotFoundError(
                f"{self.root}: no saved result {key} for {name or 'this run'} with this "
                "setting; run without --from (and with the same --quick) to compute it")

    def _index(self, key: str, name: str | None) -> None:
        if name is None:
            return
        path = self.root / INDEX
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(index, dict):
                index = {}
        except (OSError, ValueError):
            index = {}
        known = index.get(key)
        names: list[str] = known if isinstance(known, list) else []
        if name not in names:
            index[key] = [*names, name]
            data = (json.dumps(index, indent=1, sort_keys=True, ensure_ascii=False)
                    + "\n").encode("utf-8")

            def write(f: IO[bytes]) -> None:
                f.write(data)

            atomic_write(path, write)


@functools.cache
def _revision() -> str | None:
    return results.git_revision()
