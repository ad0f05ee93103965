"""The latency histogram: bounded error, exact extremes, merging by addition."""

from __future__ import annotations

import random

import pytest

from bench.histogram import LatencyHistogram, bucket_bounds, bucket_of


def test_every_value_falls_in_its_own_bucket_within_one_percent() -> None:
    """A value lies within its bucket's bounds, and the bucket is narrower than 1/64 of it."""
    for value in [*range(300), *random.Random(6).sample(range(10**10), 2000)]:
        lowest, highest = bucket_bounds(bucket_of(value))
        assert lowest <= value <= highest
        assert highest - lowest <= max(0, lowest // 64)


def test_percentiles_are_within_one_percent_of_the_exact_ones() -> None:
    """p50 and p99 of a skewed sample agree with the sorted sample to 1 %, p100 exactly."""
    rng = random.Random(42)
    values = [int(rng.lognormvariate(13, 1)) for _ in range(20_000)]
    histogram = LatencyHistogram()
    for value in values:
        histogram.record(value)
    ordered = sorted(values)
    for fraction in (0.5, 0.99):
        exact = ordered[int(fraction * len(ordered)) - 1]
        assert histogram.percentile_ns(fraction) == pytest.approx(exact, rel=0.01)
    assert histogram.percentile_ns(1.0) == max(values)
    assert histogram.count == len(values)


def test_merging_equals_recording_everything_in_one() -> None:
    """Two histograms merged answer as one that saw every value."""
    rng = random.Random(7)
    first, second, whole = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for index in range(5000):
        value = rng.randrange(50_000, 5_000_000)
        (first if index % 3 else second).record(value)
        whole.record(value)
    merged = LatencyHistogram.merged([first, second])
    assert merged.count == whole.count == 5000
    assert (merged.min_ns, merged.max_ns) == (whole.min_ns, whole.max_ns)
    for fraction in (0.01, 0.5, 0.9, 0.999):
        assert merged.percentile_ns(fraction) == whole.percentile_ns(fraction)


def test_an_empty_histogram_has_no_percentile() -> None:
    """Asking an empty histogram, or for a fraction out of (0, 1], is an error."""
    with pytest.raises(ValueError, match="no latency"):
        LatencyHistogram().percentile_ns(0.5)
    histogram = LatencyHistogram()
    histogram.record(1)
    with pytest.raises(ValueError, match="fraction"):
        histogram.percentile_ns(0)
