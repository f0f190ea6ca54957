"""Choosing the transport class for an endpoint and an engine."""

from __future__ import annotations

from asyncpod import ConfigError, Endpoint, Engine, Transport


def create_transport(
    endpoint: Endpoint,
    *,
    engine: Engine,
    max_connections: int = 100,
    connect_timeout: float | None = 10.0,
    max_response_size: int | None = None,
) -> Transport:
    """A transport for ``endpoint`` running on ``engine``."""
    if engine == "aiohttp":
        from asyncpod_transports._aiohttp import AiohttpTransport

        return AiohttpTransport(
            endpoint,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            max_response_size=max_response_size,
        )
    if engine == "anyio":
        from asyncpod_transports._anyio import AnyioTransport

        return AnyioTransport(
            endpoint,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            max_response_size=max_response_size,
        )
    msg = f"engine {engine!r} is not available"
    raise ConfigError(msg)
