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
from typing import Any

from asyncpod._errors import ConfigError
from asyncpod._files import check_token_file, read_text, regular_file_problem
from asyncpod._urls import join_origin

logger = logging.getLogger("asyncpod")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

HOST_VAR = "KUBERNETES_SERVICE_HOST"
PORT_VARS = ("KUBERNETES_SERVICE_PORT_HTTPS", "KUBERNETES_SERVICE_PORT")
NAMESPACE_VAR = "POD_NAMESPACE"
# A namespace is a DNS label of at most 63 characters; the kubelet writes it
# alone. 4 KiB leaves room for any whitespace and refuses anything else.
MAX_NAMESPACE_FILE_SIZE = 4 << 10


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


def read_namespace(root: Path, environ: Mapping[str, str]) -> str:
    """``POD_NAMESPACE``, else the folder's ``namespace`` file, else ``"default"``."""
    if value := environ.get(NAMESPACE_VAR, "").strip():
        return value
    path = root / "namespace"
    if not os.path.exists(path):
        return "default"
    text = read_text(path, what="namespace file", limit=MAX_NAMESPACE_FILE_SIZE).strip()
    return text or "default"


def in_cluster_fields(
    *, root: str | Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The fields of the in-cluster ``Config``; see ``Config.in_cluster``.

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
    if not os.path.lexists(root / "ca.crt"):
        # client-go reads the CA "if available"; we never turn verification
        # off, we fall back to the system trust store instead.
        logger.warning(
            "CA bundle %s is missing: verifying the API server against the system trust store",
            ca_file,
        )
        ca_file = None
    elif problem := regular_file_problem(root / "ca.crt", empty_ok=False):
        # Only looked at here: the bundle is read when the client is entered.
        msg = f"CA bundle {ca_file} {problem}"
        raise ConfigError(msg)
    return {
        "source": "in-cluster",
        "server": join_origin("https", host, port),
        "namespace": read_namespace(root, environ),
        "token_file": token_file,
        "ca_file": ca_file,
    }
