"""Step 6 of the call path: withhold the response fields the caller's scopes do not unlock.

A withheld field is cleared and named in the response's ``withheld`` field mask,
so that the caller never reads it as a value: an unset ``est_beneficiaire``
would otherwise read as null, a cleared ``enfants`` as "no children".
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message

from contract.routes import MessagePlan
from contract.v3_json import DATA_FIELD, WITHHELD_FIELD


def mask(message: Message, plan: MessagePlan, scopes: frozenset[str]) -> None:
    """Withhold, in place, every field of a provider response the scopes do not unlock.

    A field with a scope the token lacks is cleared with all it holds; a field the
    token may see is entered when its own message has fields to withhold. The
    response's ``withheld`` then lists the path of every withheld field relative
    to ``data`` (``admissions.est_inscrit`` standing for that field in every
    admission), whether or not the provider had a value for it: the list depends
    on the scopes alone, so it never tells what a withheld field held.

    Args:
        message: A provider response, with its ``data`` and ``withheld`` fields.
        plan: The response's plan (`contract.routes.Route.plan`).
        scopes: The scopes the answer is masked with.
    """
    _clear(message, plan, scopes)
    message.ClearField(WITHHELD_FIELD)
    paths = [
        path
        for rule in plan.fields
        if rule.name == DATA_FIELD and rule.nested is not None
        for path in withheld_paths(rule.nested, scopes)
    ]
    if paths:
        # Only then: an empty mask would still be sent, as a present empty message.
        getattr(message, WITHHELD_FIELD).paths.extend(paths)


def withheld_paths(plan: MessagePlan, scopes: frozenset[str], prefix: str = "") -> Iterator[str]:
    """The dotted paths of the fields of ``plan`` (and under it) the scopes do not unlock.

    A withheld field's own fields are not listed: the field's path covers them.
    """
    for rule in plan.active:
        path = f"{prefix}{rule.name}"
        if rule.scope is not None and rule.scope not in scopes:
            yield path
        elif rule.nested is not None and not rule.nested.scopes <= scopes:
            yield from withheld_paths(rule.nested, scopes, f"{path}.")


def _clear(message: Message, plan: MessagePlan, scopes: frozenset[str]) -> None:
    for rule in plan.active:
        if rule.scope is not None and rule.scope not in scopes:
            message.ClearField(rule.name)
            continue
        nested = rule.nested
        if nested is None or nested.scopes <= scopes:
            continue
        if rule.repeated:
            for item in getattr(message, rule.name):
                _clear(item, nested, scopes)
        elif message.HasField(rule.name):
            _clear(getattr(message, rule.name), nested, scopes)
