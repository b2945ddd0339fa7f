"""The verifier's drift bound is the exact one-sided Clopper-Pearson upper limit.

Three independent checks: scipy's `beta.ppf(c, x + 1, n - x)` for a table of sample
sizes (scipy is a test extra only: the module itself is pure Python); exact rational
binomial sums for small n, which pin the bound to 1e-12 relative without trusting any
floating-point library; and hypothesis properties (monotone, within [x/n, 1]).
"""

from __future__ import annotations

import math
import time
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dualsync.ops.verify import bound
from dualsync.ops.verify.bound import drift_rate, upper_bound

# (samples, failures): no failures, some, and all of them, from 1 to a million samples
TABLE = [
    (1, 0),
    (1, 1),
    (2, 1),
    (10, 0),
    (10, 3),
    (10, 10),
    (50, 49),
    (100, 1),
    (3000, 0),
    (3000, 3),
    (10_000, 50),
    (1_000_000, 0),
    (1_000_000, 10),
    (1_000_000, 500_000),
    (1_000_000, 999_999),
]
CONFIDENCES = [0.8, 0.9, 0.95, 0.99, 0.999]

# scipy's beta.ppf (Boost's ibeta_inv) is itself only good to about 2e-11 relative at
# n near a million (checked with 50-digit decimal sums: there the bound computed here
# is within 1e-15 of the root, scipy's up to 2e-11 off), so the comparison with it
# cannot be tighter than this; the exact tests below pin 1e-12.
SCIPY_REL = 1e-10

PI_60 = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")


@pytest.fixture(scope="module")
def beta_ppf() -> Any:
    stats = pytest.importorskip(
        "scipy.stats",
        reason="scipy is not installed: it is the beta.ppf reference (pip install '.[test]')",
    )
    return stats.beta.ppf


def exact_cdf(failures: int, samples: int, p: Fraction) -> Fraction:
    """P(X <= failures | samples, p) in exact rational arithmetic."""
    a, d = p.numerator, p.denominator
    b = d - a
    total = sum(math.comb(samples, k) * a**k * b ** (samples - k) for k in range(failures + 1))
    return Fraction(total, d**samples)


def alpha_of(confidence: float) -> Fraction:
    return 1 - Fraction(confidence)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("samples", "failures"), TABLE)
def test_bound_matches_scipy_beta_ppf(
    beta_ppf: Any, samples: int, failures: int, confidence: float
) -> None:
    got = upper_bound(failures, samples, confidence)
    if failures == samples:
        # Beta(x + 1, 0) is degenerate (scipy answers nan): the bound's limit is 1
        assert got == 1.0
        return
    want = float(beta_ppf(confidence, failures + 1, samples - failures))
    assert got == pytest.approx(want, rel=SCIPY_REL, abs=0.0)


def test_default_confidence_is_95_percent(beta_ppf: Any) -> None:
    assert upper_bound(3, 3000) == upper_bound(3, 3000, 0.95)
    assert upper_bound(3, 3000) == pytest.approx(float(beta_ppf(0.95, 4, 2997)), rel=SCIPY_REL)


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("samples", [*range(1, 26), 40])
def test_bound_solves_the_exact_binomial_equation(samples: int, confidence: float) -> None:
    """P(X <= x | p = bound) = 1 - c, checked with fractions, and the root is within 1e-12."""
    alpha = alpha_of(confidence)
    for failures in range(samples):
        got = upper_bound(failures, samples, confidence)
        p = Fraction(got)
        assert 0 < p < 1
        assert abs(exact_cdf(failures, samples, p) - alpha) <= Fraction(1, 10**9)
        # the CDF falls strictly in p: the exact root lies within 1e-12 relative of `got`
        tol = Fraction(1, 10**12)
        assert exact_cdf(failures, samples, p * (1 - tol)) > alpha
        assert exact_cdf(failures, samples, p * (1 + tol)) < alpha


def test_bound_is_exact_for_larger_samples() -> None:
    """Same exact check where many terms add up (n = 200) and near both ends."""
    tol = Fraction(1, 10**12)
    for failures in (1, 7, 60, 100, 150, 199):
        got = Fraction(upper_bound(failures, 200, 0.95))
        alpha = alpha_of(0.95)
        assert exact_cdf(failures, 200, got * (1 - tol)) > alpha
        assert exact_cdf(failures, 200, got * (1 + tol)) < alpha


def test_low_confidence_can_fall_below_the_point_estimate() -> None:
    """Why the property test below keeps c >= 0.5: a 1% "bound" is below x/n."""
    got = upper_bound(50, 100, 0.01)
    assert got < drift_rate(50, 100)
    tol = Fraction(1, 10**12)
    assert exact_cdf(50, 100, Fraction(got) * (1 - tol)) > alpha_of(0.01)
    assert exact_cdf(50, 100, Fraction(got) * (1 + tol)) < alpha_of(0.01)


@pytest.mark.parametrize("confidence", [1e-300, 1e-12, 0.5, 1 - 1e-12])
@pytest.mark.parametrize(("samples", "failures"), [(100, 1), (30, 15), (12, 11)])
def test_extreme_confidence_levels(samples: int, failures: int, confidence: float) -> None:
    """Both far tails, exactly (scipy 1.17's beta.ppf gives up on c = 1e-300)."""
    got = Fraction(upper_bound(failures, samples, confidence))
    assert 0 < got < 1
    tol = Fraction(1, 10**12)
    assert exact_cdf(failures, samples, got * (1 - tol)) > alpha_of(confidence)
    assert exact_cdf(failures, samples, got * (1 + tol)) < alpha_of(confidence)


@pytest.mark.parametrize("confidence", [0.01, 0.5, 0.9, 0.95, 0.99, 0.999999])
@pytest.mark.parametrize("samples", [1, 2, 10, 3000, 10_000, 1_000_000])
def test_zero_failures_closed_form(samples: int, confidence: float) -> None:
    got = upper_bound(0, samples, confidence)
    assert got == pytest.approx(1 - (1 - confidence) ** (1 / samples), rel=1e-9)
    with localcontext() as ctx:
        ctx.prec = 50
        exact = 1 - (1 - Decimal(confidence)) ** (Decimal(1) / samples)
    # computed without the cancellation of 1 - (a number close to 1)
    assert got == pytest.approx(float(exact), rel=1e-15)


def test_zero_in_3000_is_about_a_tenth_of_a_percent() -> None:
    got = upper_bound(0, 3000)
    assert round(got, 6) == 0.000998
    assert 0.000998 < got < 0.000999
    assert got < 3 / 3000  # the rule of three, slightly conservative


def test_all_failures_is_one() -> None:
    for samples in (1, 10, 50, 1_000_000):
        for confidence in (0.01, 0.5, 0.95, 0.999):
            assert upper_bound(samples, samples, confidence) == 1.0


def test_nothing_sampled_is_one() -> None:
    assert upper_bound(0, 0) == 1.0
    assert upper_bound(0, 0, 0.5) == 1.0
    assert drift_rate(0, 0) == 0.0


def test_all_but_one_failure_closed_form() -> None:
    """x = n - 1: P(X <= n - 1) = 1 - p^n, so the bound is c ** (1 / n)."""
    for samples in (2, 10, 1000, 1_000_000):
        confidence = 0.95
        got = upper_bound(samples - 1, samples, confidence)
        with localcontext() as ctx:
            ctx.prec = 50
            exact = Decimal(confidence) ** (Decimal(1) / samples)
        assert got == pytest.approx(float(exact), rel=1e-15)


def test_drift_rate() -> None:
    assert drift_rate(3, 3000) == 0.001
    assert drift_rate(0, 10) == 0.0
    assert drift_rate(10, 10) == 1.0


@pytest.mark.parametrize(
    ("failures", "samples", "confidence", "message"),
    [
        (-1, 10, 0.95, "failures must be >= 0"),
        (0, -1, 0.95, "samples must be >= 0"),
        (11, 10, 0.95, r"failures \(11\) cannot exceed samples \(10\)"),
        (1, 0, 0.95, r"failures \(1\) cannot exceed samples \(0\)"),
        (1, 10, 0.0, "confidence must be strictly between 0 and 1"),
        (1, 10, 1.0, "confidence must be strictly between 0 and 1"),
        (1, 10, -0.5, "confidence must be strictly between 0 and 1"),
        (1, 10, 95.0, "confidence must be strictly between 0 and 1"),
        (1, 10, math.nan, "confidence must be strictly between 0 and 1"),
        (0, 0, 1.5, "confidence must be strictly between 0 and 1"),
    ],
)
def test_bad_arguments_raise(failures: int, samples: int, confidence: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        upper_bound(failures, samples, confidence)


def test_drift_rate_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="failures must be >= 0"):
        drift_rate(-1, 10)
    with pytest.raises(ValueError, match="cannot exceed samples"):
        drift_rate(4, 3)


def test_counts_must_be_integers() -> None:
    three: Any = 3.0
    with pytest.raises(TypeError):
        upper_bound(three, 10)
    with pytest.raises(TypeError):
        drift_rate(1, three)


@settings(deadline=None, max_examples=300)
@given(
    samples=st.integers(min_value=1, max_value=1_000_000),
    share=st.one_of(st.integers(min_value=0, max_value=100), st.floats(0.0, 1.0)),
    confidence=st.floats(min_value=0.5, max_value=0.999999),
)
@example(samples=1, share=0, confidence=0.5)
@example(samples=1_000_000, share=1.0, confidence=0.999999)
@example(samples=1_000_000, share=0.5, confidence=0.95)
def test_bound_properties(samples: int, share: float, confidence: float) -> None:
    failures = min(share, samples) if isinstance(share, int) else round(share * samples)
    got = upper_bound(failures, samples, confidence)
    assert failures / samples <= got <= 1.0
    # one failure more can only raise it, one clean sample more can only lower it
    if failures < samples:
        assert upper_bound(failures + 1, samples, confidence) > got
    assert upper_bound(failures, samples + 1, confidence) < got
    # and asking for more confidence widens it
    if failures < samples:
        assert upper_bound(failures, samples, min(0.9999999, confidence + 1e-3)) > got


def test_million_samples_is_fast() -> None:
    """Under a millisecond per call at n = 1,000,000 for typical (small) failure counts."""
    for failures in (0, 1, 3, 10, 100):
        best = math.inf
        for _ in range(30):
            t0 = time.perf_counter()
            upper_bound(failures, 1_000_000)
            best = min(best, time.perf_counter() - t0)
        assert best < 1e-3, (failures, best)


def test_stirling_error_terms_match_high_precision() -> None:
    """The table and series behind the pmf, against 60-digit decimal log(k!)."""
    with localcontext() as ctx:
        ctx.prec = 60
        half_log_2pi = (2 * PI_60).ln() / 2
        for k in (*range(1, 40), 50, 80, 81, 100, 500, 501, 1000):
            d = Decimal(k)
            want = (
                Decimal(math.factorial(k)).ln() - (d + Decimal("0.5")) * d.ln() + d - half_log_2pi
            )
            assert abs(bound._stirlerr(k) - float(want)) <= 1e-17, k


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [
        (1, 2, 0.5),
        (3, 10, 0.25),
        (10, 1_000_000, 2.0**-16),
        (10, 1_000_000, 0.3125),
        (5_000, 10_000, 0.5008),
        (1_000, 1_000_000, 2.0**-10),
        (999_999, 1_000_000, 0.99999995),
        (40, 100, 0.375),
    ],
)
def test_log_pmf_keeps_full_relative_precision(k: int, n: int, p: float) -> None:
    """Loader's form, where lgamma differences would lose ~8 digits at n = 10^6.

    (Each p here has 1 - p exact in floating point, so the reference is unambiguous.)
    """
    got = bound._log_pmf(k, n, p, 1.0 - p)
    with localcontext() as ctx:
        ctx.prec = 60
        dp = Decimal(p)
        want = Decimal(math.comb(n, k)).ln() + k * dp.ln() + (n - k) * (1 - dp).ln()
    assert got == pytest.approx(float(want), rel=1e-14, abs=1e-14)
