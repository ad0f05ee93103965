"""The gateway's channels to the provider services.

Each provider address gets ``PROVIDER_CHANNELS`` channels, opened at start-up and
used in turn: one HTTP/2 connection multiplexes many calls, but a few spread the
work of a busy gateway over several connections (each channel has its own
subchannel pool, so they really are separate connections). Channels are
plaintext unless ``PROVIDER_TLS_CA_FILE`` is set, then TLS, and mTLS when the
gateway's client certificate is set too.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from gateway.settings import GatewaySettings
from runtime.keepalive import KEEPALIVE, Keepalive

# Keepalive pings (`runtime.keepalive`, which the providers' servers accept) find a
# dead provider connection before a call does. Reconnection: the library's backoff
# (1 s, growing by 1.6 up to 120 s) kept a provider that served again unreached for
# seconds; here attempts come every 100 ms growing to 500 ms, so a provider back is
# reached within about half a second, at the cost of two refused connections a second
# per channel while it is down. Each attempt may take up to a second (the "min
# reconnect backoff" is the attempt's connect timeout).
_CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 1000),
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.enable_retries", 0),
)


def channel_credentials(settings: GatewaySettings) -> grpc.ChannelCredentials | None:
    """TLS (or mTLS) credentials for the providers; None for plaintext.

    Raises:
        ValueError: only one of the client certificate and its key is set, or a
            client certificate is set without a CA.
    """
    cert, key = settings.provider_tls_cert_file, settings.provider_tls_key_file
    if (cert is None) != (key is None):
        raise ValueError("PROVIDER_TLS_CERT_FILE and PROVIDER_TLS_KEY_FILE must be set together")
    if settings.provider_tls_ca_file is None:
        if cert is not None:
            raise ValueError("PROVIDER_TLS_CERT_FILE needs PROVIDER_TLS_CA_FILE")
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=settings.provider_tls_ca_file.read_bytes(),
        private_key=key.read_bytes() if key is not None else None,
        certificate_chain=cert.read_bytes() if cert is not None else None,
    )


class ProviderChannels:
    """The pooled channels to every provider, by provider name."""

    def __init__(
        self, settings: GatewaySettings, providers: tuple[str, ...], keepalive: Keepalive = KEEPALIVE
    ) -> None:
        """Open ``PROVIDER_CHANNELS`` channels to each provider.

        Args:
            settings: The gateway's settings (addresses, TLS, pool size).
            providers: The providers to reach, as proto package segments.
            keepalive: The pings the channels send; the mesh's own but in tests.
        """
        credentials = channel_credentials(settings)
        options: list[tuple[str, int | str]] = [*_CHANNEL_OPTIONS, *keepalive.channel_options()]
        if credentials is not None and settings.provider_tls_server_name:
            options.append(("grpc.ssl_target_name_override", settings.provider_tls_server_name))
        self._pools: dict[str, tuple[grpc.aio.Channel, ...]] = {}
        for provider in providers:
            address = settings.provider_address(provider)
            self._pools[provider] = tuple(
                grpc.aio.insecure_channel(address, options=options)
                if credentials is None
                else grpc.aio.secure_channel(address, credentials, options=options)
                for _ in range(settings.provider_channels)
            )

    @property
    def pools(self) -> Mapping[str, tuple[grpc.aio.Channel, ...]]:
        """The channels of each provider."""
        return self._pools

    async def close(self) -> None:
        """Close every channel, letting calls in flight finish."""
        for pool in self._pools.values():
            for channel in pool:
                await channel.close(grace=None)
