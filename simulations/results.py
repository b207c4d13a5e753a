r"""A finished run on disk: ``arrays.npz`` (every per-path array) and ``result.json`` (the setting,
the exit statistics per radius, a few summaries and where the numbers came from).

:func:`save` writes ``arrays.npz`` first and ``result.json`` last, each atomically (a temporary
file in the same folder, then :func:`os.replace`), so a folder with a ``result.json`` always
holds a complete pair, and an interrupted save leaves the previous pair (or nothing) intact.
:func:`load` reads the pair back as a :class:`~simulations.engine.Simulation`.

``result.json`` holds:

* ``setting``: the run's setting as the engine wrote it (problem, rule, schedule, paths, steps,
  batch, seed, radii, dtype, guard, record, backend);
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
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from simulations.engine import Simulation

__all__ = ["ARRAYS", "RESULT", "git_revision", "load", "package_version", "save", "to_json"]

ARRAYS = "arrays.npz"
RESULT = "result.json"
#: quantiles of ``max_deviation`` and ``max_norm`` in ``summary``
QUANTILES = {"min": 0.0, "p01": 0.01, "p10": 0.1, "median": 0.5, "p90": 0.9, "p99": 0.99,
             "max": 1.0}


def to_json(value: Any) -> Any:
    """``value`` as JSON-ready Python: numpy scalars and arrays unwrapped, tuples as lists,
    non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def package_version() -> str:
    """The installed version of clipverify, or ``"unknown"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clipverify")
    except PackageNotFoundError:
        return "unknown"


def git_revision(root: str | os.PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` of the checkout at ``root`` (default: the one this package runs
    from), with ``-dirty`` when ``git status --porcelain`` is not empty; None when ``root`` is not
    the top of a git checkout, git is missing or fails. Never raises."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    try:
        if top is None or Path(top).resolve() != root.resolve():
            return None  # e.g. installed into site-packages inside some other repository
    except OSError:
        return None
    head = git("rev-parse", "HEAD")
    if not head:
        return None
    status = git("status", "--porcelain")
    return head + ("-dirty" if status else "")


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
    a, out = sim.arrays, {}
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


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in its folder and :func:`os.replace`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def result_dict(sim: Simulation, *, device: str | None = None,
                command: str | None = None, extra: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The content of ``result.json`` for ``sim`` (see the module docstring), with the entries
    of ``extra`` added at the top level."""
    import torch

    out = {
        "setting": sim.setting,
        "paths": sim.paths,
        "steps": sim.steps,
        "seed": sim.setting.get("seed"),
        "blown_up": sim.blown_up,
        "radii": _exits(sim, "first_exit"),
        "radii_norm": _exits(sim, "first_exit_norm"),
        "summary": _summary(sim),
        "package_version": package_version(),
        "git_revision": git_revision(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__),
        "device": device,
    }
    if command is not None:
        out["command"] = str(command)
    out.update(extra or {})
    return to_json(out)


def save(sim: Simulation, out_dir: str | os.PathLike, *, device: str | None = None,
         command: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``arrays.npz`` and then ``result.json`` for ``sim`` into ``out_dir`` (created if
    needed), each atomically; returns the path of ``result.json``.

    ``device`` (e.g. ``"cpu"``, ``"cuda:0 (NVIDIA H100)"``) and ``command`` (the command line)
    are recorded as given; ``device`` is null when not given. ``extra``: more top-level
    entries of ``result.json`` (the verifier stores its scenario there).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in sim.arrays.items()}
    _atomic_write(out / ARRAYS, lambda f: np.savez(f, **arrays))
    text = json.dumps(result_dict(sim, device=device, command=command, extra=extra), indent=1,
                      allow_nan=False, ensure_ascii=False) + "\n"
    _atomic_write(out / RESULT, lambda f: f.write(text.encode("utf-8")))
    return out / RESULT


def load(out_dir: str | os.PathLike) -> Simulation:
    """The :class:`~simulations.engine.Simulation` saved in ``out_dir`` by :func:`save`.

    The setting comes from ``result.json`` (so non-finite numbers in it would come back as
    None), the arrays exactly from ``arrays.npz``.
    """
    out = Path(out_dir)
    result = json.loads((out / RESULT).read_text(encoding="utf-8"))
    with np.load(out / ARRAYS, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return Simulation(result["setting"], arrays)
