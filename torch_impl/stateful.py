"""Stateful clippers: classic clipping (eq. 11) to a threshold that is learned from past norms.

A stateful clipper follows the :class:`Clipper` protocol: calling it on the parameters clips
their gradients in place and returns the pre-clip global norm ``||g_t||`` (0-d tensor, no host
sync); ``last_threshold`` holds the threshold ``tau_t`` it used; ``state_dict()`` and
``load_state_dict()`` save and restore everything the next thresholds depend on, so that a
resumed run clips exactly as an uninterrupted one. Every clipper here does

    ``g_t <- g_t * tau_t / max(||g_t||, tau_t)``   (:func:`torch_impl.clip.clip_grads_with_norm_`)

and differs only in how ``tau_t`` is obtained from ``||g_0||, ..., ||g_t||``:

* :class:`EMAClipper` (seed 001): ``tau_t = alpha * m_t``, ``m_t = beta m_{t-1} + (1-beta)
  ||g_t||``, ``m_0 = ||g_0||``.
* :class:`PercentileClipper` (AutoClip, Seetharaman et al. 2020): ``tau_t`` is the ``p``-th
  percentile of ``{||g_0||, ..., ||g_t||}``.

Both include the current norm ``||g_t||`` in the statistic *before* taking the threshold.
They share the base class :class:`NormClipper`, as does seed 003's
:class:`torch_impl.averaged.AveragedNormClipper` (which also clips per tensor).

Non-finite norms (a NaN or infinite gradient) do not enter the statistic, so one bad batch does
not poison all later thresholds; that step's gradients are clipped with the threshold of the
finite history as in :mod:`torch_impl.clip` (an infinite norm zeroes the finite entries and
makes the infinite ones NaN; a NaN norm makes them all NaN), unless ``error_if_nonfinite``
raises first. The threshold is floored at the smallest positive normal number of its dtype, so
that a zero gradient with a zero statistic stays zero instead of turning into ``0 / 0``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from torch_impl.clip import _as_list, clip_grads_with_norm_, get_total_norm, grads_of

__all__ = ["Clipper", "EMAClipper", "NormClipper", "PercentileClipper"]


@runtime_checkable
class Clipper(Protocol):
    """What :class:`torch_impl.wrapper.ClippedOptimizer` expects of a stateful clipper.

    ``__call__(parameters)`` clips the ``.grad`` of ``parameters`` in place and returns the
    pre-clip global gradient norm as a 0-d tensor; ``last_threshold`` is the threshold used by
    the latest call (0-d tensor); ``state_dict()`` / ``load_state_dict(d)`` as in torch.
    """

    last_threshold: Tensor

    def __call__(self, parameters: Iterable[Tensor]) -> Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None: ...


def _check_open_interval(value: float, name: str, low: float, high: float,
                         *, closed_low: bool = False) -> float:
    """``low < value < high`` (``low <= value`` when ``closed_low``) or ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    ok = (low <= value if closed_low else low < value) and value < high and math.isfinite(value)
    if not ok:
        left = "<=" if closed_low else "<"
        raise ValueError(f"{name} must satisfy {low} {left} {name} < {high}, got {value!r}")
    return value


def _floor(threshold: Tensor) -> Tensor:
    """``max(threshold, tiny)``: a positive threshold for :func:`clip_grads_with_norm_`."""
    return threshold.clamp(min=torch.finfo(threshold.dtype).tiny)


class NormClipper:
    """Base class of the stateful clippers: the shared call path of the :class:`Clipper`
    protocol, with ``foreach`` and ``error_if_nonfinite`` as in :mod:`torch_impl.clip`.

    ``clipper(parameters)`` takes the pre-clip global norm ``||g_t||`` (raising first for a
    non-finite one if ``error_if_nonfinite``), then :meth:`_clip_`, whose default asks
    :meth:`_threshold` for ``tau_t`` (the one method a subclass must write), floors it and
    clips ``g_t <- g_t * tau_t / max(||g_t||, tau_t)``. A clipper with thresholds per tensor
    overrides :meth:`_clip_` instead.
    """

    def __init__(self, *, error_if_nonfinite: bool = False, foreach: bool | None = None) -> None:
        self.error_if_nonfinite = error_if_nonfinite
        self.foreach = foreach
        self.last_threshold = torch.tensor(float("nan"))

    def _threshold(self, norm: Tensor) -> Tensor:
        raise NotImplementedError

    def _clip_(self, params: list[Tensor], norm: Tensor) -> None:
        """Clip to the global threshold ``tau_t = max(_threshold(||g_t||), tiny)``."""
        self.last_threshold = _floor(self._threshold(norm))
        clip_grads_with_norm_(params, self.last_threshold, norm, foreach=self.foreach)

    @torch.no_grad()
    def __call__(self, parameters: Iterable[Tensor] | Tensor) -> Tensor:
        """Clip the gradients of ``parameters`` in place; return the pre-clip global norm."""
        params = _as_list(parameters)
        norm = get_total_norm(grads_of(params), error_if_nonfinite=self.error_if_nonfinite,
                              foreach=self.foreach)
        self._clip_(params, norm)
        return norm


class EMAClipper(NormClipper):
    """Clip to ``alpha`` times an exponential moving average of past global norms (seed 001).

    ``m_t = beta * m_{t-1} + (1 - beta) * ||g_t||`` with ``m_0 = ||g_0||`` (the first finite
    norm), and ``tau_t = alpha * m_t``: the current pre-clip norm enters ``m`` *before* the
    threshold is taken, so the first step is clipped to ``alpha * ||g_0||`` (not at all when
    ``alpha >= 1``). Then ``g_t <- g_t * tau_t / max(||g_t||, tau_t)``.

    ``alpha > 0`` and ``0 <= beta < 1`` (``beta = 0`` clips every step to ``alpha * ||g_t||``).
    State: ``m`` and the number of finite norms seen.
    """

    def __init__(self, alpha: float, beta: float, *, error_if_nonfinite: bool = False,
                 foreach: bool | None = None) -> None:
        super().__init__(error_if_nonfinite=error_if_nonfinite, foreach=foreach)
        self.alpha = _check_open_interval(alpha, "alpha", 0.0, math.inf)
        self.beta = _check_open_interval(beta, "beta", 0.0, 1.0, closed_low=True)
        self.m: Tensor | None = None
        self.count: Tensor | None = None

    def _threshold(self, norm: Tensor) -> Tensor:
        if self.m is None:
            self.m = torch.zeros_like(norm)
            self.count = torch.zeros((), dtype=torch.long, device=norm.device)
        finite = torch.isfinite(norm)
        updated = torch.where(self.count == 0, norm, self.beta * self.m + (1 - self.beta) * norm)
        self.m = torch.where(finite, updated, self.m)
        self.count = self.count + finite
        return self.alpha * self.m

    def state_dict(self) -> dict[str, Any]:
        """``alpha``, ``beta``, the average ``m`` and the count of finite norms (None before
        the first call)."""
        return {"alpha": self.alpha, "beta": self.beta, "m": self.m, "count": self.count,
                "last_threshold": self.last_threshold}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (tensors are copied)."""
        self.alpha = state_dict["alpha"]
        self.beta = state_dict["beta"]
        self.m = None if state_dict["m"] is None else state_dict["m"].clone()
        self.count = None if state_dict["count"] is None else state_dict["count"].clone()
        self.last_threshold = state_dict["last_threshold"].clone()


class PercentileClipper(NormClipper):
    """AutoClip (Seetharaman et al. 2020): clip to a percentile of all norms seen so far.

    ``tau_t = percentile_p({||g_0||, ..., ||g_t||})``, the current norm included, with linear
    interpolation between order statistics (``numpy.percentile``'s default, as in AutoClip's
    code); then ``g_t <- g_t * tau_t / max(||g_t||, tau_t)``. AutoClip's default is
    ``p = 10``; ``0 <= p <= 100``.

    The history is kept on the norms' device in a buffer that doubles when full; each step
    sorts it (``torch.nanquantile``), ``O(t log t)``, and ``torch.quantile`` accepts at most
    ``2**24`` elements, so this suits runs of up to a few million steps. Non-finite norms are
    stored as NaN and ignored. State: the history.
    """

    def __init__(self, percentile: float = 10.0, *, error_if_nonfinite: bool = False,
                 foreach: bool | None = None) -> None:
        super().__init__(error_if_nonfinite=error_if_nonfinite, foreach=foreach)
        self.percentile = _check_open_interval(percentile, "percentile", 0.0, math.inf,
                                               closed_low=True)
        if self.percentile > 100:
            raise ValueError(f"percentile must satisfy 0 <= percentile <= 100, got {percentile}")
        self._buffer: Tensor | None = None
        self.n = 0

    @property
    def history(self) -> Tensor:
        """The pre-clip norms seen so far (NaN where one was non-finite), oldest first."""
        if self._buffer is None:
            return torch.empty(0)
        return self._buffer[: self.n]

    def _threshold(self, norm: Tensor) -> Tensor:
        if self._buffer is None:
            self._buffer = torch.empty(64, dtype=norm.dtype, device=norm.device)
        if self.n == len(self._buffer):
            self._buffer = torch.cat([self._buffer, torch.empty_like(self._buffer)])
        self._buffer[self.n] = torch.where(torch.isfinite(norm), norm, torch.nan)
        self.n += 1
        return torch.nanquantile(self.history, self.percentile / 100)

    def state_dict(self) -> dict[str, Any]:
        """``percentile`` and a copy of the history."""
        return {"percentile": self.percentile, "history": self.history.clone(),
                "last_threshold": self.last_threshold}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (tensors are copied)."""
        self.percentile = state_dict["percentile"]
        history = state_dict["history"]
        self.n = len(history)
        self._buffer = history.clone() if self.n else None
        self.last_threshold = state_dict["last_threshold"].clone()
