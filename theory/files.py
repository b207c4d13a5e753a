r"""Files written atomically: the content goes to a temporary file beside the target, which is
renamed onto the target (:func:`os.replace`) only once it is complete; on any failure (a full
disk too) the temporary file is removed and the target is left as it was. Used for result
files, reports, the run store's index, checkpoints, figures, CSV files and the experiments'
outputs. Standard library only."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write", "umask", "write_atomic"]


def umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that go by the suffix,
    like matplotlib, pick the right format); on success give it the usual permissions and
    rename it onto ``path``; on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write the file ``path`` by ``write(handle)`` through :func:`atomic_path`, synced to disk
    before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to the file ``path`` through :func:`atomic_write`."""
    raw = data.encode() if isinstance(data, str) else data

    def write(handle: IO[bytes]) -> None:
        handle.write(raw)

    atomic_write(path, write)
