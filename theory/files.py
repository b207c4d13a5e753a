r"""Files written atomically: the content goes to a temporary file beside the target, which is
renamed onto the target (:func:`os.replace`) only once it is complete; on any failure (a full
disk too) the temporary file is removed and the target is left as it was. Used for result
files, reports, the run store's index, checkpoints, figures, CSV files and the experiments'
outputs. Standard library only (numpy is imported where an array is hashed).

:func:`digest` is the SHA-256 of saved numbers (the run store's arrays, a checkpoint's state),
so that a file damaged or edited after it was written is recognised when it is read back."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["DISK_FULL", "atomic_path", "atomic_write", "digest", "disk_full", "umask",
           "writable", "write_atomic"]


def umask() -> int:
    """The process's file-creation mask (read without changing it).

    Example:
        >>> 0 <= umask() <= 0o777
        True
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

#: the errors of a file write that every later write meets too (a full disk, a quota, a
#: read-only file system, a file size limit)
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def disk_full(error: BaseException) -> OSError | None:
    """The ``OSError`` of :data:`DISK_FULL` that ``error`` is, or that caused it (a writer that
    fails again while cleaning up, as matplotlib's PDF writer does, hides it in the chain);
    None when there is none.

    Example:
        >>> disk_full(OSError(errno.ENOSPC, "No space left on device")) is not None
        True
        >>> disk_full(ValueError("other")) is None
        True
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def writable(folder: str | os.PathLike) -> None:
    """Create ``folder`` (and its parents) if need be and check that a file can be written in
    it; raises ``OSError`` (a file on the way, a read-only folder, a full disk) otherwise.

    Example:
        >>> folder = tempfile.mkdtemp()
        >>> writable(os.path.join(folder, "new", "sub"))        # created, and a file can be written
        >>> os.path.isdir(os.path.join(folder, "new", "sub"))
        True
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that go by the suffix,
    like matplotlib, pick the right format); on success give it the usual permissions and
    rename it onto ``path``; on failure remove it.

    Example:
        >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> with atomic_path(path) as temporary:
        ...     _ = temporary.write_text("done")
        >>> Path(path).read_text()
        'done'
    """
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


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Write the file ``path`` by ``write(handle)`` through :func:`atomic_path`, synced to disk
    before the rename.

    Example:
        >>> path = os.path.join(tempfile.mkdtemp(), "out.bin")
        >>> atomic_write(path, lambda handle: handle.write(b"ok"))
        >>> Path(path).read_bytes()
        b'ok'
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to the file ``path`` through :func:`atomic_write`.

    Example:
        >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> write_atomic(path, "θ")
        >>> Path(path).read_text(encoding="utf-8")
        'θ'
    """
    raw = data.encode() if isinstance(data, str) else data
    atomic_write(path, lambda handle: handle.write(raw))


def digest(value: Any) -> str:
    """The SHA-256 (hex) of ``value``: nested mappings (by sorted key), lists and tuples of
    arrays (anything :func:`numpy.asarray` takes: dtype, shape and bytes) and plain values
    (their ``repr``). Equal for equal content, whatever the container types.

    Example:
        >>> digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1})   # keys in any order
        True
        >>> len(digest("x"))
        64
    """
    sha = hashlib.sha256()
    _feed(sha, value)
    return sha.hexdigest()


def _feed(sha: Any, value: Any) -> None:
    if isinstance(value, Mapping):
        sha.update(b"{%d" % len(value))
        for key in sorted(value, key=str):
            sha.update(repr(str(key)).encode())
            _feed(sha, value[key])
    elif isinstance(value, (list, tuple)):
        sha.update(b"[%d" % len(value))
        for item in value:
            _feed(sha, item)
    elif hasattr(value, "__array__"):  # numpy arrays and scalars, tensors
        import numpy as np

        if hasattr(value, "cpu"):  # a torch tensor, wherever it lives
            value = value.cpu()
        array = np.ascontiguousarray(np.asarray(value))
        sha.update(f"<{array.dtype.str}{array.shape}".encode())
        sha.update(array.tobytes())
    else:
        sha.update(repr(value).encode())
