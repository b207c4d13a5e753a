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
* :class:`AveragedNormClipper` (seed 003, its lines 1-9; no numerical hyperparameter): with the
  carried average ``theta'_{t-1}`` (``t = 1, 2, ...``),
  ``theta_t = (theta'_{t-1} (t - 1) + ||g_t||) / t`` is the threshold and
  ``theta'_t = (theta'_{t-1} (t - 1) + ||g'_t||) / t``, the average redone with the clipped norm
  ``||g'_t|| = min(||g_t||, theta_t)``, is carried to step ``t + 1``. By default one average
  per tensor, as the seed's secondary SGD does (``per_tensor=False``: one of the global norm).
* :class:`ZScoreClipper` (ZClip, Kumar et al. 2025): after a warm-up, ``tau_t`` is
  ``||g_t||`` unless its z-score ``(||g_t|| - mu) / sigma`` against exponential moving averages
  of the mean ``mu`` and variance ``sigma**2`` of the earlier norms exceeds ``z_thresh``; then
  ``tau_t = mu + z_thresh**2 sigma / z_t`` (or ``mu``, or ``mu + z_thresh sigma``: its modes).

All but the last include the current norm ``||g_t||`` in the statistic *before* taking the
threshold, and all share the base class :class:`NormClipper`. ``load_state_dict`` checks every
key, type and value (finite, in range) and refuses a bad state dict with one ``ValueError``
naming the key, before changing anything.

Non-finite norms (a NaN or infinite gradient) do not enter the statistic of the EMA,
percentile and z-score clippers, so one bad batch does not poison all later thresholds; that step's
gradients are clipped with the threshold of the finite history as in :mod:`torch_impl.clip`
(an infinite norm zeroes the finite entries and makes the infinite ones NaN; a NaN norm makes
them all NaN), unless ``error_if_nonfinite`` raises first. The threshold is floored at the
smallest positive normal number of its dtype, so that a zero gradient with a zero statistic
stays zero instead of turning into ``0 / 0``, and capped at the largest finite one, so that an
overflowing statistic clips to that instead of turning the gradient into ``inf / inf``.
The averaged clipper, as the seed, lets a non-finite norm into its average, which then stays
non-finite: the run has diverged (and its state is refused by ``load_state_dict``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from theory.clipping import clip_factor, norm
from theory.errors import integer, real, show
from torch_impl.clip import (
    _as_list,
    _norms,
    _scale_,
    clip_grads_with_norm_,
    get_total_norm,
    grads_of,
)

__all__ = [
    "AveragedNormClipper",
    "Clipper",
    "EMAClipper",
    "NormClipper",
    "PercentileClipper",
    "ZScoreClipper",
    "averaged_clip",
    "averaged_clip_factor",
    "averaged_threshold",
]


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


def _check_keys(state_dict: Any, keys: tuple[str, ...]) -> None:
    """``state_dict`` is a mapping with exactly the keys ``keys``, else ``ValueError``."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
    missing = [key for key in keys if key not in state_dict]
    unknown = [repr(key) for key in state_dict if key not in keys]
    if missing or unknown:
        raise ValueError(f"state_dict must have exactly the keys {list(keys)}: missing "
                         f"{missing}, unknown [{', '.join(unknown)}]")


def _check_tensor(value: Any, name: str, *, ndim: int = 0, integer: bool = False,
                  nan: bool = False) -> Tensor:
    """A copy of ``value`` if it is a tensor with ``ndim`` dimensions, of an integer (else a
    floating) dtype, and every entry ``x`` with ``0 <= x < inf`` (or NaN when ``nan``);
    else ``ValueError`` naming ``name``. Reads the values (a host sync)."""
    if (not isinstance(value, Tensor) or value.ndim != ndim or value.dtype == torch.bool
            or value.dtype.is_floating_point == integer or value.is_complex()):
        kind = "an integer" if integer else "a floating"
        raise ValueError(f"{name} must be a {ndim}-d tensor of {kind} dtype, got {show(value)}")
    ok = torch.isfinite(value) & (value >= 0)
    if not bool((ok | value.isnan() if nan else ok).all()):
        allowed = " or NaN" if nan else ""
        raise ValueError(f"{name} must hold values 0 <= x < inf{allowed}, got {show(value)}")
    return value.clone()


def _check_optional(value: Any, name: str, **kwargs: Any) -> Tensor | None:
    """None, or :func:`_check_tensor` of ``value``."""
    return None if value is None else _check_tensor(value, name, **kwargs)


def _check_last_threshold(value: Any) -> Tensor:
    """A 0-d floating tensor ``> 0`` (``inf`` included) or NaN (no call yet), else
    ``ValueError``."""
    if (isinstance(value, Tensor) and value.ndim == 0 and value.dtype.is_floating_point
            and bool(value.isnan() | (value > 0))):
        return value.clone()
    raise ValueError(f"last_threshold must be a 0-d floating tensor > 0 or NaN, got {show(value)}")


def _floor(threshold: Tensor) -> Tensor:
    """``min(max(threshold, tiny), max_finite)`` of the threshold's dtype: a positive, finite
    threshold for :func:`clip_grads_with_norm_` (NaN stays NaN)."""
    info = torch.finfo(threshold.dtype)
    return threshold.clamp(min=info.tiny, max=info.max)


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
        """Clip the gradients of ``parameters`` in place; return the pre-clip global norm.

        An empty ``parameters`` raises ``ValueError`` (there is no norm to learn from)."""
        params = _as_list(parameters)
        if not params:
            raise ValueError("parameters is empty: pass the tensors whose gradients to clip")
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
        self.alpha = real(alpha, "alpha", 0.0, math.inf)
        self.beta = real(beta, "beta", 0.0, 1.0, closed_low=True)
        self.m: Tensor | None = None
        self.count: Tensor | None = None

    def _threshold(self, norm: Tensor) -> Tensor:
        if self.m is None or self.count is None:
            self.m = torch.zeros_like(norm)
            self.count = torch.zeros((), dtype=torch.long, device=norm.device)
        finite = torch.isfinite(norm)
        updated = torch.where(self.count == 0, norm,
                              self.beta * self.m + (1 - self.beta) * norm)
        self.m = torch.where(finite, updated, self.m)
        self.count = self.count + finite
        return self.alpha * self.m

    def state_dict(self) -> dict[str, Any]:
        """``alpha``, ``beta``, the average ``m`` and the count of finite norms (None before
        the first call)."""
        return {"alpha": self.alpha, "beta": self.beta, "m": self.m, "count": self.count,
                "last_threshold": self.last_threshold}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (tensors are copied), after checking it:
        ``alpha`` and ``beta`` as in the constructor, ``m`` a 0-d floating tensor
        ``0 <= m < inf`` and ``count`` a 0-d integer tensor ``>= 0`` (both None before the
        first call), ``last_threshold`` as :func:`_check_last_threshold`."""
        _check_keys(state_dict, ("alpha", "beta", "m", "count", "last_threshold"))
        alpha = real(state_dict["alpha"], "alpha", 0.0, math.inf)
        beta = real(state_dict["beta"], "beta", 0.0, 1.0, closed_low=True)
        m = _check_optional(state_dict["m"], "m")
        count = _check_optional(state_dict["count"], "count", integer=True)
        if (m is None) != (count is None):
            raise ValueError(f"m and count must both be None or both tensors, got "
                             f"m={show(m)}, count={show(count)}")
        last_threshold = _check_last_threshold(state_dict["last_threshold"])
        self.alpha, self.beta, self.m, self.count = alpha, beta, m, count
        self.last_threshold = last_threshold


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
        self.percentile = real(percentile, "percentile", 0.0, 100.0, closed_low=True,
                                      closed_high=True)
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
        """Restore what :meth:`state_dict` saved (tensors are copied), after checking it:
        ``percentile`` as in the constructor, ``history`` a 1-d floating tensor of norms
        ``0 <= x < inf`` or NaN, ``last_threshold`` as :func:`_check_last_threshold`."""
        _check_keys(state_dict, ("percentile", "history", "last_threshold"))
        percentile = real(state_dict["percentile"], "percentile", 0.0, 100.0,
                                 closed_low=True, closed_high=True)
        history = _check_tensor(state_dict["history"], "history", ndim=1, nan=True)
        last_threshold = _check_last_threshold(state_dict["last_threshold"])
        self.percentile, self.n, self.last_threshold = percentile, len(history), last_threshold
        self._buffer = history if self.n else None


_ZSCORE_MODES = ("zscore", "percentile")
_ZSCORE_OPTIONS = ("adaptive_scaling", "mean")


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``choices``, else ``ValueError`` naming ``name``."""
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"{name} must be one of {list(choices)}, got {show(value)}")


class ZScoreClipper(NormClipper):
    """ZClip (Kumar et al. 2025, "ZClip: Adaptive Spike Mitigation for LLM Pre-Training"): clip
    the spikes of the global norm, found by their z-score against exponential moving averages
    of its mean and variance.

    *Warm-up.* The first ``warmup_steps`` finite norms are only collected (and clipped to
    ``max_grad_norm`` if it is given); after the last of them, ``mu`` and ``sigma**2`` are their
    mean and population variance ``(1/W) sum_i (||g_i|| - mu)**2``.

    *After the warm-up*, with ``mu`` and ``sigma`` of the earlier steps, step ``t`` takes
    ``z_t = (||g_t|| - mu) / (sigma + eps)`` and the clip value ``c_t``, which is ``||g_t||``
    (no clipping) except on a spike:

    * ``mode="zscore"``, ``clip_option="adaptive_scaling"`` (ZClip's default): a spike is
      ``z_t > z_thresh``, and ``c_t = mu + z_thresh * sigma / (z_t / z_thresh)``
      ``= mu + z_thresh**2 * sigma / z_t``, which shrinks towards ``mu`` the larger the spike;
    * ``mode="zscore"``, ``clip_option="mean"``: a spike is ``z_t > z_thresh``, ``c_t = mu``;
    * ``mode="percentile"`` (``clip_option`` unused): a spike is ``||g_t|| > mu + z_thresh *
      sigma``, and ``c_t = mu + z_thresh * sigma``.

    The gradient is clipped to ``tau_t = min(c_t, max_grad_norm)`` (``c_t`` when
    ``max_grad_norm`` is None): ``g_t <- g_t * tau_t / max(||g_t||, tau_t)``. Then the
    statistics take in the clip value (not the raw spike, and before ``max_grad_norm``):
    ``mu <- alpha * mu + (1 - alpha) * c_t`` and
    ``sigma**2 <- alpha * sigma**2 + (1 - alpha) * (c_t - mu)**2`` with the updated ``mu``.

    Defaults are ZClip's: ``alpha = 0.97``, ``z_thresh = 2.5``, ``max_grad_norm = 1.0``,
    ``eps = 1e-6``, ``warmup_steps = 25``. ``0 <= alpha < 1``, ``z_thresh > 0``, ``eps >= 0``,
    ``warmup_steps >= 1``, ``max_grad_norm > 0`` or None. Unlike ZClip's code: no ``+ 1e-6``
    in the clip divisor (:func:`torch_impl.clip.clip_grads_with_norm_`), no host sync (ZClip
    reads each norm with ``.item()``), and a non-finite norm neither counts towards the warm-up
    nor enters ``mu`` and ``sigma`` (module docstring). Not implemented: the ``clip_factor`` and
    ``skip_update_on_spike`` options of later ZClip versions, and its FSDP all-reduce.

    ``last_threshold`` is ``tau_t`` (``||g_t||`` on a step that is not clipped). State: the
    hyperparameters, the count of finite norms, the warm-up buffer, ``mu`` and ``sigma**2``.
    """

    _SETTINGS = ("alpha", "z_thresh", "max_grad_norm", "eps", "warmup_steps", "mode",
                 "clip_option")

    def __init__(self, alpha: float = 0.97, z_thresh: float = 2.5,  # noqa: PLR0913 (ZClip's)
                 max_grad_norm: float | None = 1.0, eps: float = 1e-6, warmup_steps: int = 25,
                 mode: str = "zscore", clip_option: str = "adaptive_scaling", *,
                 error_if_nonfinite: bool = False, foreach: bool | None = None) -> None:
        super().__init__(error_if_nonfinite=error_if_nonfinite, foreach=foreach)
        (self.alpha, self.z_thresh, self.max_grad_norm, self.eps, self.warmup_steps, self.mode,
         self.clip_option) = self._checked(alpha, z_thresh, max_grad_norm, eps, warmup_steps,
                                           mode, clip_option)
        self.count: Tensor | None = None
        self.buffer: Tensor | None = None
        self.mean: Tensor | None = None
        self.var: Tensor | None = None

    @staticmethod
    def _checked(alpha: Any, z_thresh: Any, max_grad_norm: Any, eps: Any, warmup_steps: Any,
                 mode: Any, clip_option: Any) -> tuple[Any, ...]:
        """The hyperparameters, checked (``ValueError`` naming the first bad one)."""
        if integer(warmup_steps, "warmup_steps", strict=True) == 0:
            raise ValueError("warmup_steps must be an integer >= 1, got 0")
        return (real(alpha, "alpha", 0.0, 1.0, closed_low=True),
                real(z_thresh, "z_thresh", 0.0, math.inf),
                None if max_grad_norm is None
                else real(max_grad_norm, "max_grad_norm", 0.0, math.inf),
                real(eps, "eps", 0.0, math.inf, closed_low=True),
                warmup_steps,
                _check_choice(mode, "mode", _ZSCORE_MODES),
                _check_choice(clip_option, "clip_option", _ZSCORE_OPTIONS))

    def _clip_value(self, norm: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """``c_t``: the spike's clip value where ``norm`` is a spike, else ``norm``."""
        if self.mode == "percentile":
            limit = mean + self.z_thresh * std
            return torch.where(norm > limit, limit, norm)
        z = (norm - mean) / (std + self.eps)
        if self.clip_option == "mean":
            limit = mean
        else:
            limit = mean + self.z_thresh * std / (z / self.z_thresh)
        return torch.where(z > self.z_thresh, limit, norm)

    def _threshold(self, norm: Tensor) -> Tensor:
        if self.count is None or self.buffer is None or self.mean is None or self.var is None:
            self.count = torch.zeros((), dtype=torch.long, device=norm.device)
            self.buffer = torch.zeros(self.warmup_steps, dtype=norm.dtype, device=norm.device)
            self.mean, self.var = torch.zeros_like(norm), torch.zeros_like(norm)
        finite = torch.isfinite(norm)
        warm = self.count < self.warmup_steps
        clip = torch.where(warm, norm, self._clip_value(norm, self.mean, self.var.sqrt()))
        mean = self.alpha * self.mean + (1 - self.alpha) * clip
        var = self.alpha * self.var + (1 - self.alpha) * (clip - mean) ** 2
        slot = torch.arange(self.warmup_steps, device=norm.device) == self.count
        self.buffer = torch.where(slot & warm & finite, norm, self.buffer)
        ready = finite & (self.count + 1 == self.warmup_steps)
        update = finite & ~warm
        self.mean = torch.where(ready, self.buffer.mean(), torch.where(update, mean, self.mean))
        self.var = torch.where(ready, self.buffer.var(correction=0),
                               torch.where(update, var, self.var))
        self.count = self.count + finite
        return clip if self.max_grad_norm is None else clip.clamp(max=self.max_grad_norm)

    def state_dict(self) -> dict[str, Any]:
        """The hyperparameters, and ``count``, ``buffer``, ``mean``, ``var`` (None before the
        first call)."""
        return {"alpha": self.alpha, "z_thresh": self.z_thresh,
                "max_grad_norm": self.max_grad_norm, "eps": self.eps,
                "warmup_steps": self.warmup_steps, "mode": self.mode,
                "clip_option": self.clip_option, "count": self.count, "buffer": self.buffer,
                "mean": self.mean, "var": self.var, "last_threshold": self.last_threshold}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (tensors are copied), after checking it: the
        hyperparameters as in the constructor; ``count`` a 0-d integer tensor ``>= 0``,
        ``buffer`` a 1-d floating tensor of ``warmup_steps`` values, ``mean`` and ``var`` 0-d
        floating tensors, all values ``0 <= x < inf`` (the four None before the first call);
        ``last_threshold`` as :func:`_check_last_threshold`."""
        _check_keys(state_dict, (*self._SETTINGS, "count", "buffer", "mean", "var",
                                 "last_threshold"))
        settings = self._checked(*(state_dict[key] for key in self._SETTINGS))
        tensors = {"count": _check_optional(state_dict["count"], "count", integer=True),
                   "buffer": _check_optional(state_dict["buffer"], "buffer", ndim=1),
                   "mean": _check_optional(state_dict["mean"], "mean"),
                   "var": _check_optional(state_dict["var"], "var")}
        if len({value is None for value in tensors.values()}) > 1:
            raise ValueError("count, buffer, mean and var must all be None or all tensors, "
                             "got " + ", ".join(f"{k}={show(v)}" for k, v in tensors.items()))
        buffer = tensors["buffer"]
        if buffer is not None and len(buffer) != settings[4]:
            raise ValueError(f"buffer must hold warmup_steps = {settings[4]} values, "
                             f"got {len(buffer)}")
        last_threshold = _check_last_threshold(state_dict["last_threshold"])
        (self.alpha, self.z_thresh, self.max_grad_norm, self.eps, self.warmup_steps, self.mode,
         self.clip_option) = settings
        self.count, self.buffer = tensors["count"], buffer
        self.mean, self.var = tensors["mean"], tensors["var"]
        self.last_threshold = last_threshold


def averaged_threshold(
    grad_norm: Tensor, prev_mean: Tensor, step: int
) -> Tensor:
    """``theta_t = (theta_{t-1} * (t - 1) + ||g_t||) / t``: the cumulative mean after step ``t``.

    ``step`` is ``t >= 1``; at ``t = 1`` the result is ``||g_1||`` whatever ``prev_mean`` is
    (as long as it is finite).
    """
    if step < 1:
        raise ValueError(f"step must satisfy step >= 1, got {step!r}")
    return (prev_mean * (step - 1) + grad_norm) / step


def averaged_clip_factor(
    grad_norm: Tensor, prev_mean: Tensor, step: int
) -> tuple[Tensor, Tensor, Tensor]:
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
    grad: Tensor, prev_mean: Tensor, step: int, *, batch_ndim: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
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
    :class:`NormClipper`); unlike the other stateful clippers, a non-finite
    norm does enter the average (as in the seed: the run is then diverged).

    ``last_threshold`` (0-d, NaN before the first call): the threshold ``theta_t`` of the last
    call (floored at the smallest normal number in global mode); in per-tensor mode
    ``sqrt(sum_p theta_{p,t}^2)``, which bounds the post-clip total norm, with the individual
    thresholds in ``last_thresholds`` (1-d, NaN for skipped tensors).
    """

    def __init__(self, per_tensor: bool = True, *, error_if_nonfinite: bool = False,
                 foreach: bool | None = None) -> None:
        super().__init__(error_if_nonfinite=error_if_nonfinite, foreach=foreach)
        if not isinstance(per_tensor, bool):
            raise ValueError(f"per_tensor must be a bool, got {per_tensor!r}")
        self.per_tensor = per_tensor
        self.means: list[Tensor | None] = []
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

    def _advance(self, slot: int, grad_norm: Tensor) -> tuple[Tensor, Tensor]:
        """Advance slot ``slot`` by one step; returns ``(factor, theta_t)``."""
        self.steps[slot] += 1
        prev = self.means[slot]
        if prev is None:
            prev = torch.zeros_like(grad_norm)
        factor, threshold, self.means[slot] = averaged_clip_factor(
            grad_norm, prev, self.steps[slot]
        )
        return factor, threshold

    def _threshold(self, norm: Tensor) -> Tensor:
        """Global mode: ``theta_t`` of the global norm (the base class clips to it)."""
        self._slots(1)
        threshold = self._advance(0, norm)[1]
        self.last_thresholds = threshold.reshape(1)
        return threshold

    def _clip_(self, params: list[Tensor], norm: Tensor) -> None:
        if not self.per_tensor:
            super()._clip_(params, norm)
            return
        self._slots(len(params))
        present = [slot for slot, p in enumerate(params) if p.grad is not None]
        grads = grads_of(params)
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

    def state_dict(self) -> dict[str, Any]:
        """The running averages ``theta'`` (tensors, ``None`` before a slot's first step),
        step counts and mode."""
        return {
            "per_tensor": self.per_tensor,
            "means": [None if m is None else m.clone() for m in self.means],
            "steps": list(self.steps),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (tensors are copied), after checking it:
        ``per_tensor`` this clipper's mode, ``steps`` a list of integers ``t >= 0`` (one per
        tensor; at most one in global mode), ``means`` a list as long, ``None`` where ``t = 0``
        and else a 0-d floating tensor ``0 <= theta' < inf`` (a diverged run's is refused)."""
        _check_keys(state_dict, ("per_tensor", "means", "steps"))
        if state_dict["per_tensor"] is not self.per_tensor:
            raise ValueError(f"per_tensor must be this clipper's {self.per_tensor!r}, "
                             f"got {show(state_dict['per_tensor'])}")
        steps, means = state_dict["steps"], state_dict["means"]
        slots = math.inf if self.per_tensor else 1
        if not (isinstance(steps, list) and isinstance(means, list)
                and len(steps) == len(means) <= slots):
            raise ValueError(f"steps and means must be lists of one length (at most {slots}), "
                             f"got steps={show(steps)}, means={show(means)}")
        checked = [_check_slot(step, mean, i)
                   for i, (step, mean) in enumerate(zip(steps, means, strict=True))]
        self.steps = [step for step, _ in checked]
        self.means = [mean for _, mean in checked]


def _check_slot(step: Any, mean: Any, i: int) -> tuple[int, Tensor | None]:
    """``(steps[i], copy of means[i])`` of an averaged clipper's state, checked: ``means[i]``
    is None exactly when ``steps[i] == 0``, else ``ValueError``."""
    step = integer(step, f"steps[{i}]", strict=True)
    if (mean is None) != (step == 0):
        raise ValueError(f"means[{i}] must be None exactly when steps[{i}] is 0, got "
                         f"steps[{i}]={step!r}, means[{i}]={show(mean)}")
    return step, _check_optional(mean, f"means[{i}]")
