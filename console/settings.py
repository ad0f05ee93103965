"""Settings of the console process (``python -m console``), read from the environment once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.settings import LogFormat

ASSETS_DIR = Path(__file__).with_name("assets") / "node_modules"
"""Where `make install` puts the front-end packages (``npm ci`` of console/assets/package-lock.json)."""


class ConsoleSettings(BaseSettings):
    """What the console needs: where it listens, the mesh it reads, its session key, its operators.

    Each field is read from the environment variable of the same name in upper case. The console
    holds no key nor password of another service: it reads the REST front's public routes, calls
    the admin API with the secret of the operator signed in, and reads the admin API's operators
    file, which holds only digests of their secrets.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    console_host: str = Field(default="127.0.0.1", description="Address the console binds (CONSOLE_HOST).")
    console_port: int = Field(
        default=8070,
        ge=0,
        le=65535,
        description="HTTP port of the console; 0 picks a free one (CONSOLE_PORT).",
    )
    public_api_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the gateway's REST front: /api/pings, /api/proofs_avoided and "
        "/openapi.yaml are read there (PUBLIC_API_URL).",
    )
    sandbox_api_url: str = Field(
        default="",
        description="Base URL the developer documentation's examples call; empty: PUBLIC_API_URL "
        "(SANDBOX_API_URL).",
    )
    admin_api_url: str = Field(
        default="http://127.0.0.1:8090",
        description="Base URL of the admin API's REST front, on the operators' network (ADMIN_API_URL).",
    )
    admin_operators_file: Path | None = Field(
        default=None,
        description="The admin API's operators file (name, role and SHA-256 of each secret): who may "
        "sign in and with which role; unset: no operator sign-in (ADMIN_OPERATORS_FILE).",
    )
    console_admin_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The console's own admin API credential, of role console: it acts only for the "
        "holder or editor signed in, on theirs alone (gateway/admin_api/holders.py); empty: no holder "
        "space (CONSOLE_ADMIN_SECRET).",
    )
    sandbox_agents: bool = Field(
        default=False,
        description="Offer the sandbox's fictional agents on the holders' sign-in page (make run); never "
        "in production (SANDBOX_AGENTS).",
    )
    proconnect_issuer: str = Field(
        default="",
        description="ProConnect's issuer URL, e.g. https://auth.agentconnect.gouv.fr/api/v2; empty: no "
        "ProConnect sign-in (PROCONNECT_ISSUER).",
    )
    proconnect_client_id: str = Field(
        default="", description="The console's client id (PROCONNECT_CLIENT_ID)."
    )
    proconnect_client_secret: SecretStr = Field(
        default=SecretStr(""), description="Its secret (PROCONNECT_CLIENT_SECRET)."
    )
    proconnect_redirect_url: str = Field(
        default="",
        description="The return URL registered at ProConnect: <console URL>/agent/proconnect/retour "
        "(PROCONNECT_REDIRECT_URL).",
    )
    console_session_key: SecretStr = Field(
        default=SecretStr(""),
        description="The console's own key for its session cookies (a Fernet key: 32 bytes, URL-safe "
        "base64; cryptography's Fernet.generate_key()); required (CONSOLE_SESSION_KEY).",
    )
    session_max_age_seconds: int = Field(
        default=3600,
        gt=0,
        description="Lifetime of a session: a cookie older than this is refused and the person signs in "
        "again (SESSION_MAX_AGE_SECONDS).",
    )
    secure_cookies: bool = Field(
        default=True,
        description="Send the session cookie over HTTPS only; false for a console served over plain "
        "HTTP on loopback (SECURE_COOKIES).",
    )
    sign_in_attempts: int = Field(
        default=5,
        gt=0,
        description="Failed sign-ins allowed to one client address per SIGN_IN_WINDOW_SECONDS, in "
        "every space together; past them, its sign-ins answer 429 (SIGN_IN_ATTEMPTS).",
    )
    sign_in_window_seconds: float = Field(
        default=300.0, gt=0, description="The window of SIGN_IN_ATTEMPTS, seconds (SIGN_IN_WINDOW_SECONDS)."
    )
    mesh_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest a read of the mesh may take (MESH_TIMEOUT_SECONDS)."
    )
    log_level: str = Field(default="info", description="Minimum log level (LOG_LEVEL).")
    log_format: LogFormat = Field(
        default=LogFormat.JSON, description="json for machines, console for people (LOG_FORMAT)."
    )
    # -- the citizen's sign-in: FranceConnect (console/citizen.py) --
    france_connect_url: str = Field(
        default="",
        description="FranceConnect's issuer URL; its /.well-known/openid-configuration is read "
        "there; empty: no citizen sign-in (FRANCE_CONNECT_URL).",
    )
    france_connect_client_id: str = Field(
        default="", description="The console's FranceConnect client id (FRANCE_CONNECT_CLIENT_ID)."
    )
    france_connect_client_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The console's FranceConnect client secret (FRANCE_CONNECT_CLIENT_SECRET).",
    )
    france_connect_redirect_uri: str = Field(
        default="",
        description="The redirect URI registered with FranceConnect: the console's public URL followed "
        "by /mes-donnees/retour (FRANCE_CONNECT_REDIRECT_URI).",
    )
