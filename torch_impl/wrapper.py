"""Put any clipper in front of any ``torch.optim`` optimizer, and record what it did.

``ClippedOptimizer(optimizer, clipper).step()`` clips the gradients of the optimizer's
parameters, then steps the optimizer. The clipper is either a functional clipper of
:mod:`torch_impl.clip` with its arguments bound (``functools.partial(clip_grad_norm_,
lam=1.0)``) or a stateful one (:class:`torch_impl.stateful.Clipper`). Each step appends to a
history, as tensors on the gradients' device (no host sync):

* ``pre_norm``: the global gradient norm before clipping, as the clipper returns it;
* ``post_norm``: the global gradient norm after clipping;
* ``threshold``: the clipper's ``last_threshold``, or NaN for a clipper without one (the
  functional clippers: their threshold is an argument, or per layer, unit or coordinate);
* ``clipped``: ``post_norm < pre_norm``, i.e. whether the clipper changed the gradient (the
  rules of :mod:`theory.clipping` leave an unclipped gradient bit-for-bit unchanged and shrink
  a clipped one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from torch_impl.clip import get_total_norm, grads_of
from torch_impl.stateful import Clipper

__all__ = ["ClippedOptimizer"]

_FIELDS = ("pre_norm", "post_norm", "threshold", "clipped")


class ClippedOptimizer:
    """``step()`` = clip the gradients with ``clipper``, then ``optimizer.step()``.

    ``parameters`` defaults to every parameter of ``optimizer.param_groups``. The wrapped
    optimizer stays available as ``.optimizer`` (e.g. for a learning-rate scheduler).
    ``state_dict()`` holds the optimizer's state, the clipper's (empty for a functional one) and
    the step count; the history is a record and is not part of it.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        clipper: Callable[[Iterable[Tensor]], Tensor] | Clipper,
        parameters: Iterable[Tensor] | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.clipper = clipper
        if parameters is None:
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
        self.parameters = list(parameters)
        self.steps = 0
        self._records: list[Tensor] = []

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The wrapped optimizer's parameter groups."""
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The wrapped optimizer's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def clip(self) -> Tensor:
        """Clip the gradients and append this step's record; return the pre-clip norm."""
        pre = self.clipper(self.parameters)
        post = get_total_norm(grads_of(self.parameters))
        threshold = getattr(self.clipper, "last_threshold", None)
        if threshold is None:
            threshold = torch.tensor(float("nan"))
        record = [pre, post.to(pre), threshold.to(pre), (post < pre).to(pre)]
        self._records.append(torch.stack(record))
        return pre

    def step(self) -> None:
        """Clip, then step the wrapped optimizer."""
        self.clip()
        self.optimizer.step()
        self.steps += 1

    def history(self) -> dict[str, Tensor]:
        """The records of all steps so far, stacked: one tensor of length ``steps`` per field
        (``pre_norm``, ``post_norm``, ``threshold``; ``clipped`` as a bool tensor)."""
        if not self._records:
            return {name: torch.empty(0) for name in _FIELDS}
        table = torch.stack(self._records)
        history = {name: table[:, i] for i, name in enumerate(_FIELDS)}
        history["clipped"] = history["clipped"].bool()
        return history

    def state_dict(self) -> dict[str, Any]:
        """``{"optimizer": ..., "clipper": ..., "steps": ...}``."""
        clipper_state = self.clipper.state_dict() if isinstance(self.clipper, Clipper) else {}
        return {"optimizer": self.optimizer.state_dict(), "clipper": clipper_state,
                "steps": self.steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the optimizer's and the clipper's state and the step count."""
        self.optimizer.load_state_dict(state_dict["optimizer"])
        if isinstance(self.clipper, Clipper):
            self.clipper.load_state_dict(state_dict["clipper"])
        self.steps = state_dict["steps"]
