"""Gradient norm scaling vs value clipping on an exploding regression MLP (seed 000).

The published experiment ("Findings about fixing exploding gradients with gradient clipping",
after Brownlee's Keras example): scikit-learn's
``make_regression(n_samples=1000, n_features=20, noise=0.1, random_state=1)``, first half for
training, second half for testing, targets left unscaled (their spread of ~100 is what makes
the gradients explode); MLP 20-25-1, ReLU, He-uniform initialisation of the hidden layer
(Glorot-uniform for the output, zero biases: Keras' defaults); SGD(lr 0.01, momentum 0.9),
minibatches of 32 reshuffled each epoch, 100 epochs, MSE loss. Clipping at
``lam`` in {1, 2, 4, 8, 16, 32}:

* ``norm``: classic clipping (eq. 11) of the *global* gradient norm (all parameter tensors as
  one vector; :func:`torch_impl.clip.clip_grad_norm_`, old Keras' and torch's convention);
* ``norm_per_tensor``: eq. 11 applied to each parameter tensor separately (what tf.keras'
  ``clipnorm`` does; the seed does not say which it used);
* ``value``: coordinate-wise clipping to ``[-lam, lam]`` (:func:`clip_grad_value_`);
* ``none``: no clipping, for reference.

Run with ReLU (the original) and with tanh (twice differentiable, so (A1) holds), over several
seeds (initialisation and batch order; the data set is fixed), reporting the median and range
of the final train and test MSE beside the seed's single run.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import make_regression
from torch import Tensor, nn

from torch_impl.clip import clip_grad_norm_, clip_grad_value_, get_total_norm
from torch_impl.experiments import common
from torch_impl.wrapper import ClippedOptimizer

LAMBDAS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
SEED_TABLE = {  # lam: (train MSE, test MSE), as published
    "norm": {1.0: (1.455, 17.541), 2.0: (1.131, 10.977), 4.0: (4.078, 10.146),
             8.0: (7.132, 10.738), 16.0: (22.950, 25.313), 32.0: (63.401, 87.309)},
    "value": {1.0: (22.925, 28.400), 2.0: (9.272, 12.915), 4.0: (22.944, 28.434),
              8.0: (39.256, 55.896), 16.0: (121.774, 153.598), 32.0: (546.602, 843.060)},
}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
MODE_TITLES = {
    "norm": "Gradient norm scaling, global norm",
    "norm_per_tensor": "Gradient norm scaling, per parameter tensor (tf.keras `clipnorm`)",
    "value": "Gradient value clipping",
}
Data = tuple[Tensor, Tensor, Tensor, Tensor]
NAME = "norm_vs_value"
STEM = "seed000"
"""The seed reproduced, which names the result files."""


def load_data(random_state: int = 1) -> Data:
    """``(x_train, y_train, x_test, y_test)``, 500 samples each, float32, targets unscaled."""
    x, y = make_regression(n_samples=1000, n_features=20, noise=0.1, random_state=random_state)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    return x[:500], y[:500], x[500:], y[500:]


def make_model(activation: str, seed: int) -> nn.Sequential:
    """MLP 20-25-1: He-uniform hidden weights, Glorot-uniform output, zero biases."""
    torch.manual_seed(seed)
    hidden, out = nn.Linear(20, 25), nn.Linear(25, 1)
    nn.init.kaiming_uniform_(hidden.weight, nonlinearity="relu")  # U(+-sqrt(6 / fan_in))
    nn.init.xavier_uniform_(out.weight)
    nn.init.zeros_(hidden.bias)
    nn.init.zeros_(out.bias)
    return nn.Sequential(hidden, ACTIVATIONS[activation](), out)


def clip_per_tensor_(parameters: list[Tensor], lam: float) -> Tensor:
    """Eq. 11 on each parameter tensor: ``g_l <- g_l * lam / max(||g_l||, lam)``.

    Returns the pre-clip global norm, as the other clippers do.
    """
    params = list(parameters)
    total = get_total_norm([p.grad for p in params if p.grad is not None])
    for p in params:
        clip_grad_norm_([p], lam)
    return total


def clipper_for(mode: str, lam: float) -> Callable[[Iterable[Tensor]], Tensor]:
    """The functional clipper of ``mode`` with ``lam`` bound (``none``: norm only)."""
    if mode == "norm":
        return functools.partial(clip_grad_norm_, max_norm=lam)
    if mode == "norm_per_tensor":
        return functools.partial(clip_per_tensor_, lam=lam)
    if mode == "value":
        return functools.partial(clip_grad_value_, clip_value=lam)
    return lambda params: get_total_norm([p.grad for p in params if p.grad is not None])


def mse(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Mean squared error of ``model`` on ``(x, y)``."""
    with torch.no_grad():
        return nn.functional.mse_loss(model(x), y).item()


def train_run(data: Data, activation: str, mode: str, lam: float, epochs: int,
              seed: int) -> dict[str, Any]:
    """One training run; per-epoch train/test MSE and a summary of the clipping record."""
    x_train, y_train, x_test, y_test = data
    model = make_model(activation, seed)
    optimizer = ClippedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                                 clipper_for(mode, lam))
    batches = torch.Generator().manual_seed(seed)
    train_curve, test_curve = [], []
    for _ in range(epochs):
        for idx in torch.randperm(len(x_train), generator=batches).split(32):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        train_curve.append(mse(model, x_train, y_train))
        test_curve.append(mse(model, x_test, y_test))
        if not math.isfinite(test_curve[-1]):  # diverged: the rest stays NaN
            train_curve += [math.nan] * (epochs - len(train_curve))
            test_curve += [math.nan] * (epochs - len(test_curve))
            break
    history = optimizer.history()
    pre, post = history["pre_norm"], history["post_norm"]
    return {
        "activation": activation, "mode": mode, "lam": lam, "seed": seed,
        "train_mse": train_curve[-1], "test_mse": test_curve[-1],
        "train_curve": train_curve, "test_curve": test_curve,
        "steps": len(history["pre_norm"]),
        "max_pre_norm": pre[torch.isfinite(pre)].max().item(),  # over the finite steps
        "max_post_norm": post[torch.isfinite(post)].max().item(),
        "clipped_fraction": history["clipped"].float().mean().item(),
    }


def summary(values: list[float]) -> str:
    """``median [min, max]`` of finite values; the number of diverged runs if any."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "diverged"
    text = common.fmt(float(np.median(finite)))
    if len(values) > 1:
        text += f" [{common.fmt(min(finite))}, {common.fmt(max(finite))}]"
    if len(finite) < len(values):
        text += f" ({len(values) - len(finite)} diverged)"
    return text


def select(runs: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """The runs whose fields equal ``match``."""
    return [r for r in runs if all(r[k] == v for k, v in match.items())]


def table(runs: list[dict[str, Any]], mode: str) -> str:
    """Markdown table of one mode: the seed's numbers, then ours with ReLU and with tanh."""
    seed_numbers = SEED_TABLE["norm" if mode == "norm_per_tensor" else mode]
    rows = []
    for lam in (*LAMBDAS, math.inf):
        seed_train, seed_test = seed_numbers.get(lam, ("-", "-"))
        row = ["none" if lam == math.inf else lam, seed_train, seed_test]
        for act in ACTIVATIONS:
            chosen = select(runs, activation=act, mode="none" if lam == math.inf else mode,
                            lam=lam)
            row += [summary([r["train_mse"] for r in chosen]),
                    summary([r["test_mse"] for r in chosen]),
                    f"{100 * np.mean([r['clipped_fraction'] for r in chosen]):.0f}%"]
        rows.append(row)
    headers = ["λ", "seed train", "seed test", "ReLU train", "ReLU test", "ReLU clipped",
               "tanh train", "tanh test", "tanh clipped"]
    return common.markdown_table(headers, rows)


def plot(runs: list[dict[str, Any]], mode: str, path: Path) -> None:
    """Test MSE per epoch (median over seeds), one panel per activation."""
    fig, axes = common.figure(ncols=len(ACTIVATIONS))
    for ax, act in zip(axes[0], ACTIVATIONS, strict=True):
        for lam in (*LAMBDAS, math.inf):
            chosen = select(runs, activation=act, mode="none" if lam == math.inf else mode,
                            lam=lam)
            with warnings.catch_warnings():  # epochs after every run diverged: NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                curve = np.nanmedian(np.array([r["test_curve"] for r in chosen]), axis=0)
            ax.plot(np.arange(1, len(curve) + 1), curve,
                    label="none" if lam == math.inf else f"λ={lam:g}")
        ax.set(yscale="log", xlabel="epoch", ylabel="test MSE", title=f"{mode}, {act}")
    axes[0, -1].legend(fontsize=7)
    common.save_figure(fig, path)


def main(argv: list[str]) -> int:
    """Run all settings, write ``seed000.md``, ``seed000.json`` and figures into ``--out``."""
    args = common.parse_args(NAME, __doc__.splitlines()[0], argv)
    epochs, n_seeds = (3, 1) if args.quick else (100, 5)
    common.seed_everything(args.seed)
    data = load_data()
    settings = [(act, mode, lam) for act in ACTIVATIONS for mode in MODE_TITLES
                for lam in LAMBDAS]
    settings += [(act, "none", math.inf) for act in ACTIVATIONS]
    jobs = [(*s, args.seed + k) for s in settings for k in range(n_seeds)]
    start = time.perf_counter()
    runs = [train_run(data, act, mode, lam, epochs, seed)
            for act, mode, lam, seed in common.progress(jobs, desc=NAME)]
    runtime = time.perf_counter() - start
    setting = {"experiment": NAME, "reproduces": STEM, "epochs": epochs, "seeds": n_seeds,
               "base_seed": args.seed, "quick": args.quick, "lambdas": list(LAMBDAS),
               "runtime_s": runtime}
    common.write_json(args.out / f"{STEM}.json",
                      {"setting": common.with_provenance(setting, "norm_vs_value", argv),
                       "runs": runs})
    for mode in MODE_TITLES:
        plot(runs, mode, args.out / f"{STEM}_{mode}.png")
    sections = [f"# Seed 000 reproduction{' (quick)' if args.quick else ''}\n",
                f"{epochs} epochs, {n_seeds} seed(s) from {args.seed}; final MSE as median "
                f"[min, max] over seeds; 'clipped' is the mean fraction of steps clipped. "
                f"Runtime {runtime:.0f} s.\n"]
    for mode, title in MODE_TITLES.items():
        sections += [f"## {title}\n", table(runs, mode),
                     f"\n![{mode}]({STEM}_{mode}.png)\n"]
    common.write_atomic(args.out / f"{STEM}.md", "\n".join(sections))
    print(f"{NAME}: wrote {args.out / STEM}.md ({runtime:.0f} s)")
    return 0
