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

Drop-in for torch
-----------------
:func:`get_total_norm`, :func:`clip_grads_with_norm_`, :func:`clip_grad_norm_` and
:func:`clip_grad_value_` have torch's signatures (``max_norm``, ``norm_type``, ``clip_value``,
``error_if_nonfinite``, ``foreach``, in torch's order), so ``clip_grad_norm_(params,
max_norm=1.0, norm_type=2.0)`` is a drop-in for ``torch.nn.utils.clip_grad_norm_``. The
threshold is also accepted under this package's name ``lam`` (an alias: pass one of the two),
which the adaptive clippers take as their canonical name (``clip_factor``, timm's, is an alias
for AGC's ``lam``).

Common arguments
----------------
``max_norm``/``lam``, ``clip_value`` and ``eps`` are python reals with ``0 < value < inf``;
anything else raises ``ValueError`` naming the argument, before any gradient is touched
(torch's ``clip_grad_norm_`` with a negative ``max_norm`` silently flips the gradients; these
do not).

``norm_type`` is ``p`` in ``1 <= p <= inf`` (``float('inf')`` or ``'inf'``): the norms are
``||x||_p = (sum_i |x_i|**p)**(1/p)`` (``max_i |x_i|`` for ``p = inf``), and the total norm of
several tensors is the ``p``-norm of their ``p``-norms, i.e. of all entries as one vector, as
in torch. The default 2 is the Euclidean norm of the paper.

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

import functools
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar, cast

import torch
from torch import Tensor
from torch.utils._foreach_utils import (
    _device_has_foreach_support,
    _has_foreach_support,
)

from theory import clipping
from theory.errors import real

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


class _Group(NamedTuple):
    """Tensors of one device and dtype, their positions in the input, and whether the fused
    ``_foreach`` kernels apply to them."""

    device: torch.device
    dtype: torch.dtype
    tensors: list[Tensor]
    indices: list[int]
    fused: bool


def _use_foreach(tensors: list[Tensor], device: torch.device, foreach: bool | None) -> bool:
    """Whether to use the ``_foreach`` kernels for one device group (torch's rule)."""
    if foreach is None:
        return _has_foreach_support(tensors, device)
    if foreach and not _device_has_foreach_support(device):
        raise RuntimeError(
            f"foreach=True was passed, but can't use the foreach API on {device.type} tensors"
        )
    return foreach


def _grouped(tensors: list[Tensor], foreach: bool | None,
             with_indices: bool = False) -> list[_Group]:
    """``tensors`` split by device and dtype, as torch does (``indices`` empty unless asked)."""
    if not tensors:
        return []
    grouped = torch._C._group_tensors_by_device_and_dtype(
        [cast(list[Tensor | None], tensors)], with_indices)
    return [_Group(device, dtype, cast(list[Tensor], group), indices,
                   _use_foreach(cast(list[Tensor], group), device, foreach))
            for (device, dtype), ([group], indices) in grouped.items()]


def _group_norms(group: _Group, norm_type: float) -> list[Tensor]:
    """``||x||_p`` of each tensor of the group, as 0-d tensors in the group's order."""
    if group.fused:
        return list(torch._foreach_norm(group.tensors, norm_type))
    return [torch.linalg.vector_norm(x, norm_type) for x in group.tensors]


def _total_norm(tensors: list[Tensor], groups: list[_Group], norm_type: float) -> Tensor:
    """``(sum_i ||x_i||_p**p)**(1/p)`` (``max_i ||x_i||_inf`` for ``p = inf``) over
    ``tensors``, split into ``groups`` by :func:`_grouped`, on the device of the first tensor;
    0 for none.

    As torch's ``get_total_norm``: the norms of the tensors, stacked in group order, and the
    ``p``-norm of that vector."""
    if not tensors:
        return torch.tensor(0.0)
    first = tensors[0].device
    norms: list[Tensor] = []
    for group in groups:
        group_norms = _group_norms(group, norm_type)
        norms.extend(group_norms if group.device == first
                     else [n.to(first) for n in group_norms])
    return torch.linalg.vector_norm(torch.stack(norms), norm_type)


def _norms(tensors: list[Tensor], foreach: bool | None, norm_type: float = 2.0) -> list[Tensor]:
    """The ``p``-norm ``||x_i||_p`` of each tensor, as 0-d tensors in the input order."""
    norms: list[Tensor] = [torch.empty(())] * len(tensors)
    for group in _grouped(tensors, foreach, with_indices=True):
        for i, n in zip(group.indices, _group_norms(group, norm_type), strict=True):
            norms[i] = n
    return norms


def _check_finite(total_norm: Tensor, error_if_nonfinite: bool) -> None:
    """Raise ``RuntimeError`` for a non-finite norm when asked to (this syncs with the host)."""
    if error_if_nonfinite and not torch.isfinite(total_norm).all():
        raise RuntimeError(
            "The total norm of the gradients is non-finite, so they cannot be clipped. "
            "To clip anyway (see the torch_impl.clip docstring for what happens), "
            "set error_if_nonfinite=False"
        )


def _mul_(groups: list[_Group], factor: Tensor) -> None:
    """``g <- g * factor`` in place for every tensor of ``groups``, ``factor`` a 0-d tensor
    (moved to each group's device once, as torch does)."""
    for group in groups:
        on_device = factor.to(group.device)
        if group.fused:
            torch._foreach_mul_(group.tensors, on_device)
        else:
            for g in group.tensors:
                g.mul_(on_device)


def _scale_(grads: list[Tensor], factors: list[Tensor], foreach: bool | None) -> None:
    """``g_i <- g_i * f_i`` in place, each ``f_i`` a tensor broadcastable against ``g_i``."""
    for group in _grouped(grads, foreach, with_indices=True):
        group_factors = [factors[i].to(device=group.device, dtype=group.dtype)
                         for i in group.indices]
        if group.fused:
            torch._foreach_mul_(group.tensors, group_factors)
        else:
            for g, f in zip(group.tensors, group_factors, strict=True):
                g.mul_(f)


def _norm_order(norm_type: float | str) -> float:
    """Validate the order ``p`` of a norm: a real ``1 <= p <= inf``, or ``'inf'``."""
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        p = float("nan")
    if isinstance(norm_type, bool) or not p >= 1:
        raise ValueError(f"norm_type must be a real number with 1 <= norm_type <= inf "
                         f"(or 'inf'), got {norm_type!r}")
    return p


F = TypeVar("F", bound=Callable[..., Any])


def _aliases(**aliases: str) -> Callable[[F], F]:
    """Accept the keyword ``alias=value`` for the parameter ``aliases[alias]`` of the function.

    Passing both the parameter (by keyword or position) and its alias raises ``ValueError``;
    the function itself only ever sees the canonical name.
    """
    def decorate(func: F) -> F:
        names = list(inspect.signature(func).parameters)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for alias, canonical in aliases.items():
                if alias in kwargs:
                    if canonical in kwargs or len(args) > names.index(canonical):
                        raise ValueError(f"pass {canonical} or its alias {alias}, not both")
                    kwargs[canonical] = kwargs.pop(alias)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def get_total_norm(
    tensors: Parameters,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The ``p``-norm of the tensors viewed as one vector: ``(sum_i ||x_i||_p**p)**(1/p)``.

    ``p = norm_type`` (default 2: ``sqrt(sum_i ||x_i||**2)``; ``max_i ||x_i||_inf`` for
    ``inf``). A 0-d tensor on the device of the first tensor (``tensor(0.)`` for none), no host
    sync unless ``error_if_nonfinite`` (then a non-finite norm raises ``RuntimeError``).
    Signature and result as ``torch.nn.utils.get_total_norm``.
    """
    p = _norm_order(norm_type)
    tensors = _as_list(tensors)
    total = _total_norm(tensors, _grouped(tensors, foreach), p)
    _check_finite(total, error_if_nonfinite)
    return total


@_aliases(threshold="max_norm")
@torch.no_grad()
def clip_grads_with_norm_(
    parameters: Parameters,
    max_norm: float | Tensor,
    total_norm: Tensor,
    foreach: bool | None = None,
) -> None:
    """Classic clipping to ``max_norm`` given the pre-computed norm: ``g <- g * 1/c``.

    ``1/c = tau / max(||g||, tau)`` (:func:`theory.clipping.clip_factor`) with ``tau =
    max_norm`` (alias ``threshold``: a positive real, or a positive 0-d tensor, which is not
    checked so as not to sync) and ``||g|| = total_norm``. Every gradient of ``parameters``
    gets the same factor. Torch's signature; torch's factor is ``min(tau / (||g|| + 1e-6), 1)``.
    """
    groups = _grouped(grads_of(parameters), foreach)
    if groups:
        _mul_(groups, clipping.clip_factor(total_norm, max_norm))


# --------------------------------------------------------------------------------------------
# Clippers
# --------------------------------------------------------------------------------------------


@_aliases(lam="max_norm")
@torch.no_grad()
def clip_grad_norm_(
    parameters: Parameters,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Classic norm clipping (eq. 11) of the global gradient, in place.

    ``g <- g / c`` with ``c = max(||g||_p / lam, 1)``, i.e. ``g <- g * lam / max(||g||_p,
    lam)``, where ``lam = max_norm`` (alias ``lam``) and ``||g||_p`` is the ``norm_type``-norm
    of all gradients viewed as one vector (:func:`get_total_norm`); afterwards
    ``||g||_p = min(||g||_p before, lam)``. Torch's signature and result, except that there is
    no ``+ 1e-6`` in the denominator, so the clipped norm is ``lam`` up to rounding.

    Returns the pre-clip total norm (0-d tensor, no host sync). See the module docstring for
    ``foreach``, ``error_if_nonfinite`` and non-finite gradients; ``max_norm`` must satisfy
    ``0 < max_norm < inf``.
    """
    max_norm = real(max_norm, "max_norm (lam)", 0.0, math.inf)
    p = _norm_order(norm_type)
    grads = grads_of(parameters)
    groups = _grouped(grads, foreach)  # once, for the norm and the scaling
    total = _total_norm(grads, groups, p)
    _check_finite(total, error_if_nonfinite)
    if groups:
        _mul_(groups, clipping.clip_factor(total, max_norm))
    return total


@torch.no_grad()
def clip_grad_adaptive_(
    parameters: Parameters,
    lam: float,
    eps: float,
    *,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Adaptive clipping (eq. 17) with the global weight norm, in place.

    ``g <- g / c`` with ``c = max(||g|| / (lam * max(||theta||, eps)), 1)``, i.e. classic
    clipping to ``tau = lam * max(||theta||, eps)``, where ``||g||`` and ``||theta||`` are the
    ``norm_type``-norms of all gradients, resp. of the parameters that have a gradient, each
    viewed as one vector; afterwards ``||g|| = min(||g||_before, tau)``.

    Returns the pre-clip total gradient norm (0-d tensor, no host sync). ``lam`` and ``eps``
    must satisfy ``0 < value < inf``.
    """
    lam = real(lam, "lam", 0.0, math.inf)
    eps = real(eps, "eps", 0.0, math.inf)
    params = [p for p in _as_list(parameters) if p.grad is not None]
    total = get_total_norm(grads_of(params), norm_type, error_if_nonfinite, foreach)
    if not params:
        return total
    param_norm = get_total_norm(params, norm_type, foreach=foreach)
    threshold = clipping.adaptive_threshold(param_norm, lam, eps)
    clip_grads_with_norm_(params, threshold, total, foreach)
    return total


def _clip_per_layer_(
    params: list[Tensor],
    lam: float,
    eps: float,
    layer_norms: Callable[[list[Tensor]], list[Tensor]],
    norm_type: float,
    error_if_nonfinite: bool,
    foreach: bool | None,
) -> Tensor:
    """Eq. 18 with the given per-layer norms: ``g_l <- g_l * 1/c_l`` for each parameter ``l``.

    ``1/c_l = tau_l / max(N(g_l), tau_l)``, ``tau_l = lam * max(N(theta_l), eps)``, where
    ``N = layer_norms`` maps a list of tensors to their norms (0-d, or broadcastable against
    each tensor). Returns the pre-clip total ``norm_type``-norm of the gradients.
    """
    grads = grads_of(params)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
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
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Layer-wise adaptive clipping (eq. 18), each parameter tensor on its own, in place.

    ``g_l <- g_l / c_l`` with ``c_l = max(||g_l|| / (lam * max(||theta_l||, eps)), 1)`` for each
    parameter tensor ``theta_l`` (``norm_type``-norms of the tensor's entries, by default
    Frobenius); afterwards
    ``||g_l|| = min(||g_l||_before, lam * max(||theta_l||, eps))``.

    Returns the pre-clip total norm of all gradients (0-d tensor, no host sync). ``lam`` and
    ``eps`` must satisfy ``0 < value < inf``.
    """
    lam = real(lam, "lam", 0.0, math.inf)
    eps = real(eps, "eps", 0.0, math.inf)
    order = _norm_order(norm_type)
    params = [p for p in _as_list(parameters) if p.grad is not None]

    def per_tensor(tensors: list[Tensor]) -> list[Tensor]:
        return _norms(tensors, foreach, order)

    return _clip_per_layer_(params, lam, eps, per_tensor, order, error_if_nonfinite, foreach)


@_aliases(clip_factor="lam")
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
    (eq. 18 unit-wise), with Euclidean norms. ``lam`` is timm's ``clip_factor`` (accepted as an
    alias; default 0.01), ``eps`` defaults to timm's 1e-3.

    ``skip_last`` leaves the last ``skip_last`` parameters with a gradient unclipped (NFNets do
    not clip the classifier: pass 2 for its weight and bias, as timm's ``exclude_head``), and
    ``exclude`` leaves out the given tensors (by identity).

    Returns the pre-clip total norm of all the gradients, the left-out ones included (0-d
    tensor, no host sync). ``lam`` and ``eps`` must satisfy ``0 < value < inf``; ``skip_last``
    must be ``>= 0``.
    """
    lam = real(lam, "lam", 0.0, math.inf)
    eps = real(eps, "eps", 0.0, math.inf)
    if isinstance(skip_last, bool) or not isinstance(skip_last, int) or skip_last < 0:
        raise ValueError(f"skip_last must be an integer >= 0, got {skip_last!r}")
    params = [p for p in _as_list(parameters) if p.grad is not None]
    excluded = {id(p) for p in exclude}
    kept = params[: len(params) - skip_last] if skip_last else params
    clipped = [p for p in kept if id(p) not in excluded]
    total = get_total_norm(grads_of(params), 2.0, error_if_nonfinite, foreach)

    def unitwise(tensors: list[Tensor]) -> list[Tensor]:
        return [clipping.unitwise_norm(x) for x in tensors]

    _clip_per_layer_(clipped, lam, eps, unitwise, 2.0, False, foreach)
    return total


@_aliases(lam="clip_value")
@torch.no_grad()
def clip_grad_value_(
    parameters: Parameters,
    clip_value: float,
    foreach: bool | None = None,
    *,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Coordinate-wise value clipping, in place: ``g_i <- min(max(g_i, -lam), lam)``.

    ``lam = clip_value`` (alias ``lam``); torch's signature, plus keywords. The rule of
    :func:`theory.clipping.value_clip`, applied in place (``clamp_``). Returns the pre-clip
    total ``norm_type``-norm of all gradients (0-d tensor, no host sync), where
    ``torch.nn.utils.clip_grad_value_`` returns None. ``+-inf`` entries become ``+-lam``, NaN
    stays NaN. ``clip_value`` must satisfy ``0 < clip_value < inf``.
    """
    lam = real(clip_value, "clip_value (lam)", 0.0, math.inf)
    grads = grads_of(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    for group in _grouped(grads, foreach):
        if group.fused:
            torch._foreach_clamp_min_(group.tensors, -lam)
            torch._foreach_clamp_max_(group.tensors, lam)
        else:
            for g in group.tensors:
                g.clamp_(min=-lam, max=lam)
    return total
