"""The kubeconfig link: files merged as kubectl does, one context resolved to a ``Config``.

Merging follows client-go's ``ClientConfigLoadingRules.Load``: the files of
``KUBECONFIG`` are read in order, missing ones are skipped, and for every key
(``current-context``, each named cluster, user and context) the first file that
sets it wins. Relative paths inside a file are relative to that file's folder.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from attrs import frozen

from asyncpod._errors import ConfigError
from asyncpod._execprovider import ExecProvider
from asyncpod._files import check_token_file, read_text, regular_file_problem
from asyncpod._urls import redact, scheme_of

logger = logging.getLogger("asyncpod")

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
# A context with its cluster and user, certificates inline, is about 8 KB:
# 8 MiB holds a thousand of them. A larger file is not a kubeconfig.
MAX_KUBECONFIG_SIZE = 8 << 20


@frozen
class Entry:
    """One named cluster, user or context, with the file it came from."""

    name: str
    body: Mapping[str, Any]
    file: Path

    @property
    def base(self) -> Path:
        return self.file.parent


@frozen
class Merged:
    """The merged view of one or more kubeconfig files."""

    files: tuple[Path, ...]
    current_context: str | None
    clusters: Mapping[str, Entry]
    users: Mapping[str, Entry]
    contexts: Mapping[str, Entry]


def kubeconfig_paths(environ: Mapping[str, str]) -> tuple[list[Path], str]:
    """The files to merge and a description of where the list came from."""
    value = environ.get("KUBECONFIG", "")
    if value:
        seen: list[Path] = []
        for part in value.split(os.pathsep):
            # client-go drops empty entries and duplicates, keeping the first.
            if part and Path(part) not in seen:
                seen.append(Path(part))
        return seen, f"KUBECONFIG={value}"
    home = environ.get("HOME") or os.path.expanduser("~")
    return [Path(home) / ".kube" / "config"], "~/.kube/config"


def _parse_file(path: Path) -> dict[str, Any]:
    text = read_text(path, what="kubeconfig", limit=MAX_KUBECONFIG_SIZE)
    # PyYAML loads only when a kubeconfig is read: `import asyncpod` stays light.
    import yaml

    problem: str | None = None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The YAML error's own text quotes the offending line, which may hold a
        # token: keep only its position and the kind of problem, and raise
        # outside this block so that the error is not our context either.
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = f"{where}: {getattr(exc, 'problem', None) or 'not valid YAML'}"
    if problem is not None:
        msg = f"kubeconfig {path} is not valid YAML{problem}"
        raise ConfigError(msg)
    if document is None:
        return {}
    if not isinstance(document, dict):
        msg = f"kubeconfig {path} does not hold a mapping at the top level"
        raise ConfigError(msg)
    return document


def _entries(path: Path, document: Mapping[str, Any], section: str, key: str) -> dict[str, Entry]:
    items = document.get(section)
    if items is None:
        return {}
    if not isinstance(items, list):
        msg = f"kubeconfig {path}: {section} must be a list"
        raise ConfigError(msg)
    entries: dict[str, Entry] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            msg = f"kubeconfig {path}: {section}[{index}] has no name"
            raise ConfigError(msg)
        name = item["name"]
        if name in entries:
            # client-go: 'duplicate name "x" in list'.
            msg = f"kubeconfig {path}: duplicate name {name!r} in {section}"
            raise ConfigError(msg)
        body = item.get(key)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            msg = f"kubeconfig {path}: {section}[name={name}].{key} must be a mapping"
            raise ConfigError(msg)
        entries[name] = Entry(name, body, path.absolute())
    return entries


def load_merged(paths: Sequence[Path], *, explicit: bool = False) -> Merged:
    """Read and merge kubeconfig files; the first file to set a key wins.

    Args:
        paths: the files, in precedence order.
        explicit: a single file the caller named: it must exist.

    Raises:
        ConfigError: an explicit file is missing, or a file is malformed.
    """
    current: str | None = None
    sections: dict[str, dict[str, Entry]] = {section: {} for section, _ in _SECTIONS}
    read: list[Path] = []
    for path in paths:
        if not explicit and not path.exists():
            continue
        document = _parse_file(path)
        read.append(path)
        if not current:
            value = document.get("current-context")
            current = value if isinstance(value, str) and value else None
        for section, key in _SECTIONS:
            for name, entry in _entries(path, document, section, key).items():
                sections[section].setdefault(name, entry)
    return Merged(
        files=tuple(read),
        current_context=current,
        clusters=sections["clusters"],
        users=sections["users"],
        contexts=sections["contexts"],
    )


def _where(entry: Entry, section: str, key: str, field: str) -> str:
    return f"kubeconfig {entry.file}: {section}[name={entry.name}].{key}.{field}"


def _string(entry: Entry, section: str, key: str, field: str) -> str | None:
    value = entry.body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        msg = f"{_where(entry, section, key, field)} must be a string"
        raise ConfigError(msg)
    return value


def _path(entry: Entry, section: str, key: str, field: str) -> Path | None:
    value = _string(entry, section, key, field)
    if value is None:
        return None
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = entry.base / path
    if not path.exists():
        msg = f"{_where(entry, section, key, field)}: file {path} does not exist"
        raise ConfigError(msg)
    # A FIFO or a device would block or never end when it is read later.
    if problem := regular_file_problem(path):
        msg = f"{_where(entry, section, key, field)}: file {path} {problem}"
        raise ConfigError(msg)
    return path


def _data(entry: Entry, section: str, key: str, field: str) -> bytes | None:
    value = _string(entry, section, key, field)
    if value is None:
        return None
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        msg = f"{_where(entry, section, key, field)} is not valid base64"
        raise ConfigError(msg) from None
    if not data:
        msg = f"{_where(entry, section, key, field)} is empty"
        raise ConfigError(msg)
    return data


def _bool(entry: Entry, section: str, key: str, field: str) -> bool:
    value = entry.body.get(field, False)
    if not isinstance(value, bool):
        msg = f"{_where(entry, section, key, field)} must be true or false"
        raise ConfigError(msg)
    return value


def _exec_provider(entry: Entry) -> ExecProvider:
    body = entry.body.get("exec")
    where = _where(entry, "users", "user", "exec")
    if not isinstance(body, dict):
        msg = f"{where} must be a mapping"
        raise ConfigError(msg)
    command = body.get("command")
    if not isinstance(command, str) or not command:
        msg = f"{where}.command is missing"
        raise ConfigError(msg)
    # client-go resolves a command holding a path separator against the
    # kubeconfig's folder and leaves a bare name to the PATH lookup.
    if os.sep in command and not os.path.isabs(command):
        command = str(entry.base / command)
    api_version = body.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        msg = f"{where}.apiVersion {api_version!r} is not one of {', '.join(EXEC_API_VERSIONS)}"
        raise ConfigError(msg)
    args = body.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        msg = f"{where}.args must be a list of strings"
        raise ConfigError(msg)
    env: list[tuple[str, str]] = []
    for index, item in enumerate(body.get("env") or []):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value", ""), str)
        ):
            msg = f"{where}.env[{index}] must have a string name and value"
            raise ConfigError(msg)
        env.append((item["name"], item.get("value", "")))
    interactive = body.get("interactiveMode") or "IfAvailable"
    if interactive not in ("Never", "IfAvailable", "Always"):
        msg = f"{where}.interactiveMode {interactive!r} is not Never, IfAvailable or Always"
        raise ConfigError(msg)
    if interactive == "Always":
        msg = f"{where}.interactiveMode is Always, but asyncpod never runs plugins interactively"
        raise ConfigError(msg)
    hint = body.get("installHint")
    return ExecProvider(
        command=command,
        args=tuple(args),
        env=tuple(env),
        api_version=api_version,
        install_hint=hint if isinstance(hint, str) else None,
        provide_cluster_info=bool(body.get("provideClusterInfo", False)),
        interactive_mode=interactive,
        user=entry.name,
    )


def fields_from_merged(merged: Merged, *, context: str | None = None) -> dict[str, Any]:
    """Resolve one context of a merged kubeconfig into the fields of a ``Config``.

    Raises:
        ConfigError: the context, its cluster or its user is missing or malformed.
    """
    files = ", ".join(str(f) for f in merged.files) or "no file"
    name = context or merged.current_context
    if not name:
        msg = f"kubeconfig ({files}) sets no current-context and none was given"
        raise ConfigError(msg)
    ctx = merged.contexts.get(name)
    if ctx is None:
        msg = f"kubeconfig ({files}): context {name!r} was not found"
        raise ConfigError(msg)
    cluster_name = _string(ctx, "contexts", "context", "cluster")
    if cluster_name is None:
        msg = f"{_where(ctx, 'contexts', 'context', 'cluster')} is missing"
        raise ConfigError(msg)
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        where = _where(ctx, "contexts", "context", "cluster")
        msg = f"{where}: cluster {cluster_name!r} was not found"
        raise ConfigError(msg)
    fields: dict[str, Any] = {}
    server = _string(cluster, "clusters", "cluster", "server")
    if server is None:
        msg = f"{_where(cluster, 'clusters', 'cluster', 'server')} is missing"
        raise ConfigError(msg)
    insecure = _bool(cluster, "clusters", "cluster", "insecure-skip-tls-verify")
    if insecure and (
        cluster.body.get("certificate-authority") or cluster.body.get("certificate-authority-data")
    ):
        # client-go's validateClusterInfo refuses this too: which of the two
        # the user meant cannot be guessed, and guessing wrong skips checks.
        where = _where(cluster, "clusters", "cluster", "insecure-skip-tls-verify")
        msg = (
            f"{where}: specifying a root certificates file with the insecure flag is not "
            "allowed; remove certificate-authority(-data) or insecure-skip-tls-verify"
        )
        raise ConfigError(msg)
    ca_data = _data(cluster, "clusters", "cluster", "certificate-authority-data")
    # client-go: certificate-authority-data overrides certificate-authority.
    ca_file = None if ca_data else _path(cluster, "clusters", "cluster", "certificate-authority")
    proxy_url = _string(cluster, "clusters", "cluster", "proxy-url")
    if proxy_url is not None and urlsplit(proxy_url).scheme not in ("http", "https", "socks5"):
        where = _where(cluster, "clusters", "cluster", "proxy-url")
        msg = f"{where} must be an http, https or socks5 URL"
        raise ConfigError(msg)
    fields.update(
        server=server,
        insecure_skip_tls_verify=insecure,
        ca_data=ca_data,
        ca_file=ca_file,
        tls_server_name=_string(cluster, "clusters", "cluster", "tls-server-name"),
        proxy_url=proxy_url,
    )
    user_name = _string(ctx, "contexts", "context", "user")
    if user_name is not None:
        user = merged.users.get(user_name)
        if user is None:
            msg = f"{_where(ctx, 'contexts', 'context', 'user')}: user {user_name!r} was not found"
            raise ConfigError(msg)
        fields.update(_user_fields(user))
        _refuse_plain_http(server, cluster, user, fields)
    namespace = _string(ctx, "contexts", "context", "namespace") or "default"
    return {"source": "kubeconfig", "namespace": namespace, "context": name, **fields}


def _refuse_plain_http(server: str, cluster: Entry, user: Entry, fields: Mapping[str, Any]) -> None:
    """Credentials never go to an ``http://`` server: that would send them in clear text.

    Raises:
        ConfigError: the user has a token, token file, exec plugin or client
            certificate and the cluster's server is plain HTTP.
    """
    if scheme_of(server) != "http":
        return
    kinds = [
        kind
        for kind, present in (
            ("token", fields.get("token") is not None),
            ("tokenFile", fields.get("token_file") is not None),
            ("exec", fields.get("exec_provider") is not None),
            (
                "client-certificate",
                fields.get("client_cert_data") is not None
                or fields.get("client_cert_file") is not None,
            ),
        )
        if present
    ]
    if not kinds:
        return
    msg = (
        f"kubeconfig {cluster.file}: cluster {cluster.name!r} has the plain-HTTP server "
        f"{redact(server)!r}, but user {user.name!r} (in {user.file}) has "
        f"{' and '.join(kinds)}; credentials are only sent over https://"
    )
    raise ConfigError(msg)


def _user_fields(user: Entry) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "auth-provider" in user.body:
        msg = (
            f"{_where(user, 'users', 'user', 'auth-provider')}: auth providers were removed from "
            "Kubernetes clients; use an exec credential plugin instead"
        )
        raise ConfigError(msg)
    cert_data = _data(user, "users", "user", "client-certificate-data")
    key_data = _data(user, "users", "user", "client-key-data")
    # client-go: the -data fields override the file paths.
    fields["client_cert_data"] = cert_data
    fields["client_key_data"] = key_data
    fields["client_cert_file"] = (
        None if cert_data else _path(user, "users", "user", "client-certificate")
    )
    fields["client_key_file"] = None if key_data else _path(user, "users", "user", "client-key")
    has_cert = cert_data is not None or fields["client_cert_file"] is not None
    has_key = key_data is not None or fields["client_key_file"] is not None
    if has_cert != has_key:
        missing = "client-key" if has_cert else "client-certificate"
        msg = (
            f"{_where(user, 'users', 'user', missing)} is missing: a client certificate needs both"
        )
        raise ConfigError(msg)
    token = _string(user, "users", "user", "token")
    if token is not None:
        # client-go: a token wins over tokenFile.
        fields["token"] = token
    else:
        token_file = _path(user, "users", "user", "tokenFile")
        if token_file is not None:
            check_token_file(token_file)
            fields["token_file"] = token_file
    if "exec" in user.body and token is None and "token_file" not in fields:
        fields["exec_provider"] = _exec_provider(user)
    return fields


def kubeconfig_fields(
    path: str | Path | None = None,
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The fields of a ``Config`` from kubeconfig files; see ``Config.from_kubeconfig``.

    Raises:
        ConfigError: no file exists, or a file, context, cluster or user is malformed.
    """
    environ = os.environ if environ is None else environ
    if path is not None:
        merged = load_merged([Path(path)], explicit=True)
    else:
        paths, origin = kubeconfig_paths(environ)
        merged = load_merged(paths)
        if not merged.files:
            msg = f"no kubeconfig file exists ({origin})"
            raise ConfigError(msg)
    return fields_from_merged(merged, context=context)


__all__ = ["Merged", "fields_from_merged", "kubeconfig_fields", "kubeconfig_paths", "load_merged"]
