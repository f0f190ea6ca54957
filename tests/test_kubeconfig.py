"""The kubeconfig link: loading, merging and resolving a context.

Vectors ported from client-go ``tools/clientcmd/loader_test.go`` and
``tools/clientcmd/client_config_test.go`` and from kubernetes-client/python
``kubernetes/base/config/kube_config_test.py``; each test names its source.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from asyncpod import Config, ConfigError, StaticToken, TokenFile
from asyncpod._assemble import auth_for, endpoint_for
from asyncpod._kubeconfig import kubeconfig_fields, kubeconfig_paths


def b64(text: str | bytes) -> str:
    """Standard base64 of ``text``."""
    data = text.encode() if isinstance(text, str) else text
    return base64.standard_b64encode(data).decode()


def kubeconfig(
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    contexts: dict[str, dict[str, Any]] | None = None,
    current: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig document from name -> body maps."""
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    if clusters is not None:
        doc["clusters"] = [{"name": k, "cluster": v} for k, v in clusters.items()]
    if users is not None:
        doc["users"] = [{"name": k, "user": v} for k, v in users.items()]
    if contexts is not None:
        doc["contexts"] = [{"name": k, "context": v} for k, v in contexts.items()]
    if current is not None:
        doc["current-context"] = current
    return doc


def write(path: Path, doc: dict[str, Any] | str) -> Path:
    """Write a kubeconfig file (a dict is dumped as YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def load(environ: dict[str, str], context: str | None = None) -> Config:
    """Resolve the kubeconfig named by ``environ``."""
    return Config(**kubeconfig_fields(context=context, environ=environ))


# loader_test.go: testConfigAlfa and testConfigConflictAlfa.
ALFA = kubeconfig(
    clusters={"cow-cluster": {"server": "https://cow.org:8080"}},
    users={"red-user": {"token": "red-token"}},
    contexts={
        "federal-context": {"user": "red-user", "cluster": "cow-cluster", "namespace": "hammer-ns"}
    },
)
CONFLICT_ALFA = kubeconfig(
    clusters={
        "cow-cluster": {"server": "https://a-different-cow.org:8080"},
        "donkey-cluster": {"server": "https://donkey.org:8080"},
    },
    users={"red-user": {"token": "a-different-red-token"}, "yellow-user": {"token": "yellow"}},
    contexts={"yellow": {"user": "yellow-user", "cluster": "donkey-cluster"}},
    current="federal-context",
)


def test_merging_first_file_wins(tmp_path: Path) -> None:
    """loader_test.go Example_mergingSomeWithConflict: the first file to set a key wins."""
    first = write(tmp_path / "a" / "config", ALFA)
    second = write(tmp_path / "b" / "config", CONFLICT_ALFA)
    environ = {"KUBECONFIG": f"{first}{os.pathsep}{second}"}
    config = load(environ)
    # current-context comes from the second file, the context's pieces from the first.
    assert config.context == "federal-context"
    assert config.server == "https://cow.org:8080"
    assert config.token == "red-token"
    assert config.namespace == "hammer-ns"
    # Entries only the second file has are merged in.
    assert load(environ, context="yellow").server == "https://donkey.org:8080"


def test_conflicting_current_context(tmp_path: Path) -> None:
    """loader_test.go TestConflictingCurrentContext: the first current-context wins."""
    both = kubeconfig(
        clusters={"c": {"server": "https://c:1"}, "d": {"server": "https://d:1"}},
        contexts={"any-context-value": {"cluster": "c"}, "a-different-context": {"cluster": "d"}},
    )
    first = write(tmp_path / "1", {**both, "current-context": "any-context-value"})
    second = write(tmp_path / "2", {**both, "current-context": "a-different-context"})
    config = load({"KUBECONFIG": f"{first}{os.pathsep}{second}"})
    assert config.context == "any-context-value"


def test_missing_files_in_the_list_are_skipped(tmp_path: Path) -> None:
    """loader_test.go TestToleratingMissingFiles: missing files in KUBECONFIG are skipped."""
    real = write(tmp_path / "config", {**ALFA, "current-context": "federal-context"})
    paths = os.pathsep.join(["bogus1", str(real), "bogus2"])
    assert load({"KUBECONFIG": paths}).server == "https://cow.org:8080"


def test_explicit_missing_file_names_it(tmp_path: Path) -> None:
    """loader_test.go TestNonExistentCommandLineFile: the error names the file."""
    with pytest.raises(ConfigError, match="bogus_file"):
        Config.from_kubeconfig(tmp_path / "bogus_file")


def test_unparsable_file_names_it(tmp_path: Path) -> None:
    """loader_test.go TestErrorReadingFile: "bogus value" is not a kubeconfig."""
    path = write(tmp_path / "config", "bogus value")
    with pytest.raises(ConfigError, match=str(path)):
        Config.from_kubeconfig(path)


def test_directory_names_it(tmp_path: Path) -> None:
    """loader_test.go TestErrorReadingNonFile: a directory is named in the error."""
    with pytest.raises(ConfigError, match=str(tmp_path)):
        Config.from_kubeconfig(tmp_path)


@pytest.mark.parametrize("section", ["clusters", "contexts", "users"])
def test_duplicate_names(tmp_path: Path, section: str) -> None:
    """loader_test.go TestDuplicate{Cluster,Context,User}Name: duplicates are an error."""
    doc = kubeconfig(
        clusters={"kubeconfig-cluster": {"server": "https://kubernetes.default.svc:443"}},
        users={"kubeconfig-user": {"token": "t"}},
        contexts={"kubeconfig-context": {"cluster": "kubeconfig-cluster"}},
        current="kubeconfig-context",
    )
    doc[section].append(dict(doc[section][0]))
    path = write(tmp_path / "config", doc)
    with pytest.raises(ConfigError, match=f"duplicate name .* in {section}"):
        Config.from_kubeconfig(path)


def test_kubeconfig_paths_deduplicate_and_default(tmp_path: Path) -> None:
    """loader_test.go TestDeduplicate and TestLoadingGetLoadingPrecedence."""
    sep = os.pathsep
    paths, _ = kubeconfig_paths({"KUBECONFIG": sep.join(["a", "b", "c", "b", "", "e"])})
    assert paths == [Path("a"), Path("b"), Path("c"), Path("e")]
    paths, origin = kubeconfig_paths({"HOME": str(tmp_path)})
    assert paths == [tmp_path / ".kube" / "config"]
    assert origin == "~/.kube/config"


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    """loader_test.go TestResolveRelativePaths: relative paths follow their own file."""
    dir1 = tmp_path / "one"
    dir2 = tmp_path / "two" / "deeper"
    for folder, suffix in ((dir1, ""), (dir2, "2")):
        for rel in (
            f"relative/client/cert{suffix}",
            f"../relative/client/key{suffix}",
            f"../ca{suffix}",
        ):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text("x")
    write(
        dir1 / ".kubeconfig",
        kubeconfig(
            clusters={
                "relative-server-1": {"server": "https://s1", "certificate-authority": "../ca"}
            },
            users={
                "relative-user-1": {
                    "client-certificate": "relative/client/cert",
                    "client-key": "../relative/client/key",
                },
                "relative-cmd-1": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "../relative/client/cmd",
                    }
                },
                "PATH-cmd-1": {
                    "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "cmd"}
                },
            },
            contexts={
                "c1": {"cluster": "relative-server-1", "user": "relative-user-1"},
                "cmd1": {"cluster": "relative-server-1", "user": "relative-cmd-1"},
                "path1": {"cluster": "relative-server-1", "user": "PATH-cmd-1"},
            },
        ),
    )
    write(
        dir2 / ".kubeconfig",
        kubeconfig(
            clusters={
                "relative-server-2": {"server": "https://s2", "certificate-authority": "../ca2"}
            },
            users={
                "relative-user-2": {
                    "client-certificate": "relative/client/cert2",
                    "client-key": "../relative/client/key2",
                }
            },
            contexts={"c2": {"cluster": "relative-server-2", "user": "relative-user-2"}},
        ),
    )
    environ = {"KUBECONFIG": f"{dir1 / '.kubeconfig'}{os.pathsep}{dir2 / '.kubeconfig'}"}
    one = load(environ, "c1")
    assert one.ca_file == dir1 / "../ca"
    assert one.client_cert_file == dir1 / "relative/client/cert"
    assert one.client_key_file == dir1 / "../relative/client/key"
    two = load(environ, "c2")
    assert two.ca_file == dir2 / "../ca2"
    assert two.client_cert_file == dir2 / "relative/client/cert2"
    cmd = load(environ, "cmd1").exec_provider
    assert cmd is not None
    assert cmd.command == str(dir1 / "../relative/client/cmd")
    path_cmd = load(environ, "path1").exec_provider
    assert path_cmd is not None
    assert path_cmd.command == "cmd"


CLEAN = kubeconfig(
    clusters={"clean": {"server": "https://anything.com:8080"}},
    users={"clean": {"token": "the-token"}},
    contexts={"clean": {"cluster": "clean", "user": "clean"}},
    current="clean",
)


def test_create_clean(tmp_path: Path) -> None:
    """client_config_test.go TestCreateClean: server, token, verification on."""
    config = Config.from_kubeconfig(write(tmp_path / "config", CLEAN))
    assert config.server == "https://anything.com:8080"
    assert config.token == "the-token"
    assert not config.insecure_skip_tls_verify
    assert config.namespace == "default"
    assert config.source == "kubeconfig"
    assert "the-token" not in repr(config)


def test_missing_context(tmp_path: Path) -> None:
    """client_config_test.go TestCreateMissingContext: the context is named."""
    path = write(tmp_path / "config", CLEAN)
    with pytest.raises(ConfigError, match="context 'not-present' was not found"):
        Config.from_kubeconfig(path, context="not-present")


def test_no_current_context(tmp_path: Path) -> None:
    """Without current-context and without context=, the error says so."""
    doc = {k: v for k, v in CLEAN.items() if k != "current-context"}
    with pytest.raises(ConfigError, match="current-context"):
        Config.from_kubeconfig(write(tmp_path / "config", doc))


def test_token_wins_over_token_file(tmp_path: Path) -> None:
    """client_config_test.go TestPrecedenceTokenFile: token wins over tokenFile."""
    (tmp_path / "tok").write_text("exampletoken")
    doc = kubeconfig(
        clusters={"clean": {"server": "https://localhost:8443"}},
        users={"clean": {"token": "expected", "tokenFile": "tok"}},
        contexts={"clean": {"cluster": "clean", "user": "clean"}},
        current="clean",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert config.token == "expected"
    assert config.token_file is None


def test_token_file_becomes_rotating_auth(tmp_path: Path) -> None:
    """client_config_test.go TestBasicTokenFile: tokenFile is read (and rotated)."""
    (tmp_path / "tok").write_text("exampletoken")
    doc = kubeconfig(
        clusters={"clean": {"server": "https://localhost:8443"}},
        users={"clean": {"tokenFile": "tok"}},
        contexts={"clean": {"cluster": "clean", "user": "clean"}},
        current="clean",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert config.token_file == tmp_path / "tok"
    assert isinstance(auth_for(config), TokenFile)


def test_empty_token_file_names_it(tmp_path: Path) -> None:
    """An empty tokenFile is a ConfigError naming the file."""
    (tmp_path / "tok").write_text("")
    doc = kubeconfig(
        clusters={"c": {"server": "https://localhost:8443"}},
        users={"u": {"tokenFile": "tok"}},
        contexts={"x": {"cluster": "c", "user": "u"}},
        current="x",
    )
    with pytest.raises(ConfigError, match=f"{tmp_path / 'tok'} is empty"):
        Config.from_kubeconfig(write(tmp_path / "config", doc))


def test_certificate_data_overrides_files(tmp_path: Path) -> None:
    """client_config_test.go TestCertificateData: -data fields win over file paths."""
    doc = kubeconfig(
        clusters={
            "clean": {
                "server": "https://localhost:8443",
                "certificate-authority-data": b64("ca-data"),
                "certificate-authority": "/nonexistent/ca",
            }
        },
        users={
            "clean": {
                "client-certificate-data": b64("cert-data"),
                "client-key-data": b64("key-data"),
                "client-certificate": "/nonexistent/cert",
            }
        },
        contexts={"clean": {"cluster": "clean", "user": "clean"}},
        current="clean",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert config.ca_data == b"ca-data"
    assert config.ca_file is None
    assert config.client_cert_data == b"cert-data"
    assert config.client_key_data == b"key-data"
    assert config.client_cert_file is None
    assert "key-data" not in repr(config)


@pytest.mark.parametrize(
    "ca_field", [{"certificate-authority-data": b64("\0\0")}, {"certificate-authority": "ca.crt"}]
)
def test_insecure_with_a_ca_is_refused(tmp_path: Path, ca_field: dict[str, str]) -> None:
    """client-go validateClusterInfo: a root certificates file with the insecure flag is refused."""
    (tmp_path / "ca.crt").write_bytes(b"x")
    doc = kubeconfig(
        clusters={
            "clean": {"server": "https://localhost:8443", "insecure-skip-tls-verify": True}
            | ca_field
        },
        contexts={"clean": {"cluster": "clean"}},
        current="clean",
    )
    path = write(tmp_path / "config", doc)
    with pytest.raises(ConfigError, match="with the insecure flag is not allowed") as info:
        Config.from_kubeconfig(path)
    assert str(path) in str(info.value)
    assert "clusters[name=clean]" in str(info.value)


def test_insecure_alone_skips_verification_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """client_config_test.go TestInsecureOverridesCA without a CA: the client start warns."""
    doc = kubeconfig(
        clusters={"clean": {"server": "https://localhost:8443", "insecure-skip-tls-verify": True}},
        contexts={"clean": {"cluster": "clean"}},
        current="clean",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert config.insecure_skip_tls_verify
    assert config.ca_data is None
    with caplog.at_level(logging.WARNING, logger="asyncpod"):
        endpoint = endpoint_for(config)
    assert "NOT verified" in caplog.text
    assert endpoint.tls.ssl_context().verify_mode.name == "CERT_NONE"  # type: ignore[union-attr]


def test_insecure_only_when_the_file_says_so(tmp_path: Path) -> None:
    """kube_config_test.py "ssl" cluster: insecure-skip-tls-verify false keeps verification."""
    ca = trustme.CA()
    doc = kubeconfig(
        clusters={
            "ssl": {
                "server": "https://test-host",
                "certificate-authority-data": b64(ca.cert_pem.bytes()),
                "insecure-skip-tls-verify": False,
                "tls-server-name": "kubernetes.io",
            }
        },
        contexts={"tls-server-name": {"cluster": "ssl"}},
        current="tls-server-name",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert not config.insecure_skip_tls_verify
    assert config.tls_server_name == "kubernetes.io"
    endpoint = endpoint_for(config)
    assert endpoint.server_name == "kubernetes.io"  # type: ignore[union-attr]
    assert endpoint.tls.ssl_context().verify_mode.name == "CERT_REQUIRED"  # type: ignore[union-attr]


def test_client_certificate_files_build_mutual_tls(tmp_path: Path) -> None:
    """Client certificate and key files load into the SSL context."""
    ca = trustme.CA()
    cert = ca.issue_cert("alice")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    doc = kubeconfig(
        clusters={"c": {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"}},
        users={"u": {"client-certificate": "client.crt", "client-key": "client.key"}},
        contexts={"x": {"cluster": "c", "user": "u", "namespace": "ns1"}},
        current="x",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert config.namespace == "ns1"
    assert config.client_key_file == tmp_path / "client.key"
    endpoint_for(config)  # loads the chain; raises if anything is wrong


def test_no_user_context(tmp_path: Path) -> None:
    """kube_config_test.py test_no_user_context: no user means no credentials."""
    doc = kubeconfig(
        clusters={"default": {"server": "https://test-host"}},
        contexts={"no_user": {"cluster": "default"}},
        current="no_user",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert config.token is None
    assert config.exec_provider is None


def test_simple_token_ignores_basic_auth(tmp_path: Path) -> None:
    """kube_config_test.py test_simple_token: username/password are ignored."""
    doc = kubeconfig(
        clusters={"default": {"server": "https://test-host"}},
        users={"simple_token": {"token": b64("test-data"), "username": "me", "password": "pass"}},
        contexts={"simple_token": {"cluster": "default", "user": "simple_token"}},
        current="simple_token",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert isinstance(auth_for(config), StaticToken)
    assert config.token == b64("test-data")


def test_missing_certificate_file(tmp_path: Path) -> None:
    """kube_config_test.py "ssl-no_file": a missing file is named with its field."""
    doc = kubeconfig(
        clusters={
            "ssl-no_file": {"server": "https://test-host", "certificate-authority": "cert-auth"}
        },
        contexts={"ssl-no_file": {"cluster": "ssl-no_file"}},
        current="ssl-no_file",
    )
    with pytest.raises(
        ConfigError, match=r"certificate-authority: file .*cert-auth does not exist"
    ):
        Config.from_kubeconfig(write(tmp_path / "config", doc))


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("cluster", "certificate-authority-data"),
        ("user", "client-certificate-data"),
        ("user", "client-key-data"),
    ],
)
def test_bad_base64_names_the_field(tmp_path: Path, where: str, field: str) -> None:
    """Base64 that does not decode is a ConfigError naming the field, not the value."""
    cluster: dict[str, Any] = {"server": "https://h"}
    user: dict[str, Any] = {"client-certificate-data": b64("c"), "client-key-data": b64("k")}
    (cluster if where == "cluster" else user)[field] = "not base64!!SECRET"
    doc = kubeconfig(
        clusters={"c": cluster},
        users={"u": user},
        contexts={"x": {"cluster": "c", "user": "u"}},
        current="x",
    )
    with pytest.raises(ConfigError, match=field) as info:
        Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("missing", ["cluster", "user"])
def test_context_naming_a_missing_piece(tmp_path: Path, missing: str) -> None:
    """A context naming a missing cluster or user is a ConfigError naming it."""
    doc = kubeconfig(
        clusters={"c": {"server": "https://h"}},
        users={"u": {"token": "t"}},
        contexts={"x": {"cluster": "c", "user": "u", missing: "ghost"}},
        current="x",
    )
    with pytest.raises(ConfigError, match=f"{missing} 'ghost' was not found"):
        Config.from_kubeconfig(write(tmp_path / "config", doc))


def test_broken_yaml_shows_position_not_content(tmp_path: Path) -> None:
    """Broken YAML names the file and line but never quotes it (it may hold a token)."""
    text = "users:\n- name: u\n  user:\n    token: SECRETTOKEN: : [\n"
    path = write(tmp_path / "config", text)
    with pytest.raises(ConfigError, match=rf"{path} is not valid YAML at line \d+") as info:
        Config.from_kubeconfig(path)
    assert "SECRETTOKEN" not in str(info.value)
    # The YAML error quotes the line: it must not ride along in the chain.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_auth_provider_is_refused(tmp_path: Path) -> None:
    """kube_config_test.py "gcp" user: removed auth providers are a clear error."""
    doc = kubeconfig(
        clusters={"c": {"server": "https://h"}},
        users={"gcp": {"auth-provider": {"name": "gcp", "config": {"access-token": "x"}}}},
        contexts={"x": {"cluster": "c", "user": "gcp"}},
        current="x",
    )
    with pytest.raises(ConfigError, match="auth-provider"):
        Config.from_kubeconfig(write(tmp_path / "config", doc))


def test_exec_provider_fields(tmp_path: Path) -> None:
    """kube_config_test.py "exec_cred_user": command, args and env are kept."""
    doc = kubeconfig(
        clusters={"default": {"server": "https://h"}},
        users={
            "exec_cred_user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "aws-iam-authenticator",
                    "args": ["token", "-i", "dummy-cluster"],
                    "env": [{"name": "SECRET_ENV", "value": "hidden-value"}],
                }
            }
        },
        contexts={"x": {"cluster": "default", "user": "exec_cred_user"}},
        current="x",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    provider = config.exec_provider
    assert provider is not None
    assert provider.command == "aws-iam-authenticator"
    assert provider.args == ("token", "-i", "dummy-cluster")
    assert provider.env == (("SECRET_ENV", "hidden-value"),)
    assert "hidden-value" not in repr(config)


@pytest.mark.parametrize(
    ("exec_body", "match"),
    [
        ({"command": "x", "apiVersion": "client.authentication.k8s.io/v1alpha1"}, "apiVersion"),
        ({"apiVersion": "client.authentication.k8s.io/v1"}, "command"),
        (
            {
                "command": "x",
                "apiVersion": "client.authentication.k8s.io/v1",
                "interactiveMode": "Always",
            },
            "interactiveMode",
        ),
    ],
)
def test_bad_exec_provider(tmp_path: Path, exec_body: dict[str, Any], match: str) -> None:
    """A malformed exec section is a ConfigError naming the field."""
    doc = kubeconfig(
        clusters={"c": {"server": "https://h"}},
        users={"u": {"exec": exec_body}},
        contexts={"x": {"cluster": "c", "user": "u"}},
        current="x",
    )
    with pytest.raises(ConfigError, match=match):
        Config.from_kubeconfig(write(tmp_path / "config", doc))


def test_proxy_url_is_stored_and_refused_at_start(tmp_path: Path) -> None:
    """proxy-url is kept on Config; the client start says the transports lack it."""
    doc = kubeconfig(
        clusters={"c": {"server": "https://h", "proxy-url": "http://user:pw@proxy.local:3128"}},
        contexts={"x": {"cluster": "c"}},
        current="x",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert config.proxy_url == "http://user:pw@proxy.local:3128"
    with pytest.raises(ConfigError, match="proxy-url") as info:
        endpoint_for(config)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize(
    ("user", "named"),
    [
        ({"token": "sekret-token"}, "has token"),
        ({"tokenFile": "token"}, "has tokenFile"),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "never-run"}},
            "has exec",
        ),
        (
            {"client-certificate-data": b64("cert"), "client-key-data": b64("key")},
            "has client-certificate",
        ),
    ],
)
def test_credentials_for_a_plain_http_server_are_refused(
    tmp_path: Path, user: dict[str, Any], named: str
) -> None:
    """An http:// server with a user's credentials: ConfigError naming file, cluster and user."""
    (tmp_path / "token").write_text("sekret-token\n")
    doc = kubeconfig(
        clusters={"plain": {"server": "http://user:pw-in-url@10.0.0.1:8080"}},
        users={"alice": user},
        contexts={"x": {"cluster": "plain", "user": "alice"}},
        current="x",
    )
    path = write(tmp_path / "config", doc)
    with pytest.raises(ConfigError) as info:
        Config.from_kubeconfig(path)
    message = str(info.value)
    assert str(path) in message
    assert "cluster 'plain'" in message
    assert "user 'alice'" in message
    assert named in message
    assert "'http://***@10.0.0.1:8080'" in message
    assert "sekret-token" not in message
    assert "pw-in-url" not in message


def test_plain_http_server_without_credentials_is_a_proxy(tmp_path: Path) -> None:
    """A kubeconfig for a kubectl proxy (http://, no user credentials) still loads."""
    doc = kubeconfig(
        clusters={"proxy": {"server": "http://127.0.0.1:8001"}},
        users={"nobody": {}},
        contexts={"x": {"cluster": "proxy", "user": "nobody"}},
        current="x",
    )
    config = Config.from_kubeconfig(write(tmp_path / "config", doc))
    assert endpoint_for(config).url == "http://127.0.0.1:8001"  # type: ignore[union-attr]
