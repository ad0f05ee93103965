"""The response cache's benchmark runs and counts what it says: hits spare the provider, no-cache does not."""

from __future__ import annotations

import pytest

from bench.response_cache import measure


async def test_a_short_run_counts_the_calls_saved(capsys: pytest.CaptureFixture[str]) -> None:
    await measure(requests=2, repeats=3, delay_ms=0)
    printed = capsys.readouterr().out
    assert "upstream calls: 2 for 6 calls (4 saved)" in printed
    assert "hit  (X-Response-Cached: true):  4 calls" in printed
    assert "miss (first call of a request):  2 calls" in printed
    assert "miss (Cache-Control: no-cache):  2 calls" in printed
