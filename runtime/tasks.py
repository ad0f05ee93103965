"""The background task of a component: started with it, cancelled and awaited when it closes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

RECANCEL_SECONDS = 0.5
"""How long `BackgroundTask.close` waits on a cancelled task before cancelling it again."""


class BackgroundTask:
    """One coroutine a component runs from its ``start`` to its ``close`` (a flush, a follower, a sampler).

    Args:
        run: Makes the coroutine; it runs until cancelled.
        name: The task's name, as a shutdown that waits for it lists it.
    """

    __slots__ = ("_name", "_run", "_task")

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._run, self._name = run, name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the coroutine in a task of its own, unless it runs already."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        """Cancel the task and wait until it has ended; nothing when it does not run. It may start again.

        Cancelled again every `RECANCEL_SECONDS` while it runs on: a cancellation swallowed on the
        way (a client cleaning up after it without re-raising) must not keep a closed component's
        loop running, nor its close waiting for ever.
        """
        if self._task is not None:
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=RECANCEL_SECONDS)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
