"""``ExecAuth``: tokens from a kubeconfig ``exec`` credential plugin.

The protocol is client.authentication.k8s.io ``ExecCredential`` (v1 and
v1beta1): the plugin gets ``KUBERNETES_EXEC_INFO`` (an ExecCredential with
``spec.interactive`` and, when asked, ``spec.cluster``) and prints an
ExecCredential whose ``status`` holds ``token`` and an optional
``expirationTimestamp``. The token is cached until then and fetched again
after a 401. The plugin runs through ``anyio.run_process``, so it works on
asyncio and trio. Neither the credential nor the plugin's output ever reaches
a message: a plugin's answer is a secret.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream

from asyncpod._config import Config
from asyncpod._credentials import check_token
from asyncpod._errors import ConfigError
from asyncpod._execprovider import ExecProvider
from asyncpod._files import try_read
from asyncpod._tls import MAX_CA_BUNDLE_SIZE

logger = logging.getLogger("asyncpod")

# Fetch a new credential this long before it expires: the request still has
# to travel, and clocks drift.
EXPIRY_SKEW = 10.0
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)\Z"
)
_MAX_STDERR = 300
# An ExecCredential is a token (a few KB at most) or a client certificate and
# key (a few KB more); 1 MiB is generous, and bounds a plugin that prints
# without end.
MAX_PLUGIN_OUTPUT = 1 << 20


def parse_rfc3339(value: str) -> float | None:
    """A Unix time from an RFC 3339 timestamp, or ``None`` if it is not one."""
    match = _RFC3339.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = float(match.group(7) or 0)
    zone = match.group(8)
    if zone in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None
    return moment.timestamp() + fraction


def exec_info(provider: ExecProvider, config: Config | None) -> dict[str, Any]:
    """The ExecCredential passed to the plugin in ``KUBERNETES_EXEC_INFO``."""
    spec: dict[str, Any] = {"interactive": False}
    if provider.provide_cluster_info and config is not None and config.server:
        cluster: dict[str, Any] = {"server": config.server}
        if config.tls_server_name:
            cluster["tls-server-name"] = config.tls_server_name
        if config.insecure_skip_tls_verify:
            cluster["insecure-skip-tls-verify"] = True
        ca = config.ca_data
        if ca is None and config.ca_file is not None:
            read = try_read(config.ca_file, MAX_CA_BUNDLE_SIZE)
            # An unreadable bundle is left out here; the TLS setup names it.
            ca = None if isinstance(read, str) else read[0]
        if ca is not None:
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode("ascii")
        spec["cluster"] = cluster
    return {"apiVersion": provider.api_version, "kind": "ExecCredential", "spec": spec}


def _plugin_name(provider: ExecProvider) -> str:
    user = f" of user {provider.user!r}" if provider.user else ""
    return f"exec plugin {provider.command!r}{user}"


def parse_exec_output(provider: ExecProvider, stdout: bytes) -> tuple[str, float | None]:
    """The token and its expiry (Unix time) from the plugin's output.

    The token is checked as a token file's is (``check_token``): visible
    ASCII only, 64 KiB at most, surrounding whitespace stripped.

    Raises:
        ConfigError: the output is not an ExecCredential with a usable token.
    """
    name = _plugin_name(provider)
    try:
        credential = json.loads(stdout)
        valid = True
    except ValueError:
        valid = False
    # Raised outside the except block: a JSONDecodeError keeps the whole
    # output (``.doc``), token included, and would ride along as __context__.
    if not valid:
        msg = f"{name} did not print a JSON ExecCredential"
        raise ConfigError(msg)
    if not isinstance(credential, dict) or credential.get("kind") != "ExecCredential":
        msg = f"{name} printed JSON that is not an ExecCredential"
        raise ConfigError(msg)
    if credential.get("apiVersion") != provider.api_version:
        msg = (
            f"{name} answered with apiVersion {credential.get('apiVersion')!r}, "
            f"but the kubeconfig asks for {provider.api_version!r}"
        )
        raise ConfigError(msg)
    status = credential.get("status")
    if not isinstance(status, dict):
        msg = f"{name} printed an ExecCredential without status"
        raise ConfigError(msg)
    token = status.get("token")
    if not isinstance(token, str) or not token:
        if status.get("clientCertificateData"):
            msg = f"{name} returned a client certificate; asyncpod only takes tokens from plugins"
        else:
            msg = f"{name} printed an ExecCredential without status.token"
        raise ConfigError(msg)
    # A plugin is as untrusted as a token file: a newline must not inject a
    # header, nor a megabyte blob become one.
    token = check_token(token, f"the status.token printed by {name}")
    expiry: float | None = None
    stamp = status.get("expirationTimestamp")
    if stamp is not None:
        expiry = parse_rfc3339(stamp) if isinstance(stamp, str) else None
        if expiry is None:
            msg = f"{name} printed an invalid status.expirationTimestamp"
            raise ConfigError(msg)
    return token, expiry


async def _read_bounded(stream: ByteReceiveStream, limit: int) -> bytes | None:
    """Read ``stream`` to its end; ``None`` once more than ``limit`` bytes came."""
    data = bytearray()
    async for chunk in stream:
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


async def _run_plugin(provider: ExecProvider, env: Mapping[str, str]) -> tuple[bytes, bytes, int]:
    """Run the plugin; its stdout, its stderr and its exit status.

    Raises:
        ConfigError: the plugin is missing, cannot be started, or prints more
            than ``MAX_PLUGIN_OUTPUT`` bytes (it is killed and reaped then).
    """
    name = _plugin_name(provider)
    problem: str | None = None
    try:
        process = await anyio.open_process(
            [provider.command, *provider.args], stdin=subprocess.DEVNULL, env=env
        )
    except FileNotFoundError:
        hint = f"; {provider.install_hint.strip()}" if provider.install_hint else ""
        problem = f"was not found{hint}"
    except OSError as exc:
        problem = f"could not be started: {exc.strerror or type(exc).__name__}"
    if problem is not None:
        msg = f"{name} {problem}"
        raise ConfigError(msg)
    results: dict[str, bytes | None] = {}

    # aclose() (async with) waits for the process; when cancelled it kills
    # and reaps it, so no plugin outlives its caller.
    async with process, anyio.create_task_group() as tasks:

        async def drain(key: str, stream: ByteReceiveStream | None) -> None:
            assert stream is not None
            results[key] = await _read_bounded(stream, MAX_PLUGIN_OUTPUT)
            if results[key] is None:
                # A plugin printing without end: stop it now rather than
                # wait for the caller's deadline; aclose() reaps it.
                with contextlib.suppress(ProcessLookupError):
                    process.kill()  # unless it exited meanwhile
                tasks.cancel_scope.cancel()

        tasks.start_soon(drain, "stderr", process.stderr)
        tasks.start_soon(drain, "stdout", process.stdout)
    returncode = process.returncode
    stdout, stderr = results.get("stdout"), results.get("stderr")
    if stdout is None or stderr is None or returncode is None:
        msg = f"{name} printed more than {MAX_PLUGIN_OUTPUT} bytes; it was stopped"
        raise ConfigError(msg)
    return stdout, stderr, returncode


class ExecAuth:
    """Bearer-token auth from an exec credential plugin (implements ``Auth``).

    Args:
        provider: the plugin, from the kubeconfig.
        config: the rest of the config, for ``provideClusterInfo``.
        environ: the base environment of the plugin; defaults to ``os.environ``.
        wall_clock: the Unix time (for tests).
    """

    __slots__ = (
        "_config",
        "_environ",
        "_expiry",
        "_header",
        "_lock",
        "_ran_after_401",
        "_wall_clock",
        "provider",
        "runs",
    )

    def __init__(
        self,
        provider: ExecProvider,
        *,
        config: Config | None = None,
        environ: Mapping[str, str] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self._config = config
        self._environ = environ
        self._wall_clock = wall_clock
        self._header: str | None = None
        self._expiry: float | None = None
        self._lock: anyio.Lock | None = None
        self._ran_after_401: str | None = None
        #: How many times the plugin ran (for diagnostics and tests).
        self.runs = 0

    def __repr__(self) -> str:
        return f"ExecAuth({self.provider.command!r})"

    def _fresh(self) -> bool:
        return self._header is not None and (
            self._expiry is None or self._wall_clock() < self._expiry - EXPIRY_SKEW
        )

    async def authorization(self) -> str | None:
        """The ``Authorization`` header, running the plugin when the cache is stale.

        Raises:
            ConfigError: the plugin is missing, fails, or prints no token.
        """
        if self._fresh():
            return self._header
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if not self._fresh():
                await self._run()
        return self._header

    async def unauthorized(self, sent: str | None) -> bool:
        """Run the plugin again after a 401, once per rejected token."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if sent == self._header and self._ran_after_401 != sent:
                await self._run()
                self._ran_after_401 = self._header
            return self._header != sent

    async def _run(self) -> None:
        provider = self.provider
        name = _plugin_name(provider)
        env = dict(os.environ if self._environ is None else self._environ)
        env.update(provider.env)
        env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info(provider, self._config))
        self.runs += 1
        stdout, stderr, returncode = await _run_plugin(provider, env)
        if returncode != 0:
            text = stderr.decode("utf-8", "replace").strip()
            detail = f": {text[-_MAX_STDERR:]}" if text else ""
            msg = f"{name} failed with exit status {returncode}{detail}"
            raise ConfigError(msg)
        token, expiry = parse_exec_output(provider, stdout)
        self._header = f"Bearer {token}"
        self._expiry = expiry
        logger.debug("%s gave a new token (expires: %s)", name, expiry)
