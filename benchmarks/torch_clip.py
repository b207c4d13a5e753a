"""The drop-in ``torch_impl.clip.clip_grad_norm_`` against ``torch.nn.utils.clip_grad_norm_``:

    python -m benchmarks.torch_clip [--counts 10 100 1000] [--width 128] [--rounds 15]
                                    [--threads N] [--device cpu]

For each count n: n parameter tensors shaped like an MLP's, ``(width, width)`` weights and
``(width,)`` biases in turn, with random float32 gradients; both clippers run on the same
gradients with ``max_norm = 1`` (default arguments otherwise: ``foreach=None``, which takes
the fused ``_foreach`` kernels). Each round times a block of calls of one clipper, then of
the other (the order alternates round by round, so drift in the machine's load falls on
both); the figures are the medians over rounds of the time per call, their ratio, and the
range of the per-round ratios. Before timing, both are run in float64 on mixed shapes and
the total norms compared (relative 1e-12), so the timed code is the code that agrees.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from benchmarks.cpu import cpu_name
from torch_impl.clip import clip_grad_norm_

Clipper = Callable[..., torch.Tensor]
CLIPPERS: dict[str, Clipper] = {"ours": clip_grad_norm_, "torch": torch.nn.utils.clip_grad_norm_}


def parameters(count: int, width: int, dtype: torch.dtype, device: str) -> list[torch.Tensor]:
    """``count`` tensors, ``(width, width)`` and ``(width,)`` in turn, with random gradients."""
    gen = torch.Generator().manual_seed(count)
    params = []
    for i in range(count):
        shape = (width, width) if i % 2 == 0 else (width,)
        p = torch.zeros(shape, dtype=dtype, device=device, requires_grad=True)
        p.grad = torch.randn(shape, generator=gen, dtype=dtype).to(device)
        params.append(p)
    return params


def check(device: str) -> None:
    """Both clippers' total norms agree to 1e-12 in float64 (the timings compare like with
    like)."""
    norms = [CLIPPERS[name](parameters(7, 5, torch.float64, device), 1.0) for name in CLIPPERS]
    torch.testing.assert_close(norms[0], norms[1], rtol=1e-12, atol=0)


def block(clipper: Clipper, params: list[torch.Tensor], reps: int, device: str) -> float:
    """Seconds per call over ``reps`` calls (synchronised on a GPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        clipper(params, 1.0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


def measure(count: int, width: int, rounds: int, device: str) -> dict[str, float]:
    """Median seconds per call of each clipper, their ratio and the per-round ratios' range."""
    params = parameters(count, width, torch.float32, device)
    reps = max(5, 3000 // count)
    for clipper in CLIPPERS.values():  # warm-up
        block(clipper, params, reps, device)
    times: dict[str, list[float]] = {name: [] for name in CLIPPERS}
    for r in range(rounds):
        order = list(CLIPPERS) if r % 2 == 0 else list(CLIPPERS)[::-1]
        for name in order:
            times[name].append(block(CLIPPERS[name], params, reps, device))
    ratios = [a / b for a, b in zip(times["ours"], times["torch"], strict=True)]
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["torch"])
    return {"ours": ours, "torch": theirs, "ratio": ours / theirs,
            "low": min(ratios), "high": max(ratios), "reps": reps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's intra-op threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    check(args.device)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    print(f"# {where}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), width {args.width}, float32, "
          f"{args.rounds} rounds, load {os.getloadavg()}")
    print("| tensors | elements | ours (µs/call) | torch (µs/call) | ours / torch | "
          "per-round range |")
    print("|---|---|---|---|---|---|")
    for count in args.counts:
        m = measure(count, args.width, args.rounds, args.device)
        elements = sum(args.width ** (2 if i % 2 == 0 else 1) for i in range(count))
        print(f"| {count} | {elements:,} | {m['ours'] * 1e6:.1f} | {m['torch'] * 1e6:.1f} | "
              f"{m['ratio']:.3f} | {m['low']:.2f}–{m['high']:.2f} |", flush=True)
    print(f"# load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
