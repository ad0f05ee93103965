"""``python -m bench.profile``: where a serving process spends its CPU under the benchmark's load.

It starts the benchmark's mesh (`bench.suite.Run.start`), warms the path up, then
samples the serving process with py-spy (a sampling profiler that reads the
interpreter from outside, on loopback, without touching its code) while the same
load as ``make bench`` runs, and prints the functions that took the most samples:
by where the event loop (or a thread) entered them, then by time spent inside a
function and its callees, then in the function itself. Each figure is its share of
the samples times the process's measured CPU per call: microseconds of CPU a call.
py-spy counts a sample for every thread that is not idle, so a thread waiting on the
GIL counts too: the shares say where to look, the measured CPU per call says how much.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.report import GATEWAY_REST, PathRun, Report
from bench.suite import Options, Run, measure
from devstack.processes import ProcessGroup

_ROOT = Path(__file__).resolve().parent.parent
_ENTRIES = ("Runner.run", "Thread.run")
"""Frames below which a sample's work starts: the event loop, a thread's body."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What py-spy's raw output says, by function."""

    samples: int
    entered: Counter[str]
    """Samples by the first frame below the event loop or a thread's body (the loop's own C code
    and the thread's own C code count under those two)."""
    inclusive: Counter[str]
    """Samples in which the function is on the stack, below the event loop or a thread's body."""
    own: Counter[str]
    """Samples in which the function is the innermost Python frame."""


def frame_name(frame: str) -> str:
    """``function (path)`` relative to the repository or site-packages, without the line."""
    function, _, place = frame.partition(" (")
    path = place.rsplit(":", 1)[0].rstrip(")")
    for prefix in (f"{_ROOT}/", "site-packages/", "/lib/python3."):
        if prefix in path:
            path = path.split(prefix, 1)[1]
            if prefix == "/lib/python3.":
                path = path.partition("/")[2]
            break
    return f"{function} ({path})"


def read_raw(text: str) -> Profile:
    """Aggregate py-spy's ``--format raw`` output: one ``frame;frame;... count`` line per stack."""
    entered: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame_name(frame) for frame in stack.split(";")[1:]]  # the first is the thread
        samples += int(count)
        if frames:
            own[frames[-1]] += int(count)
        below = frames
        for index, name in enumerate(frames):
            if name.split(" (")[0] in _ENTRIES:
                below = frames[index + 1 :]
                entered[below[0] if below else f"{name} [itself]"] += int(count)
                break
        for name in set(below):
            inclusive[name] += int(count)
    return Profile(samples, entered, inclusive, own)


def render(profile: Profile, path_run: PathRun, title: str, top: int) -> str:
    """The three tables, in µs of CPU a call."""
    per_sample = path_run.cpu_us_per_call / max(1, profile.samples)
    lines = [
        title,
        f"{path_run.load.throughput:.0f} calls/s, {path_run.cpu_us_per_call:.0f} µs of CPU a call, "
        f"{profile.samples} samples",
    ]
    for heading, counts in (
        ("entered from the event loop or a thread", profile.entered),
        ("with callees (inclusive)", profile.inclusive),
        ("itself (self)", profile.own),
    ):
        lines += ["", f"{heading}: µs a call, share"]
        for name, count in counts.most_common(top):
            lines.append(f"{count * per_sample:8.1f} {100 * count / profile.samples:5.1f}%  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start the mesh, profile one path under load, print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--path", default="gateway", choices=("gateway", GATEWAY_REST, "pass-through", "direct")
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds sampled under load")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=20, help="rows per table")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        parser.error("py-spy is not installed: .venv/bin/pip install py-spy")
    options = Options(duration=args.seconds, warmup=1.0)
    mesh = ProcessGroup(options.log_dir)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        try:
            run = Run(
                mesh,
                Report(options),
                Path(scratch),
                lambda message: print(message, file=sys.stderr),
                Path(scratch) / "journal-wal",
            )
            run.start()
            path = run.paths[args.path]
            measure(path.child, run.spec(path))  # warm-up: connections, caches, the JIT-less interpreter's
            raw = Path(scratch) / "profile.txt"
            command = [
                spy, "record", "--pid", str(path.child.process.pid), "--rate", str(args.rate),
                "--duration", str(int(options.warmup + args.seconds)), "--format", "raw",
                "--output", str(raw), "--nonblocking",
            ]  # fmt: skip
            sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
            path_run = measure(path.child, run.spec(path))
            _, complaint = sampler.communicate(timeout=args.seconds + 60)
            if sampler.returncode != 0:
                raise SystemExit(f"py-spy failed: {complaint.decode(errors='replace').strip()}")
            profile = read_raw(raw.read_text())
        finally:
            mesh.close()
    title = f"py-spy record --rate {args.rate} --nonblocking, {args.path} under make bench's high load"
    print(render(profile, path_run, title, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
