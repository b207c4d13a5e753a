r"""Runs split across processes with ``torch.distributed``: which rows each rank computes, how
rank 0 gathers them, and how one failing rank ends them all.

A run's randomness is a pure function of (seed, path, step) (:mod:`simulations.engine.sampling`)
and every observer is a function of its own path, so rank r of W computes a contiguous share of
the rows (:func:`shares`: rows ⌊rR/W⌋ … ⌊(r+1)R/W⌋ − 1 of R), and rank 0 concatenates the
shares in row order: the arrays are bit-identical to one process for any W.

:func:`communicator` is the split in use for an :class:`~simulations.engine.spec.Execution`:
``distributed=None`` splits when ``torch.distributed.is_initialized()``, True requires it, False
never splits. Its collectives go through a gloo group of their own (results are host arrays;
the default group may be NCCL), created once and waiting as long as the slowest rank needs.

Faults. Each rank starts a watcher thread (:class:`_Watcher`) that beats a counter in the
process group's store every ``INTERVAL`` s; rank 0 watches every rank's counter, the others
watch rank 0's, and all watch one fault key. A rank that raises inside a split piece of work
(:meth:`Communicator.guarded`) writes "rank r: Type: message" to the fault key and raises on;
a rank whose counter stops for ``Execution.rank_timeout`` seconds (killed, or stuck) is
reported by rank 0 as "rank r: no sign of life for N s". Every other rank then prints that one
line on stderr and exits with status 1 within about ``INTERVAL`` s (a watcher runs between
the compiled kernel's blocks: the kernel holds the interpreter lock while it runs). Nothing is
saved by then: only rank 0 writes the store, after the gather.

:func:`init_from_env` starts the process group from the variables ``torchrun`` (or Slurm
through them) sets: NCCL plus gloo where CUDA is present, each rank on ``cuda:LOCAL_RANK``
(:func:`rank_device`), gloo on the CPU otherwise.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from theory.errors import BadArgument

__all__ = ["Communicator", "alone", "communicator", "init_from_env", "local_world_size",
           "rank_device", "ranks", "shares"]

INTERVAL = 0.5  #: seconds between two heartbeats of a rank's watcher
PREFIX = "clipverify/"
WAIT = datetime.timedelta(days=7)  #: the gather waits for the slowest rank: faults end it


def shares(rows: int, world: int) -> list[tuple[int, int]]:
    """The rows [lo, hi) of each rank r < ``world``: lo = ⌊r·rows/world⌋, hi = ⌊(r+1)·rows/world⌋
    (contiguous, in rank order, sizes differing by at most one)."""
    return [(r * rows // world, (r + 1) * rows // world) for r in range(world)]


def local_world_size() -> int:
    """The ranks on this machine (``LOCAL_WORLD_SIZE``, set by torchrun; 1 without it)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def rank_device(local_rank: int, cuda: bool | None = None) -> str:
    """The device of the rank with ``local_rank`` on its machine: ``cuda:LOCAL_RANK`` where CUDA
    is present (``cuda`` None: ``torch.cuda.is_available()``), else ``cpu``."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return f"cuda:{local_rank}" if cuda else "cpu"


def ranks() -> Communicator:
    """The split of the process group as it is (one process without one)."""
    return communicator(None)


def init_from_env(rank_timeout: float = 60.0) -> Communicator | None:
    """Start the process group from torchrun's variables (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) unless it is started already or they are
    absent (then None): backend ``cpu:gloo,cuda:nccl`` with this rank on ``cuda:LOCAL_RANK``
    where CUDA is present, ``gloo`` otherwise. Returns the split (:func:`communicator`)."""
    import torch
    import torch.distributed as dist

    if not dist.is_available() or "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    if not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = rank_device(local)
        if device.startswith("cuda"):
            torch.cuda.set_device(local)
            dist.init_process_group("cpu:gloo,cuda:nccl", device_id=torch.device(device))
        else:
            dist.init_process_group("gloo")
        atexit.register(_finish)
    return communicator(True, rank_timeout)


_alone = threading.local()


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Inside, every run and estimate of this rank is its own, unsplit (``distributed=None``
    does not split): for work split at a coarser grain, e.g. :func:`simulations.verify.runner.
    verify`'s scenarios."""
    before = getattr(_alone, "on", False)
    _alone.on = True
    try:
        yield
    finally:
        _alone.on = before


def communicator(distributed: bool | None, rank_timeout: float = 60.0) -> Communicator:
    """The split for ``Execution.distributed`` (see the module docstring): one process (rank 0
    of 1) unless it splits (never inside :func:`alone`)."""
    import torch.distributed as dist

    on = dist.is_available() and dist.is_initialized() and not getattr(_alone, "on", False)
    if distributed and not on:
        raise BadArgument("distributed", "needs torch.distributed's process group: launch with "
                                         "torchrun, or call torch.distributed.init_process_group")
    if not on or distributed is False:
        return Communicator()
    global _shared
    if _shared is None or _shared.world != dist.get_world_size():
        group = dist.new_group(backend="gloo", timeout=WAIT)
        _shared = Communicator(dist.get_rank(), dist.get_world_size(), group)
        _shared.watcher = _Watcher(_shared.rank, _shared.world, rank_timeout)
    if _shared.watcher is not None:
        _shared.watcher.timeout = rank_timeout
    return _shared


_shared: Communicator | None = None


@dataclass
class Communicator:
    """Rank ``rank`` of ``world`` with the gloo ``group`` of its collectives (None: one
    process)."""

    rank: int = 0
    world: int = 1
    group: Any = None
    watcher: _Watcher | None = None

    def gather(self, obj: Any, everywhere: bool = False) -> list[Any] | None:
        """Every rank's ``obj`` in rank order: on rank 0 only (None elsewhere), or on every rank
        with ``everywhere``."""
        if self.group is None:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        with self._collective():
            if everywhere:
                dist.all_gather_object(out, obj, group=self.group)
                return out
            dist.gather_object(obj, out if self.rank == 0 else None, dst=0, group=self.group)
        return out if self.rank == 0 else None

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.group is None:
            return obj
        import torch.distributed as dist

        box = [obj]
        with self._collective():
            dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.group is not None:
            import torch.distributed as dist

            with self._collective():
                dist.barrier(group=self.group)

    @contextlib.contextmanager
    def _collective(self) -> Iterator[None]:
        """A collective that fails because a peer is gone: let the watcher name the rank (it
        ends this process), else one line."""
        try:
            yield
        except RuntimeError as error:
            if self.watcher is not None:
                self.watcher.settle()
            raise _Lost(" ".join(str(error).split())[:200]) from None

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        """Split work: an exception raised here is posted as this rank's fault (the others end
        with its line) and raised on."""
        if self.watcher is None:
            yield
            return
        self.watcher.busy = True
        try:
            yield
        except _Lost:
            raise
        except BaseException as error:
            self.watcher.post(f"rank {self.rank}: {type(error).__name__}: "
                              f"{' '.join(str(error).split())[:300]}")
            raise
        finally:
            self.watcher.busy = False


class _Lost(RuntimeError):
    """A collective failed because another rank is gone."""

    def __str__(self) -> str:
        return f"lost contact with the other ranks ({self.args[0]})"


class _Watcher:
    """The heartbeat and fault watcher of one rank (see the module docstring)."""

    def __init__(self, rank: int, world: int, timeout: float):
        from torch.distributed import distributed_c10d

        self.rank, self.world, self.timeout = rank, world, timeout
        self.store = distributed_c10d._get_default_store()
        self.busy = False  # inside split work: a lost store is a fault then
        self.done = False
        self.seen = {k: (-1, time.monotonic()) for k in range(world)}
        self.thread = threading.Thread(target=self._loop, name="clipverify-watch", daemon=True)
        self.thread.start()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminated)
        atexit.register(self.stop)

    def post(self, line: str) -> None:
        """Write the fault ``line`` for every rank (the first fault wins)."""
        with contextlib.suppress(Exception):
            self.store.compare_set(PREFIX + "fault", "", line)

    def settle(self) -> None:
        """Give the watcher time to find which rank is gone (it ends the process if it does)."""
        deadline = time.monotonic() + self.timeout + 4 * INTERVAL
        while time.monotonic() < deadline and not self.done:
            time.sleep(INTERVAL)

    def stop(self) -> None:
        self.done = True
        with contextlib.suppress(Exception):
            self.store.set(f"{PREFIX}left/{self.rank}", "1")

    def _loop(self) -> None:
        watched = range(self.world) if self.rank == 0 else (0,)
        while not self.done:
            try:
                self.store.add(f"{PREFIX}beat/{self.rank}", 1)
                if self.store.check([PREFIX + "fault"]):
                    fault = self.store.get(PREFIX + "fault").decode()
                    if not fault.startswith(f"rank {self.rank}:"):
                        _end(fault)
                now = time.monotonic()
                for k in watched:
                    if k == self.rank or self.store.check([f"{PREFIX}left/{k}"]):
                        continue
                    count = self.store.add(f"{PREFIX}beat/{k}", 0)
                    if count != self.seen[k][0]:
                        self.seen[k] = (count, now)
                    elif now - self.seen[k][1] > self.timeout:
                        line = (f"rank {k}: no sign of life for {self.timeout:g} s (killed, or "
                                "stuck)")
                        self.post(line)
                        _end(line)
            except Exception as error:  # the store is gone: its host (rank 0 or torchrun) is
                if self.busy and not self.done:
                    _end(f"rank 0: the process group's store is unreachable "
                         f"({' '.join(str(error).split())[:120]})")
                return
            time.sleep(INTERVAL)


def _end(line: str) -> None:
    """Print the fault's one line and end this process with status 1."""
    with contextlib.suppress(Exception):
        print(f"stopped: {line}", file=sys.stderr, flush=True)
    os._exit(1)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM (torchrun ends the other ranks this way when one fails): one line, status 143."""
    with contextlib.suppress(Exception):
        print("stopped: ended by SIGTERM (the launcher stops every rank when one fails)",
              file=sys.stderr, flush=True)
    os._exit(143)


def _finish() -> None:
    """At a normal exit: tell the watchers this rank left on purpose, then leave the group."""
    import torch.distributed as dist

    if _shared is not None and _shared.watcher is not None:
        _shared.watcher.stop()
    with contextlib.suppress(Exception):
        dist.destroy_process_group()
