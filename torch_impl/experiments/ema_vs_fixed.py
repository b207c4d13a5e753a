"""Adam with a tuned fixed clip vs Adam behind the EMA-adaptive clipper, mnist1d (seed 001).

The published experiment ("Adaptive Gradient Clipping Experiment") gives the method, not the
setting; ours:

* data: mnist1d generated offline, ``make_dataset(get_dataset_args())`` (4000 train / 1000 test
  samples of length 40, its default seed); the last 800 training samples are the validation
  set that Optuna tunes on and that the curves show; the test set is scored once at the end;
* model: MLP 40-100-100-10, ReLU, torch's default initialisation; cross-entropy; batch 100;
* fixed clipping: classic clipping (eq. 11) of the global norm to ``clip_threshold`` in front of
  Adam (:func:`torch_impl.clip.clip_grad_norm_` in a :class:`ClippedOptimizer`);
* adaptive clipping: :class:`torch_impl.stateful.EMAClipper` (``tau_t = alpha m_t``,
  ``m_t = beta m_{t-1} + (1-beta) ||g_t||``, current norm included) in front of Adam;
* tuning: Optuna's TPE sampler (seeded), 30 trials per method, objective the validation loss
  after the per-trial budget of epochs, every trial with the same initialisation and batch
  order; then 20 epochs with the best parameters, over several seeds.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from torch_impl.clip import clip_grad_norm_
from torch_impl.experiments import common
from torch_impl.stateful import EMAClipper
from torch_impl.wrapper import ClippedOptimizer

SEED_BEST = {
    "fixed": {"lr": 0.0107, "clip_threshold": 2.38},
    "adaptive": {"lr": 0.0401, "alpha": 3.80, "beta": 0.918},
}
SPACE = {  # name: (low, high, log scale)
    "fixed": {"lr": (1e-4, 1e-1, True), "clip_threshold": (0.1, 10.0, True)},
    "adaptive": {"lr": (1e-4, 1e-1, True), "alpha": (0.5, 5.0, False),
                 "beta": (0.5, 0.999, False)},
}
Data = dict[str, Tensor]
NAME = "ema_vs_fixed"
STEM = "seed001"
"""The seed reproduced, which names the result files."""


def load_data(num_samples: int = 5000) -> Data:
    """mnist1d, generated offline: train / validation (last 20% of train) / test tensors."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    raw = make_dataset(args)
    x = torch.tensor(raw["x"], dtype=torch.float32)
    y = torch.tensor(raw["y"], dtype=torch.long)
    n_val = len(x) // 5
    return {"x_train": x[:-n_val], "y_train": y[:-n_val], "x_val": x[-n_val:],
            "y_val": y[-n_val:], "x_test": torch.tensor(raw["x_test"], dtype=torch.float32),
            "y_test": torch.tensor(raw["y_test"], dtype=torch.long)}


def make_model(seed: int) -> nn.Sequential:
    """MLP 40-100-100-10 with ReLU, torch's default initialisation under ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                         nn.Linear(100, 10))


def make_optimizer(method: str, params: dict[str, float], model: nn.Module) -> ClippedOptimizer:
    """Adam(lr) behind the fixed or the EMA-adaptive clipper."""
    adam = torch.optim.Adam(model.parameters(), lr=params["lr"])
    if method == "fixed":
        return ClippedOptimizer(adam, functools.partial(
            clip_grad_norm_, max_norm=params["clip_threshold"]))
    return ClippedOptimizer(adam, EMAClipper(params["alpha"], params["beta"]))


def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """(cross-entropy, accuracy) of ``model`` on ``(x, y)``."""
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        return loss, (logits.argmax(1) == y).float().mean().item()


def train(data: Data, method: str, params: dict[str, float], epochs: int,
          seed: int) -> dict[str, Any]:
    """Train for ``epochs``; validation loss after each epoch, final test loss and accuracy."""
    model = make_model(seed)
    optimizer = make_optimizer(method, params, model)
    batches = torch.Generator().manual_seed(seed)
    val_curve = []
    for _ in range(epochs):
        for idx in torch.randperm(len(data["x_train"]), generator=batches).split(100):
            optimizer.zero_grad()
            logits = model(data["x_train"][idx])
            nn.functional.cross_entropy(logits, data["y_train"][idx]).backward()
            optimizer.step()
        val_curve.append(evaluate(model, data["x_val"], data["y_val"])[0])
        if not math.isfinite(val_curve[-1]):
            break
    history = optimizer.history()
    test_loss, test_acc = evaluate(model, data["x_test"], data["y_test"])
    return {"val_curve": val_curve, "val_loss": val_curve[-1], "test_loss": test_loss,
            "test_accuracy": test_acc,
            "clipped_fraction": history["clipped"].float().mean().item(),
            "median_pre_norm": history["pre_norm"].median().item()}


def tune(data: Data, method: str, trials: int, epochs: int, seed: int) -> Any:
    """An Optuna study (TPE, seeded) minimising the validation loss after ``epochs``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        params = {name: trial.suggest_float(name, low, high, log=log)
                  for name, (low, high, log) in SPACE[method].items()}
        loss = train(data, method, params, epochs, seed)["val_loss"]
        return loss if math.isfinite(loss) else 1e6

    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    bar = common.progress(range(trials), desc=f"{NAME} tune {method}")
    for _ in bar:
        study.optimize(objective, n_trials=1)
    return study


def describe(params: dict[str, float]) -> str:
    """``lr=0.0107, clip_threshold=2.38`` (3 significant digits)."""
    return ", ".join(f"{k}={v:.3g}" for k, v in params.items())


def space_text(method: str) -> str:
    """The search ranges of ``method`` as text."""
    return ", ".join(f"{k} ∈ [{lo:g}, {hi:g}]{' log' if log else ''}"
                     for k, (lo, hi, log) in SPACE[method].items())


def plot(finals: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Validation loss per epoch (mean over seeds, thin lines per seed) for both methods."""
    fig, axes = common.figure()
    ax = axes[0, 0]
    for (method, runs), color in zip(finals.items(), ("C0", "C1"), strict=True):
        curves = np.array([r["val_curve"] for r in runs], dtype=float)
        epochs = np.arange(1, curves.shape[1] + 1)
        for curve in curves:
            ax.plot(epochs, curve, color=color, alpha=0.25, lw=0.8)
        ax.plot(epochs, curves.mean(0), color=color, label=f"{method} clipping (Adam)")
    ax.set(xlabel="epoch", ylabel="validation loss", title="mnist1d MLP")
    ax.legend()
    common.save_figure(fig, path)


def main(argv: list[str]) -> int:
    """Tune both methods, retrain with the best parameters, write the table and figure."""
    args = common.parse_args(NAME, __doc__.splitlines()[0], argv)
    if args.quick:
        samples, trials, tune_epochs, epochs, n_seeds = 1000, 3, 2, 3, 1
    else:
        samples, trials, tune_epochs, epochs, n_seeds = 5000, 30, 20, 20, 5
    common.seed_everything(args.seed)
    start = time.perf_counter()
    data = load_data(samples)
    studies = {m: tune(data, m, trials, tune_epochs, args.seed) for m in SPACE}
    finals = {m: [train(data, m, s.best_params, epochs, args.seed + k) for k in range(n_seeds)]
              for m, s in studies.items()}
    with_seed_params = {m: [train(data, m, SEED_BEST[m], epochs, args.seed + k)
                            for k in range(n_seeds)] for m in SPACE}
    runtime = time.perf_counter() - start
    plot(finals, args.out / f"{STEM}.png")
    setting = {"experiment": NAME, "reproduces": STEM, "samples": samples, "trials": trials,
               "tune_epochs": tune_epochs, "epochs": epochs, "seeds": n_seeds,
               "base_seed": args.seed, "quick": args.quick, "space": SPACE,
               "runtime_s": runtime}
    results = {m: {"best_params": s.best_params, "best_value": s.best_value,
                   "trials": [t.params | {"value": t.value} for t in s.trials],
                   "final": finals[m], "with_seed_params": with_seed_params[m]}
               for m, s in studies.items()}
    common.write_json(args.out / f"{STEM}.json",
                      {"setting": common.with_provenance(setting, "ema_vs_fixed", argv),
                       "results": results})
    rows = []
    for m, s in studies.items():
        runs = finals[m]
        rows.append([m, describe(SEED_BEST[m]), describe(s.best_params), space_text(m),
                     common.fmt(s.best_value),
                     common.fmt(float(np.mean([r["val_loss"] for r in runs]))),
                     common.fmt(float(np.mean([r["val_curve"][0] for r in runs]))),
                     f"{100 * np.mean([r['test_accuracy'] for r in runs]):.1f}%",
                     f"{100 * np.mean([r['clipped_fraction'] for r in runs]):.0f}%",
                     common.fmt(float(np.mean([r["val_loss"] for r in with_seed_params[m]])))])
    headers = ["method", "seed best", "our best", "search space (TPE)", "tuning val loss",
               f"val loss, epoch {epochs}", "val loss, epoch 1", "test accuracy", "clipped",
               f"val loss, epoch {epochs}, seed's params"]
    text = "\n".join([
        f"# Seed 001 reproduction{' (quick)' if args.quick else ''}\n",
        f"mnist1d ({samples} samples: {len(data['x_train'])} train, {len(data['x_val'])} "
        f"validation, {len(data['x_test'])} test), MLP 40-100-100-10 ReLU, batch 100, Adam. "
        f"Optuna TPE (seed {args.seed}), {trials} trials per method, {tune_epochs} epochs per "
        f"trial; then {epochs} epochs with the best parameters over {n_seeds} seed(s) "
        f"(means shown; 'clipped' is the fraction of steps clipped). Runtime {runtime:.0f} s.\n",
        common.markdown_table(headers, rows),
        f"\n![validation loss]({STEM}.png)\n",
    ])
    common.write_atomic(args.out / f"{STEM}.md", text)
    print(f"{NAME}: wrote {args.out / STEM}.md ({runtime:.0f} s)")
    return 0
