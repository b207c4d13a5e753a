"""Clip rules of the paper, written once for numpy arrays and torch tensors alike.

SGD with clipping takes the step ``theta <- theta - a * g / c``. The rules here return the
clipped gradient ``g / c`` (or, for the projection, the projected point):

* Classic norm clipping (eq. 11): ``c = max(||g|| / lam, 1)``, so
  ``g / c = g * lam / max(||g||, lam)`` and ``||g / c|| = min(||g||, lam)``
  (:func:`classic_clip`).
* Adaptive clipping (eq. 17): ``c = max(||g|| / (lam * max(||theta||, eps)), 1)``, i.e. classic
  clipping with the threshold ``tau = lam * max(||theta||, eps)``, so
  ``||g / c|| = min(||g||, lam * max(||theta||, eps))`` (:func:`adaptive_clip`).
* Layer-wise adaptive clipping (eq. 18): eq. 17 applied to each layer separately, with that
  layer's Frobenius norms of ``g`` and ``theta``; optionally unit-wise as in NFNets' AGC
  (:func:`layerwise_clip`, :func:`unitwise_norm`).
* Coordinate-wise value clipping: each coordinate clipped to ``[-lam, lam]``
  (:func:`value_clip`).
* Projection onto a ball (eq. 9): ``Pi_K(theta)`` with ``K`` the closed ball of radius ``rho``
  about ``centre``: ``theta`` if ``||theta - centre|| <= rho``, else
  ``centre + rho * (theta - centre) / ||theta - centre||`` (:func:`project_ball`).

Each rule is a small pure function of its inputs (no state, no in-place updates).

Helpers: :func:`norm` (Euclidean / Frobenius norm), :func:`clip_factor` (the multiplier
``1 / c = lam / max(||g||, lam)``) and :func:`adaptive_threshold` (``lam * max(||theta||, eps)``).

Conventions
-----------
*Arrays.* Every function is duck-typed: it uses only arithmetic and comparison operators,
``abs`` and the methods ``sum(axis=..., keepdims=True)``, ``clip(min=..., max=...)`` and
``reshape``, which numpy arrays and torch tensors share, so it returns a numpy array for numpy
input and a tensor of the input's dtype and device for tensor input. This module never imports
torch. Do not mix kinds in one call.

*Batching.* ``batch_ndim`` is the number of leading batch axes (an ``(R, P)`` array of ``R``
trajectories has ``batch_ndim=1``). Norms are taken over all remaining axes, one norm per batch
element. ``lam``, ``eps`` and ``radius`` may be python/numpy real scalars or arrays of the same
kind as the data whose shape broadcasts (numpy rules, right-aligned) to the batch shape, e.g.
one ``lam`` per trajectory of shape ``(R,)``.

*Validation.* Scalar ``lam`` and ``eps`` must satisfy ``0 < value < inf`` and a scalar
``radius`` ``0 <= radius < inf``, else ``ValueError``. Array-valued parameters are not checked
(that would force a device-to-host sync for tensors); the caller is responsible for them.

*Non-finite input.* No special-casing: NaN propagates. A gradient whose norm is infinite
(including one whose squared norm overflows, e.g. ``||g|| > ~1.3e154`` in float64 or
``> ~1.8e19`` in float32) gets the factor ``lam / inf = 0``, so its finite coordinates become 0
and its infinite ones NaN; the caller is expected to mark such a path as blown up.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from theory.errors import real

Array = Any
"""A numpy array or a torch tensor (the functions are duck-typed over both)."""

Scalar = Any
"""A python/numpy real scalar, or an array of the data's kind broadcastable to the batch shape."""


# --------------------------------------------------------------------------------------------
# Argument handling
# --------------------------------------------------------------------------------------------


def _check_scalar(value: Scalar, name: str, *, allow_zero: bool = False) -> Scalar:
    """Validate a real scalar parameter (returned as a python float); pass arrays unchanged.

    Accepted range: ``0 < value < inf`` (``0 <= value < inf`` when ``allow_zero``).
    """
    if not isinstance(value, numbers.Real):
        return value  # array-valued: not checked, to avoid host syncs on tensors
    return real(value, name, 0.0, math.inf, closed_low=allow_zero)


def _check_batch_ndim(x: Array, batch_ndim: int) -> None:
    """Require ``0 <= batch_ndim <= x.ndim``."""
    if not 0 <= batch_ndim <= x.ndim:
        raise ValueError(
            f"batch_ndim must satisfy 0 <= batch_ndim <= x.ndim = {x.ndim}, got {batch_ndim!r}"
        )


def _per_batch(value: Scalar, name: str, batch_ndim: int, ndim: int) -> Scalar:
    """Shape a per-batch-element parameter to broadcast against data with ``ndim`` axes.

    A scalar is returned unchanged. An array of shape ``s`` (broadcastable to the batch shape)
    gets ``ndim - batch_ndim`` trailing axes of length 1 appended, so that it lines up with the
    batch axes of the data and of the keepdims norms.
    """
    if isinstance(value, numbers.Real):
        return value
    if value.ndim > batch_ndim:
        raise ValueError(
            f"array-valued {name} must broadcast to the batch shape, i.e. have at most "
            f"batch_ndim = {batch_ndim} axes, got shape {tuple(value.shape)}"
        )
    return value.reshape(tuple(value.shape) + (1,) * (ndim - batch_ndim))


# --------------------------------------------------------------------------------------------
# Norms and factors
# --------------------------------------------------------------------------------------------


def _norm_over(x: Array, axes: tuple[int, ...]) -> Array:
    """``sqrt(sum_{axes} x**2)`` with kept (length-1) axes; ``|x|`` when ``axes`` is empty.

    The empty case is explicit because torch reads ``sum(axis=())`` as "sum over all axes".
    """
    if not axes:
        return abs(x)
    return (x * x).sum(axis=axes, keepdims=True) ** 0.5


def norm(x: Array, *, batch_ndim: int = 0, keepdims: bool = False) -> Array:
    """Euclidean (Frobenius) norm over the non-batch axes: ``||x|| = sqrt(sum_i x_i**2)``.

    Returns one norm per batch element: shape ``x.shape[:batch_ndim]``, or with the reduced axes
    kept as length 1 when ``keepdims``. Computed as ``sqrt(sum x**2)`` without rescaling, so the
    squared norm can overflow to ``inf`` for huge ``x`` (see the module docstring).

    Example:
        >>> import numpy as np
        >>> float(norm(np.array([3.0, 4.0])))
        5.0
    """
    _check_batch_ndim(x, batch_ndim)
    result = _norm_over(x, tuple(range(batch_ndim, x.ndim)))
    if keepdims:
        return result
    return result.reshape(tuple(x.shape[:batch_ndim]))


def unitwise_norm(x: Array, *, batch_ndim: int = 0) -> Array:
    """Norm per unit (output row), as timm's ``unitwise_norm`` for NFNets' AGC, axes kept.

    With ``d = x.ndim - batch_ndim`` non-batch axes: for ``d <= 1`` (a bias vector or a scalar)
    the norm is over all non-batch axes, ``||x||``; for ``d >= 2`` it is over all non-batch axes
    except the first, ``||x[..., i, :, ...]||`` for each unit ``i``. The result keeps the reduced
    axes as length 1, so it broadcasts against ``x``.

    Example:
        >>> import numpy as np
        >>> unitwise_norm(np.array([[3.0, 4.0], [0.0, 1.0]])).tolist()
        [[5.0], [1.0]]
    """
    _check_batch_ndim(x, batch_ndim)
    if x.ndim - batch_ndim <= 1:
        return _norm_over(x, tuple(range(batch_ndim, x.ndim)))
    return _norm_over(x, tuple(range(batch_ndim + 1, x.ndim)))


def clip_factor(grad_norm: Array, threshold: Scalar) -> Array:
    """The multiplier ``1 / c = threshold / max(||g||, threshold) = min(1, threshold / ||g||)``.

    ``c = max(||g|| / threshold, 1)`` is the paper's clip denominator. ``grad_norm`` is an array
    of norms; ``threshold`` a positive scalar or an array broadcastable against ``grad_norm``.
    For ``threshold > 0`` there is no division by zero (``||g|| = 0`` gives factor 1); an
    infinite ``||g||`` gives factor 0. A scalar threshold is validated as ``0 < threshold < inf``.

    Example:
        >>> import numpy as np
        >>> clip_factor(np.array([0.5, 4.0]), 2.0).tolist()      # min(1, 2/‖g‖)
        [1.0, 0.5]
    """
    threshold = _check_scalar(threshold, "threshold")
    return threshold / grad_norm.clip(min=threshold)


def adaptive_threshold(param_norm: Array, lam: Scalar, eps: Scalar) -> Array:
    """The adaptive clip threshold ``tau = lam * max(||theta||, eps)`` of eqs. 17-18.

    ``param_norm`` is an array of norms; ``lam`` and ``eps`` are positive scalars or arrays
    broadcastable against it (scalars are validated as ``0 < value < inf``).

    Example:
        >>> import numpy as np
        >>> adaptive_threshold(np.array([0.0, 3.0]), 2.0, 0.5).tolist()   # 2·max(‖θ‖, 0.5)
        [1.0, 6.0]
    """
    lam = _check_scalar(lam, "lam")
    eps = _check_scalar(eps, "eps")
    return lam * param_norm.clip(min=eps)


def _clip_to_threshold(grad: Array, grad_norm: Array, threshold: Array) -> Array:
    """``g / c = g * tau / max(||g||, tau)`` with norms and threshold already broadcastable."""
    return grad * (threshold / grad_norm.clip(min=threshold))


# --------------------------------------------------------------------------------------------
# Clip rules
# --------------------------------------------------------------------------------------------


def classic_clip(grad: Array, lam: Scalar, *, batch_ndim: int = 0) -> Array:
    """Classic norm clipping (eq. 11): ``g / c`` with ``c = max(||g|| / lam, 1)``.

    Computed as ``g * lam / max(||g||, lam)``; hence ``||g / c|| = min(||g||, lam)``, the
    direction of ``g`` is kept, and ``g = 0`` maps to 0. ``lam`` is a scalar with
    ``0 < lam < inf`` or an array broadcastable to the batch shape ``grad.shape[:batch_ndim]``
    (one threshold per batch element). The norm is over the non-batch axes.

    Example:
        >>> import numpy as np
        >>> classic_clip(np.array([3.0, 4.0]), 2.5).tolist()     # ‖g‖ = 5 → length 2.5
        [1.5, 2.0]
    """
    _check_batch_ndim(grad, batch_ndim)
    lam = _per_batch(_check_scalar(lam, "lam"), "lam", batch_ndim, grad.ndim)
    return _clip_to_threshold(grad, norm(grad, batch_ndim=batch_ndim, keepdims=True), lam)


def adaptive_clip(
    grad: Array, param: Array, lam: Scalar, eps: Scalar, *, batch_ndim: int = 0
) -> Array:
    """Adaptive clipping (eq. 17): ``g / c`` with ``c = max(||g|| / (lam max(||theta||, eps)), 1)``.

    Computed as ``g * tau / max(||g||, tau)`` with ``tau = lam * max(||theta||, eps)``; hence
    ``||g / c|| = min(||g||, tau)`` and the direction of ``g`` is kept. ``grad`` and ``param``
    (``theta``) have the same batch shape; norms are over the non-batch axes. ``lam`` and ``eps``
    are scalars with ``0 < value < inf`` or arrays broadcastable to the batch shape.

    Example:
        >>> import numpy as np
        >>> adaptive_clip(np.array([3.0, 4.0]), np.array([1.25, 0.0]), 2.0, 0.1).tolist()  # τ = 2.5
        [1.5, 2.0]
    """
    _check_batch_ndim(grad, batch_ndim)
    _check_batch_ndim(param, batch_ndim)
    lam = _per_batch(_check_scalar(lam, "lam"), "lam", batch_ndim, grad.ndim)
    eps = _per_batch(_check_scalar(eps, "eps"), "eps", batch_ndim, param.ndim)
    grad_norm = norm(grad, batch_ndim=batch_ndim, keepdims=True)
    param_norm = norm(param, batch_ndim=batch_ndim, keepdims=True)
    return _clip_to_threshold(grad, grad_norm, adaptive_threshold(param_norm, lam, eps))


def layerwise_clip(
    grads: Sequence[Array],
    params: Sequence[Array],
    lam: Scalar,
    eps: Scalar,
    *,
    unitwise: bool = False,
    batch_ndim: int = 0,
) -> list[Array]:
    """Layer-wise adaptive clipping (eq. 18): eq. 17 applied to each layer ``l`` on its own.

    ``g_l / c_l`` with ``c_l = max(||g_l|| / (lam max(||theta_l||, eps)), 1)``, the norms being
    the Frobenius norms of layer ``l`` over its non-batch axes. With ``unitwise=True`` the norms
    are instead per unit, as in NFNets' AGC (see :func:`unitwise_norm`): per output row (all
    non-batch axes but the first) for layers with at least 2 non-batch axes, over the whole layer
    otherwise. ``grads`` and ``params`` are equally long sequences of layers; a list of clipped
    gradients is returned. ``lam`` and ``eps`` as in :func:`adaptive_clip`, shared by all layers.

    Example:
        >>> import numpy as np
        >>> grads = [np.array([3.0, 4.0]), np.array([0.1])]
        >>> params = [np.array([1.25, 0.0]), np.array([1.0])]
        >>> [g.tolist() for g in layerwise_clip(grads, params, 2.0, 0.1)]   # τ = 2.5, then 2
        [[1.5, 2.0], [0.1]]
    """
    if len(grads) != len(params):
        raise ValueError(
            f"grads and params must have the same number of layers, "
            f"got {len(grads)} and {len(params)}"
        )
    if not unitwise:
        return [
            adaptive_clip(grad, param, lam, eps, batch_ndim=batch_ndim)
            for grad, param in zip(grads, params, strict=True)
        ]
    lam = _check_scalar(lam, "lam")
    eps = _check_scalar(eps, "eps")
    clipped = []
    for grad, param in zip(grads, params, strict=True):
        layer_lam = _per_batch(lam, "lam", batch_ndim, grad.ndim)
        layer_eps = _per_batch(eps, "eps", batch_ndim, param.ndim)
        grad_norm = unitwise_norm(grad, batch_ndim=batch_ndim)
        param_norm = unitwise_norm(param, batch_ndim=batch_ndim)
        threshold = adaptive_threshold(param_norm, layer_lam, layer_eps)
        clipped.append(_clip_to_threshold(grad, grad_norm, threshold))
    return clipped


def value_clip(grad: Array, lam: Scalar, *, batch_ndim: int = 0) -> Array:
    """Coordinate-wise value clipping: ``(g / c)_i = min(max(g_i, -lam), lam)``.

    ``lam`` is a scalar with ``0 < lam < inf`` or an array broadcastable to the batch shape
    ``grad.shape[:batch_ndim]`` (one bound per batch element). NaN coordinates stay NaN.

    Example:
        >>> import numpy as np
        >>> value_clip(np.array([-3.0, 0.5, 2.0]), 1.0).tolist()
        [-1.0, 0.5, 1.0]
    """
    _check_batch_ndim(grad, batch_ndim)
    lam = _per_batch(_check_scalar(lam, "lam"), "lam", batch_ndim, grad.ndim)
    return grad.clip(min=-lam, max=lam)


def project_ball(
    theta: Array, radius: Scalar, centre: Array | float = 0.0, *, batch_ndim: int = 0
) -> Array:
    """Projection onto the closed ball ``K = {x : ||x - centre|| <= rho}`` (eq. 9).

    ``Pi_K(theta) = theta`` if ``||theta - centre|| <= rho``, else
    ``centre + rho * (theta - centre) / ||theta - centre||``. Points inside the ball are returned
    exactly (not as ``centre + (theta - centre)``, which may round). ``radius`` (``rho``) is a
    scalar with ``0 <= rho < inf`` or an array broadcastable to the batch shape; ``centre`` is a
    scalar or an array broadcastable against ``theta``. The norm is over the non-batch axes.
    A non-finite ``theta`` gives NaN.

    Example:
        >>> import numpy as np
        >>> project_ball(np.array([6.0, 8.0]), 5.0).tolist()
        [3.0, 4.0]
    """
    _check_batch_ndim(theta, batch_ndim)
    radius = _per_batch(
        _check_scalar(radius, "radius", allow_zero=True), "radius", batch_ndim, theta.ndim
    )
    offset = theta - centre
    distance = norm(offset, batch_ndim=batch_ndim, keepdims=True)
    outside = distance > radius  # boolean, one per batch element
    # Outside, distance > rho >= 0, so the division is safe; inside, the denominator is
    # distance + 1 > 0 and the (unused) value is discarded by the blend below.
    on_sphere = centre + offset * (radius / (distance + ~outside))
    # where(outside, on_sphere, theta), written with arithmetic so numpy and torch share it.
    return theta * ~outside + on_sphere * outside
