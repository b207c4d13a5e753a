r"""Exact probabilities of the simple symmetric walk S_s = Σ_{t≤s} ε_t, ε_t = ±1 with
probability 1/2 each: the quadratic with the two-point law ±c under classic clipping λ = 1 and
a(t) = 1 moves exactly so (|g| = |θ − y| > 1 whenever c > 1 + max|θ|), which makes it the exact
reference that the Monte Carlo engine and the splitting are held against."""

from __future__ import annotations

from fractions import Fraction

__all__ = ["walk_probability"]


def walk_probability(steps: int, r: int) -> Fraction:
    r"""P(max_{s≤T}|S_s| ≥ r), T = ``steps``, exactly: the walk absorbed at ±r, its path counts
    per site carried from step to step, each count absorbed at step t weighted by 2^−t:

        P = Σ_{t≤T} Σ_x N_{t−1}(x)·#{y = x ± 1 : |y| ≥ r}·2^−t,

    N_t(x) the number of length-t paths at x that never reached ±r.

    Example:
        >>> walk_probability(2, 2), walk_probability(3, 2)   # ±1 twice: |S_2| = 2 with 2 of 4 paths
        (Fraction(1, 2), Fraction(1, 2))
    """
    counts, hit = {0: 1}, Fraction(0)
    for t in range(1, steps + 1):
        new: dict[int, int] = {}
        for x, c in counts.items():
            for y in (x - 1, x + 1):
                if abs(y) >= r:
                    hit += Fraction(c, 2**t)
                else:
                    new[y] = new.get(y, 0) + c
        counts = new
    return hit
