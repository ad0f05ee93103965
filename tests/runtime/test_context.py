"""The call context: request ids made for callers that send none, and the context of logs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import MutableMapping
from typing import Any

from runtime.context import call_of_context, new_request_id, open_call
from runtime.logs import add_call_context


def test_a_new_request_id_is_a_random_uuid_of_version_4() -> None:
    made = [new_request_id() for _ in range(4000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # Every hexadecimal digit that is not fixed by the version and variant varies.
    for position in (0, 9, 15, 20, 35):
        assert len({text[position] for text in made}) == 16
    assert {text[19] for text in made} == set("89ab")


async def test_log_events_carry_the_call_they_belong_to() -> None:
    async def in_call(request_id: str) -> MutableMapping[str, Any]:
        open_call(request_id, "/a.B/C")
        await asyncio.sleep(0)
        return add_call_context(None, "info", {"event": "something"})

    one, two = await asyncio.gather(
        asyncio.create_task(in_call("first")), asyncio.create_task(in_call("second"))
    )
    assert one == {"event": "something", "request_id": "first", "rpc": "/a.B/C"}
    assert two["request_id"] == "second"
    assert call_of_context() is None  # outside any call, nothing is added
    assert add_call_context(None, "info", {"event": "outside"}) == {"event": "outside"}
