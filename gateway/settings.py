"""Settings of the gateway process."""

from __future__ import annotations

import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, create_model, field_validator
from pydantic_settings import NoDecode

from gateway.bounds import RATE_LIMIT_BURST_MAX, RATE_LIMIT_MAX_PER_SECOND
from gateway.client_address import PROXY_HEADERS, X_FORWARDED_FOR
from gateway.registry.model import Environment
from runtime.providers import BY_NAME, PROVIDERS
from runtime.settings import ServerSettings


class RedisFailureMode(StrEnum):
    """What the gateway does when Redis cannot be reached."""

    FAIL_CLOSED = "fail_closed"
    """Refuse every call with UNAVAILABLE: a revoked token must never get through (the default)."""
    DEGRADE = "degrade"
    """For a bounded time, limit locally at limit/replicas and use the last known revocation list."""


class JournalFailureMode(StrEnum):
    """What calls get while the journal's PostgreSQL cannot be written (gateway/journal/writer.py)."""

    FAIL_CLOSED = "fail_closed"
    """Refused (00503) until PostgreSQL is back: no answer without its journal row (the default)."""
    BUFFER = "buffer"
    """Answered, their rows kept in the bounded spool until PostgreSQL is back; refused once it is full."""


class FranceConnectMode(StrEnum):
    """Where the gateway resolves FranceConnect access tokens."""

    SANDBOX = "sandbox"
    """A fixed set of fake FranceConnect tokens mapped to sandbox persons (the default; README)."""
    UPSTREAM = "upstream"
    """FranceConnect's token introspection endpoint, with the gateway's client credentials."""


def _provider_addresses() -> type[ServerSettings]:
    """``<provider>_address`` settings, one per provider of the registry, on top of `ServerSettings`."""
    fields: dict[str, Any] = {
        provider.address_setting: (
            str,
            Field(
                default=provider.default_address,
                description=f"{provider.name} service host:port ({provider.address_setting.upper()}).",
            ),
        )
        for provider in PROVIDERS
    }
    return create_model("ProviderAddresses", __base__=ServerSettings, **fields)


if TYPE_CHECKING:
    _WithProviderAddresses = ServerSettings
else:
    _WithProviderAddresses = _provider_addresses()


class RestFrontSettings(BaseModel):
    """The REST v3 front (`gateway.rest`): where it listens and the bounds of every connection."""

    rest_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the REST v3/v4 front (HTTP/1.1, HTTPS with TLS_CERT_FILE); unset: no REST "
        "front; 0 picks a free one (REST_PORT).",
    )

    rest_host: str = Field(
        default="",
        description="Address the REST front binds; empty: every interface, IPv4 and IPv6 (REST_HOST).",
    )

    rest_public_url: str = Field(
        default="",
        description="Base URL integrators call, the only server /openapi.yaml names; empty: the relative "
        'server "/" (the host the document was fetched from), never a Host header (REST_PUBLIC_URL).',
    )

    # The bounds of one request, sized from the largest legitimate one (README, "REST front"): a
    # request line of every query parameter of the widest route at its longest, percent-encoded,
    # is 11.7 KiB; the largest header is the authorization of a TOKEN_MAX_BYTES token.
    rest_max_request_line_bytes: int = Field(
        default=16_384,
        ge=1024,
        description="Longest request line (method, path and query string, version), in bytes; longer: "
        "414, code 00442 (REST_MAX_REQUEST_LINE_BYTES).",
    )

    rest_max_header_bytes: int = Field(
        default=8192,
        ge=256,
        description="Longest header field (name and value), in bytes; at least TOKEN_MAX_BYTES and the "
        "authorization scheme; longer: 431, code 00443 (REST_MAX_HEADER_BYTES).",
    )

    rest_max_head_bytes: int = Field(
        default=32_768,
        ge=1024,
        description="Longest request head (request line and every header field), in bytes, the most a "
        "connection holds in memory while its head arrives; longer: 431, code 00443 "
        "(REST_MAX_HEAD_BYTES).",
    )

    rest_max_headers: int = Field(
        default=64,
        ge=8,
        description="Most header fields in one request; more: 431, code 00443 (REST_MAX_HEADERS).",
    )

    rest_max_body_bytes: int = Field(
        default=0,
        ge=0,
        description="Longest request body, in bytes; every route of the front is a GET without one; "
        "longer: 413, code 00441 (REST_MAX_BODY_BYTES).",
    )

    rest_head_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest time a request may take to arrive whole, from the connection's opening or the "
        "request's first byte; then 408, code 00440, and the connection is closed "
        "(REST_HEAD_TIMEOUT_SECONDS).",
    )

    rest_idle_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long a keep-alive connection may wait, idle, for its next request before the front "
        "closes it (REST_IDLE_TIMEOUT_SECONDS).",
    )

    rest_max_connections: int = Field(
        default=500,
        ge=1,
        description="Open connections the REST front of one process holds at most; a connection beyond "
        "them is answered 503, code 00505, and closed (REST_MAX_CONNECTIONS).",
    )


class ProviderChannelSettings(BaseModel):
    """The channels to the provider services (`gateway.channels`): TLS, how many, the deadline."""

    provider_tls_ca_file: Path | None = Field(
        default=None,
        description="PEM CA that signed the providers' certificates; unset talks plaintext "
        "(PROVIDER_TLS_CA_FILE).",
    )

    provider_tls_cert_file: Path | None = Field(
        default=None,
        description="PEM client certificate the gateway presents to providers, for mTLS "
        "(PROVIDER_TLS_CERT_FILE).",
    )

    provider_tls_key_file: Path | None = Field(
        default=None, description="PEM key of the client certificate (PROVIDER_TLS_KEY_FILE)."
    )

    provider_tls_server_name: str | None = Field(
        default=None,
        description="Name expected in the providers' certificates when it differs from the host of "
        "their address (PROVIDER_TLS_SERVER_NAME).",
    )

    provider_channels: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Connections the gateway keeps to each provider address, used in turn "
        "(PROVIDER_CHANNELS).",
    )

    default_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Deadline given to a call that sets none, and the maximum any call gets, as the real "
        "API waits 10 s for providers (DEFAULT_DEADLINE_SECONDS).",
    )


class TokenSettings(BaseModel):
    """The API tokens' verification (`gateway.auth`): the keys, the claims expected, the cache."""

    keys_dir: Path | None = Field(
        default=None,
        description="Directory of token verification keys, <kid>.public.pem each (KEYS_DIR).",
    )

    jwks_file: Path | None = Field(
        default=None, description="JWKS file of token verification keys, instead of KEYS_DIR (JWKS_FILE)."
    )

    token_issuer: str = Field(
        default="api-particulier-mesh", description="Expected `iss` of tokens (TOKEN_ISSUER)."
    )

    token_audience: str = Field(
        default="api-particulier", description="Expected `aud` of tokens (TOKEN_AUDIENCE)."
    )

    token_leeway_seconds: int = Field(
        default=30, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat (TOKEN_LEEWAY_SECONDS)."
    )

    token_max_bytes: int = Field(
        default=4096, ge=256, description="Longest token accepted, in bytes (TOKEN_MAX_BYTES)."
    )

    token_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Verified tokens kept in memory, by hash, never past their expiry; 0 disables "
        "the cache (TOKEN_CACHE_SIZE).",
    )

    keys_reload_min_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Shortest time between two reloads of the verification keys caused by an unknown "
        "kid (KEYS_RELOAD_MIN_SECONDS).",
    )


class RedisSettings(BaseModel):
    """The gateways' Redis: revocations, rate limits, the duplicate-call lock, the response cache, usage."""

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis URL: redis://, rediss://, redis+sentinel:// or redis+cluster:// "
        "(gateway/redis/client.py) (REDIS_URL).",
    )

    redis_timeout_seconds: float = Field(
        default=0.25, gt=0, description="Timeout of one Redis round trip (REDIS_TIMEOUT_SECONDS)."
    )

    redis_max_connections: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Connections the gateway opens to Redis at most; a burst of calls beyond them waits "
        "for one within its deadline, and is never taken for Redis being down (REDIS_MAX_CONNECTIONS).",
    )

    rate_limit_per_second: int = Field(
        default=20,
        ge=1,
        le=RATE_LIMIT_MAX_PER_SECOND,
        description="Requests per second per token unless the token says otherwise, at most "
        f"{RATE_LIMIT_MAX_PER_SECOND} (RATE_LIMIT_PER_SECOND).",
    )

    rate_limit_burst: int = Field(
        default=20,
        ge=1,
        le=RATE_LIMIT_BURST_MAX,
        description="Calls a habilitation at the default rate may send at once from an idle bucket, steady "
        "rate included: the size of its bucket. A habilitation with a rate of its own, lower or higher, "
        "gets a bucket as many seconds long: RATE_LIMIT_BURST x its rate / RATE_LIMIT_PER_SECOND calls, "
        "rounded up, at most 100000 (RATE_LIMIT_BURST).",
    )

    redis_failure_mode: RedisFailureMode = Field(
        default=RedisFailureMode.FAIL_CLOSED,
        description="fail_closed (UNAVAILABLE) or degrade (local limits) when Redis is unreachable "
        "(REDIS_FAILURE_MODE).",
    )

    degraded_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest time the degrade mode serves without Redis before "
        "failing closed (DEGRADED_MAX_SECONDS).",
    )

    redis_retry_seconds: float = Field(
        default=0.5,
        gt=0,
        description="After a Redis failure, how long the rate limiter answers without Redis before it "
        "tries Redis again, so calls do not each wait for the timeout (REDIS_RETRY_SECONDS).",
    )

    revocation_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description="In degrade mode, how often the local copy of the revocation list is read whole "
        "from Redis, off the request path; each revocation is also pushed to it as it happens "
        "(REVOCATION_REFRESH_SECONDS).",
    )

    gateway_replicas: int = Field(
        default=1,
        ge=1,
        description="Number of gateway replicas; the degraded local limit is "
        "limit/(replicas x workers) (GATEWAY_REPLICAS).",
    )

    duplicate_call_lock: bool = Field(
        default=True,
        description="Refuse (409 00015) a provider call identical to one of the same token still running, "
        "as the real API does (gateway/call_lock.py); false lets them run together, for load tests that "
        "repeat one request with one token (DUPLICATE_CALL_LOCK).",
    )

    response_cache_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Keys of the DSS routes' response cache in Redis, <kid>:<32 bytes in base64url>, "
        "comma separated: the first encrypts, all decrypt (rotation); the same on every replica; empty: "
        "no cache (RESPONSE_CACHE_KEYS).",
    )

    usage_flush_seconds: float = Field(
        default=1.0, gt=0, description="How often usage counters are written to Redis (USAGE_FLUSH_SECONDS)."
    )


class JournalSettings(BaseModel):
    """The journal in PostgreSQL (`gateway.journal`) and each citizen's access history."""

    journal_hmac_key: SecretStr = Field(
        default=SecretStr(""),
        description="Secret key of the HMAC of subjects in the journal; required, the same on every "
        "replica (JOURNAL_HMAC_KEY).",
    )

    journal_database_url: SecretStr = Field(
        default=SecretStr(""),
        description="postgresql:// URL of the journal's database; empty keeps the journal to log events "
        "only, with a warning at start (JOURNAL_DATABASE_URL).",
    )

    journal_signing_key_file: Path | None = Field(
        default=None,
        description="PEM Ed25519 private key that signs the journal's chain heads, used for nothing else; "
        "required with JOURNAL_DATABASE_URL (JOURNAL_SIGNING_KEY_FILE).",
    )

    journal_failure_mode: JournalFailureMode = Field(
        default=JournalFailureMode.FAIL_CLOSED,
        description="fail_closed (calls refused while PostgreSQL cannot be written) or buffer (rows kept "
        "in the bounded spool meanwhile) (JOURNAL_FAILURE_MODE).",
    )

    journal_spool_rows: int = Field(
        default=100_000,
        ge=1,
        description="Most journal rows kept in memory waiting for PostgreSQL; a call whose row would not "
        "fit is refused and counted (JOURNAL_SPOOL_ROWS).",
    )

    journal_batch_rows: int = Field(
        default=1000, ge=1, description="Most rows written in one transaction (JOURNAL_BATCH_ROWS)."
    )

    journal_flush_seconds: float = Field(
        default=0.2,
        gt=0,
        description="Longest a journal row waits in memory for its batch when fewer than JOURNAL_BATCH_ROWS "
        "wait (JOURNAL_FLUSH_SECONDS).",
    )

    journal_checkpoint_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the head of each chain the gateway writes is signed "
        "(JOURNAL_CHECKPOINT_SECONDS).",
    )

    journal_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Longest a journal write or connection may take before PostgreSQL counts as "
        "unreachable (JOURNAL_TIMEOUT_SECONDS).",
    )

    journal_retry_seconds: float = Field(
        default=0.5,
        gt=0,
        description="Wait between two attempts to reach an unreachable PostgreSQL (JOURNAL_RETRY_SECONDS).",
    )

    journal_witness_file: Path | None = Field(
        default=None,
        description="File each signed chain head is also appended to, on a volume apart from the "
        "journal's database, for `journal verify --witness`, docs/JOURNAL.md (JOURNAL_WITNESS_FILE).",
    )

    journal_wal_dir: Path | None = Field(
        default=Path(tempfile.gettempdir()) / "apiparticulier-journal-wal",
        description="Directory of the journal's write-ahead file, on local disk kept across a container's "
        "restart: every row is fsynced there before its call's answer leaves, and replayed into PostgreSQL "
        "after a crash; empty turns it off; docs/JOURNAL.md (JOURNAL_WAL_DIR).",
    )

    journal_wal_max_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=1024 * 1024,
        description="Most bytes the journal's write-ahead file may take; past it calls are refused (00503) "
        "until PostgreSQL has taken its rows (JOURNAL_WAL_MAX_BYTES).",
    )

    journal_retention_months: int = Field(
        default=12,
        ge=1,
        le=120,
        description="Months a journal row is kept at least; a month's partition is dropped in the month "
        "after (JOURNAL_RETENTION_MONTHS).",
    )

    access_history_rate_per_second: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Access-history requests per second per citizen; the bucket holds as many seconds "
        "of it as RATE_LIMIT_BURST does of RATE_LIMIT_PER_SECOND (ACCESS_HISTORY_RATE_PER_SECOND).",
    )

    @field_validator("journal_wal_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        """``JOURNAL_WAL_DIR=`` (empty) turns the write-ahead file off, not the working directory."""
        return None if value == "" else value


class RegistrySettings(BaseModel):
    """The registry of habilitations and tokens (`gateway.registry`) the gateway reads."""

    registry_database_url: SecretStr = Field(
        default=SecretStr(""),
        description="postgresql:// URL of the registry of habilitations and tokens (written by the admin "
        "API); set, a token's scopes, limits, expiry and end are its registry record's, read from a "
        "snapshot in memory, and a token the registry lacks is refused (00101); empty: the token's own "
        "claims (REGISTRY_DATABASE_URL).",
    )

    registry_reload_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Full reload of the registry snapshot, besides the reload on each change announced "
        "(REGISTRY_RELOAD_SECONDS).",
    )

    registry_change_delay_seconds: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Wait after a change is announced, so that changes committed together are taken in "
        "one reload (REGISTRY_CHANGE_DELAY_SECONDS).",
    )

    registry_retry_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Wait between two attempts to reach the registry (REGISTRY_RETRY_SECONDS).",
    )

    gateway_environment: Environment = Field(
        default=Environment.PRODUCTION,
        description="production or sandbox: a token of the other environment is refused with its own "
        "code (00108 a production token on the sandbox, 00109 a sandbox token in production) "
        "(GATEWAY_ENVIRONMENT).",
    )


class FranceConnectSettings(BaseModel):
    """FranceConnect (`gateway.france_connect`): where its access tokens are resolved."""

    france_connect_mode: FranceConnectMode = Field(
        default=FranceConnectMode.SANDBOX,
        description="sandbox (fake FranceConnect tokens mapped to sandbox persons, listed in the README) "
        "or upstream (FranceConnect's token introspection endpoint) (FRANCE_CONNECT_MODE).",
    )

    france_connect_introspection_url: str = Field(
        default="https://fcp-low.integ01.dev-franceconnect.fr/api/v2/checktoken",
        description="FranceConnect's token introspection (checktoken) endpoint, used in upstream mode; "
        "the default is FranceConnect's integration platform (FRANCE_CONNECT_INTROSPECTION_URL).",
    )

    france_connect_client_id: str = Field(
        default="",
        description="The gateway's FranceConnect client id; required in upstream mode "
        "(FRANCE_CONNECT_CLIENT_ID).",
    )

    france_connect_client_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The gateway's FranceConnect client secret; required in upstream mode "
        "(FRANCE_CONNECT_CLIENT_SECRET).",
    )

    france_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait for FranceConnect's introspection, before the caller's deadline cuts "
        "it shorter (FRANCE_CONNECT_TIMEOUT_SECONDS).",
    )

    france_connect_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle to verify FranceConnect's certificate; unset uses the system store "
        "(FRANCE_CONNECT_CA_FILE).",
    )

    france_connect_link_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long the habilitation linked to a FranceConnect client is kept in memory; an "
        "unlink takes that long to reach every replica, a revocation holds at once "
        "(FRANCE_CONNECT_LINK_CACHE_SECONDS).",
    )


class AvailabilitySettings(BaseModel):
    """The providers' availability (`gateway.availability`), and its history (`availability_history`)."""

    availability_retry_seconds: float = Field(
        default=1.0,
        gt=0,
        description="After a provider's health Watch breaks, how long before it is opened again "
        "(AVAILABILITY_RETRY_SECONDS).",
    )

    availability_stale_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A provider about which nothing was learnt for this long is reported unknown "
        "(AVAILABILITY_STALE_SECONDS).",
    )

    availability_sample_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often each ping's state is sampled into Redis for the 90-day availability "
        "history of the status page (gateway/availability_history.py) (AVAILABILITY_SAMPLE_SECONDS).",
    )


class CallerAddressSettings(BaseModel):
    """Who the caller is, for the habilitations' IP allowlists (`gateway.client_address`)."""

    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated CIDRs of the proxies (the Kubernetes ingress) whose forwarded address "
        "is the caller's, on both transports; from any other peer the header is ignored; empty: the "
        "connection's peer is always the caller (TRUSTED_PROXIES).",
    )

    trusted_proxy_header: str = Field(
        default=X_FORWARDED_FOR,
        pattern=f"^({'|'.join(PROXY_HEADERS)})$",
        description="The one header (gRPC metadata key) the trusted proxies write the caller's address in: "
        "x-forwarded-for or forwarded (RFC 7239); the other is never read (TRUSTED_PROXY_HEADER).",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``TRUSTED_PROXIES=10.0.0.0/8,fd00::/8``: one CIDR per comma."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class GatewaySettings(
    RestFrontSettings,
    ProviderChannelSettings,
    TokenSettings,
    RedisSettings,
    JournalSettings,
    RegistrySettings,
    FranceConnectSettings,
    AvailabilitySettings,
    CallerAddressSettings,
    _WithProviderAddresses,
):
    """The gateway's settings, each from the environment variable of its name.

    Its own below; each concern's in the classes above; the common ones in `ServerSettings`.
    """

    grpc_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (GRPC_PORT).")

    gateway_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes serving the gateway's ports together, each with its own event loop, "
        "so that one replica uses that many cores (gateway.workers); worker i serves its metrics "
        "on METRICS_PORT + i (GATEWAY_WORKERS).",
    )

    worker_heartbeat_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        description="With GATEWAY_WORKERS above 1, a worker whose event loop has not beaten for this long "
        "is taken for hung: the supervisor kills it and starts another (WORKER_HEARTBEAT_TIMEOUT_SECONDS).",
    )

    def provider_address(self, provider: str) -> str:
        """The ``host:port`` of a provider service of the registry, from its address setting."""
        return str(getattr(self, BY_NAME[provider].address_setting))
