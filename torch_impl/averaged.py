"""The hyperparameter-free cumulative-average norm clipper of seed 003 (its lines 1-9).

At step ``t = 1, 2, ...`` with gradient ``g_t`` and the carried average ``theta_{t-1}``:

* ``theta_t = (theta_{t-1} * (t - 1) + ||g_t||) / t``   (for ``t = 1``: ``theta_1 = ||g_1||``)
* ``g'_t = g_t * min(1, theta_t / ||g_t||)``             (so ``||g'_t|| = min(||g_t||, theta_t)``)
* ``theta'_t = (theta_{t-1} * (t - 1) + ||g'_t||) / t``  (the average redone with the clipped
  norm; this, not ``theta_t``, is carried to step ``t + 1``)

So the carried value is the running mean of the *clipped* norms, and the threshold at step ``t``
is that mean updated with the current unclipped norm. No numerical hyperparameter.

The seed applies this per hyperparameter tensor inside the secondary SGD's step (one running
average per tensor); :class:`AveragedNormClipper` does that by default and takes
``per_tensor=False`` for one average of the global norm over all tensors.

Edge cases: ``||g_t|| = 0`` gives factor 1 (as the seed's ``min(1, nan) = 1`` does at 0/0);
a non-finite gradient makes the threshold and every later average non-finite (NaN propagates,
as in the seed), so the caller should treat that run as diverged.
"""

from __future__ import annotations

import torch

from theory.clipping import clip_factor, norm
from torch_impl.clip import _norms, _scale_
from torch_impl.stateful import NormClipper


def averaged_threshold(
    grad_norm: torch.Tensor, prev_mean: torch.Tensor, step: int
) -> torch.Tensor:
    """``theta_t = (theta_{t-1} * (t - 1) + ||g_t||) / t``: the cumulative mean after step ``t``.

    ``step`` is ``t >= 1``; at ``t = 1`` the result is ``||g_1||`` whatever ``prev_mean`` is
    (as long as it is finite).
    """
    if step < 1:
        raise ValueError(f"step must satisfy step >= 1, got {step!r}")
    return (prev_mean * (step - 1) + grad_norm) / step


def averaged_clip_factor(
    grad_norm: torch.Tensor, prev_mean: torch.Tensor, step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of lines 1-9 on norms: returns ``(factor, theta_t, theta'_t)``.

    ``factor = min(1, theta_t / ||g_t||)`` (``theory.clipping.clip_factor``), ``theta_t`` the
    threshold and ``theta'_t`` the average recomputed with ``||g'_t|| = factor * ||g_t||``.
    Elementwise: ``grad_norm`` and ``prev_mean`` may hold one norm per batch element.
    ``theta_t = 0`` only when ``||g_t|| = 0``; the threshold is then floored at the smallest
    normal number so that the factor is ``0 / 0``-free and equals 1.
    """
    threshold = averaged_threshold(grad_norm, prev_mean, step)
    floor = torch.finfo(threshold.dtype).tiny
    factor = clip_factor(grad_norm, threshold.clamp(min=floor))
    new_mean = averaged_threshold(grad_norm * factor, prev_mean, step)
    return factor, threshold, new_mean


def averaged_clip(
    grad: torch.Tensor, prev_mean: torch.Tensor, step: int, *, batch_ndim: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply one step of lines 1-9 to one gradient tensor: ``(g'_t, theta_t, theta'_t)``.

    The norm is over the non-batch axes (``batch_ndim`` leading axes are independent runs, each
    with its own average ``prev_mean`` of the batch shape). Pure: ``grad`` is not modified.
    """
    grad_norm = norm(grad, batch_ndim=batch_ndim)
    factor, threshold, new_mean = averaged_clip_factor(grad_norm, prev_mean, step)
    shape = tuple(factor.shape) + (1,) * (grad.ndim - batch_ndim)
    return grad * factor.reshape(shape), threshold, new_mean


class AveragedNormClipper(NormClipper):
    """Seed 003's cumulative-average norm clipper for ``.grad`` of a list of tensors.

    ``clipper(parameters)`` clips each ``p.grad`` in place by lines 1-9 (module docstring) and
    returns the pre-clip total norm ``sqrt(sum_p ||p.grad||^2)`` as a 0-d tensor, without a
    host sync. ``per_tensor=True`` (the seed's use): one running average per tensor, by
    position in ``parameters``; ``per_tensor=False``: one average of the global norm.
    Tensors whose ``.grad`` is ``None`` are skipped (their average is not advanced).
    ``foreach`` and ``error_if_nonfinite`` as in :mod:`torch_impl.clip` (base class
    :class:`torch_impl.stateful.NormClipper`); unlike the other stateful clippers, a non-finite
    norm does enter the average (as in the seed: the run is then diverged).

    ``last_threshold`` (0-d, NaN before the first call): the threshold ``theta_t`` of the last
    call (floored at the smallest normal number in global mode); in per-tensor mode
    ``sqrt(sum_p theta_{p,t}^2)``, which bounds the post-clip total norm, with the individual
    thresholds in ``last_thresholds`` (1-d, NaN for skipped tensors).
    """

    def __init__(self, per_tensor: bool = True, *, error_if_nonfinite: bool = False,
                 foreach: bool | None = None) -> None:
        super().__init__(error_if_nonfinite=error_if_nonfinite, foreach=foreach)
        self.per_tensor = per_tensor
        self.means: list[torch.Tensor | None] = []
        self.steps: list[int] = []
        self.last_thresholds = torch.empty(0)

    def _slots(self, count: int) -> None:
        if not self.steps:
            self.means = [None] * count
            self.steps = [0] * count
        elif len(self.steps) != count:
            raise ValueError(
                f"parameters must keep the same number of tensors, "
                f"got {count} after {len(self.steps)}"
            )

    def _advance(self, slot: int, grad_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance slot ``slot`` by one step; returns ``(factor, theta_t)``."""
        self.steps[slot] += 1
        prev = self.means[slot]
        if prev is None:
            prev = torch.zeros_like(grad_norm)
        factor, threshold, self.means[slot] = averaged_clip_factor(
            grad_norm, prev, self.steps[slot]
        )
        return factor, threshold

    def _threshold(self, norm: torch.Tensor) -> torch.Tensor:
        """Global mode: ``theta_t`` of the global norm (the base class clips to it)."""
        self._slots(1)
        threshold = self._advance(0, norm)[1]
        self.last_thresholds = threshold.reshape(1)
        return threshold

    def _clip_(self, params: list[torch.Tensor], norm: torch.Tensor) -> None:
        if not self.per_tensor:
            super()._clip_(params, norm)
            return
        self._slots(len(params))
        present = [slot for slot, p in enumerate(params) if p.grad is not None]
        grads = [params[slot].grad for slot in present]
        thresholds = [torch.full((), float("nan"), dtype=norm.dtype, device=norm.device)
                      for _ in params]
        factors = []
        for slot, grad_norm in zip(present, _norms(grads, self.foreach), strict=True):
            factor, threshold = self._advance(slot, grad_norm)
            factors.append(factor)
            thresholds[slot] = threshold.to(norm.device, norm.dtype)
        _scale_(grads, factors, self.foreach)
        self.last_thresholds = torch.stack(thresholds)
        self.last_threshold = torch.linalg.vector_norm(self.last_thresholds.nan_to_num(0.0))

    def state_dict(self) -> dict:
        """The running averages ``theta'`` (tensors, ``None`` before a slot's first step),
        step counts and mode."""
        return {
            "per_tensor": self.per_tensor,
            "means": [None if m is None else m.clone() for m in self.means],
            "steps": list(self.steps),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (the mode must match)."""
        if bool(state["per_tensor"]) != self.per_tensor:
            raise ValueError(
                f"state_dict has per_tensor={state['per_tensor']!r}, "
                f"this clipper per_tensor={self.per_tensor!r}"
            )
        self.means = [None if m is None else m.clone() for m in state["means"]]
        self.steps = [int(s) for s in state["steps"]]
