"""Averaged-norm clipping of the secondary SGD in hyperoptimizer stacks (seed 003).

The seed (Huang, Bannerman, Savidge, Chen, "ML and Optimization: project report") trains an MLP
(one tanh hidden layer of 128, batch 256) on MNIST with the stacks SGD/SGD, Adam/SGD,
AdaGrad/SGD and RMSProp/SGD of Chandra et al. 2022 (:mod:`torch_impl.hyper`), over a grid of
secondary learning rates ``kappa``, with and without its cumulative-average clipping of the
hypergradients (:class:`torch_impl.stateful.AveragedNormClipper`), 3 trials each, and bolds
the rows where clipping lowers the mean test error by at least 1 point.

Here MNIST cannot be downloaded, so the data are mnist1d (40 inputs, 10 classes), generated
offline with ``mnist1d.data.make_dataset``: 60,000 training and 10,000 test samples, so that an
epoch has the original's ceil(60,000 / 256) = 235 steps (the last batch has 96 samples). The
grids, epochs (30 for SGD/SGD and AdaGrad/SGD, 5 for Adam/SGD and RMSProp/SGD), primary
defaults and 3 seeds are the seed's; ``kappa = 0`` (the primary alone) is added as a baseline.
All runs of one stack (kappas x {off, on} x seeds) are trained at once as a batch of
independent networks; a seed fixes the initialisation and the batch order, shared by all kappas
and both clip settings. A run whose training loss turns NaN/inf (or whose weights do) counts as
diverged, with 90% test error (chance). The comparison is of the pattern: in which rows
clipping lowers the error by more than 1 point, ours against the seed's bold rows.
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from torch_impl.experiments import common
from torch_impl.experiments.common import (
    figure,
    markdown_table,
    progress,
    save_figure,
    seed_everything,
    with_provenance,
    write_atomic,
    write_json,
)
from torch_impl.hyper import PRIMARIES, HyperStack

NAME = "hyperopt_stacks"
STEM = "seed003"
"""The seed reproduced, which names the result files."""

CHANCE_ERROR = 90.0
"""Test error (%) charged to a diverged run."""

HELPS = 1.0
"""Clipping "helps" in a row when it lowers the mean test error by more than this (points)."""

# The seed's Tables 1-4 (MNIST): kappa, mean test error (%) without and with clipping, bold.
SEED_TABLES: dict[str, dict] = {
    "SGD": {"epochs": 30, "baseline": 8.96, "rows": [
        (0.01, 4.90, 5.06, False), (0.05, 6.18, 6.04, False), (0.1, 6.97, 6.68, False),
        (0.5, 7.01, 7.27, False), (1, 6.78, 6.91, False), (5, 5.31, 5.97, False),
        (10, 4.72, 5.20, False), (50, 7.81, 3.91, True), (75, 38.05, 15.92, True),
        (100, 25.26, 13.01, True), (250, 22.75, 40.09, False), (500, 70.28, 72.26, False),
        (1000, 80.43, 58.04, True)]},
    "Adam": {"epochs": 5, "baseline": 4.63, "rows": [
        (1e-5, 3.14, 3.23, False), (5e-5, 3.09, 3.21, False), (1e-4, 3.05, 3.06, False),
        (5e-4, 3.59, 3.20, False), (1e-3, 4.71, 3.35, True), (5e-3, 35.89, 16.6, True),
        (1e-2, 79.57, 23.2, True), (5e-2, 86.8, 84.27, True), (1e-1, 76.17, 86.44, False),
        (5e-1, 83.16, 82.36, False)]},
    "AdaGrad": {"epochs": 30, "baseline": 7.38, "rows": [
        (0.01, 6.92, 6.71, False), (0.05, 7.02, 7.16, False), (0.1, 6.75, 7.04, False),
        (0.5, 5.70, 5.99, False), (1, 7.86, 5.19, True), (2.5, 7.34, 4.11, True),
        (5, 57.91, 3.49, True), (7.5, 36.62, 30.33, True), (10, 27.08, 49.9, False),
        (50, 64.51, 20.79, True), (100, 90.19, 49.04, True)]},
    "RMSProp": {"epochs": 5, "baseline": 3.91, "rows": [
        (1e-5, 4.43, 4.26, False), (5e-5, 3.47, 3.84, False), (1e-4, 3.36, 3.55, False),
        (5e-4, 4.26, 3.75, False), (1e-3, 5.16, 4.86, False), (5e-3, 6.16, 6.12, False),
        (1e-2, 6.36, 6.52, False), (2.5e-2, 88.80, 6.14, True), (5e-2, 90.66, 9.72, True),
        (7.5e-2, 90.03, 90.03, False), (1e-1, 89.17, 64.56, True), (5e-1, 90.2, 90.02, False)]},
}


@dataclass
class Setting:
    """Everything a run depends on (written into the results)."""

    n_train: int = 60_000
    n_test: int = 10_000
    batch_size: int = 256
    hidden: int = 128
    seeds: int = 3
    base_seed: int = 0
    workers: int = 2
    max_epochs: int | None = None
    epochs: dict[str, int] = field(
        default_factory=lambda: {k: v["epochs"] for k, v in SEED_TABLES.items()})
    kappas: dict[str, list[float]] = field(
        default_factory=lambda: {k: [0.0] + [r[0] for r in v["rows"]]
                                 for k, v in SEED_TABLES.items()})
    dataset: str = "mnist1d (make_dataset, default args, seed 42)"

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    def describe(self) -> str:
        """The data, model, batching and seeds in one line of text."""
        return (f"{self.dataset}, {self.n_train} training / {self.n_test} test samples, "
                f"MLP 40-{self.hidden} (tanh)-10, batch {self.batch_size} "
                f"({self.steps_per_epoch} steps per epoch), {self.seeds} seeds from "
                f"{self.base_seed}")

    def to_dict(self) -> dict:
        """Every field, as a dict (what the results file records)."""
        return asdict(self)


def quick_setting(base_seed: int = 0) -> Setting:
    """A smoke run: 2,560 training samples (10 steps/epoch), 2 epochs, 3 kappas, 2 seeds."""
    setting = Setting(n_train=2_560, n_test=500, seeds=2, base_seed=base_seed, workers=1)
    setting.epochs = {k: 2 for k in SEED_TABLES}
    setting.kappas = {k: [v["rows"][i][0] for i in (0, len(v["rows"]) // 2, -1)]
                      for k, v in SEED_TABLES.items()}
    return setting


def load_data(n_train: int, n_test: int) -> tuple[torch.Tensor, ...]:
    """mnist1d with ``n_train + n_test`` samples (float32 inputs, int64 labels)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    total = n_train + n_test
    args.num_samples = total + (-total) % 10  # make_dataset draws num_samples // 10 per class
    args.train_split = n_train / args.num_samples
    data = make_dataset(args)
    x, y = torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"])
    xt, yt = torch.tensor(data["x_test"], dtype=torch.float32), torch.tensor(data["y_test"])
    return x[:n_train], y[:n_train], xt[:n_test], yt[:n_test]


def init_mlp(generator: torch.Generator, n_in: int, hidden: int, n_out: int) -> list[torch.Tensor]:
    """``nn.Linear``'s default initialisation: weights and biases ``U(-1/sqrt(fan_in), ...)``."""
    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        return (torch.rand(shape, generator=generator) * 2 - 1) / math.sqrt(fan_in)
    return [uniform((n_in, hidden), n_in), uniform((1, hidden), n_in),
            uniform((hidden, n_out), hidden), uniform((1, n_out), hidden)]


def forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of the runs' MLPs ``tanh(x W1 + b1) W2 + b2``; weights have a leading run axis."""
    w1, b1, w2, b2 = params
    return torch.tanh(x @ w1 + b1) @ w2 + b2


def test_errors(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                chunk: int = 8) -> torch.Tensor:
    """Test error (%) of each run, evaluated a few runs at a time."""
    errors = []
    with torch.no_grad():
        for start in range(0, params[0].shape[0], chunk):
            part = [p[start:start + chunk] for p in params]
            wrong = forward(part, x).argmax(-1) != y
            errors.append(100.0 * wrong.float().mean(-1))
    return torch.cat(errors)


def epochs_of(name: str, setting: Setting) -> int:
    """The stack's epochs, capped at ``setting.max_epochs`` when that is set."""
    epochs = setting.epochs[name]
    return epochs if setting.max_epochs is None else min(epochs, setting.max_epochs)


def train_stack(name: str, setting: Setting, data: tuple[torch.Tensor, ...]) -> dict:
    """Train all runs of one stack; errors and flags have shape (kappas, 2 [off, on], seeds).

    Runs in one thread (the runs are already batched); several stacks may run in parallel.
    """
    torch.set_num_threads(1)
    start = time.perf_counter()
    x, y, xt, yt = data
    kappas, seeds, batch = setting.kappas[name], setting.seeds, setting.batch_size
    generators = [torch.Generator().manual_seed(setting.base_seed + s) for s in range(seeds)]
    inits = [init_mlp(g, x.shape[1], setting.hidden, 10) for g in generators]
    shape = (len(kappas), 2, seeds)
    run_kappa = torch.tensor(kappas).reshape(-1, 1, 1).expand(shape).reshape(-1)
    run_clip = torch.tensor([False, True]).reshape(1, 2, 1).expand(shape).reshape(-1)
    run_seed = torch.arange(seeds).reshape(1, 1, -1).expand(shape).reshape(-1)
    params = [torch.stack(ps)[run_seed] for ps in zip(*inits, strict=True)]
    stack = HyperStack(params, PRIMARIES[name](), run_kappa, clip=run_clip,
                       batch_shape=(len(run_seed),))
    finite = torch.ones(len(run_seed), dtype=torch.bool)
    steps = epochs_of(name, setting) * setting.steps_per_epoch
    bar = progress(range(steps), desc=f"{name}/SGD", leave=False)
    order = torch.empty(0, dtype=torch.int64)  # drawn at the first step of each epoch
    for step in bar:
        position = step % setting.steps_per_epoch
        if position == 0:
            order = torch.stack([torch.randperm(len(y), generator=g) for g in generators])
        idx = order[:, position * batch:(position + 1) * batch][run_seed]
        logits = forward(stack.params, x[idx])
        losses = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="none")
        losses = losses.reshape(idx.shape).mean(-1)
        finite &= torch.isfinite(losses)
        stack.step(losses.sum())
    weights = [p.detach() for p in stack.params]
    finite &= torch.stack([torch.isfinite(p).flatten(1).all(1) for p in weights]).all(0)
    errors = torch.where(finite, test_errors(weights, xt, yt), torch.tensor(CHANCE_ERROR))
    hyper = {k: v.reshape(shape).tolist() for k, v in stack.hyperparameters().items()}
    return {"kappas": kappas, "epochs": epochs_of(name, setting), "runs": len(run_seed),
            "seconds": round(time.perf_counter() - start, 1),
            "errors": errors.reshape(shape).tolist(),
            "diverged": (~finite).reshape(shape).tolist(), "final_hyperparameters": hyper}


def helps(no_clip: float, clip: float) -> bool:
    """Clipping lowers the error by more than :data:`HELPS` points."""
    return no_clip - clip > HELPS


def summarise(name: str, result: dict) -> list[dict]:
    """One row per kappa: our means and divergence counts beside the seed's numbers."""
    seed_rows = {r[0]: r for r in SEED_TABLES[name]["rows"]}
    rows = []
    errors, diverged = np.array(result["errors"]), np.array(result["diverged"])
    for i, kappa in enumerate(result["kappas"]):
        ours = errors[i].mean(-1).tolist()
        row = {"kappa": kappa, "ours": ours, "diverged": diverged[i].sum(-1).tolist(),
               "ours_helps": helps(*ours), "seed": None, "seed_helps": None, "agree": None}
        if kappa in seed_rows:
            _, off, on, bold = seed_rows[kappa]
            row.update(seed=[off, on], seed_helps=bold, agree=helps(*ours) == bold)
        rows.append(row)
    return rows


def _cell(error: float, diverged: int, seeds: int, bold: bool) -> str:
    text = f"{error:.2f}"
    if diverged:
        text += f" ({diverged}/{seeds} div.)"
    return f"**{text}**" if bold else text


def _kappa(kappa: float) -> str:
    return "0 (primary alone)" if kappa == 0 else f"{kappa:g}"


def render(summary: dict[str, list[dict]], setting: Setting, seconds: float,
           meta: dict) -> str:
    """The Markdown report: one table per stack and the agreement counts."""
    agree = sum(r["agree"] for rows in summary.values() for r in rows if r["agree"] is not None)
    total = sum(r["agree"] is not None for rows in summary.values() for r in rows)
    lines = [
        "# Seed 003: averaged-norm clipping in hyperoptimizer stacks",
        "",
        f"Ours: {setting.describe()}, float32, {seconds:.0f} s wall time ({setting.workers} worker "
        "process(es), one thread each). "
        "Seed: MNIST, MLP 784-128-10 (its Tables 1-4). Mean test error (%) over the seeds, "
        f"without / with clipping; **bold** where clipping lowers it by more than {HELPS:g} "
        f"point; diverged runs count as {CHANCE_ERROR:g}% and are marked (k/n div.).",
        "",
        f"**Rows where our pattern (clipping helps by > {HELPS:g} point, or not) agrees with the "
        f"seed's: {agree} of {total}.**",
        "",
    ]
    seeds = setting.seeds
    for name, rows in summary.items():
        epochs, theirs = epochs_of(name, setting), SEED_TABLES[name]["epochs"]
        cut = "" if epochs == theirs else f" (the seed: {theirs})"
        lines += [f"## {name} / SGD(kappa), {epochs} epochs{cut}", ""]
        table = []
        for r in rows:
            seed_cells = ["", "", ""]
            if r["seed"] is not None:
                seed_cells = [_cell(r["seed"][0], 0, seeds, r["seed_helps"]),
                              _cell(r["seed"][1], 0, seeds, r["seed_helps"]),
                              "yes" if r["agree"] else "no"]
            elif r["kappa"] == 0:
                seed_cells = [f"{SEED_TABLES[name]['baseline']:.2f}", "", ""]
            table.append([_kappa(r["kappa"]),
                          _cell(r["ours"][0], r["diverged"][0], seeds, r["ours_helps"]),
                          _cell(r["ours"][1], r["diverged"][1], seeds, r["ours_helps"]),
                          seed_cells[0], seed_cells[1], seed_cells[2]])
        n_agree = sum(bool(r["agree"]) for r in rows)
        n_rows = sum(r["agree"] is not None for r in rows)
        lines += [markdown_table(["kappa", "ours: no clip", "ours: clip", "seed: no clip",
                                  "seed: clip", "same pattern"], table),
                  f"Agreement: {n_agree} of {n_rows}.", ""]
    lines += ["## Setting", "", "```", *(f"{k}: {v}" for k, v in meta.items()), "```", ""]
    return "\n".join(lines)


def plot(summary: dict[str, list[dict]], path) -> None:
    """Test error against kappa per stack: ours (solid) and the seed's (dashed)."""
    fig, axes = figure(2, 2)
    for ax, (name, rows) in zip(axes.flat, summary.items(), strict=False):
        rows = [r for r in rows if r["kappa"] > 0]
        kappas = [r["kappa"] for r in rows]
        for j, (label, colour) in enumerate([("no clip", "C3"), ("clip", "C0")]):
            ax.plot(kappas, [r["ours"][j] for r in rows], "o-", color=colour,
                    label=f"ours, {label}")
            seed = [(r["kappa"], r["seed"][j]) for r in rows if r["seed"] is not None]
            if seed:
                ax.plot(*zip(*seed, strict=True), "s--", color=colour, alpha=0.5,
                        label=f"seed, {label}")
        ax.set_xscale("log")
        ax.set_title(f"{name} / SGD(kappa)")
        ax.set_xlabel("secondary learning rate kappa")
        ax.set_ylabel("test error (%)")
    axes.flat[0].legend(fontsize=7)
    save_figure(fig, path)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The common arguments (:func:`common.parser`) and ``--max-epochs``, ``--workers``."""
    parser = common.parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="cap every stack's epochs (default: the seed's 30 or 5)")
    parser.add_argument("--workers", type=int, default=2,
                        help="stacks trained in parallel processes (default 2)")
    args = common.parse(parser, argv)
    if args.max_epochs is not None and args.max_epochs < 1:
        parser.error(f"--max-epochs must be >= 1, got {args.max_epochs}")
    return args


def main(argv: list[str]) -> int:
    """``python -m torch_impl.experiments hyperopt_stacks [--quick] [--out DIR] [--seed N]
    [--max-epochs N] [--workers N]``."""
    args = parse_args(argv)
    setting = quick_setting(args.seed) if args.quick else Setting(base_seed=args.seed)
    setting.max_epochs = args.max_epochs if not args.quick else None
    setting.workers = 1 if args.quick else max(1, args.workers)
    seed_everything(args.seed)
    start = time.perf_counter()
    data = load_data(setting.n_train, setting.n_test)
    names = list(SEED_TABLES)
    if setting.workers == 1:
        results = {name: train_stack(name, setting, data) for name in names}
    else:
        # the two long stacks first, so that each worker gets one long and one short
        order = sorted(names, key=lambda n: -epochs_of(n, setting))
        with ProcessPoolExecutor(setting.workers) as pool:
            futures = {n: pool.submit(train_stack, n, setting, data) for n in order}
            results = {n: futures[n].result() for n in names}
    for name, result in results.items():
        print(f"{name}/SGD: {result['runs']} runs, {result['epochs']} epochs, "
              f"{result['seconds']:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    summary = {name: summarise(name, result) for name, result in results.items()}
    meta = with_provenance({**setting.to_dict(), "quick": args.quick, "seconds": round(seconds, 1)},
                      "hyperopt_stacks", argv)
    meta.pop("kappas")
    write_atomic(args.out / f"{STEM}.md", render(summary, setting, seconds, meta))
    write_json(args.out / f"{STEM}.json",
               {"setting": {**meta, "kappas": setting.kappas}, "runs": results,
                "summary": summary})
    plot(summary, args.out / f"{STEM}.png")
    print(f"{NAME}: wrote {args.out / STEM}.md, .json, .png ({seconds:.0f} s)")
    return 0
