"""Building SSL contexts: verification always on, from files or in-memory data."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from asyncpod._errors import ConfigError
from asyncpod._files import describe, read_file

# The Mozilla bundle with every public root is about 220 KB; a CA bundle of a
# cluster holds one to a few certificates. Anything past 4 MiB is not a bundle.
MAX_CA_BUNDLE_SIZE = 4 << 20
# A client certificate chain or key: a few KB, RSA 8192 included.
MAX_CLIENT_PEM_SIZE = 1 << 20


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
            # Read by us, bounded, rather than by OpenSSL, which would block on
            # a FIFO and read a link to /dev/zero forever.
            pem = read_file(ca_file, what="CA bundle", limit=MAX_CA_BUNDLE_SIZE)
            try:
                # PEM is ASCII; comments between certificates may not be
                # (certifi's bundle names issuers in UTF-8), and ssl takes
                # only ASCII text, so those bytes go.
                context.load_verify_locations(cadata=pem.decode("ascii", errors="ignore"))
            except (ssl.SSLError, ValueError) as exc:
                msg = f"CA bundle {ca_file} could not be loaded: {describe(exc)}"
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
    # The files are read here, bounded, for the same reason as the CA bundle.
    if cert_file is not None:
        cert_data = read_file(cert_file, what="client certificate", limit=MAX_CLIENT_PEM_SIZE)
    if key_file is not None:
        key_data = read_file(key_file, what="client key", limit=MAX_CLIENT_PEM_SIZE)
    cert_name = cert_file.name if cert_file is not None else "client-certificate-data"
    key_name = key_file.name if key_file is not None else "client-key-data"
    with tempfile.TemporaryDirectory(prefix="asyncpod-") as folder:
        cert_path = _write_private(Path(folder) / "client.crt", cert_data or b"")
        key_path = _write_private(Path(folder) / "client.key", key_data or b"")
        error: str | None = None
        try:
            context.load_cert_chain(certfile=str(cert_path), keyfile=str(key_path))
        except (OSError, ssl.SSLError) as exc:
            error = describe(exc)
    # Raised outside the except block, so that no chained error can carry
    # anything read from the key.
    if error is not None:
        msg = f"client certificate {cert_name} and key {key_name} could not be loaded: {error}"
        raise ConfigError(msg)


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
