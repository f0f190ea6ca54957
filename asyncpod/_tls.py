"""Building SSL contexts: verification always on, from files or in-memory data."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from asyncpod._errors import ConfigError


def create_ssl_context(
    *,
    ca_file: Path | None = None,
    ca_data: bytes | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    cert_data: bytes | None = None,
    key_data: bytes | None = None,
) -> ssl.SSLContext:
    """A client SSL context that verifies the server.

    With neither ``ca_file`` nor ``ca_data`` the system trust store is used.
    Hostname checking stays on; IP SANs match IP literals as the standard
    library does.

    Raises:
        ConfigError: a file is missing or does not hold what it should (the
            message names the file, never its content).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None or ca_data is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                msg = f"CA bundle {ca_file} could not be loaded: {_describe(exc)}"
                raise ConfigError(msg) from exc
        if ca_data is not None:
            try:
                context.load_verify_locations(cadata=ca_data.decode("ascii"))
            except (UnicodeDecodeError, ssl.SSLError, ValueError) as exc:
                msg = "certificate-authority-data does not hold a PEM certificate"
                raise ConfigError(msg) from exc
    if cert_file is not None or cert_data is not None:
        _load_client_certificate(context, cert_file, key_file, cert_data, key_data)
    return context


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _load_client_certificate(
    context: ssl.SSLContext,
    cert_file: Path | None,
    key_file: Path | None,
    cert_data: bytes | None,
    key_data: bytes | None,
) -> None:
    if key_file is None and key_data is None:
        msg = "a client certificate was given without its key (client-key or client-key-data)"
        raise ConfigError(msg)
    # ssl only loads certificate chains from files: in-memory data goes to a
    # private temporary folder that is removed right after loading.
    with tempfile.TemporaryDirectory(prefix="asyncpod-") as folder:
        if cert_file is None:
            cert_file = _write_private(Path(folder) / "client.crt", cert_data or b"")
        if key_file is None:
            key_file = _write_private(Path(folder) / "client.key", key_data or b"")
        try:
            context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
        except (OSError, ssl.SSLError) as exc:
            msg = (
                f"client certificate {cert_file.name} and key {key_file.name} could not be "
                f"loaded: {_describe(exc)}"
            )
            raise ConfigError(msg) from None


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
