"""``ExecAuth``: exec credential plugins run as real processes on asyncio and trio."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest

from asyncpod import ConfigError, ExecAuth, ExecProvider
from asyncpod._exec import parse_rfc3339

pytestmark = pytest.mark.anyio

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

PLUGIN = r"""
import json, os, pathlib, sys
log = pathlib.Path(sys.argv[1])
runs = len(log.read_text().splitlines()) if log.exists() else 0
with log.open("a") as f:
    f.write(json.dumps({"argv": sys.argv[2:], "env": os.environ.get("PLUGIN_ENV"),
                        "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"])}) + "\n")
mode = os.environ.get("PLUGIN_MODE", "ok")
log.with_suffix(".pid").write_text(str(os.getpid()))
version = os.environ.get("PLUGIN_VERSION", "client.authentication.k8s.io/v1")
status = {"token": os.environ.get("PLUGIN_TOKEN", f"exec-secret-{runs}")}
if os.environ.get("PLUGIN_EXPIRY"):
    status["expirationTimestamp"] = os.environ["PLUGIN_EXPIRY"]
answer = {"apiVersion": version, "kind": "ExecCredential", "status": status}
if mode == "fail":
    print(json.dumps(answer))
    print("could not reach the identity provider", file=sys.stderr)
    sys.exit(3)
if mode == "garbage":
    print("exec-secret-garbage not json")
    sys.exit(0)
if mode == "truncated":
    print(json.dumps(answer)[:-5])
    sys.exit(0)
if mode in ("endless", "endless-stderr"):
    out = sys.stdout if mode == "endless" else sys.stderr
    while True:
        out.write("y" * 65536)
if mode == "hang":
    import time
    time.sleep(3600)
print(json.dumps(answer))
"""


@pytest.fixture
def plugin(tmp_path: Path) -> tuple[Path, Path]:
    """The plugin script and the log of its runs."""
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    return script, tmp_path / "runs.log"


def provider(plugin: tuple[Path, Path], *, api_version: str = V1, **env: str) -> ExecProvider:
    """An ExecProvider running the plugin with ``env``."""
    script, log = plugin
    return ExecProvider(
        command=sys.executable,
        args=(str(script), str(log), "--flag"),
        env=env,
        api_version=api_version,
        user="alice",
    )


def runs(plugin: tuple[Path, Path]) -> list[dict[str, object]]:
    """What each run of the plugin saw."""
    log = plugin[1]
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


BASE_ENV = {"PATH": os.environ.get("PATH", "")}


@pytest.mark.parametrize("version", [V1, V1BETA1])
async def test_token_is_cached(plugin: tuple[Path, Path], version: str) -> None:
    """The plugin runs once; its token serves every request until it expires."""
    auth = ExecAuth(provider(plugin, api_version=version, PLUGIN_VERSION=version), environ=BASE_ENV)
    for _ in range(5):
        assert await auth.authorization() == "Bearer exec-secret-0"
    assert auth.runs == 1


async def test_args_env_and_exec_info(plugin: tuple[Path, Path]) -> None:
    """The plugin gets its args, its env and KUBERNETES_EXEC_INFO."""
    auth = ExecAuth(provider(plugin, PLUGIN_ENV="from-kubeconfig"), environ=BASE_ENV)
    await auth.authorization()
    (seen,) = runs(plugin)
    assert seen["argv"] == ["--flag"]
    assert seen["env"] == "from-kubeconfig"
    assert seen["info"] == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }


async def test_expiry_runs_the_plugin_again(plugin: tuple[Path, Path]) -> None:
    """A credential past its expirationTimestamp is fetched again."""
    soon = (datetime.now(timezone.utc) + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    auth = ExecAuth(provider(plugin, PLUGIN_EXPIRY=soon), environ=BASE_ENV)
    assert await auth.authorization() == "Bearer exec-secret-0"
    # Within the skew of expiry: each call runs the plugin.
    assert await auth.authorization() == "Bearer exec-secret-1"
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    auth = ExecAuth(provider(plugin, PLUGIN_EXPIRY=later), environ=BASE_ENV)
    await auth.authorization()
    await auth.authorization()
    assert auth.runs == 1


async def test_burst_of_401s_runs_once(plugin: tuple[Path, Path]) -> None:
    """32 concurrent 401s for one token run the plugin once, and all retry."""
    auth = ExecAuth(provider(plugin), environ=BASE_ENV)
    sent = await auth.authorization()
    answers: list[bool] = []

    async def rejected() -> None:
        answers.append(await auth.unauthorized(sent))

    async with anyio.create_task_group() as tg:
        for _ in range(32):
            tg.start_soon(rejected)
    assert answers == [True] * 32
    assert auth.runs == 2
    assert await auth.authorization() == "Bearer exec-secret-1"


async def test_missing_command(tmp_path: Path) -> None:
    """A missing command names the plugin and shows the install hint."""
    auth = ExecAuth(
        ExecProvider(command=str(tmp_path / "nope"), install_hint="install nope from example.org"),
        environ=BASE_ENV,
    )
    with pytest.raises(ConfigError, match=r"nope.* was not found; install nope from example.org"):
        await auth.authorization()


async def test_failure_never_shows_the_credential(
    plugin: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A failing plugin gives its exit status and stderr, never its stdout."""
    auth = ExecAuth(provider(plugin, PLUGIN_MODE="fail"), environ=BASE_ENV)
    with caplog.at_level(logging.DEBUG, logger="asyncpod"), pytest.raises(ConfigError) as info:
        await auth.authorization()
    assert "exit status 3" in str(info.value)
    assert "could not reach the identity provider" in str(info.value)
    assert "exec-secret" not in str(info.value)
    assert "exec-secret" not in caplog.text


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"PLUGIN_MODE": "garbage"}, "did not print a JSON ExecCredential"),
        ({"PLUGIN_VERSION": V1BETA1}, "apiVersion"),
        ({"PLUGIN_EXPIRY": "tomorrow"}, "expirationTimestamp"),
    ],
)
async def test_bad_answers(plugin: tuple[Path, Path], env: dict[str, str], match: str) -> None:
    """An answer that is not a matching ExecCredential is a clear error without its content."""
    auth = ExecAuth(provider(plugin, **env), environ=BASE_ENV)
    with pytest.raises(ConfigError, match=match) as info:
        await auth.authorization()
    assert "exec-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("token", "match"),
    [
        ("exec-secret\r\nX-Injected: yes", r"offset 11 \(0x0d\)"),
        ("exec-secret with-space", r"offset 11 \(0x20\)"),
        ("exec-secret-\u00e9", r"not visible ASCII at offset 12"),
        ("exec-secret-" + "x" * 70_000, "more than the 65536 bytes a token may have"),
        (" \t\n", "is empty"),
    ],
)
async def test_plugin_tokens_are_checked_like_token_files(
    plugin: tuple[Path, Path], token: str, match: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A plugin token that cannot be a header: ConfigError naming the plugin, not the token."""
    auth = ExecAuth(provider(plugin, PLUGIN_TOKEN=token), environ=BASE_ENV)
    with caplog.at_level(logging.DEBUG, logger="asyncpod"), pytest.raises(ConfigError) as info:
        await auth.authorization()
    message = str(info.value)
    assert re.search(match, message)
    assert message.startswith("the status.token printed by exec plugin")
    assert "of user 'alice'" in message
    assert "exec-secret" not in message
    assert "exec-secret" not in caplog.text


async def test_plugin_token_whitespace_is_stripped(plugin: tuple[Path, Path]) -> None:
    """Whitespace around a plugin's token is dropped, as around a token file's."""
    auth = ExecAuth(provider(plugin, PLUGIN_TOKEN=" exec-secret-ok\n"), environ=BASE_ENV)
    assert await auth.authorization() == "Bearer exec-secret-ok"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-28T20:00:00Z", 1795896000.0),
        ("2026-11-28T21:00:00+01:00", 1795896000.0),
        ("2026-11-28T20:00:00.5Z", 1795896000.5),
        ("2026-11-28 20:00:00z", 1795896000.0),
        ("2026-13-28T20:00:00Z", None),
        ("yesterday", None),
    ],
)
def test_parse_rfc3339(stamp: str, expected: float | None) -> None:
    """expirationTimestamp is RFC 3339, with any offset and fraction."""
    assert parse_rfc3339(stamp) == expected


def test_repr_hides_env() -> None:
    """The provider's env (which may hold secrets) is not in its repr."""
    p = ExecProvider(command="x", env={"API_KEY": "hidden-value"})
    assert "hidden-value" not in repr(p)
    assert "hidden-value" not in repr(ExecAuth(p))


async def test_provide_cluster_info(plugin: tuple[Path, Path], tmp_path: Path) -> None:
    """provideClusterInfo passes the server and CA in KUBERNETES_EXEC_INFO."""
    import attrs

    from asyncpod import Config

    p = attrs.evolve(provider(plugin), provide_cluster_info=True)
    config = Config(
        source="kubeconfig",
        server="https://k8s.example:6443",
        ca_data=b"PEM",
        tls_server_name="api.internal",
        exec_provider=p,
    )
    await ExecAuth(p, config=config, environ=BASE_ENV).authorization()
    (seen,) = runs(plugin)
    assert seen["info"]["spec"]["cluster"] == {  # type: ignore[index]
        "server": "https://k8s.example:6443",
        "certificate-authority-data": "UEVN",
        "tls-server-name": "api.internal",
    }


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception chained to it (causes and contexts)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


def assert_secret_nowhere(exc: BaseException, secret: str) -> None:
    """``secret`` is in no message, repr, argument or attribute of the whole chain."""
    for link in exception_chain(exc):
        shown = [str(link), repr(link), repr(link.args), repr(getattr(link, "__dict__", {}))]
        assert not any(secret in text for text in shown), type(link)


async def test_malformed_json_keeps_no_context(plugin: tuple[Path, Path]) -> None:
    """Truncated JSON holding the token: ConfigError with no cause and no context."""
    auth = ExecAuth(provider(plugin, PLUGIN_MODE="truncated"), environ=BASE_ENV)
    with pytest.raises(ConfigError, match="did not print a JSON ExecCredential") as info:
        await auth.authorization()
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert_secret_nowhere(info.value, "exec-secret")


def plugin_pid(plugin: tuple[Path, Path]) -> int:
    """The process id the plugin wrote when it started."""
    return int(plugin[1].with_suffix(".pid").read_text())


def assert_reaped(pid: int) -> None:
    """The process is gone and waited for (a zombie would still answer signal 0)."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("mode", ["endless", "endless-stderr"])
async def test_endless_output_is_cut_and_the_plugin_reaped(
    plugin: tuple[Path, Path], mode: str
) -> None:
    """A plugin printing without end fails within a bound; it is killed and reaped."""
    auth = ExecAuth(provider(plugin, PLUGIN_MODE=mode), environ=BASE_ENV)
    with anyio.fail_after(60), pytest.raises(ConfigError, match=r"printed more than 1048576 bytes"):
        await auth.authorization()
    assert_reaped(plugin_pid(plugin))


async def test_cancelled_caller_kills_and_reaps_the_plugin(plugin: tuple[Path, Path]) -> None:
    """A caller's deadline stops a plugin that hangs: no process outlives the call."""
    auth = ExecAuth(provider(plugin, PLUGIN_MODE="hang"), environ=BASE_ENV)
    pid_file = plugin[1].with_suffix(".pid")
    with anyio.move_on_after(60) as scope:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(auth.authorization)
            # Cancel only once the plugin runs, so that there is a process to stop.
            for _ in range(6000):
                if pid_file.exists() and pid_file.read_text():
                    break
                await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
    assert not scope.cancelled_caught
    assert_reaped(plugin_pid(plugin))
