r"""A finished run on disk: ``arrays.npz`` (every per-path array) and ``result.json`` (the setting,
the exit statistics per radius, a few summaries and where the numbers came from).

:func:`save` writes the pair as one unit (:func:`write_unit`: both files into a temporary
folder, which is then renamed), so a folder always holds a complete pair of one run, and an
interrupted save (or a full disk) leaves the previous pair (or nothing) and no temporary
folder. ``result.json`` records the SHA-256 of the arrays and of its own other entries
(``sha256``, :func:`theory.files.digest`); :func:`load` reads the pair back as a
:class:`~simulations.engine.run.Simulation`, and refuses a damaged one (a truncated or foreign
file, or content that does not match its SHA-256: arrays edited, say to NaN, after they were
saved) with one ``ValueError``. Single files are written by
:mod:`theory.files` (temporary file, then :func:`os.replace`).

``result.json`` holds:

* ``setting``: the run's setting as the engine wrote it (problem, rule, schedule, paths, steps,
  batch, seed, radii, dtype, guard, record, backend);
* ``run`` and ``key``: the :class:`~simulations.engine.spec.RunSpec` (``to_dict()``) and its key,
  the
  run's name in the store (:mod:`simulations.engine.store`);
* ``paths``, ``steps``, ``seed``, ``blown_up`` (the number of paths that blew up);
* ``radii``: per radius M, ``{radius, exit_fraction, exits, first_exit_step}`` for
  ‖θ(s) − θ(0)‖ > M, with ``first_exit_step`` = ``{min, median, max}`` over the paths that
  exited, or null if none did; ``radii_norm``: the same for ‖θ(s)‖ > M. Each is null when the
  ``exits`` observer was not recorded;
* ``summary``: statistics that need no extra computation, each present only when its observer
  was recorded: ``clipped_fraction`` (mean and median over the paths of clipped steps / steps;
  null values when steps = 0), ``claim2_ratio_max`` (the largest ‖g/c‖/(1 + ‖θ‖) on any path),
  ``max_deviation`` and ``max_norm`` (``finite_paths`` and the quantiles ``min``, ``p01``,
  ``p10``, ``median``, ``p90``, ``p99``, ``max`` over the paths whose value is finite);
* ``sha256``: the SHA-256 of ``arrays.npz``'s arrays (their names, dtypes, shapes and bytes)
  and of the other entries of ``result.json``, checked when the pair is read back;
* provenance: ``package_version``, ``git_revision`` (``git rev-parse HEAD`` of the checkout
  the package runs from, ``-dirty`` appended when ``git status --porcelain`` lists anything;
  null when the package is not a git checkout or git is missing), ``created`` (UTC, ISO 8601),
  ``torch_version``, ``device``, and ``command`` (the command line, when given).

Non-finite numbers: JSON has no inf or NaN, so every non-finite number in ``result.json`` is
written as ``null`` (as ``python -m theory bound --json`` does). The summaries above are taken
over finite values only, so a blown-up path (whose running maxima are +inf) never turns them
into null; its infinities are kept exactly in ``arrays.npz``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from simulations.engine.simulation import Simulation
from simulations.engine.spec import RunSpec
from theory.files import digest, umask
from theory.records import git_revision, package_version, provenance, to_json

__all__ = ["ARRAYS", "RESULT", "git_revision", "load", "load_unit",
           "package_version", "provenance", "save", "to_json", "write_unit"]

ARRAYS = "arrays.npz"
RESULT = "result.json"
#: quantiles of ``max_deviation`` and ``max_norm`` in ``summary``
QUANTILES = {"min": 0.0, "p01": 0.01, "p10": 0.1, "median": 0.5, "p90": 0.9, "p99": 0.99,
             "max": 1.0}


def _exits(sim: Simulation, key: str) -> list[dict[str, Any]] | None:
    if key not in sim.arrays:
        return None
    return sim.radius_summary(key)


def _quantiles(values: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"finite_paths": int(finite.size)}
    for name, q in QUANTILES.items():
        out[name] = float(np.quantile(finite, q)) if finite.size else None
    return out


def _summary(sim: Simulation) -> dict[str, Any]:
    a, out = sim.arrays, dict[str, Any]()
    if "clipped_steps" in a:
        if sim.steps > 0:
            fraction = np.asarray(a["clipped_steps"], dtype=np.float64) / sim.steps
            out["clipped_fraction"] = {"mean": float(fraction.mean()),
                                       "median": float(np.median(fraction))}
        else:
            out["clipped_fraction"] = {"mean": None, "median": None}
    if "claim2_ratio" in a:
        ratio = np.asarray(a["claim2_ratio"], dtype=np.float64)
        ratio = ratio[np.isfinite(ratio)]
        out["claim2_ratio_max"] = float(ratio.max()) if ratio.size else None
    for key in ("max_deviation", "max_norm"):
        if key in a:
            out[key] = _quantiles(a[key])
    return out


def _write_file(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    with open(path, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def result_dict(sim: Simulation, *, device: str | None = None,
                command: str | None = None, extra: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The content of ``result.json`` for ``sim`` (see the module docstring), with the entries
    of ``extra`` added at the top level."""
    out = {
        "setting": sim.setting,
        "run": None if sim.run is None else sim.run.to_dict(),
        "key": None if sim.run is None else sim.run.key(),
        "paths": sim.paths,
        "steps": sim.steps,
        "seed": sim.setting.get("seed"),
        "blown_up": sim.blown_up,
        "radii": _exits(sim, "first_exit"),
        "radii_norm": _exits(sim, "first_exit_norm"),
        "summary": _summary(sim),
        **provenance(device=device, command=command),
    }
    out.update(extra or {})
    return to_json(out)


def write_unit(folder: str | os.PathLike, arrays: dict[str, Any],
               result: dict[str, Any]) -> Path:
    """Write ``arrays.npz`` and ``result.json`` into ``folder`` as one unit: both go into a
    temporary folder beside it, which is then renamed onto ``folder`` (an older ``folder`` is
    moved aside first and deleted after). A crash or a full disk leaves the old pair or nothing,
    never a new array beside an old JSON, and no temporary folder. ``result.json`` gets the
    SHA-256 of the arrays and of its other entries as ``sha256``. Returns
    ``folder/result.json``.
    """
    out = Path(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    result = to_json(result)
    result["sha256"] = digest({"arrays": arrays, "result": result})
    text = json.dumps(result, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    old = None
    try:
        _write_file(tmp / ARRAYS, lambda f: np.savez(f, **arrays))
        _write_file(tmp / RESULT, lambda f: f.write(text.encode("utf-8")))
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; give the usual permissions
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.rename(out, old / "x")
        os.replace(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.rename(old / "x", out)  # put the old unit back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out / RESULT


def save(sim: Simulation, out_dir: str | os.PathLike, *, device: str | None = None,
         command: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``arrays.npz`` and ``result.json`` for ``sim`` into ``out_dir`` as one unit
    (:func:`write_unit`); returns the path of ``result.json``.

    ``device`` (e.g. ``"cpu"``, ``"cuda:0 (NVIDIA H100)"``) and ``command`` (the command line)
    are recorded as given; ``device`` is null when not given. ``extra``: more top-level
    entries of ``result.json`` (the verifier stores its scenario there).
    """
    return write_unit(out_dir, sim.arrays,
                      result_dict(sim, device=device, command=command, extra=extra))


def load(out_dir: str | os.PathLike) -> Simulation:
    """The :class:`~simulations.engine.run.Simulation` saved in ``out_dir`` by :func:`save`.

    The setting comes from ``result.json`` (so non-finite numbers in it would come back as
    None), the arrays exactly from ``arrays.npz``, the run spec from ``result.json``'s ``run``.
    A missing, truncated or foreign pair raises ``ValueError`` naming the folder.
    """
    out = Path(out_dir)
    with _damaged(out):
        result, arrays = load_unit(out)
        setting = result["setting"]
        run = None if result.get("run") is None else RunSpec.from_dict(result["run"])
    return Simulation(setting, arrays, run)


def load_unit(out_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``result.json`` and the arrays of ``arrays.npz`` written by :func:`write_unit` into
    ``out_dir`` (without its ``sha256``); a missing or damaged file, or a pair that does not
    match its SHA-256 (or was saved without one), raise ``ValueError`` naming the folder."""
    out = Path(out_dir)
    with _damaged(out):
        result = json.loads((out / RESULT).read_text(encoding="utf-8"))
        if not isinstance(result, dict):
            raise ValueError(f"{RESULT} is not a table")
        with np.load(out / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if result.pop("sha256", None) != digest({"arrays": arrays, "result": result}):
            raise ValueError(f"{ARRAYS} and {RESULT} do not match the SHA-256 recorded there")
        return result, arrays


@contextmanager
def _damaged(out: Path) -> Iterator[None]:
    """Turn any error of reading a saved unit into one ``ValueError`` naming its folder."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, EOFError, MemoryError,
            zipfile.BadZipFile) as error:
        if isinstance(error, ValueError) and str(error).startswith(f"{out}: not a complete"):
            raise
        why = " ".join(str(error).split())[:160] or type(error).__name__
        raise ValueError(f"{out}: not a complete saved run ({why})") from None
