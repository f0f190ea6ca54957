"""Assembling a client's live pieces from a ``Config``: endpoint, TLS, auth, transport.

``Client`` calls these when it is entered: ``auth_for`` (the credentials),
``endpoint_for`` (where requests go, with ``tls_for``'s SSL contexts),
``choose_engine`` (which engine fits the running event loop) and
``open_transport`` (the bundled transport for that endpoint and engine).
"""

from __future__ import annotations

import functools
import importlib
import logging
import ssl
from typing import Any

from asyncpod._auth import Auth, NoAuth, StaticToken
from asyncpod._ca import CAWatcher
from asyncpod._config import Config
from asyncpod._credentials import check_token
from asyncpod._errors import ConfigError
from asyncpod._events import EventHook
from asyncpod._exec import ExecAuth
from asyncpod._tls import create_ssl_context
from asyncpod._token import TokenFile
from asyncpod._transport import (
    ENGINES,
    Endpoint,
    Engine,
    HTTPSEndpoint,
    ProxyEndpoint,
    StaticTLS,
    TLSContextSource,
    Transport,
    UnixEndpoint,
)
from asyncpod._urls import redact, scheme_of, split_origin

logger = logging.getLogger("asyncpod")


def _client_certificate(config: Config) -> dict[str, Any]:
    """The client-certificate arguments of ``create_ssl_context``."""
    return {
        "cert_file": config.client_cert_file,
        "key_file": config.client_key_file,
        "cert_data": config.client_cert_data,
        "key_data": config.client_key_data,
    }


def _insecure_context(config: Config) -> ssl.SSLContext:
    logger.warning(
        "insecure-skip-tls-verify is set%s: the API server's certificate is NOT verified, "
        "and anyone on the network path can read the credentials",
        f" (kubeconfig context {config.context!r})" if config.context else "",
    )
    context = create_ssl_context(**_client_certificate(config))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_for(config: Config, *, on_event: EventHook | None = None) -> TLSContextSource:
    """Where the connections to ``config.server`` get their SSL context.

    ``on_event`` receives a ``CAReloadEvent`` whenever a watched CA file is
    read again.
    """
    if config.insecure_skip_tls_verify:
        return StaticTLS(_insecure_context(config))
    build = functools.partial(
        create_ssl_context,
        ca_file=config.ca_file if config.ca_data is None else None,
        ca_data=config.ca_data,
        **_client_certificate(config),
    )
    if config.ca_file is not None and config.ca_data is None:
        return CAWatcher(config.ca_file, build, on_event=on_event)
    return StaticTLS(build())


def _credentials_named(config: Config) -> str | None:
    """Which credential ``config`` carries, for the plain-HTTP refusal."""
    if config.token is not None:
        return "a token"
    if config.token_file is not None:
        return "a token file"
    if config.exec_provider is not None:
        return "an exec plugin"
    if config.client_cert_file is not None or config.client_cert_data is not None:
        return "a client certificate"
    return None


def endpoint_for(config: Config, *, on_event: EventHook | None = None) -> Endpoint:
    """The endpoint that ``config`` names; ``on_event`` goes to its CA watcher.

    Raises:
        ConfigError: the config names something the transports cannot reach,
            or credentials that would travel over plain HTTP.
    """
    if config.socket_path is not None:
        return UnixEndpoint(config.socket_path)
    if config.server is None:
        msg = f"the {config.source} config names neither a server nor a Unix socket"
        raise ConfigError(msg)
    if config.proxy_url is not None:
        msg = (
            f"the kubeconfig field proxy-url ({redact(config.proxy_url)}) is not "
            "supported by the bundled transports yet; remove it or reach the server directly"
        )
        raise ConfigError(msg)
    if scheme_of(config.server) == "http":
        credential = _credentials_named(config)
        if credential is not None:
            # Never downgrade: credentials meant for TLS must not cross the
            # network in clear text. The config constructors refuse this
            # already; a Config built by hand is caught here.
            msg = (
                f"the {config.source} config sends {credential} to "
                f"{redact(config.server)!r}, a plain-HTTP URL; use https://"
            )
            raise ConfigError(msg)
        return ProxyEndpoint(config.server, allow_remote=config.allow_remote_proxy)
    split_origin(config.server, schemes=("https",), what="API server URL")
    return HTTPSEndpoint(
        config.server, tls_for(config, on_event=on_event), server_name=config.tls_server_name
    )


def auth_for(config: Config, *, on_event: EventHook | None = None) -> Auth:
    """The credentials that ``config`` names; ``on_event`` goes to a token file.

    Raises:
        ConfigError: the token file cannot be read or is empty.
    """
    if config.source in ("proxy", "unix"):
        return NoAuth()
    if config.token is not None:
        return StaticToken(check_token(config.token, f"the token of the {config.source} config"))
    if config.token_file is not None:
        return TokenFile(config.token_file, on_event=on_event)
    if config.exec_provider is not None:
        return ExecAuth(config.exec_provider, config=config)
    return NoAuth()


def choose_engine(running_library: str, requested: Engine | None = None) -> Engine:
    """Which engine serves a client on ``running_library`` (sniffio's name).

    The anyio engine is the default on every event loop: measured side by side
    on asyncio (docs/benchmarks.md), it costs less CPU per request than the
    aiohttp engine, matches it on LISTs and watches, and holds an idle watch in
    a fifth of the memory. The aiohttp engine runs on asyncio when asked for.

    Raises:
        ConfigError: an unknown engine, or aiohttp away from asyncio.
    """
    if requested is not None:
        if requested not in ENGINES:
            msg = f"engine {requested!r} is not one of {', '.join(ENGINES)}"
            raise ConfigError(msg)
        if requested == "aiohttp" and running_library != "asyncio":
            msg = f"the aiohttp engine needs asyncio, but this is running on {running_library}"
            raise ConfigError(msg)
        return requested
    return "anyio"


def open_transport(
    endpoint: Endpoint,
    *,
    engine: Engine,
    max_connections: int,
    connect_timeout: float | None = None,
    max_response_size: int | None = None,
) -> Transport:
    """Build the bundled transport for ``endpoint`` on ``engine``.

    The core names the transport package instead of importing it, so that
    ``import asyncpod`` stays free of aiohttp.
    """
    transports = importlib.import_module("asyncpod_transports")
    transport: Transport = transports.create_transport(
        endpoint,
        engine=engine,
        max_connections=max_connections,
        connect_timeout=connect_timeout,
        max_response_size=max_response_size,
    )
    return transport


__all__ = ["auth_for", "choose_engine", "endpoint_for", "open_transport", "tls_for"]
