"""Turning a ``Config`` into the live pieces a client needs: endpoint and auth."""

from __future__ import annotations

import functools
import logging
import ssl
from urllib.parse import urlsplit

from asyncpod._auth import Auth, NoAuth, StaticToken
from asyncpod._ca import CAWatcher
from asyncpod._config import Config
from asyncpod._credentials import check_token
from asyncpod._errors import ConfigError
from asyncpod._exec import ExecAuth
from asyncpod._tls import create_ssl_context
from asyncpod._token import TokenFile
from asyncpod._transport import (
    Endpoint,
    HTTPSEndpoint,
    ProxyEndpoint,
    StaticTLS,
    TLSContextSource,
    UnixEndpoint,
)

logger = logging.getLogger("asyncpod")


def _insecure_context(config: Config) -> ssl.SSLContext:
    logger.warning(
        "insecure-skip-tls-verify is set%s: the API server's certificate is NOT verified, "
        "and anyone on the network path can read the credentials",
        f" (kubeconfig context {config.context!r})" if config.context else "",
    )
    context = create_ssl_context(
        cert_file=config.client_cert_file,
        key_file=config.client_key_file,
        cert_data=config.client_cert_data,
        key_data=config.client_key_data,
    )
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def make_tls(config: Config) -> TLSContextSource:
    """Where the connections to ``config.server`` get their SSL context."""
    if config.insecure_skip_tls_verify:
        return StaticTLS(_insecure_context(config))
    build = functools.partial(
        create_ssl_context,
        ca_file=config.ca_file if config.ca_data is None else None,
        ca_data=config.ca_data,
        cert_file=config.client_cert_file,
        key_file=config.client_key_file,
        cert_data=config.client_cert_data,
        key_data=config.client_key_data,
    )
    if config.ca_file is not None and config.ca_data is None:
        return CAWatcher(config.ca_file, build)
    return StaticTLS(build())


def make_endpoint(config: Config) -> Endpoint:
    """The endpoint that ``config`` names.

    Raises:
        ConfigError: the config names something the transports cannot reach.
    """
    if config.socket_path is not None:
        return UnixEndpoint(config.socket_path)
    if config.server is None:
        msg = f"the {config.source} config names neither a server nor a Unix socket"
        raise ConfigError(msg)
    if config.proxy_url is not None:
        # Only the scheme and host: a proxy URL may carry a password.
        parts = urlsplit(config.proxy_url)
        msg = (
            f"the kubeconfig field proxy-url ({parts.scheme}://{parts.hostname}) is not "
            "supported by the bundled transports yet; remove it or reach the server directly"
        )
        raise ConfigError(msg)
    if config.server.startswith("http://"):
        return ProxyEndpoint(config.server, allow_remote=config.allow_remote_proxy)
    return HTTPSEndpoint(config.server, make_tls(config), server_name=config.tls_server_name)


def make_auth(config: Config) -> Auth:
    """The credentials that ``config`` names.

    Raises:
        ConfigError: the token file cannot be read or is empty.
    """
    if config.source in ("proxy", "unix"):
        return NoAuth()
    if config.token is not None:
        return StaticToken(check_token(config.token, f"the token of the {config.source} config"))
    if config.token_file is not None:
        return TokenFile(config.token_file)
    if config.exec_provider is not None:
        return ExecAuth(config.exec_provider, config=config)
    return NoAuth()
