"""Put any clipper in front of any ``torch.optim`` optimizer, and record what it did.

``ClippedOptimizer(optimizer, clipper).step()`` clips the gradients of the optimizer's
parameters, then steps the optimizer. The clipper is either a functional clipper of
:mod:`torch_impl.clip` with its arguments bound (``functools.partial(clip_grad_norm_,
lam=1.0)``) or a stateful one (:class:`torch_impl.stateful.Clipper`). Each step appends to a
history, as tensors on the gradients' device (no host sync):

* ``pre_norm``: the global gradient norm before clipping, as the clipper returns it;
* ``post_norm``: the global gradient norm after clipping, in the clipper's norm (``norm_type``:
  by default the ``norm_type`` keyword of a ``functools.partial`` clipper, else 2);
* ``threshold``: the clipper's ``last_threshold``, or NaN for a clipper without one (the
  functional clippers: their threshold is an argument, or per layer, unit or coordinate);
* ``clipped``: ``post_norm < pre_norm``, i.e. whether the clipper changed the gradient (the
  rules of :mod:`theory.clipping` leave an unclipped gradient bit-for-bit unchanged and shrink
  a clipped one).

``ClippedOptimizer`` is a ``torch.optim.Optimizer`` whose ``param_groups``, ``defaults`` and
``state`` are those of the wrapped optimizer (the same objects, not copies), so torch's
learning-rate schedulers (``StepLR(clipped, ...)``, ``OneCycleLR``, ...) drive the wrapped
optimizer's learning rate, and step hooks registered on it run around the clipped step.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from torch_impl.clip import _norm_order, get_total_norm, grads_of
from torch_impl.stateful import Clipper

__all__ = ["ClippedOptimizer"]

_FIELDS = ("pre_norm", "post_norm", "threshold", "clipped")


class ClippedOptimizer(torch.optim.Optimizer):
    """``step()`` = clip the gradients with ``clipper``, then ``optimizer.step()``.

    ``norm_type``: the norm of the recorded ``post_norm``, which should be the clipper's
    (module docstring). ``parameters`` defaults to every parameter of
    ``optimizer.param_groups`` (read at each step, so groups added later are clipped too).
    The wrapped optimizer stays available as ``.optimizer``; ``param_groups``, ``defaults``
    and ``state`` are its own, so a scheduler constructed on the wrapper
    (``torch.optim.lr_scheduler.StepLR(clipped, ...)``) sets the learning rate the wrapped
    optimizer uses. ``state_dict()`` holds the optimizer's state, the clipper's (empty for a
    functional one) and the step count; the history is a record and is not part of it.

    ``Optimizer.__init__`` is deliberately not called: it would build groups and state of its
    own, where this class shares the wrapped optimizer's.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        clipper: Callable[[Iterable[Tensor]], Tensor] | Clipper,
        parameters: Iterable[Tensor] | None = None,
        norm_type: float | str | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer, got "
                             f"{type(optimizer).__name__}")
        if not callable(clipper):
            raise ValueError(f"clipper must be callable, got {type(clipper).__name__}")
        self.optimizer = optimizer
        self.clipper = clipper
        self._parameters = None if parameters is None else list(parameters)
        if norm_type is None:
            norm_type = getattr(clipper, "keywords", {}).get("norm_type", 2.0)
        self.norm_type = _norm_order(norm_type)
        self.steps = 0
        self._records: list[Tensor] = []
        # what Optimizer.__init__ would set besides groups and state: the hook registries
        # (register_step_pre_hook etc. work on the wrapper) and the profiled, hooked step
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._patch_step_function()

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The wrapped optimizer's parameter groups (the same list)."""
        return self.optimizer.param_groups

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        """The wrapped optimizer's defaults (e.g. ``betas``, which ``OneCycleLR`` looks for)."""
        return self.optimizer.defaults

    @property
    def state(self) -> Any:  # type: ignore[override]
        """The wrapped optimizer's per-parameter state."""
        return self.optimizer.state

    @property
    def parameters(self) -> list[Tensor]:
        """The tensors whose gradients are clipped."""
        if self._parameters is not None:
            return self._parameters
        return [p for group in self.param_groups for p in group["params"]]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """The wrapped optimizer's ``add_param_group``."""
        self.optimizer.add_param_group(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The wrapped optimizer's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def clip(self) -> Tensor:
        """Clip the gradients and append this step's record; return the pre-clip norm."""
        parameters = self.parameters
        pre = self.clipper(parameters)
        post = get_total_norm(grads_of(parameters), self.norm_type)
        threshold = getattr(self.clipper, "last_threshold", None)
        if threshold is None:
            threshold = torch.tensor(float("nan"))
        record = [pre, post.to(pre), threshold.to(pre), (post < pre).to(pre)]
        self._records.append(torch.stack(record))
        return pre

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Clip, then step the wrapped optimizer; returns ``closure()`` when one is given.

        The closure (which recomputes the loss and the gradients) is called once, before the
        clipping; optimizers that call it again inside their step (L-BFGS) would see unclipped
        gradients there, so they get no closure.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.clip()
        self.optimizer.step()
        self.steps += 1
        return loss

    def history(self) -> dict[str, Tensor]:
        """The records of all steps so far, stacked: one tensor of length ``steps`` per field
        (``pre_norm``, ``post_norm``, ``threshold``; ``clipped`` as a bool tensor)."""
        if not self._records:
            return {name: torch.empty(0) for name in _FIELDS}
        table = torch.stack(self._records)
        history = {name: table[:, i] for i, name in enumerate(_FIELDS)}
        history["clipped"] = history["clipped"].bool()
        return history

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """``{"optimizer": ..., "clipper": ..., "steps": ...}``."""
        clipper_state = self.clipper.state_dict() if isinstance(self.clipper, Clipper) else {}
        return {"optimizer": self.optimizer.state_dict(), "clipper": clipper_state,
                "steps": self.steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Restore the optimizer's and the clipper's state and the step count."""
        self.optimizer.load_state_dict(state_dict["optimizer"])
        if isinstance(self.clipper, Clipper):
            self.clipper.load_state_dict(state_dict["clipper"])
        self.steps = state_dict["steps"]

    def __getstate__(self) -> dict[str, Any]:  # copy/pickle the wrapper itself, not a
        return self.__dict__.copy()              # bare Optimizer's (defaults, state, groups)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"ClippedOptimizer({self.clipper!r}, {self.optimizer!r})"
