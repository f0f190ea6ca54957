"""asyncpod: a fast async client for the Kubernetes API, on asyncio and trio."""

from asyncpod._auth import Auth, NoAuth, StaticToken
from asyncpod._ca import CAWatcher
from asyncpod._chain import load_config
from asyncpod._client import Client
from asyncpod._config import Config, ExecProvider
from asyncpod._errors import (
    APIError,
    AsyncpodError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    NotFoundError,
    ProtocolError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    TooManyRequestsError,
    TransportError,
    UnauthorizedError,
    UnknownResourceError,
)
from asyncpod._events import (
    CAReloadEvent,
    Event,
    EventHook,
    RequestEvent,
    RetryEvent,
    TokenReloadEvent,
    WatchReconnectEvent,
)
from asyncpod._exec import ExecAuth
from asyncpod._headers import Headers
from asyncpod._models import ByteStream, Request, Response
from asyncpod._retry import RetryPolicy
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
    choose_engine,
)

__version__ = "0.1.0"

__all__ = [
    "ENGINES",
    "APIError",
    "AsyncpodError",
    "Auth",
    "BadRequestError",
    "ByteStream",
    "CAReloadEvent",
    "CAWatcher",
    "Client",
    "Config",
    "ConfigError",
    "ConflictError",
    "Endpoint",
    "Engine",
    "Event",
    "EventHook",
    "ExecAuth",
    "ExecProvider",
    "ForbiddenError",
    "GoneError",
    "HTTPSEndpoint",
    "Headers",
    "InvalidError",
    "NoAuth",
    "NotFoundError",
    "ProtocolError",
    "ProxyEndpoint",
    "Request",
    "RequestEvent",
    "RequestTimeoutError",
    "Response",
    "ResponseTooLargeError",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "StaticTLS",
    "StaticToken",
    "TLSContextSource",
    "TokenFile",
    "TokenReloadEvent",
    "TooManyRequestsError",
    "Transport",
    "TransportError",
    "UnauthorizedError",
    "UnixEndpoint",
    "UnknownResourceError",
    "WatchReconnectEvent",
    "__version__",
    "choose_engine",
    "load_config",
]
