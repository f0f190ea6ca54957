"""The config chain: which link applies (unix, proxy, in-cluster, kubeconfig)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from asyncpod._config import Config
from asyncpod._errors import ConfigError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def load_config(
    *,
    chain: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    service_account_dir: str | Path | None = None,
) -> Config:
    """Walk the chain and return the first link's config.

    Raises:
        ConfigError: no link applied; the message says why for each.
    """
    environ = os.environ if environ is None else environ
    if socket := environ.get("ASYNCPOD_UNIX_SOCKET"):
        return Config.unix_socket(socket)
    if url := environ.get("ASYNCPOD_PROXY_URL"):
        return Config.proxy(url)
    msg = "no configuration applied (unix, proxy)"
    raise ConfigError(msg)
