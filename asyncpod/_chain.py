"""The config chain: which link applies (unix, proxy, in-cluster, kubeconfig).

Each link looks at the environment and returns either a ``Config`` or the
reason it does not apply. A link that applies but finds a malformed input
raises ``ConfigError`` at once: a typo must not silently fall through to the
next link and talk to another cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from asyncpod._config import Config
from asyncpod._errors import ConfigError
from asyncpod._incluster import HOST_VAR, SERVICE_ACCOUNT_DIR
from asyncpod._kubeconfig import fields_from_merged, kubeconfig_paths, load_merged
from asyncpod._transport import ProxyEndpoint

UNIX_VAR = "ASYNCPOD_UNIX_SOCKET"
PROXY_VAR = "ASYNCPOD_PROXY_URL"
DEFAULT_CHAIN = ("unix", "proxy", "in-cluster", "kubeconfig")

Link = Callable[[Mapping[str, str], Path], "Config | str"]


def _unix(environ: Mapping[str, str], root: Path) -> Config | str:
    if path := environ.get(UNIX_VAR, ""):
        return Config.unix_socket(path)
    return f"{UNIX_VAR} is not set"


def _proxy(environ: Mapping[str, str], root: Path) -> Config | str:
    if url := environ.get(PROXY_VAR, ""):
        # Fail here, not at the first request, when the URL is not a loopback origin.
        ProxyEndpoint(url)
        return Config.proxy(url)
    return f"{PROXY_VAR} is not set"


def _in_cluster(environ: Mapping[str, str], root: Path) -> Config | str:
    if not environ.get(HOST_VAR, "").strip():
        return f"{HOST_VAR} is not set"
    token = root / "token"
    if not os.path.lexists(token):
        return f"{HOST_VAR} is set but the token file {token} does not exist"
    return Config.in_cluster(root=root, environ=environ)


def _kubeconfig(environ: Mapping[str, str], root: Path) -> Config | str:
    paths, origin = kubeconfig_paths(environ)
    merged = load_merged(paths)
    if not merged.files:
        listed = ", ".join(str(p) for p in paths)
        if origin.startswith("KUBECONFIG"):
            return f"{origin}: no such file ({listed})"
        return f"KUBECONFIG is not set and {listed} does not exist"
    return Config(**fields_from_merged(merged))


LINKS: dict[str, Link] = {
    "unix": _unix,
    "proxy": _proxy,
    "in-cluster": _in_cluster,
    "kubeconfig": _kubeconfig,
}


def load_config(
    *,
    chain: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    service_account_dir: str | Path | None = None,
) -> Config:
    """Walk the chain and return the first link's config.

    Args:
        chain: the link names to try, in order; by default
            ``("unix", "proxy", "in-cluster", "kubeconfig")``.
        environ: the environment to read; defaults to ``os.environ``.
        service_account_dir: the service-account folder of the in-cluster link.

    Raises:
        ConfigError: an unknown link name, a malformed input of a link that
            applies, or no link applied (the message gives each link's reason,
            one line per link).
    """
    environ = os.environ if environ is None else environ
    root = Path(SERVICE_ACCOUNT_DIR if service_account_dir is None else service_account_dir)
    names = tuple(DEFAULT_CHAIN if chain is None else chain)
    if isinstance(chain, str):
        names = (chain,)
    unknown = [name for name in names if name not in LINKS]
    if unknown:
        msg = f"unknown config link {unknown[0]!r}; the links are {', '.join(DEFAULT_CHAIN)}"
        raise ConfigError(msg)
    reasons: list[str] = []
    for name in names:
        result = LINKS[name](environ, root)
        if isinstance(result, Config):
            return result
        reasons.append(f"  {name}: {result}")
    if not names:
        msg = "no configuration applied: the chain is empty"
        raise ConfigError(msg)
    msg = "no configuration applied:\n" + "\n".join(reasons)
    raise ConfigError(msg)
