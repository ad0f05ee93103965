"""Step 6 of the call path: clear the response fields the caller's scopes do not unlock."""

from __future__ import annotations

from google.protobuf.message import Message

from contract.routes import MessagePlan


def mask(message: Message, plan: MessagePlan, scopes: frozenset[str]) -> None:
    """Clear, in place, every field of ``message`` the scopes do not unlock.

    A field with a scope the token lacks is cleared with all it holds; a field
    the token may see is entered when its own message has fields to mask.
    """
    for rule in plan.active:
        if rule.scope is not None and rule.scope not in scopes:
            message.ClearField(rule.name)
            continue
        nested = rule.nested
        if nested is None or nested.scopes <= scopes:
            continue
        if rule.repeated:
            for item in getattr(message, rule.name):
                mask(item, nested, scopes)
        elif message.HasField(rule.name):
            mask(getattr(message, rule.name), nested, scopes)
