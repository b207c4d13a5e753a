r"""Clip rules batched over paths: the definitions of :mod:`theory.clipping` on (R, P) tensors.

For a batch of gradients g (R, P) at iterates θ (R, P), :meth:`ClipRule.apply` returns g/c:

* ``none``: c ≡ 1;
* ``classic`` (11): g/c = g·min(1, λ/‖g‖);
* ``adaptive`` (17): g/c = g·min(1, λ·max(‖θ‖, ε)/‖g‖);
* ``layerwise`` (18): (17) per layer l with the layers' Frobenius norms ‖g_l‖, ‖θ_l‖;
* ``unitwise``: (18) per unit (each output row of a weight matrix, each bias whole), as AGC;
* ``value``: each coordinate clamped to [−λ, λ];
* ``projection`` (9): g unchanged, and the iterate projected onto the ball ‖θ‖ ≤ ``ball``
  after the step (:meth:`ClipRule.project`).

Each rule declares the parameters it takes in :data:`RULE_PARAMS` (all required); the checks here,
:class:`simulations.engine.spec.RunSpec` and the command line read them from there.

Norms are computed in the data's dtype (see :func:`norms` for float32 overflow).
The multipliers come from :func:`theory.clipping.clip_factor` and
:func:`theory.clipping.adaptive_threshold`, the same functions as the reference definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from simulations.engine.catalog import PARAMS, RULE_PARAMS, RULES
from simulations.engine.layout import Layout
from simulations.engine.params import takers
from theory import clipping
from theory.errors import BadArgument

__all__ = ["PARAMS", "RULES", "RULE_PARAMS", "ClipRule", "Clipped", "norms"]

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
    """A clip rule with its parameters (:data:`PARAMS`): λ (``lam``), ε (``eps``), the
    projection's ``ball`` radius; those the rule takes (:data:`RULE_PARAMS`) are required,
    the others must be None."""

    kind: str = "classic"
    lam: float | None = None
    eps: float | None = None
    ball: float | None = None

    def __post_init__(self):
        if self.kind not in RULES:
            raise BadArgument("clip", f"must be one of {', '.join(RULES)}, got {self.kind!r}")
        for param in PARAMS:
            value = getattr(self, param.name)
            if param in RULE_PARAMS[self.kind]:
                if value is None:
                    raise BadArgument(param.name, f"the {self.kind} rule needs it "
                                                  f"({param.expected()})")
                object.__setattr__(self, param.name, param.coerce(value))
            elif value is not None:
                raise BadArgument(param.name, f"the {self.kind} rule does not take it (only "
                                              f"{', '.join(takers(RULE_PARAMS, param.name))})")

    def to_dict(self) -> dict:
        """The rule as JSON-ready values."""
        return {"clip": self.kind, **{p.name: getattr(self, p.name) for p in PARAMS}}

    def describe(self) -> str:
        """One line, e.g. "classic clipping, λ = 1"."""
        if self.kind == "none":
            return "no clipping"
        if self.kind == "projection":
            return f"projection onto the ball ‖θ‖ ≤ {self.ball:g}"
        symbols = {"lam": "λ", "eps": "ε"}
        return f"{self.kind} clipping, " + ", ".join(
            f"{symbols[p.name]} = {getattr(self, p.name):g}" for p in RULE_PARAMS[self.kind])

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
            lam = float(self.lam)  # type: ignore[arg-type]  # declared for value
            d = g.clamp(-lam, lam)
            return Clipped(None, d, (g.abs() > lam).any(1), norms(d))
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
        """Π_K(θ) for the projection rule (the ball ‖θ‖ ≤ ball); θ unchanged otherwise."""
        if self.kind != "projection":
            return theta
        return clipping.project_ball(theta, self.ball, batch_ndim=1)


_IDS: dict[tuple, tuple[torch.Tensor, int]] = {}


def _ids(layout: Layout, unitwise: bool, device: torch.device) -> tuple[torch.Tensor, int]:
    key = (layout, unitwise, str(device))
    if key not in _IDS:
        ids = layout.group_ids(unitwise)
        _IDS[key] = (torch.tensor(ids, dtype=torch.int64, device=device), max(ids) + 1)
    return _IDS[key]
