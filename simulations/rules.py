r"""Clip rules batched over paths: the definitions of :mod:`theory.clipping` on (R, P) tensors.

For a batch of gradients g (R, P) at iterates θ (R, P), :meth:`ClipRule.apply` returns g/c:

* ``none``: c ≡ 1;
* ``classic`` (11): g/c = g·min(1, λ/‖g‖);
* ``adaptive`` (17): g/c = g·min(1, λ·max(‖θ‖, ε)/‖g‖);
* ``layerwise`` (18): (17) per layer l with the layers' Frobenius norms ‖g_l‖, ‖θ_l‖;
* ``unitwise``: (18) per unit (each output row of a weight matrix, each bias whole), as AGC;
* ``value``: each coordinate clamped to [−λ, λ];
* ``projection`` (9): g unchanged, and the iterate projected onto the ball ‖θ‖ ≤ radius after
  the step (:meth:`ClipRule.project`).

Norms are computed in the data's dtype (see :func:`norms` for float32 overflow).
The multipliers come from :func:`theory.clipping.clip_factor` and
:func:`theory.clipping.adaptive_threshold`, the same functions as the reference definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from simulations.errors import BadArgument
from simulations.layout import Layout
from theory import clipping

__all__ = ["RULES", "ClipRule", "Clipped", "norms"]

RULES = ("none", "classic", "adaptive", "layerwise", "unitwise", "value", "projection")


def norms(x: torch.Tensor) -> torch.Tensor:
    """Row norms ‖x_r‖ of an (R, P) tensor in its dtype, returned as float64.

    In float32 a norm above about 1.8e19 overflows to inf (its square does); the engine counts
    a step with a non-finite ‖g‖ as a blow-up rather than take it with a wrong factor.
    """
    return torch.linalg.vector_norm(x, dim=1).to(torch.float64)


def _group_norms(x: torch.Tensor, ids: torch.Tensor, groups: int) -> torch.Tensor:
    """Per-group norms (R, G) of an (R, P) tensor, ``ids[p]`` the group of coordinate p."""
    sq = torch.zeros(x.shape[0], groups, dtype=x.dtype, device=x.device)
    return sq.index_add_(1, ids, x.square()).sqrt().to(torch.float64)


@dataclass(frozen=True)
class Clipped:
    """g/c for a batch: either ``scale`` (R,) with g/c = scale·g, or ``direction`` (R, P).

    ``clipped`` (R,) is True where c > 1 (some coordinate or group was shrunk), and ``norm`` (R,)
    is ‖g/c‖ (float64).
    """

    scale: torch.Tensor | None
    direction: torch.Tensor | None
    clipped: torch.Tensor
    norm: torch.Tensor


@dataclass(frozen=True)
class ClipRule:
    """A clip rule with its parameters: λ (``lam``), ε (``eps``), the projection ``radius``."""

    kind: str = "classic"
    lam: float | None = None
    eps: float | None = None
    radius: float | None = None

    def __post_init__(self):
        if self.kind not in RULES:
            raise BadArgument("clip", f"must be one of {', '.join(RULES)}, got {self.kind!r}")
        needs = {"classic": ("lam",), "adaptive": ("lam", "eps"), "layerwise": ("lam", "eps"),
                 "unitwise": ("lam", "eps"), "value": ("lam",), "projection": ("radius",)}
        for name in needs.get(self.kind, ()):
            value = getattr(self, name)
            if value is None or not (0 < float(value) < math.inf):
                raise BadArgument(name, f"must satisfy 0 < {name} < inf for the {self.kind} "
                                        f"rule, got {value!r}")
            object.__setattr__(self, name, float(value))

    def describe(self) -> dict:
        """The rule as JSON-ready values."""
        return {"clip": self.kind, "lam": self.lam, "eps": self.eps, "radius": self.radius}

    def apply(
        self,
        g: torch.Tensor,
        theta: torch.Tensor,
        layout: Layout,
        theta_norm: torch.Tensor | None = None,
    ) -> Clipped:
        """g/c for gradients ``g`` (R, P) at ``theta`` (R, P); ``theta_norm`` = ‖θ‖ if known."""
        kind = self.kind
        if kind in ("none", "projection"):
            gn = norms(g)
            return Clipped(torch.ones_like(gn, dtype=g.dtype), None,
                           torch.zeros_like(gn, dtype=torch.bool), gn)
        if kind in ("classic", "adaptive"):
            gn = norms(g)
            if kind == "classic":
                threshold = self.lam
            else:
                tn = norms(theta) if theta_norm is None else theta_norm
                threshold = clipping.adaptive_threshold(tn, self.lam, self.eps)
            factor = clipping.clip_factor(gn, threshold)
            return Clipped(factor.to(g.dtype), None, factor < 1, gn * factor)
        if kind == "value":
            d = g.clamp(-self.lam, self.lam)
            return Clipped(None, d, (g.abs() > self.lam).any(1), norms(d))
        unitwise = kind == "unitwise"
        ids, groups = _ids(layout, unitwise, g.device)
        threshold = clipping.adaptive_threshold(_group_norms(theta, ids, groups), self.lam,
                                                self.eps)
        gnorms = _group_norms(g, ids, groups)
        factor = clipping.clip_factor(gnorms, threshold)  # (R, G)
        d = g * factor.to(g.dtype)[:, ids]
        finite = torch.isfinite(gnorms).all(1)  # an overflowed group norm is not a clipped step
        return Clipped(None, d, (factor < 1).any(1),
                       torch.where(finite, norms(d), torch.inf))

    def project(self, theta: torch.Tensor) -> torch.Tensor:
        """Π_K(θ) for the projection rule (the ball ‖θ‖ ≤ radius); θ unchanged otherwise."""
        if self.kind != "projection":
            return theta
        return clipping.project_ball(theta, self.radius, batch_ndim=1)


_IDS: dict[tuple, tuple[torch.Tensor, int]] = {}


def _ids(layout: Layout, unitwise: bool, device: torch.device) -> tuple[torch.Tensor, int]:
    key = (layout, unitwise, str(device))
    if key not in _IDS:
        ids = layout.group_ids(unitwise)
        _IDS[key] = (torch.tensor(ids, dtype=torch.int64, device=device), max(ids) + 1)
    return _IDS[key]
