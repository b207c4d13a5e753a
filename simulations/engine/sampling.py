"""Counter-based randomness: the draws of path ``r`` at step ``t`` are a pure function of
``(seed, r, t)``.

Every random number of a run is a 32-bit word

    w(seed, stream, r, t, j) = mix32(mix32(K_r + K_t) + K_j),

where ``K_r = mix32(mix32(s0 + r) ^ s1)`` is the path key, ``K_t = mix32(t * 0x9E3779B9 + s2)`` the
step key and ``K_j = mix32(j * 0x85EBCA6B + s3)`` the key of the ``j``-th word drawn in the step;
``(s0, s1, s2, s3)`` are four 32-bit words of splitmix64 applied to ``(seed, stream)``. ``mix32``
is the bijective integer hash "lowbias32" (C. Wellons, hash-prospector):

    x ^= x >> 16;  x *= 0x7feb352d;  x ^= x >> 15;  x *= 0x846ca68b;  x ^= x >> 16   (mod 2^32).

Because no state is carried from one draw to the next, a path's draws do not depend on how the
paths are split into chunks, how many chunks there are or in what order they run. Within one
path the step keys are distinct (``t -> K_t`` is a bijection for ``t < 2^32``), and so are the
word keys within a step.

The arithmetic is done on int32 tensors (two's-complement wrap-around, logical shifts by
masking), which vectorises about ten times better than int64 on CPU. From the words:

* uniform integers in ``[0, n)``: ``floor(u32 * n / 2^32)`` (integer arithmetic; the bias is at
  most ``n / 2^32``, about 2e-7 for n = 1000);
* uniforms in ``(0, 1)`` with 52 bits: ``(hi * 2^20 + lo >> 12 + 1/2) / 2^52`` from two words;
* standard normals: ``Phi^{-1}`` of such a uniform (``torch.special.ndtri``), exact in law up to
  the 52-bit grid (``|z| <= 8.2``);
* gamma variates: the inverse of the regularized incomplete gamma function at such a uniform
  (:func:`gamma_log_quantile`), and from them Student-t variates with a non-integer number of
  degrees of freedom (:func:`student_t`).

Streams separate independent uses of one seed (step draws, random initial points, ...).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "STREAM_INIT",
    "STREAM_STEP",
    "gamma_log_quantile",
    "mix32",
    "mix32_int",
    "normals",
    "path_keys",
    "step_keys",
    "student_t",
    "student_t_words",
    "word_keys",
    "seed_words",
    "uniform_indices",
    "uniform32",
    "uniforms",
    "words",
]

STREAM_STEP = 0
"""Stream of the per-step draws (minibatch indices, noise)."""
STREAM_INIT = 1
"""Stream of the draws of random initial points."""

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_C1 = 0x7FEB352D
_C2 = 0x846CA68B
_STEP_MULT = 0x9E3779B9
_WORD_MULT = 0x85EBCA6B


def _signed32(x: int) -> int:
    """The int32 with the same 32 bits as the unsigned ``x``."""
    x &= _M32
    return x - (1 << 32) if x >= 1 << 31 else x


def mix32_int(x: int) -> int:
    """``mix32`` on a python int (mod 2^32), the reference for :func:`mix32`."""
    x &= _M32
    x ^= x >> 16
    x = (x * _C1) & _M32
    x ^= x >> 15
    x = (x * _C2) & _M32
    return x ^ (x >> 16)


def mix32(x: torch.Tensor) -> torch.Tensor:
    """The bijective hash lowbias32 on an int32 tensor (bits read as unsigned, mod 2^32)."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * _C1
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * _signed32(_C2)
    return x ^ ((x >> 16) & 0xFFFF)


def _splitmix64(x: int) -> int:
    """splitmix64's output function (S. Vigna), on python ints mod 2^64."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def seed_words(seed: int, stream: int = STREAM_STEP) -> tuple[int, int, int, int]:
    """Four unsigned 32-bit words derived from ``(seed, stream)`` by splitmix64.

    ``seed`` is any integer with ``0 <= seed < 2^63``; ``stream`` a small non-negative integer.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 1 << 63:
        raise ValueError(f"seed must be an integer with 0 <= seed < 2**63, got {seed!r}")
    a = _splitmix64(seed ^ (stream * 0xD1B54A32D192ED03 & _M64))
    b = _splitmix64(a)
    return a & _M32, a >> 32, b & _M32, b >> 32


def _as_int32(values: torch.Tensor | range | list[int], device: torch.device | str | None):
    t = torch.as_tensor(values, dtype=torch.int64, device=device)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= 1 << 32):
        raise ValueError("path and step counters must satisfy 0 <= counter < 2**32")
    return torch.where(t >= 1 << 31, t - (1 << 32), t).to(torch.int32)


def path_keys(seed: int, paths: torch.Tensor | range, *, stream: int = STREAM_STEP) -> torch.Tensor:
    """The path keys ``K_r = mix32(mix32(s0 + r) ^ s1)`` (int32, shape (R,))."""
    s0, s1, _, _ = seed_words(seed, stream)
    device = paths.device if isinstance(paths, torch.Tensor) else None
    r = _as_int32(paths, device)
    return mix32(mix32(r + _signed32(s0)) ^ _signed32(s1))


def step_keys(seed: int, steps: range | list[int], *, stream: int = STREAM_STEP,
              device: torch.device | str | None = None) -> torch.Tensor:
    """The step keys ``K_t = mix32(t * 0x9E3779B9 + s2)`` (int32, shape (K,))."""
    s2 = seed_words(seed, stream)[2]
    return torch.tensor([_signed32(mix32_int(int(t) * _STEP_MULT + s2)) for t in steps],
                        dtype=torch.int32, device=device)


def word_keys(seed: int, count: int, *, stream: int = STREAM_STEP,
              device: torch.device | str | None = None) -> torch.Tensor:
    """The word keys ``K_j = mix32(j * 0x85EBCA6B + s3)``, j < count (int32, shape (count,))."""
    s3 = seed_words(seed, stream)[3]
    return torch.tensor([_signed32(mix32_int(j * _WORD_MULT + s3)) for j in range(count)],
                        dtype=torch.int32, device=device)


def words(
    seed: int,
    paths: torch.Tensor | range,
    steps: torch.Tensor | range,
    count: int,
    *,
    stream: int = STREAM_STEP,
) -> torch.Tensor:
    """The random words ``w(seed, stream, r, t, j)``: an int32 tensor of shape (K, R, count).

    ``paths`` (R,) and ``steps`` (K,) are the counters ``r`` and ``t``; ``j = 0 .. count-1``.
    With ``count == 1`` the single word is ``mix32(K_r + K_t)`` itself.
    """
    key_path = path_keys(seed, paths, stream=stream)
    counters = steps.tolist() if isinstance(steps, torch.Tensor) else steps
    if any(not 0 <= int(t) < 1 << 32 for t in counters):
        raise ValueError("path and step counters must satisfy 0 <= counter < 2**32")
    key_step = step_keys(seed, counters, stream=stream, device=key_path.device)
    pair = mix32(key_path[None, :] + key_step[:, None])
    if count == 1:
        return pair[:, :, None]
    return mix32(pair[:, :, None] + word_keys(seed, count, stream=stream, device=key_path.device))


def _unsigned(w: torch.Tensor) -> torch.Tensor:
    """The unsigned value of int32 words, as float64 (exact)."""
    u = w.to(torch.float64)
    return torch.where(u < 0, u + 4294967296.0, u)


def uniform_indices(w: torch.Tensor, n: int) -> torch.Tensor:
    """Integers ``floor(u32 * n / 2^32)`` in ``[0, n)`` from words ``w`` (int64, same shape),
    computed exactly in integer arithmetic for ``n < 2^31``."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n < 1 << 31:
        raise ValueError(f"n must be an integer with 1 <= n < 2**31, got {n!r}")
    return ((w.to(torch.int64) & 0xFFFFFFFF) * n) >> 32


def uniform32(w: torch.Tensor) -> torch.Tensor:
    """Uniforms ``(u32 + 1/2) / 2^32`` in (0, 1) (float64), one per word."""
    return (_unsigned(w) + 0.5) / 4294967296.0


def uniforms(w: torch.Tensor) -> torch.Tensor:
    """Uniforms in (0, 1) on a 52-bit grid from pairs of words along the last axis.

    ``w`` has an even last dimension ``2m``; the result has last dimension ``m``:
    ``u = (hi * 2^20 + floor(lo / 2^12) + 1/2) / 2^52`` with ``hi, lo`` words ``2i, 2i+1``
    (exact in float64, so strictly inside (0, 1)).
    """
    if w.shape[-1] % 2:
        raise ValueError("uniforms needs an even number of words along the last axis")
    hi = _unsigned(w[..., 0::2])
    lo = torch.floor(_unsigned(w[..., 1::2]) / 4096.0)
    return (hi * 1048576.0 + lo + 0.5) / 4503599627370496.0


def normals(w: torch.Tensor) -> torch.Tensor:
    """Standard normals ``Phi^{-1}(u)`` (float64) from pairs of words, as :func:`uniforms`."""
    return torch.special.ndtri(uniforms(w))


def gamma_log_quantile(a: float, u: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
    r"""ln x with P(a, x) = u: the log of the u-quantile of Gamma(a, 1), for 0 < a ≤ 1 and u in
    (0, 1) (float64, same shape as ``u``), where P(a, x) = γ(a, x)/Γ(a) is the regularized lower
    incomplete gamma function and Q = 1 − P.

    Newton's method on y = ln x, on the equation ln P(a, e^y) = ln u for u ≤ 1/2 and
    ln Q(a, e^y) = ln(1 − u) for u > 1/2 (so the upper tail keeps its relative precision;
    1 − u is exact on the grid of :func:`uniforms`), with the derivatives
    d ln P/dy = e^{ay − x}/(Γ(a)·P) and d ln Q/dy = −e^{ay − x}/(Γ(a)·Q). The law of ln X is
    log-concave (its density e^{ay − e^y}/Γ(a) is), so ln P(a, e^y) and ln Q(a, e^y) are
    concave in y: Newton's iterates from a point left of the root of the increasing ln P
    (right of the root of the decreasing ln Q) stay on that side and move monotonically to the
    root, with no step to safeguard. The starts are such bounds:

    * u ≤ 1/2: y₀ = (ln u + ln Γ(a+1))/a, since P(a, x) ≤ x^a/Γ(a+1)
      (P = x^a e^{−x} M(1, a+1, x)/Γ(a+1) and e^{−x} M(1, a+1, x) = M(a, a+1, −x) ≤ 1);
    * u > 1/2: y₀ = ln max(1, −ln((1 − u)Γ(a))), since Q(a, x) ≤ x^{a−1} e^{−x}/Γ(a) for
      a ≤ 1, which is ≤ e^{−x}/Γ(a) for x ≥ 1.

    P and Q are ``torch.special.gammainc``/``gammaincc``, except for x < 1e-10 (and wherever
    x = e^y underflows): ln P = a·y − ln Γ(a+1) − a·x/(a+1) (the series of M(a, a+1, −x) to
    O(x²)), ln Q = ln(1 − P). The count of iterations is fixed (no data-dependent loop, no
    host synchronisation): by default 7 for a ≥ 1/2 and 12 below, where the iterates were seen
    to settle to the last few ulps for a down to 1e-4 (the start is farther from the root
    there). Accuracy: about 1e-14 relative in x for 1/2 ≤ a ≤ 1, the conditioning of x in u
    growing like 1/a below (|ln x| ~ |ln u|/a has an ulp of ~|ln u|·2^{−52}/a).

    ``torch.special.gammainc`` is only good to about 1e-9 relative for a ≳ 20 near x ≈ a, so
    larger shapes are not inverted here: :func:`student_t` adds squared normals instead.
    """
    if not 0 < a <= 1:
        raise ValueError(f"gamma_log_quantile needs 0 < a <= 1, got {a!r}")
    if iterations is None:
        iterations = 7 if a >= 0.5 else 12
    u = u.to(torch.float64)
    lower = u <= 0.5
    q = 1.0 - u
    lg1, lg = math.lgamma(a + 1.0), math.lgamma(a)
    target = torch.log(torch.where(lower, u, q))
    y = torch.where(lower, (torch.log(u) + lg1) / a,
                    torch.log(torch.clamp(-torch.log(q) - lg, min=1.0)))
    shape = torch.full_like(u, a)
    sign = torch.where(lower, 1.0, -1.0).to(u.dtype)
    for _ in range(iterations):
        x = torch.exp(y)
        small = x < 1e-10
        ln_p_small = a * y - lg1 - a * x / (a + 1.0)
        ln_p = torch.where(small, ln_p_small, torch.log(torch.special.gammainc(shape, x)))
        ln_q = torch.where(small, torch.log1p(-torch.exp(ln_p_small)),
                           torch.log(torch.special.gammaincc(shape, x)))
        ln_f = torch.where(lower, ln_p, ln_q)
        slope = sign * torch.exp(a * y - x - lg - ln_f)  # d ln F / dy
        y = y - (ln_f - target) / slope
    return y


def student_t_words(df: float) -> int:
    """Words per Student-t variate of :func:`student_t` with a non-integer ``df`` = ν:
    2(n + 2) with n = ⌊ν⌋ − 1 for ν > 1, n = 0 for ν < 1."""
    return 2 * (_t_split(df)[0] + 2)


def _t_split(df: float) -> tuple[int, float]:
    """(n, a): χ²_ν = Σ_{k≤n} z_k² + 2·Gamma(a), n = ⌊ν⌋ − 1, a = (ν − n)/2 ∈ (1/2, 1) for
    ν > 1; n = 0, a = ν/2 for ν < 1."""
    if not (df > 0 and math.isfinite(df)) or float(df).is_integer():
        raise ValueError(f"student_t draws a non-integer df > 0, got {df!r}")
    n = max(0, math.floor(df) - 1)
    return n, (df - n) / 2.0


def student_t(w: torch.Tensor, df: float) -> torch.Tensor:
    r"""Student-t variates with a non-integer ν = ``df`` > 0 degrees of freedom (float64), one
    per :func:`student_t_words` words along the last axis of ``w``:

        T = z₀/√(V/ν),  V = Σ_{k=1}^{n} z_k² + 2·G,  G = Q_a(u) ~ Gamma(a, 1),

    with n = ⌊ν⌋ − 1 and a = (ν − n)/2 ∈ (1/2, 1) for ν > 1 (n = 0, a = ν/2 for ν < 1), so
    V ~ χ²_n + χ²_{2a} = χ²_ν independent of z₀ ~ N(0, 1), and T ~ t_ν exactly in law (up to the
    52-bit grid of the uniforms). z₀ is the pair of words 0, 1, z_k the pair 2k, 2k+1
    (:func:`normals`) and u the last pair (:func:`uniforms`); G is the quantile of Gamma(a) at u
    (:func:`gamma_log_quantile`, in logs). For ν < 1, T = z₀·exp((ln ν − ln 2 − ln G)/2), so
    a G below the smallest float64 still gives the right (huge) T.

    The gamma shape stays in (0, 1), where ``torch.special.gammainc`` is accurate (not for
    shapes ≳ 20); a draw costs n + 1 normals and one inversion, about what an integer ν = n + 2
    costs (ν + 1 normals).
    """
    n, a = _t_split(df)
    count = student_t_words(df)
    if w.shape[-1] % count:
        raise ValueError(f"student_t with df = {df} needs a multiple of {count} words along "
                         f"the last axis, got {w.shape[-1]}")
    w = w.reshape(*w.shape[:-1], -1, count)
    z = normals(w[..., :-2])  # (..., m, n + 1)
    ln_g = gamma_log_quantile(a, uniforms(w[..., -2:])[..., 0])
    if n == 0:
        t = z[..., 0] * torch.exp(0.5 * (math.log(df) - math.log(2.0) - ln_g))
    else:
        v = z[..., 1:].square().sum(-1) + 2.0 * torch.exp(ln_g)
        t = z[..., 0] / torch.sqrt(v / df)
    return t
