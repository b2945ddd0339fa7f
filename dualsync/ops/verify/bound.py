"""How much drift there can be: the exact one-sided upper confidence bound on a sample.

The verifier compares a random sample of `samples` records on both sides and finds
`failures` that differ. The point estimate of the drift rate is `failures / samples`
(`drift_rate`), but 0 differences in 3,000 records does not prove that there is no drift:
it only shows that the rate is probably small. `upper_bound` says how small.

Definition (Clopper-Pearson, one-sided, exact): with X ~ Binomial(n=samples, p),

    upper_bound(x, n, c) = the smallest p such that P(X <= x | n, p) <= 1 - c

which is the Beta quantile `Beta.ppf(c, x + 1, n - x)`. In words: any drift rate above
the bound would have produced `x` or fewer differences in at most a fraction `1 - c` of
such samples, so at confidence `c` the true drift rate is at most the bound. "Exact"
means the binomial distribution itself is used, not a normal approximation, so the
coverage is at least `c` for every n and p (the normal and Wald intervals collapse to
zero width at 0 failures, exactly the case an operator cares most about).

Why one-sided: the operator's question before a cut-over is "at most how much drift?",
never "at least how much?". A two-sided 95% interval spends half of its 5% on the lower
side, which nobody reads, and so reports a looser upper end (a 97.5% bound).

Edge cases: no samples means nothing is known (1.0); all samples failing leaves no p
that makes the observation unlikely (1.0); no failures has the closed form
`1 - (1 - c) ** (1 / n)` (the "rule of three": about 3/n at 95%, so 0 in 3,000 gives
0.000998).

Numerics: P(X <= x) is summed from the term at x outward, only over the side of the
distribution that does not contain the mode (so every term is smaller than the last and
the sum stops as soon as the remainder cannot matter); the side that contains the mode
is one minus the other tail. The term at x is computed in log space with Loader's
saddle-point form (Stirling-series error terms and a deviance `bd0` that is accurate
when x is near n*p), which keeps its full relative precision where
`lgamma(n + 1) - lgamma(x + 1) - ...` would cancel millions down to a few ulps of 1e7.
The bound is then the root of log P(X <= x | p) = log(1 - c), found by Newton's method
(the derivative of the binomial CDF in p is one pmf term) kept inside a bisection
bracket, to 1e-13 relative. Small failure counts take a handful of iterations of a
dozen terms each: well under a millisecond even at n = 1,000,000.

Pure Python (math and statistics only): no import-time work, no scipy at run time.
"""

from __future__ import annotations

import math
import operator
from statistics import NormalDist

__all__ = ["drift_rate", "upper_bound"]

_REL_TOL = 1e-13  # Newton stops once a step moves p by less than this, relatively
_MAX_ITER = 200  # bisection alone would need ~1100 halvings to run out of doubles
_SUM_EPS = 1e-17  # a tail sum stops when what is left is below this fraction of it

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# stirlerr(k) = log(k!) - log(sqrt(2 pi k) (k/e)^k) for k = 0..15 (Loader 2000),
# checked against 60-digit decimal arithmetic in tests/test_verify_bound.py.
_STIRLERR_SMALL = (
    0.0,
    0.0810614667953272582196702,
    0.0413406959554092940938221,
    0.02767792568499833914878929,
    0.02079067210376509311152277,
    0.01664469118982119216319487,
    0.01387612882307074799874573,
    0.01189670994589177009505572,
    0.010411265261972096497478567,
    0.009255462182712732917728637,
    0.008330563433362871256469318,
    0.007573675487951840794972024,
    0.006942840107209529865664152,
    0.006408994188004207068439631,
    0.005951370112758847735624416,
    0.005554733551962801371038690,
)
# The Stirling series beyond the table: stirlerr(k) = sum_j c_j / k^(2j + 1), with
# c_j = B_{2j+2} / ((2j + 2)(2j + 1)); enough terms for each range that the truncation
# stays below 1e-19, far under a double's rounding of the value.
_STIRLING_SERIES = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
)
# (smallest k, number of series terms), largest k first
_STIRLING_TERMS = ((501, 3), (81, 4), (36, 5), (0, 7))


def _check(failures: int, samples: int) -> tuple[int, int]:
    x = operator.index(failures)
    n = operator.index(samples)
    if n < 0:
        raise ValueError(f"samples must be >= 0, got {n}")
    if x < 0:
        raise ValueError(f"failures must be >= 0, got {x}")
    if x > n:
        raise ValueError(f"failures ({x}) cannot exceed samples ({n})")
    return x, n


def drift_rate(failures: int, samples: int) -> float:
    """The observed drift rate `failures / samples`; 0.0 when nothing was sampled.

    0.0 for no samples is only the conventional point estimate: read it with
    `upper_bound`, which is 1.0 there.
    """
    x, n = _check(failures, samples)
    return x / n if n else 0.0


def upper_bound(failures: int, samples: int, confidence: float = 0.95) -> float:
    """The exact one-sided Clopper-Pearson upper bound on the drift rate (module docstring).

    Raises ValueError for negative counts, `failures > samples`, or a confidence outside
    the open interval (0, 1).
    """
    x, n = _check(failures, samples)
    if not 0.0 < confidence < 1.0:  # also rejects NaN
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if n in (0, x):
        return 1.0
    log_alpha = math.log1p(-confidence)
    if x == 0:
        # 1 - (1 - c) ** (1 / n), without the cancellation of 1 - (something close to 1)
        return -math.expm1(log_alpha / n)
    return _solve(x, n, confidence, log_alpha)


def _stirlerr(k: int) -> float:
    """log(k!) - log(sqrt(2 pi k) (k/e)^k): the error of Stirling's formula."""
    if k < len(_STIRLERR_SMALL):
        return _STIRLERR_SMALL[k]
    terms = next(m for smallest, m in _STIRLING_TERMS if k >= smallest)
    inv_kk = 1.0 / (float(k) * k)
    total = 0.0
    for c in reversed(_STIRLING_SERIES[:terms]):
        total = total * inv_kk + c
    return total / k


def _bd0(k: float, m: float) -> float:
    """The deviance term k*log(k/m) + m - k, accurate also when k is close to m."""
    if abs(k - m) < 0.1 * (k + m):
        v = (k - m) / (k + m)
        s = (k - m) * v
        ej = 2.0 * k * v
        v2 = v * v
        j = 1
        while True:  # converges in a few terms: |v| < 0.1
            ej *= v2
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
    return k * math.log(k / m) + m - k


def _log_pmf(k: int, n: int, p: float, q: float) -> float:
    """log P(X = k) for X ~ Binomial(n, p), q = 1 - p, 0 < p < 1 (Loader's form)."""
    if k == 0:
        return n * math.log1p(-p)
    if k == n:
        return n * math.log(p)
    lc = (
        _stirlerr(n)
        - _stirlerr(k)
        - _stirlerr(n - k)
        - _bd0(float(k), n * p)
        - _bd0(float(n - k), n * q)
    )
    # k (n - k) / n with one rounding: 1 - k/n would lose digits when k is close to n
    return lc - 0.5 * math.log(k * (n - k) / n) - _HALF_LOG_2PI


def _lower_tail_sum(x: int, n: int, p: float, q: float) -> float:
    """sum_{k <= x} P(X = k) / P(X = x), for x <= n*p (terms shrink as k goes down)."""
    ratio_factor = q / p
    total = 1.0
    term = 1.0
    k = x
    while k > 0:
        r = k * ratio_factor / (n - k + 1)  # P(X = k-1) / P(X = k), shrinking with k
        term *= r
        total += term
        k -= 1
        # every later ratio is at most this one's: the rest is below term * r / (1 - r)
        if term * r <= (1.0 - r) * _SUM_EPS * total:
            break
    return total


def _upper_tail_sum(x: int, n: int, p: float, q: float) -> float:
    """sum_{k > x} P(X = k) / P(X = x + 1), for x >= n*p (terms shrink as k goes up)."""
    ratio_factor = p / q
    total = 1.0
    term = 1.0
    k = x + 1
    while k < n:
        r = (n - k) * ratio_factor / (k + 1)  # P(X = k+1) / P(X = k), shrinking with k
        term *= r
        total += term
        k += 1
        if term * r <= (1.0 - r) * _SUM_EPS * total:
            break
    return total


def _start(x: int, n: int, confidence: float) -> float:
    """A first guess at Beta.ppf(c, x + 1, n - x) (Abramowitz & Stegun 26.5.22)."""
    a = x + 1.0
    b = float(n - x)
    y = -NormalDist().inv_cdf(confidence)
    lam = (y * y - 3.0) / 6.0
    ia = 1.0 / (2.0 * a - 1.0)
    ib = 1.0 / (2.0 * b - 1.0)
    h = 2.0 / (ia + ib)
    w = y * math.sqrt(h + lam) / h - (ib - ia) * (lam + 5.0 / 6.0 - 2.0 / (3.0 * h))
    try:
        return a / (a + b * math.exp(2.0 * w))
    except OverflowError:
        return 0.0


def _solve(x: int, n: int, confidence: float, log_alpha: float) -> float:
    """The p in (0, 1) with P(X <= x | n, p) = 1 - c, for 0 < x < n.

    g(p) is log P(X <= x) - log(1 - c) where that tail is summed directly, and
    log(c) - log P(X > x) where the other tail is: both are decreasing in p with the
    same root, and each is evaluated on the tail that is small, so its sign is right
    to full precision. g(0+) > 0 > g(1-), so (0, 1) brackets the root; Newton steps
    that leave the current bracket are replaced by bisection.
    """
    log_c = math.log(confidence)
    lo, hi = 0.0, 1.0
    p = _start(x, n, confidence)
    if not lo < p < hi:
        p = 0.5 * (lo + hi)
    for _ in range(_MAX_ITER):
        q = 1.0 - p
        log_pmf_x = _log_pmf(x, n, p, q)
        if x <= n * p:
            total = _lower_tail_sum(x, n, p, q)
            g = log_pmf_x + math.log(total) - log_alpha
            dg = -(n - x) / (q * total)
        else:
            total = _upper_tail_sum(x, n, p, q)
            log_pmf_next = log_pmf_x + math.log((n - x) / (x + 1.0) * p / q)
            g = log_c - log_pmf_next - math.log(total)
            dg = -(x + 1.0) / (p * total)
        if g == 0.0:
            return p
        if g > 0.0:
            lo = p
        else:
            hi = p
        nxt = p - g / dg
        if abs(nxt - p) <= _REL_TOL * p:
            # converged (quadratically): p is already within rounding of the root
            return nxt if lo < nxt < hi else p
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
            if nxt in {lo, hi}:  # the bracket is two adjacent doubles
                return nxt
        p = nxt
    return 0.5 * (lo + hi)  # pragma: no cover - unreachable: the bracket halves at worst
