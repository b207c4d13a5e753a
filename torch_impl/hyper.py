"""Hyperoptimizer stacks ``Primary / SGD(kappa)`` after Chandra et al. 2022.

"Gradient descent: the ultimate optimizer" (NeurIPS 2022) makes a primary optimizer's
hyperparameters ``h`` differentiable tensors: the update ``w_{t+1} = w_t - u(h, g_t, s_t)`` is
recorded with ``w_t``, ``g_t`` and the optimizer state ``s_t`` detached, so the graph reaches
back exactly one step. The next loss ``L_{t+1}(w_{t+1})`` then has the hypergradient

    dL_{t+1}/dh = <grad L_{t+1}(w_{t+1}), -du(h, g_t, s_t)/dh>,

(for SGD, ``u = alpha * g_t`` and ``dL_{t+1}/dalpha = -<g_{t+1}, g_t>``), and a secondary SGD
without momentum steps ``h <- h - kappa * dL/dh``. Optionally the secondary's gradient first
goes through seed 003's cumulative-average clipper
(:class:`torch_impl.stateful.AveragedNormClipper`), one running average per hyperparameter
(``per_tensor=True``, the seed's use) or of their global norm.

Order within :meth:`HyperStack.step`, as in Chandra et al.'s code: the secondary updates ``h``
with the hypergradient of the current loss, then the primary updates ``w`` with the new ``h``.
At the first step the weights do not depend on ``h`` yet, so the hypergradient is 0 (it still
counts as the clipper's first step, as in the seed's implementation, where it enters the
average as a zero norm). For a two-level stack no second derivatives are needed, so the loss
is differentiated without ``create_graph`` (Chandra et al. need it only for taller towers).

The primaries and their stored ("raw") parameterisations follow Chandra et al.'s code, which
is what the secondary SGD steps:

* SGD: ``w - alpha * b``, ``b = g`` or with momentum ``b_t = mu * b_{t-1} + g_t`` (``b_1 = g_1``);
  raw ``alpha`` (and ``mu`` when ``momentum != 0``).
* Adam: ``m_t = b1 m_{t-1} + (1-b1) g``, ``v_t = b2 v_{t-1} + (1-b2) g^2`` (``m_0 = 0``,
  ``v_0 = eps``), ``w - alpha * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m_t / (1 - b1^t)``,
  ``v_hat = v_t / (1 - b2^t)``; raw ``alpha``, and ``b = (tanh(r) + 1) / 2`` for ``b1``, ``b2``.
* AdaGrad: ``G_t = G_{t-1} + g^2`` (``G_0 = 0.1``), ``w - alpha * g / sqrt(G_t + eps)``;
  raw ``alpha``.
* RMSProp: ``s_t = gamma s_{t-1} + (1-gamma) g^2`` (``s_0 = 0``), ``w - alpha g / sqrt(s_t + eps)``;
  ``alpha = r^2`` and ``gamma = (tanh(r) + 1) / 2``.

Batched runs: hyperparameters have shape ``batch_shape`` (``()`` for one model, ``(R,)`` for
``R`` independent runs whose weights carry a leading run axis); each run gets its own
hypergradient, clipping average and secondary step, with ``kappa`` and ``clip`` per run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from torch_impl.stateful import averaged_clip_factor

Tensor = torch.Tensor


def squash(raw: Tensor) -> Tensor:
    """``(tanh(r) + 1) / 2``, mapping the real line onto (0, 1) (Chandra et al.'s ``clamp``)."""
    return (raw.tanh() + 1.0) / 2.0


def unsquash(value: float) -> float:
    """Inverse of :func:`squash`: ``atanh(2 y - 1)`` for ``0 < y < 1``."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"a squashed hyperparameter must satisfy 0 < value < 1, got {value!r}")
    return math.atanh(2.0 * value - 1.0)


def _expand(h: Tensor, p: Tensor) -> Tensor:
    """Reshape a per-run hyperparameter to broadcast against a weight tensor with run axes."""
    return h.reshape(tuple(h.shape) + (1,) * (p.ndim - h.ndim))


class SGD:
    """Primary SGD: ``w - alpha * b``, ``b = g`` (or heavy-ball ``b_t = mu b_{t-1} + g_t``)."""

    name = "SGD"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0) -> None:
        self.raw = {"lr": float(lr)}
        if momentum != 0.0:
            self.raw["momentum"] = float(momentum)

    def values(self, raw: dict[str, Tensor]) -> dict[str, Tensor]:
        return dict(raw)

    def init_state(self, p: Tensor) -> dict[str, Tensor]:
        return {}

    def update(self, h: dict[str, Tensor], p: Tensor, g: Tensor, state: dict, t: int):
        direction = g
        if "momentum" in h:
            if "buf" in state:
                direction = _expand(h["momentum"], p) * state["buf"] + g
            state = {"buf": direction}
        return p - _expand(h["lr"], p) * direction, state


class Adam:
    """Primary Adam with ``v_0 = eps`` and bias correction; ``b1``, ``b2`` stored squashed."""

    name = "Adam"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.raw = {"lr": float(lr), "beta1": unsquash(beta1), "beta2": unsquash(beta2)}
        self.eps = eps

    def values(self, raw: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"lr": raw["lr"], "beta1": squash(raw["beta1"]), "beta2": squash(raw["beta2"])}

    def init_state(self, p: Tensor) -> dict[str, Tensor]:
        return {"m": torch.zeros_like(p), "v": torch.full_like(p, self.eps)}

    def update(self, h: dict[str, Tensor], p: Tensor, g: Tensor, state: dict, t: int):
        b1, b2 = _expand(h["beta1"], p), _expand(h["beta2"], p)
        m = b1 * state["m"] + (1.0 - b1) * g
        v = b2 * state["v"] + (1.0 - b2) * g * g
        m_hat = m / (1.0 - b1**t)
        v_hat = v / (1.0 - b2**t)
        return p - _expand(h["lr"], p) * m_hat / (v_hat.sqrt() + self.eps), {"m": m, "v": v}


class AdaGrad:
    """Primary AdaGrad with accumulator ``G_0 = 0.1``: ``w - alpha g / sqrt(G_t + eps)``."""

    name = "AdaGrad"

    def __init__(self, lr: float = 0.01, eps: float = 1e-10,
                 initial_accumulator: float = 0.1) -> None:
        self.raw = {"lr": float(lr)}
        self.eps = eps
        self.initial_accumulator = initial_accumulator

    def values(self, raw: dict[str, Tensor]) -> dict[str, Tensor]:
        return dict(raw)

    def init_state(self, p: Tensor) -> dict[str, Tensor]:
        return {"G": torch.full_like(p, self.initial_accumulator)}

    def update(self, h: dict[str, Tensor], p: Tensor, g: Tensor, state: dict, t: int):
        G = state["G"] + g * g
        return p - _expand(h["lr"], p) * g / (G + self.eps).sqrt(), {"G": G}


class RMSProp:
    """Primary RMSProp: ``w - alpha g / sqrt(s_t + eps)``; ``alpha = r^2``, ``gamma`` squashed."""

    name = "RMSProp"

    def __init__(self, lr: float = 0.01, gamma: float = 0.99, eps: float = 1e-8) -> None:
        if lr <= 0:
            raise ValueError(f"lr must satisfy lr > 0, got {lr!r}")
        self.raw = {"lr": math.sqrt(lr), "gamma": unsquash(gamma)}
        self.eps = eps

    def values(self, raw: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"lr": raw["lr"].square(), "gamma": squash(raw["gamma"])}

    def init_state(self, p: Tensor) -> dict[str, Tensor]:
        return {"s": torch.zeros_like(p)}

    def update(self, h: dict[str, Tensor], p: Tensor, g: Tensor, state: dict, t: int):
        gamma = _expand(h["gamma"], p)
        s = gamma * state["s"] + (1.0 - gamma) * g * g
        return p - _expand(h["lr"], p) * g / (s + self.eps).sqrt(), {"s": s}


PRIMARIES = {"SGD": SGD, "Adam": Adam, "AdaGrad": AdaGrad, "RMSProp": RMSProp}


class HyperStack:
    """``primary / SGD(kappa)``, the secondary optionally clipped by seed 003's averaged norm.

    ``params``: the initial weights (copied); the current weights are :attr:`params`, to be
    used in the forward pass (e.g. with ``torch.func.functional_call``). Each :meth:`step` takes
    the loss at :attr:`params` and advances hyperparameters and weights (module docstring).
    ``kappa`` and ``clip`` are scalars or tensors of ``batch_shape`` (per run).

    After a step: ``last_hypergrad`` (pre-clip ``dL/dh_raw`` per hyperparameter),
    ``last_clipped`` (what the secondary applied, ``h <- h - kappa * last_clipped``) and
    ``last_threshold`` (the clipper's ``theta_t``, per hyperparameter, or ``"global"``).
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        primary: SGD | Adam | AdaGrad | RMSProp,
        kappa: float | Tensor,
        *,
        clip: bool | Tensor = False,
        per_tensor: bool = True,
        batch_shape: tuple[int, ...] = (),
    ) -> None:
        self.primary = primary
        self.batch_shape = tuple(batch_shape)
        like = params[0]
        self.kappa = torch.as_tensor(kappa, dtype=like.dtype, device=like.device)
        self.clip = torch.as_tensor(clip, device=like.device)
        self.per_tensor = per_tensor
        self.params = [p.detach().clone().requires_grad_() for p in params]
        self.hyper = {
            name: torch.full(self.batch_shape, raw, dtype=like.dtype, device=like.device)
            .requires_grad_()
            for name, raw in primary.raw.items()
        }
        self.state = [primary.init_state(p.detach()) for p in self.params]
        keys = list(self.hyper) if per_tensor else ["global"]
        self.means = {k: torch.zeros(self.batch_shape, dtype=like.dtype, device=like.device)
                      for k in keys}
        self.t = 0
        self.last_hypergrad: dict[str, Tensor] = {}
        self.last_clipped: dict[str, Tensor] = {}
        self.last_threshold: dict[str, Tensor] = {}

    def hyperparameters(self) -> dict[str, Tensor]:
        """The primary's current hyperparameters in their natural scale (detached)."""
        with torch.no_grad():
            return {k: v.detach() for k, v in self.primary.values(self.hyper).items()}

    def _clip(self, grads: dict[str, Tensor]) -> dict[str, Tensor]:
        """The seed-003 averaged-norm clip of the hypergradients, where ``self.clip`` is on."""
        if self.per_tensor:
            norms = {k: g.abs() for k, g in grads.items()}  # hyperparameters are scalars per run
        else:
            total = torch.stack([g.square() for g in grads.values()]).sum(0).sqrt()
            norms = {"global": total}
        factors = {}
        for key, grad_norm in norms.items():
            factor, threshold, self.means[key] = averaged_clip_factor(
                grad_norm, self.means[key], self.t
            )
            factors[key] = torch.where(self.clip, factor, torch.ones_like(factor))
            self.last_threshold[key] = threshold
        return {k: g * factors[k if self.per_tensor else "global"] for k, g in grads.items()}

    def step(self, loss: Tensor) -> None:
        """Secondary step on ``h`` with ``dloss/dh``, then primary step on ``w`` with new ``h``.

        ``loss`` is the (for batched runs: summed over runs) loss at :attr:`params`.
        """
        self.t += 1
        names = list(self.hyper)
        inputs = self.params + [self.hyper[k] for k in names]
        grads = [torch.zeros_like(x) if g is None else g for x, g in zip(
            inputs, torch.autograd.grad(loss, inputs, allow_unused=True), strict=True)]
        weight_grads = grads[: len(self.params)]
        self.last_hypergrad = dict(zip(names, grads[len(self.params):], strict=True))
        with torch.no_grad():
            self.last_clipped = self._clip(self.last_hypergrad)
            new_hyper = {k: self.hyper[k] - self.kappa * self.last_clipped[k] for k in names}
        self.hyper = {k: v.requires_grad_() for k, v in new_hyper.items()}
        values = self.primary.values(self.hyper)
        new_params, new_state = [], []
        for p, g, state in zip(self.params, weight_grads, self.state, strict=True):
            detached = {k: v.detach() for k, v in state.items()}
            p_new, s_new = self.primary.update(values, p.detach(), g.detach(), detached, self.t)
            new_params.append(p_new)
            new_state.append(s_new)
        self.params, self.state = new_params, new_state

    def state_dict(self) -> dict:
        """A detached snapshot: weights, raw hyperparameters, primary state, clip averages, t.

        Loading it drops the one-step graph, so the first hypergradient after a load is 0.
        """
        return {
            "params": [p.detach().clone() for p in self.params],
            "hyper": {k: v.detach().clone() for k, v in self.hyper.items()},
            "state": [{k: v.detach().clone() for k, v in s.items()} for s in self.state],
            "means": {k: v.clone() for k, v in self.means.items()},
            "t": self.t,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` snapshot."""
        self.params = [p.clone().requires_grad_() for p in state["params"]]
        self.hyper = {k: v.clone().requires_grad_() for k, v in state["hyper"].items()}
        self.state = [{k: v.clone() for k, v in s.items()} for s in state["state"]]
        self.means = {k: v.clone() for k, v in state["means"].items()}
        self.t = int(state["t"])
