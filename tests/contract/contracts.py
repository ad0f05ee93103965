"""The provider contracts' response messages, walked from the descriptors."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

from runtime.providers import PROVIDERS


def provider_responses() -> list[Descriptor]:
    """The response message of every method of every provider service."""
    return [
        method.output_type
        for provider in PROVIDERS
        for service in provider.contract().DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


def messages_under(*roots: Descriptor) -> list[Descriptor]:
    """Every message type of the roots and of their fields, recursively, well-known types left out."""
    seen: dict[str, Descriptor] = {}

    def visit(message: Descriptor) -> None:
        if message.full_name in seen or message.full_name.startswith("google.protobuf."):
            return
        seen[message.full_name] = message
        for field in message.fields:
            if field.message_type is not None:
                visit(field.message_type)

    for root in roots:
        visit(root)
    return list(seen.values())
