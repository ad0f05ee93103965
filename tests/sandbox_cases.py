"""Every sandbox person asked through every provider method that takes a subject they have.

The persons come from each provider's ``sandbox_population.json``, the methods from
the route table, the subject field from the request's ``subject`` option: nothing
here lists a provider, a method or a person.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from apiparticulier.common.v1 import options_pb2
from contract.routes import Route, RouteTable
from runtime.providers import BY_NAME, PROVIDERS
from services.common.app import ProviderAssembly

_SUBJECT_KEYS = {
    options_pb2.SUBJECT_KIND_IDENTITY_PIVOT: "identite",
    options_pb2.SUBJECT_KIND_FRANCE_CONNECT: "identite",
    options_pb2.SUBJECT_KIND_INE: "ine",
    options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT: "identifiant",
    options_pb2.SUBJECT_KIND_SPORTIF_IDENTIFIANT: "identifiant",
}
"""Which key of a population entry holds each kind of subject."""


@dataclass(frozen=True)
class Case:
    """One sandbox person asked through one provider method."""

    route: Route
    person: str
    """The person's label in the population file."""
    request: Message
    answers: bool
    """Whether the population holds an answer the API gives (else the provider says NOT_FOUND)."""
    refusal: str | None = None
    """The code the API's own rule refuses the person's answer with (the entry's ``refusals``)."""

    @property
    def id(self) -> str:
        """A readable test id."""
        return f"{self.route.method}[{self.person}]"


def population(provider: str) -> list[dict[str, Any]]:
    """The raw entries of a provider's sandbox population file."""
    sandbox = importlib.import_module(f"{BY_NAME[provider].package}.sandbox")
    persons: list[dict[str, Any]] = json.loads(sandbox.POPULATION_FILE.read_text(encoding="utf-8"))["persons"]
    return persons


def subject_request(route: Route, person: dict[str, Any]) -> Message | None:
    """The request naming the person by the method's kind of subject; None when they have none."""
    name, kind = route.subject.name, route.subject.kind
    subject = person.get(_SUBJECT_KEYS[kind])
    if subject is None:
        return None
    request = route.request_class()
    if kind == options_pb2.SUBJECT_KIND_IDENTITY_PIVOT:
        json_format.ParseDict(subject, getattr(request, name))
    elif kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT:
        # What the gateway writes once it resolved the citizen's FranceConnect token.
        fc = getattr(request, name)
        fc.access_token = "sandbox"
        json_format.ParseDict(subject, fc.identite_pivot)
    else:
        setattr(request, name, subject)
    # What else the method needs to find the person's answer (ANTS's registration number).
    json_format.ParseDict(person.get("parameters", {}), request)
    return request


def _school_searches(request: Message, person: dict[str, Any], today: dt.date) -> Iterator[Message]:
    # MEN is searched in one school year within an establishment: one search for
    # each schooling the person's entry lists, which must find it.
    for schooling in person.get("answers", {}).get("scolarites", ()):
        search = type(request)()
        search.CopyFrom(request)
        code_uai = schooling["scolarite"]["etablissement"]["code_uai"]
        yield json_format.ParseDict({"anneeScolaire": str(today.year), "codeEtablissement": code_uai}, search)


def cases(routes: RouteTable, today: dt.date) -> list[Case]:
    """Every person who is not an error path, through every method taking a subject they have.

    Not the slow persons (``answer_seconds``): each answers as the first person of its file
    does, and would add its seconds to every case (`slow_cases` asks them).
    """
    found: list[Case] = []
    for route in routes.routes:
        api = route.api_label.split(".", 1)[1]
        for person in population(route.provider):
            slow = "answer_seconds" in person
            request = None if "error" in person or slow else subject_request(route, person)
            if request is None:
                continue
            if "annee_scolaire" in request.DESCRIPTOR.fields_by_name:
                found.extend(
                    Case(route, person["label"], search, answers=True)
                    for search in _school_searches(request, person, today)
                )
            else:
                refusal = person.get("refusals", {}).get(api)
                answers = api in person["answers"] and refusal is None
                found.append(Case(route, person["label"], request, answers, refusal))
    return found


def slow_cases(routes: RouteTable) -> list[Case]:
    """Each provider's slow person (``answer_seconds``), through a method that finds their answer.

    A method taking the subject as it is rather than by FranceConnect, where the provider has one.
    """
    found: dict[str, Case] = {}
    for route in sorted(
        routes.routes, key=lambda r: r.subject.kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT
    ):
        api = route.api_label.split(".", 1)[1]
        for person in population(route.provider):
            # MEN's answers are the person's schoolings, each searched on its own (`_school_searches`).
            answered = api in person.get("answers", {}) or "scolarites" in person.get("answers", {})
            if route.provider in found or "answer_seconds" not in person or not answered:
                continue
            request = subject_request(route, person)
            if request is None:
                continue
            if "annee_scolaire" in request.DESCRIPTOR.fields_by_name:
                request = next(_school_searches(request, person, dt.date.today()))
            found[route.provider] = Case(route, person["label"], request, answers=True)
    return list(found.values())


def method(channel: grpc.aio.Channel, route: Route) -> grpc.aio.UnaryUnaryMultiCallable[Message, Message]:
    """The route's method on a channel, with its own request and response classes."""
    return channel.unary_unary(
        route.path,
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=route.response_class.FromString,
    )


@asynccontextmanager
async def sandbox_providers() -> AsyncIterator[dict[str, str]]:
    """Every provider service of the registry on its sandbox backend, on loopback: name → address."""
    async with AsyncExitStack() as stack:
        addresses = {}
        for provider in PROVIDERS:
            app = vars(importlib.import_module(f"{provider.package}.app"))
            (assembly,) = [value for value in app.values() if isinstance(value, ProviderAssembly)]
            server = assembly.server(assembly.settings(grpc_host="127.0.0.1", grpc_port=0))
            await server.start()
            stack.push_async_callback(server.stop, 0)
            addresses[provider.name] = f"127.0.0.1:{server.port}"
        yield addresses
