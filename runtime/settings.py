"""Settings common to every process, read from the environment once at start-up."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogFormat(StrEnum):
    """How log events are rendered."""

    JSON = "json"
    CONSOLE = "console"


class TracesExporter(StrEnum):
    """Where finished trace spans go."""

    NONE = "none"
    """Nowhere: tracing is off and costs one test per call."""
    OTLP = "otlp"
    """An OpenTelemetry collector, over OTLP/gRPC."""
    CONSOLE = "console"
    """Standard output, one JSON span per line: for a person debugging locally."""


class ServerSettings(BaseSettings):
    """What every gRPC process of the mesh needs to run.

    Each field is read from the environment variable of the same name in upper
    case (``grpc_port`` from ``GRPC_PORT``). Subclasses add their own fields and
    override defaults such as the port; one instance is built per process, in
    its ``__main__``, and passed down.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    grpc_host: str = Field(default="[::]", description="Address the gRPC server binds (GRPC_HOST).")
    grpc_port: int = Field(
        default=50051, ge=0, le=65535, description="gRPC port; 0 picks a free one (GRPC_PORT)."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics endpoint; unset disables it (METRICS_PORT).",
    )
    log_level: str = Field(default="info", description="Minimum log level (LOG_LEVEL).")
    log_format: LogFormat = Field(
        default=LogFormat.JSON, description="json for machines, console for people (LOG_FORMAT)."
    )
    shutdown_notice_seconds: float = Field(
        default=1.0,
        ge=0,
        description="After SIGTERM, how long the server keeps serving with health NOT_SERVING before it "
        "refuses new calls, so that probes and load balancers see it leave (SHUTDOWN_NOTICE_SECONDS).",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long in-flight calls may finish after SIGTERM (SHUTDOWN_GRACE_SECONDS).",
    )
    max_connection_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Age after which the server asks a client to reconnect, so long-lived channels "
        "spread over new replicas (MAX_CONNECTION_AGE_SECONDS).",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate of this server; unset serves plaintext (TLS_CERT_FILE)."
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of the certificate (TLS_KEY_FILE)."
    )
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle; when set, callers must present a certificate it signed (mTLS) "
        "(TLS_CLIENT_CA_FILE).",
    )

    # The OTEL_* names are OpenTelemetry's own, so an operator's usual variables work unchanged.
    otel_traces_exporter: TracesExporter = Field(
        default=TracesExporter.NONE,
        description="none (tracing off), otlp or console (OTEL_TRACES_EXPORTER).",
    )
    otel_exporter_otlp_endpoint: str = Field(
        default="http://localhost:4317",
        description="OTLP/gRPC collector address; an http:// URL sends in plaintext, https:// over TLS "
        "(OTEL_EXPORTER_OTLP_ENDPOINT).",
    )
    otel_service_name: str | None = Field(
        default=None,
        description="Service name on this process's spans; unset derives it from the process "
        "(gateway, cnaf, …) (OTEL_SERVICE_NAME).",
    )
    otel_traces_sampler_arg: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Share of new traces recorded, 0 to 1; a call that arrives with a trace context "
        "follows its caller's choice (OTEL_TRACES_SAMPLER_ARG).",
    )

    @model_validator(mode="after")
    def _tls_files_come_in_pairs(self) -> ServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
        return self
