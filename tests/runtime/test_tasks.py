"""`runtime.tasks.BackgroundTask`: a component's task runs once from its start, and ends with its close."""

from __future__ import annotations

import asyncio

from runtime.tasks import BackgroundTask


class _Loop:
    """A component's loop that counts its runs and tells whether one is under way."""

    def __init__(self) -> None:
        self.runs = 0
        self.running = asyncio.Event()
        self.ended = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        self.running.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.ended.set()


async def test_a_second_start_while_it_runs_starts_nothing() -> None:
    """Two starts, one task: a component started twice does not run its loop twice."""
    loop = _Loop()
    task = BackgroundTask(loop.run, "test-loop")
    task.start()
    task.start()
    await asyncio.wait_for(loop.running.wait(), 1)
    await asyncio.sleep(0)
    assert loop.runs == 1
    assert [t for t in asyncio.all_tasks() if t.get_name() == "test-loop"]
    await task.close()


async def test_close_cancels_the_loop_and_waits_for_its_end() -> None:
    """After `close` the loop has ended (its cleanup ran), no task of its name is left; it may start again."""
    loop = _Loop()
    task = BackgroundTask(loop.run, "test-loop")
    task.start()
    await asyncio.wait_for(loop.running.wait(), 1)
    await task.close()
    assert loop.ended.is_set()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "test-loop"]
    task.start()
    await asyncio.sleep(0)
    assert loop.runs == 2
    await task.close()


async def test_close_before_any_start_does_nothing() -> None:
    """A component stopped before it started (a start-up that failed) closes without error."""
    loop = _Loop()
    await BackgroundTask(loop.run, "test-loop").close()
    assert loop.runs == 0


async def test_close_ends_a_loop_that_swallows_a_cancellation() -> None:
    """A loop whose client ate one cancellation (cleaning up, then going on) still ends with `close`."""
    swallowed = asyncio.Event()

    async def run() -> None:
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed.is_set():
                    raise
                swallowed.set()  # the first one is lost, as in a client's cleanup that does not re-raise

    task = BackgroundTask(run, "test-loop")
    task.start()
    await asyncio.sleep(0.02)
    closing = asyncio.ensure_future(task.close())
    done, _ = await asyncio.wait({closing}, timeout=3)
    if not done:  # the loop runs on: end it by cancelling the close that waits on it
        closing.cancel()
    assert closing in done
    assert swallowed.is_set()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "test-loop"]
