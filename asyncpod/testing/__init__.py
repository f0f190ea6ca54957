"""Testing helpers: an embedded Kubernetes API server (the sandbox) and a pytest plugin."""

from asyncpod.testing._auth import AccessRules, Rule, User
from asyncpod.testing._faults import Fault, Faults, RequestLog, RequestRecord
from asyncpod.testing._podenv import PodEnvironment
from asyncpod.testing._sandbox import Sandbox, SandboxError

__all__ = [
    "AccessRules",
    "Fault",
    "Faults",
    "PodEnvironment",
    "RequestLog",
    "RequestRecord",
    "Rule",
    "Sandbox",
    "SandboxError",
    "User",
]
