"""Reading py-spy's raw output: samples by entry point, with callees, and in each function itself."""

from __future__ import annotations

from pathlib import Path

from bench.profile import frame_name, read_raw

ROOT = Path(__file__).resolve().parents[2]
UVLOOP = "run (/x/.venv/lib/python3.11/site-packages/uvloop/__init__.py:105)"
RUNNER = "Runner.run (/usr/lib/python3.11/asyncio/runners.py:118)"
LOOP = f"{UVLOOP};{RUNNER}"


def test_frames_are_named_by_function_and_short_path() -> None:
    assert frame_name(f"_frame ({ROOT}/gateway/call_path.py:451)") == "_frame (gateway/call_path.py)"
    assert (
        frame_name("run (/x/.venv/lib/python3.11/site-packages/uvloop/__init__.py:105)")
        == "run (uvloop/__init__.py)"
    )
    assert (
        frame_name("Runner.run (/usr/lib/python3.11/asyncio/runners.py:118)")
        == "Runner.run (asyncio/runners.py)"
    )


def test_samples_are_counted_by_entry_with_callees_and_by_function() -> None:
    call = f"call ({ROOT}/runtime/interceptors.py:207)"
    check = f"check ({ROOT}/gateway/ratelimit.py:324)"
    account = f"_account ({ROOT}/gateway/call_path.py:557)"
    raw = "\n".join(
        [
            f"Thread 1 (active);{LOOP};{call};{check} 6",
            f"Thread 1 (active);{LOOP};{call} 2",
            f"Thread 1 (active);{LOOP};{account} 3",
            f"Thread 1 (active);{LOOP} 8",
            "Thread 2 (active);Thread.run (/usr/lib/python3.11/threading.py:982) 1",
            "not a sample line",
        ]
    )
    profile = read_raw(raw)
    assert profile.samples == 20
    assert profile.entered == {
        "call (runtime/interceptors.py)": 8,
        "_account (gateway/call_path.py)": 3,
        "Runner.run (asyncio/runners.py) [itself]": 8,
        "Thread.run (threading.py) [itself]": 1,
    }
    assert profile.inclusive["call (runtime/interceptors.py)"] == 8
    assert profile.inclusive["check (gateway/ratelimit.py)"] == 6
    assert "Runner.run (asyncio/runners.py)" not in profile.inclusive  # above every call: says nothing
    assert profile.own["check (gateway/ratelimit.py)"] == 6
    assert profile.own["call (runtime/interceptors.py)"] == 2
    assert profile.own["Runner.run (asyncio/runners.py)"] == 8
