"""A latency histogram in the manner of HdrHistogram: bounded memory, mergeable, < 1 % error.

A value (nanoseconds) keeps its 7 most significant bits: below 128 ns it is kept
exactly, above it falls in a bucket whose width is under 1/64 of its lower bound.
A run of any length therefore costs a few hundred buckets per process, and the
histograms of several client processes merge by adding counts, which raw sample
lists would do only at the price of shipping every sample to the parent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

_SIGNIFICANT_BITS = 7
_SUB_BUCKET_MASK = (1 << _SIGNIFICANT_BITS) - 1


def bucket_of(value_ns: int) -> int:
    """The index of the bucket that holds ``value_ns`` (negative values count as 0)."""
    value_ns = max(value_ns, 0)
    shift = max(0, value_ns.bit_length() - _SIGNIFICANT_BITS)
    return (shift << _SIGNIFICANT_BITS) | (value_ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest value, in nanoseconds, that fall in bucket ``index``."""
    shift = index >> _SIGNIFICANT_BITS
    lowest = (index & _SUB_BUCKET_MASK) << shift
    return lowest, lowest + (1 << shift) - 1


class LatencyHistogram:
    """Counts of latencies by bucket, with the exact minimum and maximum."""

    __slots__ = ("_counts", "count", "max_ns", "min_ns")

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self.count = 0
        self.min_ns: int | None = None
        self.max_ns: int | None = None

    def record(self, value_ns: int) -> None:
        """Add one latency, in nanoseconds."""
        self._counts[bucket_of(value_ns)] += 1
        self.count += 1
        if self.min_ns is None or value_ns < self.min_ns:
            self.min_ns = value_ns
        if self.max_ns is None or value_ns > self.max_ns:
            self.max_ns = value_ns

    def merge(self, other: LatencyHistogram) -> None:
        """Add every latency of ``other`` to this histogram."""
        self._counts.update(other._counts)
        self.count += other.count
        for value in (other.min_ns, other.max_ns):
            if value is not None:
                self.min_ns = value if self.min_ns is None else min(self.min_ns, value)
                self.max_ns = value if self.max_ns is None else max(self.max_ns, value)

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """One histogram holding every latency of ``histograms``."""
        total = cls()
        for histogram in histograms:
            total.merge(histogram)
        return total

    def percentile_ns(self, fraction: float) -> float:
        """The latency below which ``fraction`` (0 < fraction <= 1) of the calls fall, in nanoseconds.

        The answer is the middle of the bucket holding the rank, clamped to the
        exact minimum and maximum; the first and last ranks are the exact extremes.

        Raises:
            ValueError: when the histogram is empty or ``fraction`` is out of range.
        """
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if self.count == 0 or self.min_ns is None or self.max_ns is None:
            raise ValueError("no latency recorded")
        rank = max(1, math.ceil(fraction * self.count))
        if rank == 1:
            return float(self.min_ns)
        if rank == self.count:
            return float(self.max_ns)
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                lowest, highest = bucket_bounds(index)
                return min(max((lowest + highest) / 2, self.min_ns), self.max_ns)
        return float(self.max_ns)  # unreachable: the counts add up to self.count

    def percentile_ms(self, fraction: float) -> float:
        """`percentile_ns` in milliseconds."""
        return self.percentile_ns(fraction) / 1e6
