"""The in-cluster link: service variables and the service-account folder.

Vectors ported from client-go ``rest.InClusterConfig`` (rest/config.go and its
tests) and kubernetes-client/python
``kubernetes/base/config/incluster_config_test.py``. Where we deliberately
differ (a missing or empty port means 443, a missing ca.crt means the system
trust store) the test says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asyncpod import Config, ConfigError
from asyncpod._assemble import auth_for
from tests.sa_folder import make_sa_folder

TOKEN = "temp_token"  # incluster_config_test.py: _TEST_TOKEN


@pytest.fixture
def sa(tmp_path: Path) -> Path:
    """A service-account folder with a token, a CA bundle and a namespace."""
    return make_sa_folder(
        tmp_path / "sa",
        {"token": TOKEN.encode(), "ca.crt": b"temp_cert", "namespace": b"team-a\n"},
    )


def env(**values: str) -> dict[str, str]:
    """An environment with the given variables only."""
    return dict(values)


def test_host_and_port(sa: Path) -> None:
    """incluster_config_test.py test_load_config: host and port make the URL."""
    config = Config.in_cluster(
        root=sa, environ=env(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT="80")
    )
    assert config.server == "https://127.0.0.1:80"
    assert config.source == "in-cluster"
    assert config.token_file == sa / "token"
    assert config.ca_file == sa / "ca.crt"


def test_ipv6_host_is_bracketed(sa: Path) -> None:
    """incluster_config_test.py test_join_host_port: ::1 becomes [::1]."""
    config = Config.in_cluster(
        root=sa, environ=env(KUBERNETES_SERVICE_HOST="::1", KUBERNETES_SERVICE_PORT="80")
    )
    assert config.server == "https://[::1]:80"


def test_https_port_wins(sa: Path) -> None:
    """KUBERNETES_SERVICE_PORT_HTTPS is preferred over KUBERNETES_SERVICE_PORT."""
    config = Config.in_cluster(
        root=sa,
        environ=env(
            KUBERNETES_SERVICE_HOST="10.0.0.1",
            KUBERNETES_SERVICE_PORT="80",
            KUBERNETES_SERVICE_PORT_HTTPS="6443",
        ),
    )
    assert config.server == "https://10.0.0.1:6443"


@pytest.mark.parametrize("port", [None, "", "  "])
def test_missing_or_empty_port_means_443(sa: Path, port: str | None) -> None:
    """test_no_port/test_empty_port fail in the Python client; we default to 443 as documented."""
    environ = env(KUBERNETES_SERVICE_HOST="10.0.0.1")
    if port is not None:
        environ["KUBERNETES_SERVICE_PORT"] = port
        environ["KUBERNETES_SERVICE_PORT_HTTPS"] = port
    assert Config.in_cluster(root=sa, environ=environ).server == "https://10.0.0.1:443"


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "44 3", "1e3"])
@pytest.mark.parametrize("variable", ["KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS"])
def test_bad_port_names_the_variable(sa: Path, port: str, variable: str) -> None:
    """A value that is not a port number is a ConfigError naming the variable."""
    environ = env(KUBERNETES_SERVICE_HOST="10.0.0.1", **{variable: port})
    with pytest.raises(ConfigError, match=variable):
        Config.in_cluster(root=sa, environ=environ)


@pytest.mark.parametrize("environ", [{}, {"KUBERNETES_SERVICE_HOST": ""}])
def test_no_host(sa: Path, environ: dict[str, str]) -> None:
    """incluster_config_test.py test_no_host/test_empty_host: not in a Pod."""
    environ["KUBERNETES_SERVICE_PORT"] = "80"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        Config.in_cluster(root=sa, environ=environ)


def test_missing_token_file_names_it(tmp_path: Path) -> None:
    """incluster_config_test.py test_no_token_file: the error names the file."""
    root = make_sa_folder(tmp_path / "sa", {"ca.crt": b"x"})
    with pytest.raises(ConfigError, match=str(root / "token")):
        Config.in_cluster(root=root, environ=env(KUBERNETES_SERVICE_HOST="10.0.0.1"))


def test_empty_token_file_names_it(tmp_path: Path) -> None:
    """incluster_config_test.py test_empty_token_file: the error names the file."""
    root = make_sa_folder(tmp_path / "sa", {"token": b"", "ca.crt": b"x"})
    with pytest.raises(ConfigError, match=rf"{root / 'token'} is empty"):
        Config.in_cluster(root=root, environ=env(KUBERNETES_SERVICE_HOST="10.0.0.1"))


@pytest.mark.parametrize("content", [b"\n", b"  \n"])
def test_blank_token_file_refused_when_the_client_starts(tmp_path: Path, content: bytes) -> None:
    """A token file of whitespace is refused, naming it, when its content is first read."""
    root = make_sa_folder(tmp_path / "sa", {"token": content, "ca.crt": b"x"})
    config = Config.in_cluster(root=root, environ=env(KUBERNETES_SERVICE_HOST="10.0.0.1"))
    with pytest.raises(ConfigError, match=rf"{root / 'token'} is empty"):
        auth_for(config)


def test_missing_ca_uses_system_store_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No ca.crt: the system trust store, a logged warning, never verification off."""
    root = make_sa_folder(tmp_path / "sa", {"token": b"t"})
    with caplog.at_level(logging.WARNING, logger="asyncpod"):
        config = Config.in_cluster(root=root, environ=env(KUBERNETES_SERVICE_HOST="10.0.0.1"))
    assert config.ca_file is None
    assert not config.insecure_skip_tls_verify
    assert "system trust store" in caplog.text
    assert str(root / "ca.crt") in caplog.text


def test_empty_ca_names_it(tmp_path: Path) -> None:
    """incluster_config_test.py test_empty_cert_file: an empty CA bundle fails."""
    root = make_sa_folder(tmp_path / "sa", {"token": b"t", "ca.crt": b""})
    with pytest.raises(ConfigError, match=str(root / "ca.crt")):
        Config.in_cluster(root=root, environ=env(KUBERNETES_SERVICE_HOST="10.0.0.1"))


def test_namespace_order(sa: Path, tmp_path: Path) -> None:
    """POD_NAMESPACE, else the namespace file, else "default"."""
    host = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert Config.in_cluster(root=sa, environ={**host, "POD_NAMESPACE": "ns"}).namespace == "ns"
    assert Config.in_cluster(root=sa, environ={**host, "POD_NAMESPACE": ""}).namespace == "team-a"
    bare = make_sa_folder(tmp_path / "bare", {"token": b"t", "ca.crt": b"x"})
    assert Config.in_cluster(root=bare, environ=host).namespace == "default"


def test_repr_hides_the_token(sa: Path) -> None:
    """The config's repr shows the token file, never the token."""
    config = Config.in_cluster(root=sa, environ=env(KUBERNETES_SERVICE_HOST="10.0.0.1"))
    assert TOKEN not in repr(config)
    assert "token_file" in repr(config)
