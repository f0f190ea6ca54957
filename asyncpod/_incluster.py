"""The in-cluster link: service variables and the kubelet's service-account folder.

The rules follow client-go's ``rest.InClusterConfig``: the host comes from
``KUBERNETES_SERVICE_HOST``, the port from ``KUBERNETES_SERVICE_PORT`` (we
prefer ``KUBERNETES_SERVICE_PORT_HTTPS``, which names the HTTPS port when a
cluster publishes several), the token and CA from the projected volume.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from asyncpod._config import SERVICE_ACCOUNT_DIR, Config
from asyncpod._errors import ConfigError

logger = logging.getLogger("asyncpod")

HOST_VAR = "KUBERNETES_SERVICE_HOST"
PORT_VARS = ("KUBERNETES_SERVICE_PORT_HTTPS", "KUBERNETES_SERVICE_PORT")
NAMESPACE_VAR = "POD_NAMESPACE"


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def service_port(environ: Mapping[str, str]) -> int:
    """The API server's port from the service variables, else 443.

    Raises:
        ConfigError: a variable is set but is not a port number.
    """
    for name in PORT_VARS:
        value = environ.get(name, "").strip()
        if not value:
            # An empty variable counts as unset, as a shell `export X=` would mean.
            continue
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            msg = f"{name}={value!r} is not a port number (1-65535)"
            raise ConfigError(msg)
        return int(value)
    return 443


def join_host_port(host: str, port: int) -> str:
    """``https://host:port``, bracketing IPv6 literals (RFC 3986 section 3.2.2)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def read_namespace(root: Path, environ: Mapping[str, str]) -> str:
    """``POD_NAMESPACE``, else the folder's ``namespace`` file, else ``"default"``."""
    if value := environ.get(NAMESPACE_VAR, "").strip():
        return value
    path = root / "namespace"
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "default"
    except (OSError, UnicodeDecodeError) as exc:
        reason = _describe(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        msg = f"namespace file {path} could not be read: {reason}"
        raise ConfigError(msg) from None
    return value or "default"


def check_token_file(path: Path) -> None:
    """Make sure the token file can be read and is not empty (without keeping the token).

    Raises:
        ConfigError: the file is missing, unreadable or empty.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"token file {path} could not be read: {_describe(exc)}"
        raise ConfigError(msg) from None
    if not data.strip():
        msg = f"token file {path} is empty"
        raise ConfigError(msg)


def in_cluster_config(
    *, root: str | Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] | None = None
) -> Config:
    """Build the in-cluster ``Config``; see ``Config.in_cluster``.

    Raises:
        ConfigError: a variable or file is missing or malformed.
    """
    environ = os.environ if environ is None else environ
    root = Path(root)
    host = environ.get(HOST_VAR, "").strip()
    if not host:
        msg = f"{HOST_VAR} is not set: this process does not run in a Pod"
        raise ConfigError(msg)
    port = service_port(environ)
    token_file = root / "token"
    check_token_file(token_file)
    ca_file: Path | None = root / "ca.crt"
    try:
        size = os.stat(root / "ca.crt").st_size
    except FileNotFoundError:
        # client-go reads the CA "if available"; we never turn verification
        # off, we fall back to the system trust store instead.
        logger.warning(
            "CA bundle %s is missing: verifying the API server against the system trust store",
            ca_file,
        )
        ca_file = None
    except OSError as exc:
        msg = f"CA bundle {ca_file} could not be read: {_describe(exc)}"
        raise ConfigError(msg) from None
    else:
        if size == 0:
            msg = f"CA bundle {ca_file} is empty"
            raise ConfigError(msg)
    return Config(
        source="in-cluster",
        server=join_host_port(host, port),
        namespace=read_namespace(root, environ),
        token_file=token_file,
        ca_file=ca_file,
    )
