"""Turning a ``Config`` into the live pieces a client needs: endpoint and auth."""

from __future__ import annotations

from asyncpod._auth import Auth, NoAuth, StaticToken
from asyncpod._config import Config
from asyncpod._credentials import check_token, read_token_file
from asyncpod._errors import ConfigError
from asyncpod._tls import create_ssl_context
from asyncpod._transport import (
    Endpoint,
    HTTPSEndpoint,
    ProxyEndpoint,
    StaticTLS,
    UnixEndpoint,
)


def make_endpoint(config: Config) -> Endpoint:
    """The endpoint that ``config`` names."""
    if config.socket_path is not None:
        return UnixEndpoint(config.socket_path)
    if config.server is None:
        msg = f"the {config.source} config names neither a server nor a Unix socket"
        raise ConfigError(msg)
    if config.server.startswith("http://"):
        return ProxyEndpoint(config.server, allow_remote=config.allow_remote_proxy)
    context = create_ssl_context(
        ca_file=config.ca_file,
        ca_data=config.ca_data,
        cert_file=config.client_cert_file,
        key_file=config.client_key_file,
        cert_data=config.client_cert_data,
        key_data=config.client_key_data,
    )
    return HTTPSEndpoint(config.server, StaticTLS(context), server_name=config.tls_server_name)


def make_auth(config: Config) -> Auth:
    """The credentials that ``config`` names."""
    if config.token is not None:
        return StaticToken(check_token(config.token, f"the token of the {config.source} config"))
    if config.token_file is not None:
        return StaticToken(read_token_file(config.token_file))
    return NoAuth()
