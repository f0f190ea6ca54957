"""Bounded, non-blocking reads of every file a config names, with real hostile files.

Each kind of file (token, CA bundle, client certificate and key, namespace,
kubeconfig) is replaced by a symlink to ``/dev/zero``, a FIFO with no writer
and a file past its limit; each must give a ``ConfigError`` naming the file,
at once, without reading without end or blocking.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
import yaml

from asyncpod import Config, ConfigError, TokenFile
from asyncpod._files import read_file, read_text, read_token_file, try_read
from asyncpod._incluster import MAX_NAMESPACE_FILE_SIZE
from asyncpod._kubeconfig import MAX_KUBECONFIG_SIZE
from asyncpod._tls import MAX_CA_BUNDLE_SIZE, MAX_CLIENT_PEM_SIZE, create_ssl_context
from tests.sa_folder import make_sa_folder

ENV = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}


def hostile(path: Path, kind: str, limit: int) -> None:
    """Turn ``path`` into a hostile file of ``kind``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    if kind == "dev-zero":
        os.symlink("/dev/zero", path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "oversized":
        with path.open("wb") as handle:
            handle.truncate(limit + 1)
    elif kind == "directory":
        path.mkdir()


def run_bounded(call: Callable[[], object], seconds: float = 20.0) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised, or fail when it hangs."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the read did not return within {seconds} s")
    return outcome[0]


def sa_folder(tmp_path: Path, ca: trustme.CA) -> Path:
    """A service-account folder with a good token, CA and namespace."""
    return make_sa_folder(
        tmp_path / "sa",
        {"token": b"sekret\n", "ca.crt": ca.cert_pem.bytes(), "namespace": b"team\n"},
    )


def kubeconfig(tmp_path: Path, user: dict[str, object]) -> Path:
    """A kubeconfig whose one context uses ``user``."""
    path = tmp_path / "kubeconfig"
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def token_via_in_cluster(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """The in-cluster token file: refused when the config is built."""
    root = sa_folder(tmp_path, trustme.CA())
    target = tmp_path / "hostile-token"
    hostile(target, kind, 80 << 10)
    (root / "token").unlink()
    os.symlink(target, root / "token")
    return root / "token", lambda: Config.in_cluster(root=root, environ=ENV)


def token_via_token_file(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """A token file read by TokenFile when the client starts."""
    path = tmp_path / "token"
    hostile(path, kind, 80 << 10)
    return path, lambda: TokenFile(path)


def ca_bundle(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """A CA bundle loaded into an SSL context."""
    path = tmp_path / "ca.crt"
    hostile(path, kind, MAX_CA_BUNDLE_SIZE)
    return path, lambda: create_ssl_context(ca_file=path)


def in_cluster_ca(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """The in-cluster ca.crt: looked at (not read) when the config is built."""
    root = sa_folder(tmp_path, trustme.CA())
    target = tmp_path / "hostile-ca"
    hostile(target, kind, MAX_CA_BUNDLE_SIZE)
    (root / "ca.crt").unlink()
    os.symlink(target, root / "ca.crt")
    if kind == "oversized":
        # Only its size is known then; the read refuses it.
        config = Config.in_cluster(root=root, environ=ENV)
        assert config.ca_file is not None
        return root / "ca.crt", lambda: create_ssl_context(ca_file=config.ca_file)
    return root / "ca.crt", lambda: Config.in_cluster(root=root, environ=ENV)


def client_certificate(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """A client certificate file named by a kubeconfig."""
    ca = trustme.CA()
    leaf = ca.issue_cert("client")
    key = tmp_path / "client.key"
    leaf.private_key_pem.write_to_path(str(key))
    cert = tmp_path / "client.crt"
    hostile(cert, kind, MAX_CLIENT_PEM_SIZE)
    return cert, lambda: create_ssl_context(cert_file=cert, key_file=key)


def client_key(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """A client key file named by a kubeconfig."""
    ca = trustme.CA()
    leaf = ca.issue_cert("client")
    cert = tmp_path / "client.crt"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    key = tmp_path / "client.key"
    hostile(key, kind, MAX_CLIENT_PEM_SIZE)
    return key, lambda: create_ssl_context(cert_file=cert, key_file=key)


def namespace_file(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """The in-cluster namespace file."""
    root = sa_folder(tmp_path, trustme.CA())
    target = tmp_path / "hostile-namespace"
    hostile(target, kind, MAX_NAMESPACE_FILE_SIZE)
    (root / "namespace").unlink()
    os.symlink(target, root / "namespace")
    return root / "namespace", lambda: Config.in_cluster(root=root, environ=ENV)


def kubeconfig_file(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """A kubeconfig named explicitly."""
    path = tmp_path / "config"
    hostile(path, kind, MAX_KUBECONFIG_SIZE)
    return path, lambda: Config.from_kubeconfig(path)


def kubeconfig_token_file(tmp_path: Path, kind: str) -> tuple[Path, Callable[[], object]]:
    """A kubeconfig user's tokenFile: refused when the config is built."""
    path = tmp_path / "token"
    hostile(path, kind, 80 << 10)
    config = kubeconfig(tmp_path, {"tokenFile": str(path)})
    return path, lambda: Config.from_kubeconfig(config)


KINDS = {
    "token (in-cluster)": token_via_in_cluster,
    "token (TokenFile)": token_via_token_file,
    "token (kubeconfig tokenFile)": kubeconfig_token_file,
    "CA bundle": ca_bundle,
    "CA bundle (in-cluster)": in_cluster_ca,
    "client certificate": client_certificate,
    "client key": client_key,
    "namespace file": namespace_file,
    "kubeconfig": kubeconfig_file,
}


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "oversized", "directory"])
@pytest.mark.parametrize("which", list(KINDS))
def test_hostile_file_is_refused_at_once(tmp_path: Path, which: str, kind: str) -> None:
    """A link to /dev/zero, a FIFO, an oversized file or a folder: a ConfigError naming it."""
    path, call = KINDS[which](tmp_path, kind)
    error = run_bounded(call)
    assert isinstance(error, ConfigError), error
    assert str(path) in str(error)
    expected = {
        "dev-zero": "is a device, not a regular file",
        "fifo": "is a FIFO, not a regular file",
        "oversized": "larger than",
        "directory": "is a directory, not a regular file",
    }[kind]
    assert expected in str(error)


def test_fifo_with_a_writer_is_refused_too(tmp_path: Path) -> None:
    """A FIFO someone writes to is still not a file: refused, not read."""
    path = tmp_path / "token"
    os.mkfifo(path)
    # Opening the write end non-blocking needs a reader: open ours first.
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(writer, b"sekret\n")
        with pytest.raises(ConfigError, match="is a FIFO"):
            read_token_file(path)
    finally:
        os.close(writer)
        os.close(reader)


def test_read_at_the_limit_is_accepted(tmp_path: Path) -> None:
    """A file of exactly ``limit`` bytes is read whole; one byte more is refused."""
    path = tmp_path / "data"
    path.write_bytes(b"a" * 1000)
    assert read_file(path, what="data", limit=1000) == b"a" * 1000
    with pytest.raises(ConfigError, match=r"data .* is larger than 999 bytes"):
        read_file(path, what="data", limit=999)


def test_identity_is_of_the_file_read(tmp_path: Path) -> None:
    """try_read returns the identity of the very file it read (fstat, not a later stat)."""
    path = tmp_path / "data"
    path.write_bytes(b"one")
    result = try_read(path, 100)
    assert not isinstance(result, str)
    data, identity = result
    st = os.stat(path)
    assert data == b"one"
    assert identity == (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def test_not_utf8_text_keeps_no_context(tmp_path: Path) -> None:
    """A file that is not UTF-8 is refused; the decode error (holding the bytes) is dropped."""
    path = tmp_path / "config"
    path.write_bytes(b"token: sekret-\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        read_text(path, what="kubeconfig", limit=1000)
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
