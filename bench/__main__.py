"""``python -m bench`` (``make bench``): measure the mesh and print one table."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from bench.report import machine, render
from bench.suite import Options, run


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # Unwinds like Ctrl-C, so the `finally` that stops every child runs.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run every phase and print the table; 0 when it ran, whatever the targets say."""
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--processes", type=int, default=defaults.processes, help="client processes")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="calls in flight per process"
    )
    parser.add_argument(
        "--connections", type=int, default=defaults.connections, help="gRPC connections per client process"
    )
    parser.add_argument(
        "--workers", type=int, default=defaults.workers, help="workers of the second gateway measured"
    )
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds measured per run")
    parser.add_argument(
        "--rounds", type=int, default=defaults.rounds, help="high-load rounds; the best is kept"
    )
    args = parser.parse_args(argv)
    options = Options(
        processes=args.processes,
        concurrency=args.concurrency,
        connections=args.connections,
        workers=args.workers,
        duration=args.duration,
        rounds=args.rounds,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {message}", file=sys.stderr, flush=True)

    try:
        report = run(options, say)
    except KeyboardInterrupt:
        say("interrupted; everything was stopped")
        return 130
    print(render(report))
    print(f"\nmachine: {machine()}; whole run {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
