"""asyncpod: a fast async client for the Kubernetes API, on asyncio and trio."""

from asyncpod._assemble import choose_engine
from asyncpod._auth import Auth, NoAuth, StaticToken
from asyncpod._ca import CAWatcher
from asyncpod._chain import load_config
from asyncpod._client import Client
from asyncpod._config import Config
from asyncpod._controller import Controller, Requeue
from asyncpod._discovery import Resource
from asyncpod._errors import (
    APIError,
    AsyncpodError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    InvalidNameError,
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
    ReconcileEvent,
    RequestEvent,
    RetryEvent,
    TokenReloadEvent,
    WatchReconnectEvent,
)
from asyncpod._exec import ExecAuth
from asyncpod._execprovider import ExecProvider
from asyncpod._finalizer import Finalizer
from asyncpod._headers import Headers
from asyncpod._informer import Change, Informer
from asyncpod._leader import LeaderElection, LeadershipLostError
from asyncpod._list import ListIterator
from asyncpod._models import ByteStream, Request, Response
from asyncpod._paths import ALL
from asyncpod._recorder import EventRecorder
from asyncpod._retry import RetryPolicy
from asyncpod._sharding import ShardSet
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
from asyncpod._watch import Watch, WatchDecoder, WatchEvent
from asyncpod._workqueue import QueueShutDownError, WorkQueue

__version__ = "0.1.0"

__all__ = [
    "ALL",
    "ENGINES",
    "APIError",
    "AsyncpodError",
    "Auth",
    "BadRequestError",
    "ByteStream",
    "CAReloadEvent",
    "CAWatcher",
    "Change",
    "Client",
    "Config",
    "ConfigError",
    "ConflictError",
    "Controller",
    "Endpoint",
    "Engine",
    "Event",
    "EventHook",
    "EventRecorder",
    "ExecAuth",
    "ExecProvider",
    "Finalizer",
    "ForbiddenError",
    "GoneError",
    "HTTPSEndpoint",
    "Headers",
    "Informer",
    "InvalidError",
    "InvalidNameError",
    "LeaderElection",
    "LeadershipLostError",
    "ListIterator",
    "NoAuth",
    "NotFoundError",
    "ProtocolError",
    "ProxyEndpoint",
    "QueueShutDownError",
    "ReconcileEvent",
    "Request",
    "RequestEvent",
    "RequestTimeoutError",
    "Requeue",
    "Resource",
    "Response",
    "ResponseTooLargeError",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "ShardSet",
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
    "Watch",
    "WatchDecoder",
    "WatchEvent",
    "WatchReconnectEvent",
    "WorkQueue",
    "__version__",
    "choose_engine",
    "load_config",
]
