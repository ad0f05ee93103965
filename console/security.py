"""The console's sessions, CSRF tokens, security headers and sign-in limit.

A session is a cookie the console encrypts and signs with its own key (Fernet: AES-128-CBC and
HMAC-SHA256, with the time it was made): the browser can neither read it nor change it, and a
cookie older than ``SESSION_MAX_AGE_SECONDS`` is refused. It holds the CSRF token of the person's
forms and, once an operator has signed in, their name, role and secret, which the console sends to
the admin API on their behalf (the admin API authenticates and audits every action as theirs).
Nothing is kept on the server, so any replica of the console reads any session.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "console_session"
"""The session cookie's name."""
FLOW_COOKIE = "console_proconnect"
"""A ProConnect sign-in's or sign-out's state between the redirect and the return, apart from the
session: ``SameSite=Lax``, as the provider sends the browser back with a cross-site GET, which the
session's ``Strict`` cookie does not accompany."""
CSRF_FIELD = "csrf_token"
"""The hidden field every form carries."""


def content_security_policy(sign_out_origins: Iterable[str] = ()) -> str:
    """Only the console's own files, no inline script or style, no framing.

    Args:
        sign_out_origins: The OpenID providers' origins (``scheme://host[:port]``) a sign-out form's
            redirect goes to: Chromium holds a form's redirects to ``form-action`` as well, so the
            RP-initiated logout of FranceConnect and ProConnect (a POST answered by a redirect to
            the provider) needs its provider listed there. Empty ones are left out.
    """
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            # The DSFR's stylesheets draw some icons from data: URIs.
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            " ".join(("form-action 'self'", *sorted({origin for origin in sign_out_origins if origin}))),
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL; empty for anything else."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in {"http", "https"} and parts.netloc else ""


CONTENT_SECURITY_POLICY = content_security_policy()
"""The policy of a console without OpenID provider (forms post to the console only)."""

_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


@dataclass
class Session:
    """What one session cookie holds."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """The token every form of this session must send back."""
    operator: str = ""
    """The operator signed in; empty: nobody."""
    role: str = ""
    """Their role in the admin API (``viewer`` or ``admin``)."""
    secret: str = ""
    """Their admin API secret, sent as ``Authorization: Bearer`` on their behalf."""
    holder: str = ""
    """The habilitation holder or editor signed in (their e-mail, as ProConnect gives it); empty: nobody."""
    holder_name: str = ""
    """Their name, as the pages greet them."""
    id_token: str = ""
    """The ID token of the holder's ProConnect sign-in: the hint of their sign-out there."""

    def csrf_matches(self, sent: str | None) -> bool:
        """Whether a form's token is this session's (in constant time)."""
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class SessionCodec:
    """Seals sessions into cookie values and opens them, refusing old or altered ones.

    Args:
        key: The console's Fernet key (``CONSOLE_SESSION_KEY``).
        max_age_seconds: A cookie made longer ago than this is refused.

    Raises:
        ValueError: the key is not a Fernet key.
    """

    def __init__(self, key: str, max_age_seconds: int) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError:
            raise ValueError(
                "CONSOLE_SESSION_KEY must be a Fernet key: 32 bytes in URL-safe base64"
            ) from None
        self.max_age_seconds = max_age_seconds

    def seal(self, session: Session) -> str:
        """The cookie value of ``session``, dated now."""
        return self._fernet.encrypt(json.dumps(asdict(session)).encode()).decode()

    def seal_text(self, text: str) -> str:
        """A cookie value holding ``text``, dated now."""
        return self._fernet.encrypt(text.encode()).decode()

    def open_text(self, value: str | None) -> str:
        """The text of a `seal_text` value; empty when absent, altered, not ours or expired."""
        if not value:
            return ""
        try:
            return self._fernet.decrypt(value.encode(), ttl=self.max_age_seconds).decode()
        except (InvalidToken, ValueError):
            return ""

    def open(self, value: str | None) -> Session | None:
        """The session of a cookie value; None when absent, altered, not ours or expired."""
        if not value:
            return None
        try:
            data = json.loads(self._fernet.decrypt(value.encode(), ttl=self.max_age_seconds))
            return Session(**data)
        except (InvalidToken, ValueError, TypeError):
            return None


class SecurityHeaders:
    """ASGI middleware: the Content-Security-Policy and the other protective headers on every answer.

    Args:
        app: The console.
        policy: The Content-Security-Policy (`content_security_policy`).
    """

    def __init__(self, app: ASGIApp, policy: str = CONTENT_SECURITY_POLICY) -> None:
        self._app = app
        self._headers = ((b"content-security-policy", policy.encode()), *_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``scope`` with the headers added to its answer."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._headers]
            await send(message)

        await self._app(scope, receive, with_headers)


def client_of(request: Request) -> str:
    """The client's address, as `SignInLimiter` counts it (``unknown`` when the server gives none)."""
    return request.client.host if request.client else "unknown"


class SignInLimiter:
    """At most ``attempts`` failed sign-ins per client address in any ``window_seconds``, then 429.

    Only a failure counts (a secret no operator has, an agent not in the list, a return from
    FranceConnect or ProConnect that does not check out): a sign-in that succeeds guesses
    nothing, and neither does a redirect to FranceConnect or ProConnect, which checks no secret
    (OWASP's Authentication Cheat Sheet: throttle failed attempts). Failures count across the
    operator, agent and citizen spaces: a guesser gets ``attempts`` per window, wherever they try.
    Kept in the process's memory: each replica counts its own, so the limit a client meets is at
    most the replica count times this one.
    """

    def __init__(self, attempts: int, window_seconds: float) -> None:
        self._attempts = attempts
        self._window = window_seconds
        self._failed: dict[str, deque[float]] = {}

    def wait(self, client: str) -> float | None:
        """None when ``client`` may try to sign in, else the seconds until it may (nothing counted)."""
        now = time.monotonic()
        failed = self._failed.get(client)
        if failed is None:
            return None
        while failed and failed[0] <= now - self._window:
            failed.popleft()
        if len(failed) >= self._attempts:
            return failed[0] + self._window - now
        return None

    def failed(self, client: str) -> None:
        """Count one failed sign-in of ``client``."""
        now = time.monotonic()
        self._failed.setdefault(client, deque()).append(now)
        if len(self._failed) > 10_000:
            # Forget the addresses whose failures are all past the window: memory stays bounded.
            self._failed = {
                key: value for key, value in self._failed.items() if value and value[-1] > now - self._window
            }
