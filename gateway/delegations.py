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
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.auth import Token
from runtime.errors import delegation_ambiguous, recipient_not_delegated

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
    rights = chosen.rights
    return Token(
        jti=token.jti,
        habilitation=rights.label,
        siret=rights.siret,
        scopes=rights.scopes,
        expires_at=token.expires_at,
        rate_limit_per_second=rights.rate_per_second,
        habilitation_id=rights.habilitation_id,
        rate_limit_per_minute=rights.rate_per_minute,
        environment=token.environment,
        rights=rights,
        delegation_id=chosen.delegation_id,
        editor_id=grants.editor_id,
    )
