"""What the toolkit writes down besides its numbers, once for every package: :func:`to_json`
(JSON-ready values, non-finite numbers as null) and :func:`provenance` (where a result came from:
package version, git revision, time, torch version, device, command) and :func:`content_key` (a
name from content). Standard library only
(numpy values are recognised by their ``tolist``; torch is never imported here).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["git_revision", "package_version", "provenance", "to_json"]


def to_json(value: Any, digits: int | None = None) -> Any:
    """``value`` as JSON-ready Python: mappings with string keys, tuples as lists, numpy scalars
    and arrays unwrapped, non-finite floats as None, and floats rounded to ``digits``
    significant digits where given (to keep a file small).

    Example:
        >>> to_json({"x": float("inf"), 1: (0.123456, 2)}, digits=3)
        {'x': None, '1': [0.123, 2]}
    """
    if isinstance(value, dict):
        return {str(k): to_json(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, digits) for v in value]
    if not isinstance(value, (str, bytes, int, float)) and hasattr(value, "tolist"):
        return to_json(value.tolist(), digits)  # a numpy array or scalar
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if digits is None else float(f"{value:.{digits}g}")
    return value


def package_version() -> str:
    """The installed version of clipverify, or ``"unknown"``.

    Example:
        >>> isinstance(package_version(), str)
        True
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clipverify")
    except PackageNotFoundError:
        return "unknown"


def git_revision(root: str | os.PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` of the checkout at ``root`` (default: the one this package runs
    from), with ``-dirty`` when ``git status --porcelain`` is not empty; None when ``root`` is not
    the top of a git checkout, git is missing or fails. Never raises.

    Example:
        >>> revision = git_revision()
        >>> revision is None or len(revision.removesuffix("-dirty")) == 40
        True
    """
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


def torch_version() -> str | None:
    """The version of torch, as ``torch.__version__`` says it where torch is imported (read from
    the installed package's metadata otherwise); None without torch.

    Example:
        >>> version = torch_version()
        >>> version is None or isinstance(version, str)
        True
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def provenance(*, device: str | None = None, command: str | None = None) -> dict[str, Any]:
    """Where a result came from: ``package_version``, ``git_revision``, ``created`` (UTC, ISO
    8601), ``torch_version``, ``device`` and, when given, ``command`` (the command line that
    makes it again).

    Example:
        >>> record = provenance(command="demo")
        >>> record["command"], "package_version" in record
        ('demo', True)
    """
    out: dict[str, Any] = {
        "package_version": package_version(),
        "git_revision": git_revision(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": torch_version(),
        "device": device,
    }
    if command is not None:
        out["command"] = str(command)
    return out


def content_key(value: Any) -> str:
    """The first 16 hex digits of SHA-256 of ``value``'s canonical JSON (sorted keys, no
    spaces, non-finite numbers as null).

    Example:
        >>> content_key({"b": 1, "a": 2}) == content_key({"a": 2, "b": 1})   # keys in any order
        True
        >>> len(content_key([1.0, float("nan")]))
        16
    """
    text = json.dumps(to_json(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
