r"""Saved simulation results: one ``.npz`` per computation, written atomically.

A computation is named by a short ``name`` and its full ``setting`` (a JSON-ready dict with
every parameter and the seed); the file is ``DIR/{name}-{h}.npz`` with h the first 12 hex digits
of SHA-1 of the setting's canonical JSON, so a changed parameter never reuses an old result. The
file holds the computation's arrays and ``__meta__``: the setting, the package version and the
git revision, as JSON. Files are written to a temporary name in the same folder and renamed, so
an interrupted run loses nothing that had finished, and a rerun picks up where it stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from simulations.results import git_revision, package_version, to_json

__all__ = ["Store", "atomic_path"]

Arrays = dict[str, np.ndarray]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@functools.cache
def _provenance() -> dict[str, Any]:
    return {"package_version": package_version(), "git_revision": git_revision()}


class Store:
    """Results under ``folder``; ``read_only`` (``--from``) refuses to compute anything."""

    def __init__(self, folder: str | os.PathLike, *, read_only: bool = False):
        self.folder = Path(folder)
        self.read_only = read_only

    def file_for(self, name: str, setting: dict[str, Any]) -> Path:
        """``folder/{name}-{sha1(setting)[:12]}.npz``."""
        text = json.dumps(to_json(setting), sort_keys=True)
        return self.folder / f"{name}-{hashlib.sha1(text.encode()).hexdigest()[:12]}.npz"

    def get(self, name: str, setting: dict[str, Any], compute: Callable[[], Arrays]) -> Arrays:
        """The saved arrays of (name, setting), or ``compute()`` saved first."""
        path = self.file_for(name, setting)
        if path.exists():
            with np.load(path, allow_pickle=False) as saved:
                return {k: saved[k] for k in saved.files if k != "__meta__"}
        if self.read_only:
            raise FileNotFoundError(
                f"--from {self.folder}: no saved result {path.name} for {name} with this "
                "setting; run without --from (and with the same --quick) to compute it")
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        meta = json.dumps({"name": name, "setting": to_json(setting), **_provenance()})
        with atomic_path(path) as tmp:
            np.savez(tmp, __meta__=np.array(meta), **arrays)
        return arrays
