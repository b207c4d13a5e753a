"""Tests of the hyperoptimizer stacks: SGD's hypergradient against the closed form
-<g_t, g_{t-1}>, the other primaries' hypergradients against central finite differences of the
one-step-truncated objective, the primaries (kappa = 0) against torch.optim, and the clipped
secondary against the seed-003 bound and against AveragedNormClipper."""

from __future__ import annotations

import pytest
import torch

from torch_impl.hyper import PRIMARIES, SGD, AdaGrad, Adam, HyperStack, RMSProp, squash
from torch_impl.stateful import AveragedNormClipper

DT = torch.float64


def make_params(seed: int = 0, batch: tuple[int, ...] = ()) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 5), (5,), (5, 2), (2,)]
    return [torch.randn(batch + s, generator=g, dtype=DT) * 0.7 for s in shapes]


def make_batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, generator=g, dtype=DT), torch.randn(8, 2, generator=g, dtype=DT))
            for _ in range(n)]


def loss_fn(params: list[torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean squared error of a 3-5-2 tanh MLP; with a leading run axis, summed over runs."""
    W, b, V, c = params
    x, y = batch
    h = torch.tanh(x @ W + b.unsqueeze(-2))
    out = h @ V + c.unsqueeze(-2)
    return ((out - y) ** 2).mean(dim=(-2, -1)).sum()


def grad_at(params: list[torch.Tensor], batch) -> list[torch.Tensor]:
    leaves = [p.detach().clone().requires_grad_() for p in params]
    return list(torch.autograd.grad(loss_fn(leaves, batch), leaves))


def dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))


def test_sgd_hypergradient_is_minus_dot_of_consecutive_gradients() -> None:
    batches = make_batches(5)
    lr, kappa = 0.3, 0.05
    stack = HyperStack(make_params(), SGD(lr=lr), kappa)
    # independent plain-SGD trajectory with the learning-rate recursion written out
    w = [p.clone() for p in make_params()]
    prev_g = None
    for batch in batches:
        g = grad_at(w, batch)
        expected = torch.zeros((), dtype=DT) if prev_g is None else -dot(g, prev_g)
        stack.step(loss_fn(stack.params, batch))
        torch.testing.assert_close(stack.last_hypergrad["lr"], expected, rtol=1e-10, atol=1e-14)
        lr = lr - kappa * expected.item()
        assert stack.hyperparameters()["lr"].item() == pytest.approx(lr, rel=1e-12)
        w = [p - lr * gp for p, gp in zip(w, g, strict=True)]
        for ours, theirs in zip(stack.params, w, strict=True):
            torch.testing.assert_close(ours.detach(), theirs, rtol=1e-10, atol=1e-12)
        prev_g = g


def finite_difference(primary, steps: int, name: str, h: float = 1e-6) -> float:
    """d L_{k+1} / d raw[name] through the k-th update only, everything before it fixed."""
    batches = make_batches(steps + 1)
    base = HyperStack(make_params(), primary, 0.0)
    for batch in batches[: steps - 1]:
        base.step(loss_fn(base.params, batch))
    snapshot = base.state_dict()
    values = []
    for sign in (1.0, -1.0):
        probe = HyperStack(make_params(), primary, 0.0)
        snap = {**snapshot, "hyper": {k: v.clone() for k, v in snapshot["hyper"].items()}}
        snap["hyper"][name] += sign * h
        probe.load_state_dict(snap)
        probe.step(loss_fn(probe.params, batches[steps - 1]))
        values.append(loss_fn(probe.params, batches[steps]).item())
    return (values[0] - values[1]) / (2 * h)


def autograd_hypergradient(primary, steps: int, name: str) -> float:
    batches = make_batches(steps + 1)
    stack = HyperStack(make_params(), primary, 0.0)
    for batch in batches:
        stack.step(loss_fn(stack.params, batch))
    return stack.last_hypergrad[name].item()


CASES = [
    (Adam(lr=0.05), "lr"), (Adam(lr=0.05), "beta1"), (Adam(lr=0.05), "beta2"),
    (AdaGrad(lr=0.2), "lr"),
    (RMSProp(lr=0.02), "lr"), (RMSProp(lr=0.02), "gamma"),
    (SGD(lr=0.2, momentum=0.5), "lr"), (SGD(lr=0.2, momentum=0.5), "momentum"),
]


@pytest.mark.parametrize(("primary", "name"), CASES,
                         ids=[f"{p.name}-{n}" for p, n in CASES])
def test_hypergradient_matches_finite_difference(primary, name: str) -> None:
    steps = 4  # the optimizer state (m, v, G, s, momentum buffer) is past its initial value
    fd = finite_difference(primary, steps, name)
    ad = autograd_hypergradient(primary, steps, name)
    assert abs(fd) > 1e-6  # a non-trivial derivative
    assert ad == pytest.approx(fd, rel=1e-5, abs=1e-9)


def quadratic_batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Large targets keep the gradients O(1), where the eps conventions do not matter."""
    return [(x, 10 * y) for x, y in make_batches(n, seed=3)]


@pytest.mark.parametrize(
    ("primary", "make_torch"),
    [
        (SGD(lr=0.01), lambda p: torch.optim.SGD(p, lr=0.01)),
        (SGD(lr=0.01, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)),
        (Adam(lr=0.01, beta1=0.8, beta2=0.99),
         lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-8)),
        (AdaGrad(lr=0.05), lambda p: torch.optim.Adagrad(
            p, lr=0.05, initial_accumulator_value=0.1, eps=1e-10)),
        (RMSProp(lr=0.01, gamma=0.9), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9,
                                                                     eps=1e-8)),
    ],
    ids=["SGD", "SGD-momentum", "Adam", "AdaGrad", "RMSProp"],
)
def test_primary_with_kappa_zero_matches_torch_optim(primary, make_torch) -> None:
    batches = quadratic_batches(6)
    stack = HyperStack(make_params(), primary, 0.0)
    leaves = [p.clone().requires_grad_() for p in make_params()]
    opt = make_torch(leaves)
    for batch in batches:
        stack.step(loss_fn(stack.params, batch))
        opt.zero_grad()
        loss_fn(leaves, batch).backward()
        opt.step()
    for ours, theirs in zip(stack.params, leaves, strict=True):
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-5, atol=1e-7)


def test_hyperparameter_parameterisations() -> None:
    adam = HyperStack(make_params(), Adam(lr=1e-3, beta1=0.9, beta2=0.999), 0.0)
    rms = HyperStack(make_params(), RMSProp(lr=0.01, gamma=0.99), 0.0)
    hp = adam.hyperparameters()
    assert hp["beta1"].item() == pytest.approx(0.9) and hp["beta2"].item() == pytest.approx(0.999)
    assert rms.hyper["lr"].item() == pytest.approx(0.1)  # raw sqrt(alpha)
    assert rms.hyperparameters()["lr"].item() == pytest.approx(0.01)
    assert squash(torch.tensor(0.0)).item() == 0.5
    with pytest.raises(ValueError, match="0 < value < 1"):
        Adam(beta1=1.0)


@pytest.mark.parametrize("per_tensor", [True, False])
def test_clipped_hypersteps_stay_below_threshold(per_tensor: bool) -> None:
    batches = make_batches(12)
    stack = HyperStack(make_params(), Adam(lr=0.05), 0.05, clip=True, per_tensor=per_tensor)
    reference = AveragedNormClipper(per_tensor=per_tensor)
    proxies = [torch.zeros((), dtype=DT) for _ in stack.hyper]
    clipped_some = False
    for batch in batches:
        stack.step(loss_fn(stack.params, batch))
        raw = stack.last_hypergrad
        assert all(torch.isfinite(g) for g in raw.values())
        for proxy, g in zip(proxies, raw.values(), strict=True):
            proxy.grad = g.clone()
        reference(proxies)
        for proxy, (name, g) in zip(proxies, stack.last_clipped.items(), strict=True):
            torch.testing.assert_close(g, proxy.grad, rtol=1e-12, atol=1e-15)
            clipped_some |= bool(g.abs() < raw[name].abs() * (1 - 1e-9))
        if per_tensor:
            for name, g in stack.last_clipped.items():
                assert g.abs() <= stack.last_threshold[name] * (1 + 1e-12)
        else:
            applied = torch.stack(list(stack.last_clipped.values())).norm()
            assert applied <= stack.last_threshold["global"] * (1 + 1e-12)
    assert clipped_some


def test_no_clip_applies_the_raw_hypergradient() -> None:
    stack = HyperStack(make_params(), RMSProp(lr=0.01), 0.1, clip=False)
    for batch in make_batches(4):
        before = {k: v.detach().clone() for k, v in stack.hyper.items()}
        stack.step(loss_fn(stack.params, batch))
        for k, v in stack.hyper.items():
            torch.testing.assert_close(v.detach(), before[k] - 0.1 * stack.last_hypergrad[k])


@pytest.mark.parametrize("name", sorted(PRIMARIES))
def test_batched_runs_equal_separate_runs(name: str) -> None:
    """Runs stacked on a leading axis (per-run kappa and clip) behave as separate stacks."""
    kappas = [0.0, 0.01, 0.3]
    clips = [False, True, True]
    primary = PRIMARIES[name]()
    batched = HyperStack(
        [torch.stack(ps) for ps in zip(*[make_params(s) for s in range(3)], strict=True)],
        primary, torch.tensor(kappas, dtype=DT), clip=torch.tensor(clips), batch_shape=(3,),
    )
    singles = [HyperStack(make_params(s), primary, k, clip=c)
               for s, (k, c) in enumerate(zip(kappas, clips, strict=True))]
    for batch in make_batches(6):
        batched.step(loss_fn(batched.params, batch))
        for single in singles:
            single.step(loss_fn(single.params, batch))
    for r, single in enumerate(singles):
        for ours, theirs in zip(batched.params, single.params, strict=True):
            torch.testing.assert_close(ours[r].detach(), theirs.detach(), rtol=1e-9, atol=1e-12)
        for k in single.hyper:
            torch.testing.assert_close(batched.hyper[k][r].detach(), single.hyper[k].detach(),
                                       rtol=1e-9, atol=1e-12)
