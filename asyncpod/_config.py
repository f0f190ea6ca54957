"""``Config``: where the API server is and how to authenticate to it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from attrs import field, frozen

Source = Literal["unix", "proxy", "in-cluster", "kubeconfig", "explicit"]

DEFAULT_PROXY_URL = "http://127.0.0.1:8001"


def _optional_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


@frozen(kw_only=True)
class Config:
    """A resolved configuration. Build one with ``load_config()`` or a constructor.

    Attributes:
        source: which link produced it: ``"unix"``, ``"proxy"``, ``"in-cluster"``,
            ``"kubeconfig"`` or ``"explicit"``.
        server: the API server or proxy URL, ``None`` for a Unix socket.
        namespace: the default namespace of namespaced calls.
    """

    source: Source
    server: str | None
    namespace: str = "default"
    socket_path: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = field(default=None, converter=_optional_path)
    ca_file: Path | None = field(default=None, converter=_optional_path)
    ca_data: bytes | None = field(default=None, repr=False)
    client_cert_file: Path | None = field(default=None, converter=_optional_path)
    client_key_file: Path | None = field(default=None, converter=_optional_path, repr=False)
    client_cert_data: bytes | None = field(default=None, repr=False)
    client_key_data: bytes | None = field(default=None, repr=False)
    tls_server_name: str | None = None
    insecure_skip_tls_verify: bool = False
    allow_remote_proxy: bool = False

    @classmethod
    def proxy(cls, url: str = DEFAULT_PROXY_URL, *, namespace: str = "default") -> Config:
        """A ``kubectl proxy`` on localhost: plain HTTP, no credentials of ours."""
        return cls(source="proxy", server=url, namespace=namespace)

    @classmethod
    def unix_socket(cls, path: str | Path, *, namespace: str = "default") -> Config:
        """A ``kubectl proxy --unix-socket`` socket: no credentials of ours."""
        return cls(source="unix", server=None, socket_path=str(path), namespace=namespace)

    @classmethod
    def https(
        cls,
        server: str,
        *,
        token: str | None = None,
        token_file: str | Path | None = None,
        ca_file: str | Path | None = None,
        namespace: str = "default",
    ) -> Config:
        """The API server over HTTPS, verified against ``ca_file`` (else the system store)."""
        return cls(
            source="explicit",
            server=server,
            token=token,
            token_file=_optional_path(token_file),
            ca_file=_optional_path(ca_file),
            namespace=namespace,
        )
