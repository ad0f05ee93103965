"""A registered token as the token registry keeps it in Redis (`gateway.admin.registry` writes it).

Below both its readers: the request path (`gateway.france_connect.clients`, the habilitation
a FranceConnect client's calls count against) and the admin CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOKENS_SET = "tokens"


def token_key(jti: str) -> str:
    """Key of the token's registry entry."""
    return f"token:{{{jti}}}"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A registered token, without the token itself (never stored).

    ``iat`` and ``exp`` are None, and ``scopes`` empty, when the entry is unreadable.
    """

    jti: str
    label: str
    siret: str
    scopes: tuple[str, ...]
    iat: int | None
    exp: int | None
    rate_limit: int | None
    revoked: bool

    def status(self, now: float) -> str:
        """``revoked``, ``unreadable``, ``expired`` or ``active``."""
        if self.revoked:
            return "revoked"
        if self.exp is None:
            return "unreadable"
        return "expired" if self.exp <= now else "active"

    def as_json(self, now: float) -> dict[str, Any]:
        """A JSON-ready view for ``list --json``."""
        return {
            "jti": self.jti,
            "label": self.label,
            "siret": self.siret,
            "scopes": list(self.scopes),
            "issued_at": self.iat,
            "expires_at": self.exp,
            "rate_limit": self.rate_limit,
            "revoked": self.revoked,
            "status": self.status(now),
        }
