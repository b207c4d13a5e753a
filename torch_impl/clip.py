"""Functional gradient clippers for PyTorch, in the style of ``torch.nn.utils.clip_grad``.

Each clipper takes an iterable of parameters (or one tensor), rescales their ``.grad`` in place
and returns the *pre-clip* total norm ``||g|| = sqrt(sum_i ||g_i||**2)`` of all the gradients
as a 0-d tensor, computed without a device-to-host sync. The clip rules are the ones of
:mod:`theory.clipping` (the multiplier ``1 / c`` and the thresholds come from there); this
module only gathers the gradients, takes their norms and applies the multiplier in place:

* :func:`clip_grad_norm_`, classic clipping (eq. 11): ``g <- g * lam / max(||g||, lam)``.
* :func:`clip_grad_adaptive_`, adaptive clipping (eq. 17) with the global weight norm:
  ``g <- g * tau / max(||g||, tau)``, ``tau = lam * max(||theta||, eps)``.
* :func:`clip_grad_layerwise_`, layer-wise adaptive clipping (eq. 18): the same per parameter
  tensor ``l`` with ``||g_l||`` and ``||theta_l||``.
* :func:`clip_grad_agc_`, unit-wise adaptive gradient clipping of NFNets (Brock et al. 2021), as
  timm's ``adaptive_clip_grad``: eq. 18 with norms per output unit.
* :func:`clip_grad_value_`, coordinate-wise value clipping: ``g_i <- min(max(g_i, -lam), lam)``.

The building blocks :func:`get_total_norm` and :func:`clip_grads_with_norm_` are public, as in
torch, for clippers whose threshold is a tensor (see :mod:`torch_impl.stateful`).

Common arguments
----------------
``lam`` and ``eps`` are python reals with ``0 < value < inf``; anything else raises
``ValueError`` naming the argument, before any gradient is touched (torch's ``clip_grad_norm_``
with a negative ``max_norm`` silently flips the gradients; these do not).

``foreach``: ``None`` uses torch's fused ``_foreach`` kernels where the device supports them
and falls back to a per-tensor loop otherwise; ``True`` requires them (``RuntimeError`` if the
device has none); ``False`` always loops. Both paths give the same result.

``error_if_nonfinite``: if True, a non-finite total norm (a NaN or infinite gradient entry, or
a norm that overflows) raises ``RuntimeError`` and the gradients are left untouched; this check
is the only host sync. If False (default) nothing is special-cased, exactly as in
:mod:`theory.clipping`: an infinite norm gives the multiplier ``lam / inf = 0``, so the finite
entries of the affected gradients become 0 and the infinite ones NaN; a NaN norm makes them all
NaN. Value clipping maps ``+-inf`` to ``+-lam`` and leaves NaN as NaN. The returned norm is then
non-finite, and the caller should skip the optimizer step (``torch.isfinite(total_norm)``).

Gradients that are ``None`` are skipped. Tensors may live on different devices and dtypes; the
total norm lives on the device of the first gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.utils._foreach_utils import (
    _device_has_foreach_support,
    _group_tensors_by_device_and_dtype,
    _has_foreach_support,
)

from theory import clipping
from theory.clipping import _check_scalar

Parameters = Tensor | Iterable[Tensor]
"""One tensor or an iterable of tensors whose ``.grad`` is clipped."""

__all__ = [
    "Parameters",
    "clip_grad_adaptive_",
    "clip_grad_agc_",
    "clip_grad_layerwise_",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "grads_of",
]


# --------------------------------------------------------------------------------------------
# Plumbing: gradients, norms, in-place scaling (grouped by device and dtype, as torch does)
# --------------------------------------------------------------------------------------------


def _as_list(parameters: Parameters) -> list[Tensor]:
    """The parameters as a list (a single tensor becomes a one-element list)."""
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def grads_of(parameters: Parameters) -> list[Tensor]:
    """The ``.grad`` of each parameter that has one, in order."""
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _use_foreach(tensors: list[Tensor], device: torch.device, foreach: bool | None) -> bool:
    """Whether to use the ``_foreach`` kernels for one device group (torch's rule)."""
    if foreach is None:
        return _has_foreach_support(tensors, device)
    if foreach and not _device_has_foreach_support(device):
        raise RuntimeError(
            f"foreach=True was passed, but can't use the foreach API on {device.type} tensors"
        )
    return foreach


def _groups(tensors: list[Tensor]):
    """``(device, dtype, tensors, indices)`` per device/dtype group of ``tensors``."""
    if not tensors:
        return
    grouped = _group_tensors_by_device_and_dtype([tensors], with_indices=True)
    for (device, dtype), ([group], indices) in grouped.items():
        yield device, dtype, group, indices


def _norms(tensors: list[Tensor], foreach: bool | None) -> list[Tensor]:
    """The Euclidean norm ``||x_i||`` of each tensor, as 0-d tensors in the input order."""
    norms: list[Tensor] = [torch.empty(())] * len(tensors)
    for device, _, group, indices in _groups(tensors):
        if _use_foreach(group, device, foreach):
            group_norms = torch._foreach_norm(group)
        else:
            group_norms = [torch.linalg.vector_norm(x) for x in group]
        for i, n in zip(indices, group_norms, strict=True):
            norms[i] = n
    return norms


def _combine(norms: list[Tensor]) -> Tensor:
    """``sqrt(sum_i n_i**2)`` on the device of the first norm; 0 for no norms."""
    if not norms:
        return torch.tensor(0.0)
    device = norms[0].device
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))


def _check_finite(total_norm: Tensor, error_if_nonfinite: bool) -> None:
    """Raise ``RuntimeError`` for a non-finite norm when asked to (this syncs with the host)."""
    if error_if_nonfinite and not torch.isfinite(total_norm).all():
        raise RuntimeError(
            "The total norm of the gradients is non-finite, so they cannot be clipped. "
            "To clip anyway (see the torch_impl.clip docstring for what happens), "
            "set error_if_nonfinite=False"
        )


def _scale_(grads: list[Tensor], factors: list[Tensor], foreach: bool | None) -> None:
    """``g_i <- g_i * f_i`` in place, each ``f_i`` a tensor broadcastable against ``g_i``."""
    for device, dtype, group, indices in _groups(grads):
        group_factors = [factors[i].to(device=device, dtype=dtype) for i in indices]
        if _use_foreach(group, device, foreach):
            torch._foreach_mul_(group, group_factors)
        else:
            for g, f in zip(group, group_factors, strict=True):
                g.mul_(f)


def _positive(value: float, name: str) -> float:
    """Validate ``0 < value < inf`` (``ValueError`` naming ``name`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a real number with 0 < {name} < inf, got {value!r}")
    return _check_scalar(value, name)


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def get_total_norm(
    tensors: Parameters, *, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> Tensor:
    """The Euclidean norm of the tensors viewed as one vector: ``sqrt(sum_i ||x_i||**2)``.

    A 0-d tensor on the device of the first tensor (``tensor(0.)`` for none), no host sync
    unless ``error_if_nonfinite`` (then a non-finite norm raises ``RuntimeError``).
    """
    total = _combine(_norms(_as_list(tensors), foreach))
    _check_finite(total, error_if_nonfinite)
    return total


@torch.no_grad()
def clip_grads_with_norm_(
    parameters: Parameters,
    threshold: float | Tensor,
    total_norm: Tensor,
    *,
    foreach: bool | None = None,
) -> None:
    """Classic clipping to ``threshold`` given the pre-computed norm: ``g <- g * 1/c``.

    ``1/c = tau / max(||g||, tau)`` (:func:`theory.clipping.clip_factor`) with ``tau =
    threshold`` (a positive real, or a positive 0-d tensor, which is not checked so as not to
    sync) and ``||g|| = total_norm``. Every gradient of ``parameters`` gets the same factor.
    """
    grads = grads_of(parameters)
    if not grads:
        return
    factor = clipping.clip_factor(total_norm, threshold)
    _scale_(grads, [factor] * len(grads), foreach)


# --------------------------------------------------------------------------------------------
# Clippers
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def clip_grad_norm_(
    parameters: Parameters,
    lam: float,
    *,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Classic norm clipping (eq. 11) of the global gradient, in place.

    ``g <- g / c`` with ``c = max(||g|| / lam, 1)``, i.e. ``g <- g * lam / max(||g||, lam)``,
    where ``||g||`` is the norm of all gradients viewed as one vector; afterwards
    ``||g|| = min(||g||_before, lam)``. Unlike ``torch.nn.utils.clip_grad_norm_`` there is no
    ``+ 1e-6`` in the denominator, so the clipped norm is ``lam`` up to rounding.

    Returns the pre-clip total norm (0-d tensor, no host sync). See the module docstring for
    ``foreach``, ``error_if_nonfinite`` and non-finite gradients; ``lam`` must satisfy
    ``0 < lam < inf``.
    """
    lam = _positive(lam, "lam")
    params = _as_list(parameters)
    total = get_total_norm(grads_of(params), error_if_nonfinite=error_if_nonfinite,
                           foreach=foreach)
    clip_grads_with_norm_(params, lam, total, foreach=foreach)
    return total


@torch.no_grad()
def clip_grad_adaptive_(
    parameters: Parameters,
    lam: float,
    eps: float,
    *,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Adaptive clipping (eq. 17) with the global weight norm, in place.

    ``g <- g / c`` with ``c = max(||g|| / (lam * max(||theta||, eps)), 1)``, i.e. classic
    clipping to ``tau = lam * max(||theta||, eps)``, where ``||g||`` and ``||theta||`` are the
    norms of all gradients, resp. of the parameters that have a gradient, each viewed as one
    vector; afterwards ``||g|| = min(||g||_before, tau)``.

    Returns the pre-clip total gradient norm (0-d tensor, no host sync). ``lam`` and ``eps``
    must satisfy ``0 < value < inf``.
    """
    lam = _positive(lam, "lam")
    eps = _positive(eps, "eps")
    params = [p for p in _as_list(parameters) if p.grad is not None]
    total = get_total_norm(grads_of(params), error_if_nonfinite=error_if_nonfinite,
                           foreach=foreach)
    if not params:
        return total
    threshold = clipping.adaptive_threshold(get_total_norm(params, foreach=foreach), lam, eps)
    clip_grads_with_norm_(params, threshold, total, foreach=foreach)
    return total


def _clip_per_layer_(
    params: list[Tensor],
    lam: float,
    eps: float,
    layer_norms: Callable[[list[Tensor]], list[Tensor]],
    error_if_nonfinite: bool,
    foreach: bool | None,
) -> Tensor:
    """Eq. 18 with the given per-layer norms: ``g_l <- g_l * 1/c_l`` for each parameter ``l``.

    ``1/c_l = tau_l / max(N(g_l), tau_l)``, ``tau_l = lam * max(N(theta_l), eps)``, where
    ``N = layer_norms`` maps a list of tensors to their norms (0-d, or broadcastable against
    each tensor). Returns the pre-clip total gradient norm.
    """
    grads = [p.grad for p in params]
    total = get_total_norm(grads, error_if_nonfinite=error_if_nonfinite, foreach=foreach)
    factors = [
        clipping.clip_factor(grad_norm, clipping.adaptive_threshold(param_norm, lam, eps))
        for grad_norm, param_norm in zip(layer_norms(grads), layer_norms(params), strict=True)
    ]
    _scale_(grads, factors, foreach)
    return total


@torch.no_grad()
def clip_grad_layerwise_(
    parameters: Parameters,
    lam: float,
    eps: float,
    *,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Layer-wise adaptive clipping (eq. 18), each parameter tensor on its own, in place.

    ``g_l <- g_l / c_l`` with ``c_l = max(||g_l|| / (lam * max(||theta_l||, eps)), 1)`` for each
    parameter tensor ``theta_l`` (Frobenius norms); afterwards
    ``||g_l|| = min(||g_l||_before, lam * max(||theta_l||, eps))``.

    Returns the pre-clip total norm of all gradients (0-d tensor, no host sync). ``lam`` and
    ``eps`` must satisfy ``0 < value < inf``.
    """
    lam = _positive(lam, "lam")
    eps = _positive(eps, "eps")
    params = [p for p in _as_list(parameters) if p.grad is not None]

    def frobenius(tensors: list[Tensor]) -> list[Tensor]:
        return _norms(tensors, foreach)

    return _clip_per_layer_(params, lam, eps, frobenius, error_if_nonfinite, foreach)


@torch.no_grad()
def clip_grad_agc_(
    parameters: Parameters,
    lam: float = 0.01,
    eps: float = 1e-3,
    *,
    skip_last: int = 0,
    exclude: Iterable[Tensor] = (),
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Unit-wise adaptive gradient clipping (AGC) of NFNets, as timm's ``adaptive_clip_grad``.

    For each parameter tensor ``W`` and each unit ``i`` (output row: all dimensions but the
    first; the whole tensor when ``W.ndim <= 1``, see :func:`theory.clipping.unitwise_norm`):
    ``max_norm_i = lam * max(||W_i||, eps)`` and ``G_i <- G_i * max_norm_i / ||G_i||`` where
    ``||G_i|| > max_norm_i``, i.e. ``G_i <- G_i * max_norm_i / max(||G_i||, max_norm_i)``
    (eq. 18 unit-wise). ``lam`` is timm's ``clip_factor`` (default 0.01), ``eps`` defaults to
    timm's 1e-3.

    ``skip_last`` leaves the last ``skip_last`` parameters with a gradient unclipped (NFNets do
    not clip the classifier: pass 2 for its weight and bias, as timm's ``exclude_head``), and
    ``exclude`` leaves out the given tensors (by identity).

    Returns the pre-clip total norm of all the gradients, the left-out ones included (0-d
    tensor, no host sync). ``lam`` and ``eps`` must satisfy ``0 < value < inf``; ``skip_last``
    must be ``>= 0``.
    """
    lam = _positive(lam, "lam")
    eps = _positive(eps, "eps")
    if isinstance(skip_last, bool) or not isinstance(skip_last, int) or skip_last < 0:
        raise ValueError(f"skip_last must be an integer >= 0, got {skip_last!r}")
    params = [p for p in _as_list(parameters) if p.grad is not None]
    excluded = {id(p) for p in exclude}
    kept = params[: len(params) - skip_last] if skip_last else params
    clipped = [p for p in kept if id(p) not in excluded]
    total = get_total_norm(grads_of(params), error_if_nonfinite=error_if_nonfinite,
                           foreach=foreach)

    def unitwise(tensors: list[Tensor]) -> list[Tensor]:
        return [clipping.unitwise_norm(x) for x in tensors]

    _clip_per_layer_(clipped, lam, eps, unitwise, False, foreach)
    return total


@torch.no_grad()
def clip_grad_value_(
    parameters: Parameters,
    lam: float,
    *,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Coordinate-wise value clipping, in place: ``g_i <- min(max(g_i, -lam), lam)``.

    The rule of :func:`theory.clipping.value_clip`, applied in place (``clamp_``). Returns the
    pre-clip total norm of all gradients (0-d tensor, no host sync), which
    ``torch.nn.utils.clip_grad_value_`` does not. ``+-inf`` entries become ``+-lam``, NaN stays
    NaN. ``lam`` must satisfy ``0 < lam < inf``.
    """
    lam = _positive(lam, "lam")
    grads = grads_of(parameters)
    total = get_total_norm(grads, error_if_nonfinite=error_if_nonfinite, foreach=foreach)
    for device, _, group, _ in _groups(grads):
        if _use_foreach(group, device, foreach):
            torch._foreach_clamp_min_(group, -lam)
            torch._foreach_clamp_max_(group, lam)
        else:
            for g in group:
                g.clamp_(min=-lam, max=lam)
    return total
