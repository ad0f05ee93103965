"""A citizen's access history: the calls public bodies made about them, read from the journal.

Served as ``GatewayService/ListAccesses`` through `CallPath.call_citizen`: the
citizen's FranceConnect access token is resolved as for the FranceConnect methods, and
the journal is searched for the digests of every form a caller may have named that
identity by (`gateway.journal.subject.identity_forms`: the journal's own normalisation,
so "Jean Pierre" and "JEAN-PIERRE" are one person). Only provider calls are listed, each
with its time, recipient SIRET, habilitation label, API and outcome; the citizen sees no
token id, no request id, nothing of anyone else. Each access also names the public body and
the habilitation's use case, read from the registry's snapshot by the row's habilitation id
when it knows it (the journal's rows stay as written: a name changed in the registry is the
name shown from then on); empty otherwise (a gateway without a registry, a row written before
journal migration 2, a habilitation without a name).
"""

from __future__ import annotations

import asyncio

import psycopg
from google.protobuf.message import Message

from apiparticulier.gateway.v1 import gateway_pb2
from contract.catalog import ApiCatalog
from gateway.journal import Journal, identity_forms
from gateway.journal.queries import provider_calls_about
from gateway.registry.snapshot import RegistrySnapshot
from runtime.errors import store_unavailable


class AccessHistory:
    """Reads a citizen's accesses from the journal's database.

    Args:
        database_url: The journal's ``postgresql://`` URL; empty when the journal is kept to
            log events, and then every request is 00503.
        journal: The journal, whose key makes the digests.
        catalog: API labels ↔ the ``Api`` enum.
        timeout_seconds: Longest the connection and the query may take.
        registry: The registry's snapshot the body's name and the use case are read from; None:
            a gateway without a registry, the accesses then name neither.
    """

    def __init__(
        self,
        database_url: str,
        journal: Journal,
        catalog: ApiCatalog,
        timeout_seconds: float,
        registry: RegistrySnapshot | None = None,
    ) -> None:
        self._url = database_url
        self._journal = journal
        self._catalog = catalog
        self._timeout = timeout_seconds
        self._registry = registry

    async def list_accesses(self, request: Message) -> gateway_pb2.ListAccessesResponse:
        """The accesses about the person whose identity the resolved request carries.

        Args:
            request: A `ListAccessesRequest` whose FranceConnect subject the gateway resolved.

        Raises:
            ApiError: 00503, the journal's database cannot be read.
        """
        assert isinstance(request, gateway_pb2.ListAccessesRequest)  # noqa: S101 - the servicer's own request
        if not self._url:
            raise store_unavailable()
        digests = self._journal.digests(identity_forms(request.france_connect.identite_pivot))
        try:
            async with asyncio.timeout(self._timeout):
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                async with conn:
                    accesses = await provider_calls_about(conn, digests)
        except (psycopg.Error, OSError, TimeoutError):
            raise store_unavailable() from None
        response = gateway_pb2.ListAccessesResponse()
        for access in accesses:
            purpose = (
                None
                if self._registry is None or access.habilitation_id is None
                else self._registry.purpose(access.habilitation_id)
            )
            entry = response.accesses.add(
                recipient=access.recipient,
                habilitation=access.habilitation,
                api=self._catalog.api_of_label(access.api),
                outcome=access.status,
                code=access.code,
                organisation_name="" if purpose is None else purpose.organisation_name,
                use_case="" if purpose is None else purpose.use_case,
            )
            entry.time.FromDatetime(access.occurred_at)
        return response
