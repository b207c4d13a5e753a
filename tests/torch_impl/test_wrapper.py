"""attach_clipper / ClipHook: the step pre-hook clips exactly as clipping by hand before the
step, for any optimizer, until its handle is removed; closures; the bounded history; and
ClippedOptimizer on top of it (torch's Optimizer.__init__ is called)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch.utils.hooks import RemovableHandle

from tests.torch_impl.test_stateful import model_and_data
from torch_impl import DEFAULT_MAXLEN, ClipHook, ClippedOptimizer, EMAClipper, attach_clipper
from torch_impl.clip import clip_grad_norm_

OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-2),
}

CLIPPERS = {  # (clipper for the hook, the same clipping done by hand)
    "torch": (lambda: functools.partial(torch.nn.utils.clip_grad_norm_, max_norm=1.0),
              lambda: lambda params: torch.nn.utils.clip_grad_norm_(params, 1.0)),
    "ema": (lambda: EMAClipper(0.5, 0.9), lambda: EMAClipper(0.5, 0.9)),
}


def backward(model, x, y, t):
    model.zero_grad()
    torch.nn.functional.mse_loss(model(x[t]), y[t]).backward()


def same_parameters(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("clipper", CLIPPERS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_hook_equals_clipping_by_hand_until_removed(name, clipper):
    hooked, x, y = model_and_data()
    by_hand, _, _ = model_and_data()
    unclipped, _, _ = model_and_data()
    opt = OPTIMIZERS[name](hooked.parameters())
    hand_opt = OPTIMIZERS[name](by_hand.parameters())
    plain_opt = OPTIMIZERS[name](unclipped.parameters())
    handle = attach_clipper(opt, CLIPPERS[clipper][0]())
    clip_by_hand = CLIPPERS[clipper][1]()
    assert isinstance(handle, RemovableHandle)
    for t in range(12):
        if t == 6:
            handle.remove()
        for model, optimizer in ((hooked, opt), (by_hand, hand_opt), (unclipped, plain_opt)):
            backward(model, x, y, t)
            if model is by_hand and t < 6:
                clip_by_hand(list(model.parameters()))
            optimizer.step()
        assert same_parameters(hooked, by_hand)
        if t == 5:
            assert not same_parameters(hooked, unclipped)  # the clipping did change the steps
    # from t = 6 on, by_hand steps unclipped: the equality above says the hook stopped


def test_closure_gradients_are_clipped_after_the_closure_recomputes_them():
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=1.0)
    attach_clipper(opt, functools.partial(clip_grad_norm_, max_norm=2.0))
    p.grad = torch.tensor([1e3, 0.0], dtype=torch.float64)  # stale: the closure replaces it

    def closure():
        opt.zero_grad()
        loss = (torch.tensor([30.0, 40.0], dtype=torch.float64) * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 0.0
    torch.testing.assert_close(p.detach(), torch.tensor([-1.2, -1.6], dtype=torch.float64))
    assert opt.step(closure=closure).item() == pytest.approx(-100.0)


def test_lbfgs_sees_clipped_gradients_at_every_evaluation():
    p = torch.nn.Parameter(torch.tensor([5.0, -3.0], dtype=torch.float64))
    opt = torch.optim.LBFGS([p], lr=0.5, max_iter=4)
    hook = ClipHook(functools.partial(clip_grad_norm_, max_norm=0.1))
    attach_clipper(opt, hook)
    calls = []

    def closure():
        opt.zero_grad()
        loss = 50 * p.square().sum()
        loss.backward()
        calls.append(1)
        return loss

    opt.step(closure)
    h = hook.history()
    assert len(calls) == len(h["pre_norm"]) > 1
    assert (h["post_norm"] <= 0.1 * (1 + 1e-12)).all() and h["clipped"].all()


def test_history_keeps_the_latest_maxlen_records():
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = ClippedOptimizer(torch.optim.SGD([p], lr=0.1),
                           functools.partial(clip_grad_norm_, max_norm=1.0), maxlen=3)
    for n in range(1, 6):
        p.grad = torch.tensor([0.6, 0.8], dtype=torch.float64) * n
        opt.step()
    h = opt.history()
    assert opt.steps == 5
    assert h["pre_norm"].tolist() == pytest.approx([3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="maxlen"):
        ClipHook(EMAClipper(1.0, 0.5), maxlen=0)


def test_history_is_bounded_by_default_and_unbounded_on_request():
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    def identity(params):  # a clipper that leaves the gradient: the test is of the record
        return params[0].grad[0]

    bounded, unbounded = ClipHook(identity), ClipHook(identity, maxlen=None)
    steps = DEFAULT_MAXLEN + 5
    for n in range(steps):
        p.grad = torch.tensor([float(n)], dtype=torch.float64)
        bounded.clip([p])
        unbounded.clip([p])
    assert DEFAULT_MAXLEN == 10_000
    assert bounded.history()["pre_norm"].tolist() == list(range(5, steps))  # the latest
    assert unbounded.history()["pre_norm"].tolist() == list(range(steps))


def test_clipped_optimizer_calls_torchs_optimizer_init(monkeypatch):
    calls = []
    original = torch.optim.Optimizer.__init__

    def spy(self, params, defaults):
        calls.append(type(self).__name__)
        original(self, params, defaults)

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", spy)
    p = torch.nn.Parameter(torch.ones(3))
    adam = torch.optim.Adam([p], lr=0.1)
    opt = ClippedOptimizer(adam, EMAClipper(1.0, 0.5))
    assert calls == ["Adam", "ClippedOptimizer"]
    assert opt.param_groups is adam.param_groups and opt.state is adam.state
    opt.load_state_dict(opt.state_dict())  # the wrapped optimizer replaces its groups
    assert opt.param_groups is adam.param_groups and opt.state is adam.state


def test_attach_clipper_refuses_what_is_not_an_optimizer():
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.Optimizer"):
        attach_clipper(object(), EMAClipper(1.0, 0.5))
    with pytest.raises(ValueError, match="clipper must be callable"):
        attach_clipper(torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1), 3.0)


def test_public_names_import_from_the_package():
    import torch_impl
    from torch_impl import stateful, wrapper

    for name in torch_impl.__all__:
        module = stateful if name in stateful.__all__ else wrapper
        assert getattr(torch_impl, name) is getattr(module, name)
    assert set(stateful.__all__) | set(wrapper.__all__) == set(torch_impl.__all__)
