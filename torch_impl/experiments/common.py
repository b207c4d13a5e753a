"""Small helpers shared by the reproductions: arguments, seeding, progress, tables, figures (the
files, JSON and provenance are :mod:`theory.files` and :mod:`theory.records`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from theory import records
from theory.command import Formatter, Parser, natural
from theory.files import write_atomic
from theory.records import to_json

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
"""Where a full run writes by default: the shipped results."""

QUICK_OUT = Path("runs") / "experiments-quick"
"""Where a ``--quick`` run writes by default (relative to the working directory)."""


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The command line of one reproduction: ``--quick``, ``--out DIR`` and ``--seed N``
    (add more arguments, then :func:`parse`)."""
    result = Parser(prog=f"python -m torch_impl.experiments {name}", description=description,
                    formatter_class=Formatter)
    result.add_argument("--quick", action="store_true", help="a smoke run of under a minute")
    result.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: {DEFAULT_OUT} for a full run, "
                             f"{QUICK_OUT} for --quick)")
    result.add_argument("--seed", type=natural, default=0, help="base seed of the runs")
    return result


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``, fill in the default ``--out``; a quick run may not write into the
    shipped results (:data:`DEFAULT_OUT`), which is a usage error (exit status 2)."""
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    elif args.quick and args.out.resolve() == DEFAULT_OUT:
        parser.error(f"--quick would overwrite the shipped full results in {DEFAULT_OUT}; "
                     "choose another --out")
    return args


def parse_args(name: str, description: str, argv: list[str]) -> argparse.Namespace:
    """The common arguments only: ``parse(parser(name, description), argv)``."""
    return parse(parser(name, description), argv)


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (the runs draw from explicit generators besides) and use
    one thread, which is fastest for these tiny models."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)


def progress(iterable: Iterable, **kwargs: Any) -> Iterable:
    """``tqdm`` on a terminal, silent when stderr is piped or in CI."""
    return tqdm(iterable, disable=not sys.stderr.isatty() or bool(os.environ.get("CI")),
                **kwargs)


def write_json(path: Path, value: Any) -> None:
    """Atomically write ``value`` as JSON (NaN and infinities as null, 6 significant digits,
    which keep the files small)."""
    write_atomic(path, json.dumps(to_json(value, digits=6), indent=1))


def with_provenance(setting: dict[str, Any], name: str, argv: Sequence[str]) -> dict[str, Any]:
    """The setting plus where it came from (:func:`theory.records.provenance`) with the command
    that runs experiment ``name`` with arguments ``argv`` again
    (``python -m torch_impl.experiments NAME ARGV``)."""
    command = shlex.join(["python", "-m", "torch_impl.experiments", name, *argv])
    return {**setting, **records.provenance(device="cpu", command=command)}


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table, first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: fixed digits, scientific when large, "diverged" when not finite."""
    if x is None or not math.isfinite(x):
        return "diverged"
    return f"{x:.{digits}f}" if abs(x) < 1e5 else f"{x:.2e}"


def figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.5, height: float = 3.2):
    """A small figure on the Agg backend: ``(fig, axes)`` as ``plt.subplots`` returns them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    return fig, axes


def save_figure(fig: Any, path: Path) -> None:
    """Save ``fig`` as a small PNG, atomically, and close it."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
