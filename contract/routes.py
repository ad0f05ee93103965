"""The route table: every provider method, read from the contracts' descriptors.

Nothing here is written by hand: for every method of every provider service the
generated SDK holds, the table says which provider serves it, which scopes open
it (the ``method_access`` option) and how to mask its answer (the ``scope`` and
``visible_to_every_caller`` field options, followed into nested messages).

A response field that carries neither option, or both, stops the gateway at
start-up: a field nobody decided about must not leak by default.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message

from apiparticulier.common.v1 import identity_pb2, options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from runtime.providers import PROVIDERS

# Well-known types are leaves: their inner fields are not the contract's to annotate.
_LEAF_PACKAGES = ("google.protobuf.",)


class ContractError(ValueError):
    """The contracts do not say how to mask some response fields; the gateway must not start."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one response field is masked."""

    name: str
    """The field's name in the message."""
    scope: str | None
    """The scope that unlocks the field; None when every caller who sees the parent sees it."""
    repeated: bool
    """Whether the field is a repeated field (a nested plan then applies to each item)."""
    nested: MessagePlan | None
    """The plan of the field's message type, when it is a message the contract annotates."""


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """How to mask one message type, field by field."""

    full_name: str
    """The message's full proto name."""
    fields: tuple[FieldRule, ...]
    """Every field of the message, in declaration order."""
    scopes: frozenset[str]
    """Every scope used in this message and the messages under it: holding them all masks nothing."""
    active: tuple[FieldRule, ...]
    """The rules that can clear something (a scope, or a nested plan that has scopes)."""


@dataclass(frozen=True, slots=True)
class SubjectField:
    """The request field that names the person asked about (the ``subject`` option)."""

    name: str
    """The field's name."""
    kind: options_pb2.SubjectKind.ValueType
    """Its ``SubjectKind``."""


@dataclass(frozen=True, slots=True)
class LookupParameter:
    """A request field the Lookup fills from one of its ``LookupParameters`` (``lookup_parameter``)."""

    field: str
    """The request field's name."""
    parameter: str
    """The ``LookupParameters`` field it is filled from."""


@dataclass(frozen=True, slots=True)
class Route:
    """One provider method as the gateway serves it."""

    provider: str
    """The provider service's name: the proto package segment (``cnaf``, ``mesr``, …)."""
    service: str
    """The service's full name, served unchanged by the gateway."""
    method: str
    """The method's name."""
    path: str
    """The gRPC path, ``/<service>/<method>``."""
    api_label: str
    """The API's label (``api_route.api``): ``<provider>.<api>``, the unit of usage statistics."""
    http_paths: tuple[str, ...]
    """The method's paths in the published OpenAPI spec (``api_route.http_paths``)."""
    deprecated: bool
    """The method serves an older version of its API (``option deprecated``), as its REST paths
    are deprecated in the spec: what asks an API by its label takes its current methods."""
    subject: SubjectField
    """The request field naming the person asked about."""
    lookup_parameters: tuple[LookupParameter, ...]
    """The request fields the gateway's Lookup fills from its ``LookupParameters``."""
    scopes: frozenset[str]
    """Scopes that open the method, any one sufficing; empty: refused to every caller."""
    request_class: type[Message]
    """The request message class."""
    response_class: type[Message]
    """The response message class."""
    plan: MessagePlan
    """How to mask the response."""


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every provider method the gateway serves."""

    routes: tuple[Route, ...]
    """All routes, by provider then declaration order."""

    def by_service(self) -> Mapping[str, tuple[Route, ...]]:
        """The routes grouped by full service name."""
        grouped: dict[str, list[Route]] = {}
        for route in self.routes:
            grouped.setdefault(route.service, []).append(route)
        return {service: tuple(routes) for service, routes in grouped.items()}

    def by_path(self) -> Mapping[str, Route]:
        """The routes by gRPC path."""
        return {route.path: route for route in self.routes}

    def of_api(self, label: str) -> tuple[Route, ...]:
        """The routes of the API ``label``, its current ones before its deprecated ones."""
        of_api = (route for route in self.routes if route.api_label == label)
        return tuple(sorted(of_api, key=lambda route: route.deprecated))


def build_routes(modules: Iterable[ModuleType] | None = None) -> RouteTable:
    """Read the route table from the descriptors of the provider modules.

    Args:
        modules: Generated ``*_pb2`` modules; by default those of every provider of the registry.

    Raises:
        ContractError: A method the gateway cannot classify, every problem named: a response
            field with neither ``scope`` nor ``visible_to_every_caller`` (or both), no
            ``api_route``, no single subject field of a fitting type, a ``lookup_parameter``
            naming no ``LookupParameters`` field of the same type.
    """
    problems: list[str] = []
    plans: dict[str, MessagePlan] = {}
    routes: list[Route] = []
    for module in [p.contract() for p in PROVIDERS] if modules is None else modules:
        file: FileDescriptor = module.DESCRIPTOR
        provider = file.package.split(".")[1]
        for service in file.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                options = method.GetOptions()
                declared = options.Extensions[options_pb2.api_route]
                if not declared.api.startswith(f"{provider}.") or not declared.http_paths:
                    problems.append(f"{path}: api_route must name an API of {provider} and its HTTP paths")
                subject = subject_field(method.input_type)
                if subject is None:
                    problems.append(f"{path}: the request needs exactly one subject field of a matching type")
                    subject = SubjectField("", options_pb2.SUBJECT_KIND_UNSPECIFIED)
                routes.append(
                    Route(
                        provider=provider,
                        service=service.full_name,
                        method=method.name,
                        path=path,
                        api_label=declared.api,
                        http_paths=tuple(declared.http_paths),
                        deprecated=options.deprecated,
                        subject=subject,
                        lookup_parameters=_lookup_parameters(method.input_type, problems),
                        scopes=frozenset(options.Extensions[options_pb2.method_access].scopes),
                        request_class=message_factory.GetMessageClass(method.input_type),
                        response_class=message_factory.GetMessageClass(method.output_type),
                        plan=_plan(method.output_type, plans, problems, ()),
                    )
                )
    if problems:
        raise ContractError(
            "the contracts leave provider methods undecided: " + "; ".join(sorted(set(problems)))
        )
    return RouteTable(tuple(routes))


_SUBJECT_TYPES: dict[options_pb2.SubjectKind.ValueType, str | None] = {
    options_pb2.SUBJECT_KIND_IDENTITY_PIVOT: identity_pb2.IdentityPivot.DESCRIPTOR.full_name,
    options_pb2.SUBJECT_KIND_FRANCE_CONNECT: identity_pb2.FranceConnectSubject.DESCRIPTOR.full_name,
    options_pb2.SUBJECT_KIND_INE: None,
    options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT: None,
    options_pb2.SUBJECT_KIND_SPORTIF_IDENTIFIANT: None,
}
"""The message type each subject kind holds; None: a string."""


def subject_field(message: Descriptor) -> SubjectField | None:
    """The one field of ``message`` marked as its subject, if exactly one is and its type fits its kind."""
    marked = [
        SubjectField(field.name, field.GetOptions().Extensions[options_pb2.subject])
        for field in message.fields
        if field.GetOptions().Extensions[options_pb2.subject] != options_pb2.SUBJECT_KIND_UNSPECIFIED
    ]
    if len(marked) != 1 or marked[0].kind not in _SUBJECT_TYPES:
        return None
    field = message.fields_by_name[marked[0].name]
    expected = _SUBJECT_TYPES[marked[0].kind]
    actual = None if field.message_type is None else field.message_type.full_name
    if (
        field.is_repeated
        or actual != expected
        or (expected is None and field.type != FieldDescriptor.TYPE_STRING)
    ):
        return None
    return marked[0]


def _lookup_parameters(message: Descriptor, problems: list[str]) -> tuple[LookupParameter, ...]:
    parameters = gateway_pb2.LookupParameters.DESCRIPTOR.fields_by_name
    found = []
    for field in message.fields:
        name = field.GetOptions().Extensions[options_pb2.lookup_parameter]
        if not name:
            continue
        source = parameters.get(name)
        if source is None or (source.type, source.is_repeated) != (field.type, field.is_repeated):
            problems.append(f"{message.full_name}.{field.name}: no LookupParameters.{name} of the same type")
            continue
        found.append(LookupParameter(field.name, name))
    return tuple(found)


def field_options(field: FieldDescriptor) -> tuple[str | None, bool]:
    """The field's ``scope`` (None if unset) and ``visible_to_every_caller`` options."""
    options = field.GetOptions()
    scope = options.Extensions[options_pb2.scope] or None
    return scope, bool(options.Extensions[options_pb2.visible_to_every_caller])


def _plan(
    message: Descriptor, plans: dict[str, MessagePlan], problems: list[str], parents: tuple[str, ...]
) -> MessagePlan:
    known = plans.get(message.full_name)
    if known is not None:
        return known
    if message.full_name in parents:
        # A recursive response type would need an unbounded plan; the contracts have none.
        raise ContractError(f"recursive response message {message.full_name} is not supported")
    rules = []
    for field in message.fields:
        scope, visible = field_options(field)
        if (scope is None) == (not visible):
            problems.append(f"{message.full_name}.{field.name}")
        nested = None
        if (
            field.message_type is not None
            and not field.message_type.GetOptions().map_entry
            and not field.message_type.full_name.startswith(_LEAF_PACKAGES)
        ):
            nested = _plan(field.message_type, plans, problems, (*parents, message.full_name))
        rules.append(
            FieldRule(
                name=field.name,
                scope=scope,
                repeated=field.is_repeated,
                nested=nested,
            )
        )
    scopes = frozenset(
        {rule.scope for rule in rules if rule.scope is not None}.union(
            *(rule.nested.scopes for rule in rules if rule.nested is not None)
        )
    )
    plan = MessagePlan(
        full_name=message.full_name,
        fields=tuple(rules),
        scopes=scopes,
        active=tuple(
            rule for rule in rules if rule.scope is not None or (rule.nested and rule.nested.scopes)
        ),
    )
    plans[message.full_name] = plan
    return plan


@functools.cache
def contract_scopes() -> frozenset[str]:
    """Every scope the provider contracts name: what a token may carry and the admin CLI accepts."""
    return frozenset(scope for route in build_routes().routes for scope in route.scopes | route.plan.scopes)
