"""An editor token's call: the delegation its recipient picks, and the rights that then apply.

An editor token holds no scopes (ACCESS-MODEL.md §3, §4.3): once the call's recipient
SIRET is known, the editor's active delegations for that SIRET (in the registry's
snapshot, `Token.grants`: no I/O) decide:

- none → 403 ``00213`` (also: every delegation of that SIRET revoked, or its habilitation
  revoked or archived);
- a ``delegation_id`` given (query parameter ``delegation_id`` or header ``X-Delegation-Id``
  on REST, metadata `DELEGATION_ID_KEY` on gRPC) that is not one of them → 403 ``00213``;
- several and no ``delegation_id`` → 422 ``00212``;
- else that delegation: the call takes its habilitation's scopes, limits (its counters,
  shared with the habilitation's classic tokens: the same rate key) and IP lists, with
  the editor's and the token's ranges beside them (`Rights.also_within`).

Then the scope check runs on the habilitation's scopes (00100), as in the real
controller's order: recipient, delegation, scopes.

The editor API (``GET /editeur/api/v1/delegations``, gRPC ``ListDelegations``) lists the
editor's delegations from the same snapshot, a page at a time (`page_of`, PLATFORM.md §3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.auth import Token
from gateway.registry.snapshot import ListedDelegation
from runtime.errors import delegation_ambiguous, invalid_token, recipient_not_delegated

PER_PAGE_DEFAULT = 50
"""Delegations per page of the editor API when none (or zero or less) is asked (PLATFORM.md §3)."""
PER_PAGE_MAX = 100
"""The most delegations a page of the editor API holds (PLATFORM.md §3)."""

DELEGATION_ID_KEY = "x-delegation-id"
"""The metadata key of the delegation id (gRPC); the REST front maps ``delegation_id`` and
``X-Delegation-Id`` to it."""


def delegated(token: Token, recipient: str, metadata: Sequence[tuple[str, str | bytes]]) -> Token:
    """``token`` as its call for ``recipient`` may use it: an editor token resolved to one delegation.

    Any other token (or one already resolved) comes back as it is.

    Raises:
        ApiError: 00213 no active delegation for ``recipient`` or not the one named; 00212 several
            and none named.
    """
    grants = token.grants
    if grants is None:
        return token
    found = grants.delegations.get(recipient, ())
    if not found:
        raise recipient_not_delegated()
    named = [value for key, value in metadata if key == DELEGATION_ID_KEY]
    if named:
        # Several different ids name none; ids are compared as the real API does: lower-case UUIDs.
        wanted = named[0] if len(set(named)) == 1 else None
        chosen = next((entry for entry in found if entry.delegation_id == wanted), None)
        if chosen is None:
            raise recipient_not_delegated()
    elif len(found) > 1:
        raise delegation_ambiguous()
    else:
        chosen = found[0]
    return Token.under(
        chosen.rights,
        jti=token.jti,
        expires_at=token.expires_at,
        environment=token.environment,
        delegation_id=chosen.delegation_id,
        editor_id=grants.editor_id,
    )


@dataclass(frozen=True, slots=True)
class DelegationPage:
    """One page of an editor's delegations, newest first, and where it stands."""

    delegations: tuple[ListedDelegation, ...]
    page: int
    per_page: int
    total: int
    total_pages: int


def page_of(token: Token, page: int, per_page: int) -> DelegationPage:
    """A page of the delegations of ``token``'s editor, revoked ones included.

    ``page`` counts from 1 (1 when less); ``per_page`` is `PER_PAGE_DEFAULT` when 0 or less,
    at most `PER_PAGE_MAX`.

    Raises:
        ApiError: 00101, ``token`` is not an editor token (the real API answers 401 too).
    """
    grants = token.grants
    if grants is None:
        raise invalid_token()
    per_page = PER_PAGE_DEFAULT if per_page <= 0 else min(per_page, PER_PAGE_MAX)
    page = max(page, 1)
    total = len(grants.listed)
    start = (page - 1) * per_page
    return DelegationPage(
        grants.listed[start : start + per_page], page, per_page, total, -(-total // per_page)
    )
