"""Put any clipper in front of any ``torch.optim`` optimizer, and record what it did.

``handle = attach_clipper(optimizer, clipper)`` registers a :class:`ClipHook` as the
optimizer's step pre-hook (``Optimizer.register_step_pre_hook``), so every
``optimizer.step()`` first clips the gradients of the optimizer's parameters;
``handle.remove()`` stops it. The clipper is either a functional clipper of
:mod:`torch_impl.clip` with its arguments bound (``functools.partial(clip_grad_norm_,
lam=1.0)``) or a stateful one (:class:`torch_impl.stateful.Clipper`). A step with a closure
(``optimizer.step(closure)``) clips each time the closure has recomputed the gradients, so
optimizers that call it several times (L-BFGS) see clipped gradients every time.

Each clip appends to the hook's history, as tensors on the gradients' device (no host sync);
the latest ``maxlen`` (default :data:`DEFAULT_MAXLEN`) are kept:

* ``pre_norm``: the global gradient norm before clipping, as the clipper returns it;
* ``post_norm``: the global gradient norm after clipping, in the clipper's norm (``norm_type``:
  by default the ``norm_type`` keyword of a ``functools.partial`` clipper, else 2);
* ``threshold``: the clipper's ``last_threshold``, or NaN for a clipper without one (the
  functional clippers: their threshold is an argument, or per layer, unit or coordinate);
* ``clipped``: ``post_norm < pre_norm``, i.e. whether the clipper changed the gradient (the
  rules of :mod:`theory.clipping` leave an unclipped gradient bit-for-bit unchanged and shrink
  a clipped one).

:class:`ClippedOptimizer` is a convenience over the hook: a ``torch.optim.Optimizer`` that
attaches one to the optimizer it wraps and shares its ``param_groups``, ``defaults`` and
``state``, so torch's learning-rate schedulers can be given either.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from theory.errors import integer, show
from torch_impl.clip import _norm_order, get_total_norm, grads_of
from torch_impl.stateful import Clipper, _check_keys

__all__ = ["DEFAULT_MAXLEN", "ClipHook", "ClippedOptimizer", "attach_clipper"]

DEFAULT_MAXLEN = 10_000
"""How many steps a history keeps by default (the latest; four numbers each)."""

_FIELDS = ("pre_norm", "post_norm", "threshold", "clipped")

AnyClipper = Callable[[Iterable[Tensor]], Tensor] | Clipper


class ClipHook:
    """An optimizer step pre-hook that clips the gradients with ``clipper``, with a history.

    ``parameters``: the tensors whose gradients are clipped (default: every parameter of the
    optimizer's ``param_groups``, read at each step, so groups added later are clipped too).
    ``norm_type``: the norm of the recorded ``post_norm`` (module docstring). ``maxlen``: how
    many records the history keeps (the latest; ``None`` keeps all).
    """

    def __init__(self, clipper: AnyClipper, parameters: Iterable[Tensor] | None = None,
                 norm_type: float | str | None = None,
                 maxlen: int | None = DEFAULT_MAXLEN) -> None:
        if not callable(clipper):
            raise ValueError(f"clipper must be callable, got {type(clipper).__name__}")
        if maxlen is not None and integer(maxlen, "maxlen", strict=True) == 0:
            raise ValueError("maxlen must be an integer >= 1 or None, got 0")
        if norm_type is None:
            norm_type = getattr(clipper, "keywords", {}).get("norm_type", 2.0)
        self.clipper = clipper
        self.norm_type = _norm_order(norm_type)
        self._parameters = None if parameters is None else list(parameters)
        self._records: deque[Tensor] = deque(maxlen=maxlen)

    def parameters(self, optimizer: torch.optim.Optimizer) -> list[Tensor]:
        """The tensors whose gradients are clipped before ``optimizer`` steps."""
        if self._parameters is not None:
            return self._parameters
        return [p for group in optimizer.param_groups for p in group["params"]]

    @torch.no_grad()
    def clip(self, parameters: list[Tensor]) -> Tensor:
        """Clip the gradients and append a record; return the pre-clip norm."""
        pre = self.clipper(parameters)
        post = get_total_norm(grads_of(parameters), self.norm_type)
        threshold = getattr(self.clipper, "last_threshold", None)
        if threshold is None:
            threshold = torch.tensor(float("nan"))
        record = [pre, post.to(pre), threshold.to(pre), (post < pre).to(pre)]
        self._records.append(torch.stack(record))
        return pre

    def __call__(self, optimizer: torch.optim.Optimizer, args: tuple,
                 kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        """The pre-hook: clip now, or, for a step with a closure, after each call of the
        closure (the step's ``args`` are ``(optimizer, closure?)``)."""
        parameters = self.parameters(optimizer)
        closure = args[1] if len(args) > 1 else kwargs.get("closure")
        if closure is None:
            self.clip(parameters)
            return None

        def clipped_closure() -> Any:
            loss = closure()
            self.clip(parameters)
            return loss

        if len(args) > 1:
            return (args[0], clipped_closure, *args[2:]), kwargs
        return args, {**kwargs, "closure": clipped_closure}

    def history(self) -> dict[str, Tensor]:
        """The latest records (at most ``maxlen``), oldest first: one tensor per field
        (``pre_norm``, ``post_norm``, ``threshold``; ``clipped`` as a bool tensor)."""
        if not self._records:
            return {name: torch.empty(0) for name in _FIELDS}
        table = torch.stack(list(self._records))
        history = {name: table[:, i] for i, name in enumerate(_FIELDS)}
        history["clipped"] = history["clipped"].bool()
        return history


def attach_clipper(optimizer: torch.optim.Optimizer, clipper: AnyClipper | ClipHook,
                   **options: Any) -> RemovableHandle:
    """Clip the gradients with ``clipper`` before every ``optimizer.step()``.

    ``clipper`` is a clipper (then ``options`` are :class:`ClipHook`'s) or a :class:`ClipHook`
    (keep it to read its history). Returns the handle of
    ``optimizer.register_step_pre_hook``: ``handle.remove()`` stops the clipping.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got "
                         f"{type(optimizer).__name__}")
    hook = clipper if isinstance(clipper, ClipHook) else ClipHook(clipper, **options)
    return optimizer.register_step_pre_hook(hook)


class ClippedOptimizer(torch.optim.Optimizer):
    """``step()`` = ``optimizer.step()`` with a :class:`ClipHook` of ``clipper`` attached.

    ``parameters``, ``norm_type`` and ``maxlen`` as in :class:`ClipHook`. The wrapped optimizer
    stays available as ``.optimizer``; ``param_groups``, ``defaults`` and ``state`` are its
    own (the same objects; torch's ``add_param_group`` adds to both), so a scheduler
    constructed on the wrapper (``torch.optim.lr_scheduler.StepLR(clipped, ...)``) sets the
    learning rate the wrapped optimizer uses. ``state_dict()`` holds the optimizer's state,
    the clipper's (empty for a functional one) and the step count; the history is a record
    and is not part of it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, clipper: AnyClipper,
                 parameters: Iterable[Tensor] | None = None,
                 norm_type: float | str | None = None,
                 maxlen: int | None = DEFAULT_MAXLEN) -> None:
        self.hook = ClipHook(clipper, parameters, norm_type, maxlen)
        self.handle = attach_clipper(optimizer, self.hook)
        # torch builds groups from copies; the wrapper then shares the wrapped optimizer's
        super().__init__([dict(group) for group in optimizer.param_groups], optimizer.defaults)
        self.optimizer = optimizer
        self._share()
        self.steps = 0

    def _share(self) -> None:
        """Take the wrapped optimizer's groups and state (again after it has replaced them)."""
        self.param_groups = self.optimizer.param_groups
        self.state = self.optimizer.state

    @property
    def clipper(self) -> AnyClipper:
        """The clipper."""
        return self.hook.clipper

    @property
    def norm_type(self) -> float:
        """The norm of the recorded ``post_norm``."""
        return self.hook.norm_type

    @property
    def parameters(self) -> list[Tensor]:
        """The tensors whose gradients are clipped."""
        return self.hook.parameters(self.optimizer)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The wrapped optimizer's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def clip(self) -> Tensor:
        """Clip the gradients now and append a record; return the pre-clip norm."""
        return self.hook.clip(self.parameters)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """The wrapped optimizer's step, which clips first; returns what it returns."""
        loss = self.optimizer.step(closure)
        self.steps += 1
        return loss

    def history(self) -> dict[str, Tensor]:
        """The hook's history (:meth:`ClipHook.history`)."""
        return self.hook.history()

    def state_dict(self) -> dict[str, Any]:
        """``{"optimizer": ..., "clipper": ..., "steps": ...}``."""
        clipper_state = self.clipper.state_dict() if isinstance(self.clipper, Clipper) else {}
        return {"optimizer": self.optimizer.state_dict(), "clipper": clipper_state,
                "steps": self.steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the optimizer's and the clipper's state and the step count."""
        _check_keys(state_dict, ("optimizer", "clipper", "steps"))
        steps = integer(state_dict["steps"], "steps", strict=True)
        if isinstance(self.clipper, Clipper):
            self.clipper.load_state_dict(state_dict["clipper"])
        elif state_dict["clipper"] != {}:
            raise ValueError(f"clipper must be {{}} for a functional clipper, got "
                             f"{show(state_dict['clipper'])}")
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self._share()
        self.steps = steps

    def __getstate__(self) -> dict[str, Any]:  # copy/pickle the wrapper itself, not a
        return self.__dict__.copy()              # bare Optimizer's (defaults, state, groups)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"ClippedOptimizer({self.clipper!r}, {self.optimizer!r})"
