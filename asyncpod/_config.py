"""``Config``: where the API server is and how to authenticate to it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from attrs import field, frozen

from asyncpod._errors import ConfigError
from asyncpod._execprovider import ExecProvider
from asyncpod._incluster import SERVICE_ACCOUNT_DIR, in_cluster_fields
from asyncpod._kubeconfig import kubeconfig_fields
from asyncpod._urls import redact, scheme_of

Source = Literal["unix", "proxy", "in-cluster", "kubeconfig", "explicit"]

DEFAULT_PROXY_URL = "http://127.0.0.1:8001"


def _optional_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _url_repr(value: str | None) -> str:
    # A URL may carry user:password@; a repr is logged and printed.
    return repr(None if value is None else redact(value))


@frozen(kw_only=True)
class Config:
    """A resolved configuration. Build one with ``load_config()`` or a constructor.

    Attributes:
        source: which link produced it: ``"unix"``, ``"proxy"``, ``"in-cluster"``,
            ``"kubeconfig"`` or ``"explicit"``.
        server: the API server or proxy URL, ``None`` for a Unix socket.
        namespace: the default namespace of namespaced calls.
        proxy_url: an HTTP(S) proxy to reach ``server`` through (kubeconfig
            ``proxy-url``).
        exec_provider: a credential plugin that supplies the token.
        context: the kubeconfig context in use, for messages.
    """

    source: Source
    server: str | None = field(repr=_url_repr)
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
    proxy_url: str | None = field(default=None, repr=_url_repr)
    exec_provider: ExecProvider | None = None
    context: str | None = None

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
        """The API server over HTTPS, verified against ``ca_file`` (else the system store).

        Raises:
            ConfigError: ``server`` is not an ``https://`` URL (a ``kubectl
                proxy`` on ``http://`` is ``Config.proxy``).
        """
        if scheme_of(server) != "https":
            # Never downgrade: an http:// URL here would send the token in
            # clear text, or silently drop it.
            msg = (
                f"Config.https needs an https:// URL, not {redact(server)!r}; "
                "for a kubectl proxy on plain HTTP use Config.proxy(url)"
            )
            raise ConfigError(msg)
        return cls(
            source="explicit",
            server=server,
            token=token,
            token_file=_optional_path(token_file),
            ca_file=_optional_path(ca_file),
            namespace=namespace,
        )

    @classmethod
    def in_cluster(
        cls,
        *,
        root: str | Path = SERVICE_ACCOUNT_DIR,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """The API server as a Pod sees it: service variables and the service-account folder.

        Args:
            root: the service-account folder (``token``, ``ca.crt``, ``namespace``).
            environ: the environment to read; defaults to ``os.environ``.

        Raises:
            ConfigError: a variable or file is missing or malformed (the
                message names it).
        """
        return cls(**in_cluster_fields(root=root, environ=environ))

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path | None = None, *, context: str | None = None
    ) -> Config:
        """The cluster and user of a kubeconfig context.

        Args:
            path: a kubeconfig file; by default ``KUBECONFIG`` (several files
                merged as kubectl does) or ``~/.kube/config``.
            context: the context to use instead of ``current-context``.

        Raises:
            ConfigError: no file, or a file, context, cluster or user is
                malformed (the message names it).
        """
        return cls(**kubeconfig_fields(path, context=context))
