r"""How many CPU threads a run uses: the one place that sets them.

:func:`use_threads` sets the count of torch's intra-op pool (``torch.set_num_threads``), of
numba's parallel kernels (``numba.set_num_threads``, at most
``numba.config.NUMBA_NUM_THREADS``, the size of the pool numba starts) and, where threadpoolctl
is installed, of the BLAS libraries loaded (``threadpool_limits(n, user_api="blas")``).
:func:`simulations.engine.run.simulate` and :func:`simulations.engine.rare.ams` call it with
``Execution.threads``; the command line's ``--threads N`` sets the default
(:func:`set_default_threads`) that None stands for, so that it reaches every run of a command.

The count never enters a result or its key: a run computes the same arrays on any number of
threads.
"""

from __future__ import annotations

import numbers
import os

from theory.errors import BadArgument

__all__ = ["available_threads", "default_threads", "set_default_threads", "use_threads"]

_default: int | None = None  # set by set_default_threads (the command line's --threads)


def available_threads() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count()`` where
    that is missing)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """The count that None stands for: the one given to :func:`set_default_threads`, else
    :func:`available_threads`."""
    return available_threads() if _default is None else _default


def _checked(n: object) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise BadArgument("threads", f"expected an integer >= 1 or None, got {n!r}")
    return int(n)


def set_default_threads(n: int | None) -> None:
    """Make ``n`` threads the default of :func:`use_threads` (None: back to every CPU
    available); the command line calls it with ``--threads``."""
    global _default
    _default = _checked(n)


def use_threads(n: int | None = None) -> int:
    """Run torch, numba and BLAS on ``n`` threads (None: :func:`default_threads`) and return the
    count. numba gets ``min(n, numba.config.NUMBA_NUM_THREADS)``. Raises
    :class:`~theory.errors.BadArgument` naming ``threads`` unless ``n`` is an integer
    ≥ 1 or None."""
    checked = _checked(n)
    count = default_threads() if checked is None else checked
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency
        pass
    else:
        pool = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        numba.set_num_threads(min(count, pool))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: installed with scikit-learn
        pass
    else:
        threadpool_limits(limits=count, user_api="blas")
    import torch

    # last: numba's first set_num_threads starts its OpenMP threading layer, after which torch
    # can read the pool's size again (torch 2.13, numba's omp layer; test_threads checks it)
    torch.set_num_threads(count)
    return count
