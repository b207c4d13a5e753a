"""Tests of simulations.engine.sampling against independent references.

* ``mix32`` against the python-int reference ``mix32_int`` and against a numpy uint32
  re-implementation of lowbias32 written here from the module docstring;
* ``words`` as a pure function of (seed, stream, path, step, j): sub-calls in any order equal
  the entries of a bigger call, and the composition ``mix32(mix32(K_r + K_t) + K_j)``;
* ``uniform_indices`` against ``(u * n) >> 32`` on python ints, plus a chi-square test;
* ``uniforms`` / ``normals`` against the 53-bit formula on python ints, plus moments and a
  Kolmogorov-Smirnov test;
* bad seeds;
* ``gamma_log_quantile`` against scipy's inverse incomplete gamma functions and mpmath, and
  ``student_t`` (non-integer ν) against the quantile construction rebuilt with scipy's norm.ppf
  and chi2.ppf, and against scipy.stats.t by a Kolmogorov–Smirnov test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from simulations.engine import sampling
from simulations.engine.sampling import (
    mix32,
    mix32_int,
    normals,
    uniform32,
    uniform_indices,
    uniforms,
    words,
)

M32 = 1 << 32


# --------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------


def lowbias32_np(x: np.ndarray) -> np.ndarray:
    """lowbias32 (C. Wellons) on uint32 numpy arrays, from the docstring:
    x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (mod 2^32)."""
    x = np.asarray(x, dtype=np.uint32).copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
    return x


def as_unsigned(t: torch.Tensor) -> np.ndarray:
    """The bits of an int32 tensor read as uint32 (numpy)."""
    return t.numpy().astype(np.int64) % M32


def to_int32(values) -> torch.Tensor:
    """uint32 values (python ints / numpy) as an int32 tensor with the same bits."""
    v = np.asarray(values, dtype=np.int64) % M32
    return torch.as_tensor(np.where(v >= 1 << 31, v - M32, v), dtype=torch.int32)


# --------------------------------------------------------------------------------------------
# mix32
# --------------------------------------------------------------------------------------------


def test_mix32_random_int32_matches_both_references():
    rng = np.random.default_rng(12345)
    raw = rng.integers(0, M32, size=20000, dtype=np.int64)
    # the edge values too
    raw = np.concatenate([raw, [0, 1, 2**31 - 1, 2**31, M32 - 1, 0xFFFF, 0x10000]])
    out = as_unsigned(mix32(to_int32(raw)))
    np.testing.assert_array_equal(out, lowbias32_np(raw.astype(np.uint32)).astype(np.int64))
    for x, y in zip(raw[:2000].tolist(), out[:2000].tolist(), strict=True):
        assert mix32_int(x) == y


def test_mix32_known_values_from_reference_definition():
    # lowbias32(0) = 0 (every step maps 0 to 0); lowbias32 is a bijection: no collisions.
    assert mix32_int(0) == 0
    raw = np.arange(0, 1 << 16, dtype=np.int64) * 65537
    out = as_unsigned(mix32(to_int32(raw)))
    assert len(np.unique(out)) == len(raw)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(1 << 40), max_value=1 << 40))
def test_mix32_int_reduces_mod_2_32(x):
    expected = int(lowbias32_np(np.array([x % M32], dtype=np.uint32))[0])
    assert mix32_int(x) == expected
    assert int(as_unsigned(mix32(to_int32([x])))[0]) == expected


# --------------------------------------------------------------------------------------------
# words: a pure function of its counters
# --------------------------------------------------------------------------------------------


def test_words_shape_and_dtype():
    w = words(3, range(4), range(5), 6)
    assert w.shape == (5, 4, 6) and w.dtype == torch.int32
    assert words(3, range(4), range(5), 1).shape == (5, 4, 1)


@pytest.mark.parametrize("count", [1, 2, 7])
def test_words_subset_in_any_order_equals_big_call(count):
    seed = 987654321
    big = words(seed, range(12), range(10), count)
    paths, steps = [5, 2, 9], [7, 3]
    small = words(seed, torch.tensor(paths), torch.tensor(steps), count)
    np.testing.assert_array_equal(small.numpy(), big[steps][:, paths].numpy())
    # one path, one step at a time: the same entries again
    for i, t in enumerate(steps):
        for k, r in enumerate(paths):
            one = words(seed, [r], [t], count)
            np.testing.assert_array_equal(one[0, 0].numpy(), small[i, k].numpy())
    # repeated calls are equal (no hidden state)
    np.testing.assert_array_equal(words(seed, range(12), range(10), count).numpy(), big.numpy())


def test_words_fewer_words_are_a_prefix():
    seed = 17
    few, many = words(seed, range(6), range(4), 3), words(seed, range(6), range(4), 8)
    np.testing.assert_array_equal(few.numpy(), many[..., :3].numpy())


def test_words_large_counters():
    seed = 5
    paths = [0, 2**31 - 1, 2**31, 2**32 - 1]
    steps = [2**32 - 1, 2**31, 0]
    big = words(seed, paths, steps, 3)
    for i, t in enumerate(steps):
        for k, r in enumerate(paths):
            np.testing.assert_array_equal(words(seed, [r], [t], 3)[0, 0].numpy(), big[i, k].numpy())
    with pytest.raises(ValueError):
        words(seed, [2**32], [0], 1)
    with pytest.raises(ValueError):
        words(seed, [0], [2**32], 1)
    with pytest.raises(ValueError):
        words(seed, [-1], [0], 1)


def test_words_compose_the_documented_keys():
    """w = mix32(mix32(K_r + K_t) + K_j), computed here with numpy uint32 from the keys."""
    seed, stream = 42, 3
    paths, steps, count = range(5), range(4), 3
    kr = as_unsigned(sampling.path_keys(seed, paths, stream=stream)).astype(np.uint32)
    kt = as_unsigned(sampling.step_keys(seed, steps, stream=stream)).astype(np.uint32)
    kj = as_unsigned(sampling.word_keys(seed, count, stream=stream)).astype(np.uint32)
    with np.errstate(over="ignore"):
        pair = lowbias32_np(kr[None, :] + kt[:, None])
        expected = lowbias32_np(pair[:, :, None] + kj[None, None, :])
    got = as_unsigned(words(seed, paths, steps, count, stream=stream))
    np.testing.assert_array_equal(got, expected.astype(np.int64))
    # count == 1 is the pair word itself
    np.testing.assert_array_equal(
        as_unsigned(words(seed, paths, steps, 1, stream=stream))[..., 0], pair.astype(np.int64)
    )
    # step keys: K_t = mix32(t * 0x9E3779B9 + s2), path keys K_r = mix32(mix32(s0 + r) ^ s1)
    s0, s1, s2, s3 = sampling.seed_words(seed, stream)
    for t in steps:
        assert int(kt[t]) == int(lowbias32_np(np.array([(t * 0x9E3779B9 + s2) % M32]))[0])
    for r in paths:
        inner = int(lowbias32_np(np.array([(s0 + r) % M32]))[0])
        assert int(kr[r]) == int(lowbias32_np(np.array([inner ^ s1]))[0])
    for j in range(count):
        assert int(kj[j]) == int(lowbias32_np(np.array([(j * 0x85EBCA6B + s3) % M32]))[0])


def test_step_and_word_keys_distinct():
    kt = as_unsigned(sampling.step_keys(11, range(5000)))
    assert len(np.unique(kt)) == 5000
    kj = as_unsigned(sampling.word_keys(11, 3000))
    assert len(np.unique(kj)) == 3000


def test_different_seeds_and_streams_differ():
    base = words(0, range(50), range(20), 4)
    others = [
        words(1, range(50), range(20), 4),
        words(2**62, range(50), range(20), 4),
        words(0, range(50), range(20), 4, stream=sampling.STREAM_INIT),
        words(0, range(50), range(20), 4, stream=2),
    ]
    for other in others:
        # independent 32-bit words coincide with probability 2^-32 each
        assert (other != base).float().mean() > 0.999
    # streams of the same seed differ from each other too
    assert (others[2] != others[3]).float().mean() > 0.999
    assert sampling.STREAM_STEP != sampling.STREAM_INIT
    # different paths and different steps of one seed differ
    assert (base[:, 0] != base[:, 1]).float().mean() > 0.999
    assert (base[0] != base[1]).float().mean() > 0.999


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=(1 << 63) - 1),
    paths=st.lists(st.integers(min_value=0, max_value=(1 << 32) - 1), min_size=1, max_size=4),
    steps=st.lists(st.integers(min_value=0, max_value=(1 << 32) - 1), min_size=1, max_size=3),
    count=st.integers(min_value=1, max_value=4),
)
def test_words_pure_function_property(seed, paths, steps, count):
    w = words(seed, paths, steps, count)
    assert w.shape == (len(steps), len(paths), count)
    for i, t in enumerate(steps):
        for k, r in enumerate(paths):
            one = words(seed, [r], [t], count)[0, 0]
            np.testing.assert_array_equal(one.numpy(), w[i, k].numpy())


@pytest.mark.parametrize(
    "seed", [-1, 1 << 63, (1 << 64) + 3, True, False, 1.0, "3", None, np.float64(2.0)]
)
def test_bad_seeds_raise(seed):
    with pytest.raises(ValueError):
        sampling.seed_words(seed)
    with pytest.raises(ValueError):
        words(seed, range(2), range(2), 1)


def test_extreme_good_seeds():
    for seed in (0, (1 << 63) - 1, np.int64(7).item()):
        assert words(seed, range(2), range(2), 2).shape == (2, 2, 2)


# --------------------------------------------------------------------------------------------
# uniform integers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 1000, 12345, 2**20 + 7, 2**21])
def test_uniform_indices_exact_against_python_ints(n):
    rng = np.random.default_rng(n)
    raw = rng.integers(0, M32, size=5000, dtype=np.int64)
    raw = np.concatenate([raw, [0, 1, M32 - 1, 2**31, 2**31 - 1]])
    # adversarial words: u*n just below / at a multiple of 2^32 (when n is invertible mod 2^32)
    if n % 2:
        inv = pow(n, -1, M32)
        raw = np.concatenate([raw, [(-inv) % M32, inv % M32, (-2 * inv) % M32]])
    got = uniform_indices(to_int32(raw), n).numpy()
    assert got.dtype == np.int64
    expected = np.array([(int(u) * n) >> 32 for u in raw])
    np.testing.assert_array_equal(got, expected)
    assert got.min() >= 0 and got.max() < n


@settings(max_examples=200, deadline=None)
@given(u=st.integers(min_value=0, max_value=M32 - 1), n=st.integers(min_value=1, max_value=2**21))
def test_uniform_indices_property(u, n):
    got = int(uniform_indices(to_int32([u]), n)[0])
    assert got == (u * n) >> 32
    assert 0 <= got < n


def test_uniform_indices_exact_for_large_n():
    n = 2**30 + 1
    u = (-pow(n, -1, M32)) % M32  # u*n = -1 (mod 2^32): floor is just below an integer
    got = int(uniform_indices(to_int32([u]), n)[0])
    assert got == (u * n) >> 32


def test_uniform_indices_shape_and_bad_n():
    w = words(1, range(3), range(2), 4)
    assert uniform_indices(w, 5).shape == w.shape
    for bad in (0, -3, 2.0, None, "4"):
        with pytest.raises(ValueError):
            uniform_indices(w, bad)


def test_uniform_indices_chi_square():
    n = 37
    w = words(2024, range(2000), range(50), 1)  # 10^5 draws
    idx = uniform_indices(w, n).flatten().numpy()
    counts = np.bincount(idx, minlength=n)
    assert counts.sum() == 100000
    p = stats.chisquare(counts).pvalue
    assert p > 1e-4, p
    # also uniformity of all words of a step over the word index j
    w = words(7, range(500), range(10), 20)
    idx = uniform_indices(w, 10).numpy()
    for j in (0, 19):
        counts = np.bincount(idx[..., j].ravel(), minlength=10)
        assert stats.chisquare(counts).pvalue > 1e-4


def test_uniform_indices_pairs_independent():
    """Consecutive steps of one path are independent: chi-square on the 6x6 table of pairs."""
    w = words(99, range(20000), range(2), 1)[..., 0]
    idx = uniform_indices(w, 6).numpy()  # (2, R)
    table = np.zeros((6, 6))
    np.add.at(table, (idx[0], idx[1]), 1)
    assert stats.chi2_contingency(table).pvalue > 1e-4


# --------------------------------------------------------------------------------------------
# uniforms and normals
# --------------------------------------------------------------------------------------------


def test_uniform32_and_uniforms_formula_on_python_ints():
    rng = np.random.default_rng(3)
    raw = rng.integers(0, M32, size=(400, 2), dtype=np.int64)
    raw[0] = [0, 0]
    raw[1] = [0, M32 - 1]
    raw[2] = [2**31, 12345]
    w = to_int32(raw)
    u32 = uniform32(w).numpy()
    for (a, _), got in zip(raw.tolist(), u32[:, 0].tolist(), strict=True):
        assert got == (a + 0.5) / 2**32
    u = uniforms(w).numpy()[:, 0]
    for (hi, lo), got in zip(raw.tolist(), u.tolist(), strict=True):
        k = hi * 2**21 + (lo >> 11)  # an integer < 2^53
        # the documented value (k + 1/2) / 2^53, to within one rounding of the numerator
        assert abs(got - (k + 0.5) / 2**53) <= 2**-53
        assert 0.0 < got < 1.0
    with pytest.raises(ValueError):
        uniforms(w[:, :1].expand(-1, 3).contiguous())


def test_uniforms_strictly_below_one_at_the_top_word():
    w = to_int32([[M32 - 1, M32 - 1]])
    assert float(uniforms(w)[0, 0]) < 1.0
    assert math.isfinite(float(normals(w)[0, 0]))


def test_uniforms_lowest_word_and_symmetry_of_normals_range():
    w = to_int32([[0, 0], [0, 2047]])
    u = uniforms(w).numpy()
    assert np.all(u > 0) and np.all(u <= 2**-52)
    z = normals(w).numpy()
    assert np.all(np.isfinite(z)) and np.all(z > -8.3)


def test_normals_moments_and_ks():
    w = words(31337, range(1000), range(50), 4)  # 2 normals per (path, step): 10^5 normals
    z = normals(w).numpy().ravel()
    assert z.dtype == np.float64 and z.size == 100000
    se = 1.0 / math.sqrt(z.size)
    assert abs(z.mean()) < 5 * se
    # sd of the sample variance of N(0,1) is sqrt(2/n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2.0 / z.size)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert np.all(np.isfinite(z)) and np.abs(z).max() < 8.3
    # the two normals of a pair are uncorrelated
    pairs = normals(w).numpy().reshape(-1, 2)
    r = np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]
    assert abs(r) < 5 * se


def test_normals_equal_inverse_cdf_of_uniforms():
    w = words(8, range(200), range(3), 6)
    np.testing.assert_allclose(
        normals(w).numpy(), stats.norm.ppf(uniforms(w).numpy()), rtol=1e-12, atol=1e-12
    )


def test_uniform32_ks():
    u = uniform32(words(77, range(1000), range(100), 1)).numpy().ravel()
    assert np.all((u > 0) & (u < 1))
    assert stats.kstest(u, "uniform").pvalue > 1e-4


# --------------------------------------------------------------------------------------------
# gamma quantiles and Student-t variates with a non-integer number of degrees of freedom
# --------------------------------------------------------------------------------------------

# uniforms on the 52-bit grid of ``uniforms``: both ends, around 1/2 and spread between
GRID_K = np.concatenate([[0, 1, 7, 2**20, 2**40, 2**51 - 1, 2**51, 2**51 + 1, 2**52 - 2**40,
                          2**52 - 2**20, 2**52 - 8, 2**52 - 1],
                         np.floor(np.random.default_rng(5).random(2000) * 2**52)])
GRID_U = (GRID_K + 0.5) / 2.0**52


@pytest.mark.parametrize("a", [0.05, 0.15, 0.35, 0.5, 0.65, 0.75, 0.95, 1.0])
def test_gamma_log_quantile_against_scipy(a):
    """x = exp(gamma_log_quantile(a, u)) solves P(a, x) = u: scipy's gammaincinv (lower half)
    and gammainccinv at 1 − u (upper half, exact on the grid), relative 1e-12 (the conditioning
    of x grows like 1/a, so a = 0.05 gets 1e-11)."""
    got = sampling.gamma_log_quantile(a, torch.from_numpy(GRID_U)).numpy()
    want = np.where(GRID_U <= 0.5, special.gammaincinv(a, GRID_U),
                    special.gammainccinv(a, 1.0 - GRID_U))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(np.exp(got), want, rtol=1e-11 if a < 0.1 else 1e-12, atol=0)


def test_gamma_log_quantile_below_the_smallest_double():
    """For a small shape, x at the grid's lowest uniforms is below 1e-308: its log is still
    right (P(a, x) = x^a/Γ(a+1)·(1 + O(x)), so ln x = (ln u + ln Γ(a+1))/a, from mpmath)."""
    import mpmath

    a = 0.02
    u = torch.tensor(GRID_U[:3])
    got = sampling.gamma_log_quantile(a, u).numpy()
    want = [float((mpmath.log(mpmath.mpf(float(v))) + mpmath.loggamma(1 + a)) / a)
            for v in GRID_U[:3]]
    assert max(want) < -709  # exp underflows
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("a", [0.0, -1.0, 1.5])
def test_gamma_log_quantile_refuses_shapes_outside_zero_one(a):
    with pytest.raises(ValueError):
        sampling.gamma_log_quantile(a, torch.tensor([0.5]))


@pytest.mark.parametrize(("df", "normals_", "shape"), [
    (0.7, 0, 0.35), (1.5, 0, 0.75), (2.5, 1, 0.75), (7.3, 6, 0.65)])
def test_student_t_is_the_quantile_construction(df, normals_, shape):
    """T = z₀/√(V/ν) with z₀ = Φ^{-1}(u₀), V = Σ_{k≤n} Φ^{-1}(u_k)² + χ²_{2a}^{-1}(u_last),
    rebuilt with scipy's norm.ppf and chi2.ppf from the same uniforms: relative 1e-12."""
    count = sampling.student_t_words(df)
    assert count == 2 * (normals_ + 2)
    w = words(11, range(400), range(2), count)
    u = uniforms(w).numpy()  # (2, 400, n + 2)
    z = stats.norm.ppf(u[..., :-1])
    v = (z[..., 1:] ** 2).sum(-1) + stats.chi2.ppf(u[..., -1], 2 * shape)
    want = z[..., 0] / np.sqrt(v / df)
    got = sampling.student_t(w, df).numpy()[..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("df", [1.5, 2.5])
def test_chi_square_quantile_against_scipy(df):
    """V = 2·G for ν < 2 (no squared normal): 2·exp(gamma_log_quantile(ν/2, u)) against
    scipy's chi2.ppf(u, ν); for ν = 2.5 the gamma part χ²_{1.5} likewise."""
    shape = df / 2 if df < 2 else (df - 1) / 2
    got = 2.0 * np.exp(sampling.gamma_log_quantile(shape, torch.from_numpy(GRID_U)).numpy())
    want = np.where(GRID_U <= 0.5, stats.chi2.ppf(GRID_U, 2 * shape),
                    stats.chi2.isf(1.0 - GRID_U, 2 * shape))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("df", [0.7, 1.5, 2.5])
def test_student_t_ks_against_scipy(df):
    """10^5 draws against scipy.stats.t by a Kolmogorov–Smirnov test."""
    w = words(2024, range(50000), range(2), sampling.student_t_words(df))
    t = sampling.student_t(w, df).numpy().ravel()
    assert t.size == 100000 and np.all(np.isfinite(t))
    assert stats.kstest(t, "t", args=(df,)).pvalue > 1e-4
    # and not the neighbouring integer laws (the test can fail)
    assert stats.kstest(t, "t", args=(round(df + 0.5),)).pvalue < 1e-6


def test_student_t_refuses_integer_and_bad_df():
    for df in (3.0, 0.0, -1.5, math.inf):
        with pytest.raises(ValueError):
            sampling.student_t_words(df)
    with pytest.raises(ValueError, match="multiple of 6"):
        sampling.student_t(words(1, range(2), range(1), 4)[0], 2.5)
