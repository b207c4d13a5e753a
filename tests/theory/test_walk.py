"""The walk's exact probabilities against enumeration of all 2^T paths."""

from fractions import Fraction
from itertools import accumulate, product

import pytest

from theory.walk import walk_probability


@pytest.mark.parametrize("steps, r", [(1, 1), (4, 2), (9, 3), (12, 4), (12, 13)])
def test_walk_probability_is_the_count_of_paths(steps, r):
    hits = sum(max(abs(s) for s in accumulate(signs)) >= r
               for signs in product((-1, 1), repeat=steps))
    assert walk_probability(steps, r) == Fraction(hits, 2**steps)
