"""The config chain: link order, restriction, and the "nothing applied" report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asyncpod import ConfigError, load_config
from tests.helpers.sa_folder import make_sa_folder

KUBECONFIG = {
    "clusters": [{"name": "c", "cluster": {"server": "https://kc.example:6443"}}],
    "contexts": [{"name": "x", "context": {"cluster": "c"}}],
    "current-context": "x",
}


@pytest.fixture
def everything(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment where every link would apply."""
    sa = make_sa_folder(tmp_path / "sa", {"token": b"t", "ca.crt": b"ca"})
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump(KUBECONFIG))
    environ = {
        "ASYNCPOD_UNIX_SOCKET": str(tmp_path / "proxy.sock"),
        "ASYNCPOD_PROXY_URL": "http://127.0.0.1:8001",
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBECONFIG": str(kc),
    }
    return environ, sa


def test_default_order(everything: tuple[dict[str, str], Path]) -> None:
    """unix, then proxy, then in-cluster, then kubeconfig."""
    environ, sa = everything
    expected = ["unix", "proxy", "in-cluster", "kubeconfig"]
    for source in expected:
        config = load_config(environ=environ, service_account_dir=sa)
        assert config.source == source
        # Take the winning link away and the next one applies.
        environ.pop(
            {
                "unix": "ASYNCPOD_UNIX_SOCKET",
                "proxy": "ASYNCPOD_PROXY_URL",
                "in-cluster": "KUBERNETES_SERVICE_HOST",
                "kubeconfig": "KUBECONFIG",
            }[source]
        )


def test_chain_restricts_and_reorders(everything: tuple[dict[str, str], Path]) -> None:
    """chain= picks the links and their order."""
    environ, sa = everything
    config = load_config(
        chain=("kubeconfig", "in-cluster"), environ=environ, service_account_dir=sa
    )
    assert config.source == "kubeconfig"
    assert config.server == "https://kc.example:6443"
    config = load_config(chain=["in-cluster"], environ=environ, service_account_dir=sa)
    assert config.source == "in-cluster"
    assert config.server == "https://10.96.0.1:443"


def test_unknown_link(everything: tuple[dict[str, str], Path]) -> None:
    """An unknown link name is a ConfigError naming it."""
    environ, sa = everything
    with pytest.raises(ConfigError, match="'incluster'"):
        load_config(chain=("incluster",), environ=environ, service_account_dir=sa)


def test_nothing_applies_lists_every_link(tmp_path: Path) -> None:
    """One line per link, saying what it looked at and why it did not apply."""
    environ = {"HOME": str(tmp_path)}
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ, service_account_dir=tmp_path / "sa")
    lines = str(info.value).splitlines()
    assert lines[0] == "no configuration applied:"
    assert lines[1:] == [
        "  unix: ASYNCPOD_UNIX_SOCKET is not set",
        "  proxy: ASYNCPOD_PROXY_URL is not set",
        "  in-cluster: KUBERNETES_SERVICE_HOST is not set",
        f"  kubeconfig: KUBECONFIG is not set and {tmp_path / '.kube' / 'config'} does not exist",
    ]


def test_in_cluster_without_token_says_which_file(tmp_path: Path) -> None:
    """The in-cluster link names the token file it looked for."""
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": str(tmp_path / "nope")}
    with pytest.raises(ConfigError) as info:
        load_config(
            chain=("in-cluster", "kubeconfig"), environ=environ, service_account_dir=tmp_path
        )
    text = str(info.value)
    assert f"token file {tmp_path / 'token'} does not exist" in text
    assert f"KUBECONFIG={tmp_path / 'nope'}: no such file" in text


def test_malformed_link_does_not_fall_through(everything: tuple[dict[str, str], Path]) -> None:
    """A bad port raises instead of silently trying the next link."""
    environ, sa = everything
    environ["KUBERNETES_SERVICE_PORT"] = "https"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_PORT"):
        load_config(chain=("in-cluster", "kubeconfig"), environ=environ, service_account_dir=sa)


def test_remote_proxy_url_is_refused(tmp_path: Path) -> None:
    """ASYNCPOD_PROXY_URL must point at loopback: a proxy adds credentials for anyone."""
    with pytest.raises(ConfigError, match="loopback"):
        load_config(environ={"ASYNCPOD_PROXY_URL": "http://10.0.0.5:8001"})


def test_default_namespace_per_link(everything: tuple[dict[str, str], Path]) -> None:
    """Proxy and socket links default to "default"; in-cluster reads the pod's."""
    environ, sa = everything
    (sa / "..data" / "namespace").write_text("team-b")
    (sa / "namespace").symlink_to("..data/namespace")
    assert load_config(environ=environ, service_account_dir=sa).namespace == "default"
    config = load_config(chain=("in-cluster",), environ=environ, service_account_dir=sa)
    assert config.namespace == "team-b"
