"""``TokenFile``: the rotating service-account token, driven by a test clock.

The file is real (a kubelet-style folder in tmp_path, rotated by symlink
swap); only time is simulated so that the 1 s / 60 s / exp rules are exact.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
from pathlib import Path

import anyio
import pytest
import trustme

from asyncpod import Client, Config, ConfigError, TokenFile, TokenReloadEvent
from asyncpod._token import jwt_expiry
from tests.sa_folder import make_sa_folder, rotate
from tests.token_server import TokenServer

pytestmark = pytest.mark.anyio


class Clock:
    """A settable clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def jwt(claims: dict[str, object]) -> str:
    """An unsigned JWT with ``claims`` (the client never verifies signatures)."""

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


@pytest.fixture
def clock() -> Clock:
    """The monotonic clock of the token file."""
    return Clock()


@pytest.fixture
def wall() -> Clock:
    """The wall clock of the token file."""
    return Clock(1_800_000_000.0)


@pytest.fixture
def sa(tmp_path: Path) -> Path:
    """A kubelet-style folder holding token "one"."""
    return make_sa_folder(tmp_path / "sa", {"token": b"sekret-one\n", "ca.crt": b"ca"})


def make(sa: Path, clock: Clock, wall: Clock) -> TokenFile:
    """A TokenFile on the folder's token with the test clocks."""
    return TokenFile(sa / "token", clock=clock, wall_clock=wall)


async def test_reads_once_and_caches(sa: Path, clock: Clock, wall: Clock) -> None:
    """The header is served from memory between checks."""
    auth = make(sa, clock, wall)
    assert await auth.authorization() == "Bearer sekret-one"
    for _ in range(100):
        assert await auth.authorization() == "Bearer sekret-one"
    assert auth.reads == 1


async def test_rotation_seen_within_a_second(sa: Path, clock: Clock, wall: Clock) -> None:
    """A symlink swap is picked up at the next once-a-second check."""
    auth = make(sa, clock, wall)
    rotate(sa, {"token": b"two", "ca.crt": b"ca"})
    clock.now += 0.5
    assert await auth.authorization() == "Bearer sekret-one"
    clock.now += 0.6
    assert await auth.authorization() == "Bearer two"
    assert auth.reads == 2


async def test_unchanged_file_is_not_reread(sa: Path, clock: Clock, wall: Clock) -> None:
    """Checks stat the file; the content is read only when its identity changed."""
    auth = make(sa, clock, wall)
    for _ in range(30):
        clock.now += 1.5
        await auth.authorization()
    assert auth.reads == 1


async def test_reread_every_60_seconds(sa: Path, clock: Clock, wall: Clock) -> None:
    """The file is read at least every 60 s even when nothing seems to change."""
    auth = make(sa, clock, wall)
    clock.now += 59.0
    await auth.authorization()
    assert auth.reads == 1
    clock.now += 1.5
    await auth.authorization()
    assert auth.reads == 2


async def test_reread_before_jwt_exp(tmp_path: Path, clock: Clock, wall: Clock) -> None:
    """A JWT is re-read a little before its exp, sooner than 60 s if need be."""
    sa = make_sa_folder(tmp_path / "sa", {"token": jwt({"exp": wall.now + 20}).encode()})
    auth = make(sa, clock, wall)
    clock.now += 10.0
    await auth.authorization()
    assert auth.reads == 1
    clock.now += 6.0  # 4 s before exp
    await auth.authorization()
    assert auth.reads == 2


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (jwt({"exp": 1700000000}), 1700000000.0),
        (jwt({"exp": 1.5}), 1.5),
        (jwt({"sub": "x"}), None),
        (jwt({"exp": "soon"}), None),
        (jwt({"exp": True}), None),
        ("opaque-token", None),
        ("a.b.c", None),
        ("a.!!!.c", None),
        (f"x.{base64.urlsafe_b64encode(b'[1]').decode()}.y", None),
    ],
)
def test_jwt_expiry_tolerates_anything(token: str, expected: float | None) -> None:
    """exp is read from JWT payloads without verifying; anything else gives None."""
    assert jwt_expiry(token) == expected


async def test_401_rereads_once_for_a_burst(sa: Path, clock: Clock, wall: Clock) -> None:
    """32 concurrent 401s for the same old token cause one read, and all retry."""
    auth = make(sa, clock, wall)
    sent = await auth.authorization()
    rotate(sa, {"token": b"two"})
    answers: list[bool] = []

    async def rejected() -> None:
        answers.append(await auth.unauthorized(sent))

    async with anyio.create_task_group() as tg:
        for _ in range(32):
            tg.start_soon(rejected)
    assert answers == [True] * 32
    assert auth.reads == 2
    assert await auth.authorization() == "Bearer two"


async def test_401_with_an_unchanged_file_is_not_retried(
    sa: Path, clock: Clock, wall: Clock
) -> None:
    """A 401 whose token is still in the file re-reads once and does not ask for a retry."""
    auth = make(sa, clock, wall)
    sent = await auth.authorization()
    assert not await auth.unauthorized(sent)
    assert not await auth.unauthorized(sent)
    assert auth.reads == 2


async def test_401_for_an_old_token_retries_without_reading(
    sa: Path, clock: Clock, wall: Clock
) -> None:
    """A 401 for a token already replaced just retries with the current one."""
    auth = make(sa, clock, wall)
    rotate(sa, {"token": b"two"})
    clock.now += 1.1
    assert await auth.authorization() == "Bearer two"
    assert await auth.unauthorized("Bearer sekret-one")
    assert auth.reads == 2


@pytest.mark.parametrize("broken", ["missing", "empty"])
async def test_bad_file_keeps_last_token_and_warns(
    sa: Path, clock: Clock, wall: Clock, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    """A missing or empty file keeps the last good token, with a warning without it."""
    auth = make(sa, clock, wall)
    if broken == "missing":
        (sa / "token").unlink()
    else:
        rotate(sa, {"token": b""})
    with caplog.at_level(logging.DEBUG, logger="asyncpod"):
        clock.now += 1.1
        assert await auth.authorization() == "Bearer sekret-one"
        clock.now += 61
        assert await auth.authorization() == "Bearer sekret-one"
        assert not await auth.unauthorized("Bearer sekret-one")
    assert str(sa / "token") in caplog.text
    assert "keeping the previous token" in caplog.text
    assert "sekret" not in caplog.text
    # Once the file is back, the next check picks it up.
    rotate(sa, {"token": b"three"})
    if broken == "missing":
        (sa / "token").symlink_to("..data/token")
    clock.now += 1.1
    assert await auth.authorization() == "Bearer three"


def test_unreadable_at_start_is_a_config_error(tmp_path: Path) -> None:
    """A missing or empty file at start is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match=str(tmp_path / "nope")):
        TokenFile(tmp_path / "nope")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        TokenFile(tmp_path / "empty")


def test_repr_hides_the_token(sa: Path) -> None:
    """repr and str show the path only."""
    auth = TokenFile(sa / "token")
    assert "sekret" not in repr(auth)
    assert "sekret" not in str(auth)


async def test_successive_rotations_each_reread_on_401(sa: Path, clock: Clock, wall: Clock) -> None:
    """A 401 re-reads again when the file changed since the previous 401-driven read."""
    auth = make(sa, clock, wall)
    rotate(sa, {"token": b"two"})
    assert await auth.unauthorized("Bearer sekret-one")
    clock.now += 0.3
    rotate(sa, {"token": b"three"})
    assert await auth.unauthorized("Bearer two")
    assert await auth.authorization() == "Bearer three"


async def test_401_after_an_unchanged_read_sees_a_later_rotation(
    sa: Path, clock: Clock, wall: Clock
) -> None:
    """A 401 that found the file unchanged does not hide a rotation right after it."""
    auth = make(sa, clock, wall)
    assert not await auth.unauthorized("Bearer sekret-one")
    clock.now += 0.2
    rotate(sa, {"token": b"two"})
    assert await auth.unauthorized("Bearer sekret-one")
    assert await auth.authorization() == "Bearer two"


async def test_broken_file_warns_once(
    sa: Path, clock: Clock, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that stays broken is warned about once, not at every check."""
    auth = make(sa, clock, wall)
    (sa / "token").unlink()
    with caplog.at_level(logging.WARNING, logger="asyncpod"):
        for _ in range(10):
            clock.now += 1.1
            assert await auth.authorization() == "Bearer sekret-one"
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_every_reread_is_reported_with_its_reason(
    tmp_path: Path, clock: Clock, wall: Clock
) -> None:
    """on_event gets one TokenReloadEvent per read but the first, saying why; never the token."""
    secret = jwt({"exp": wall.now + 30})
    sa = make_sa_folder(tmp_path / "sa", {"token": secret.encode()})
    events: list[TokenReloadEvent] = []
    auth = TokenFile(sa / "token", clock=clock, wall_clock=wall, on_event=events.append)
    path = str(sa / "token")
    clock.now += 26.0  # 4 s before exp
    await auth.authorization()
    assert events == [TokenReloadEvent(path, "expiry", changed=False)]
    rotate(sa, {"token": b"opaque-two"})
    clock.now += 1.0
    await auth.authorization()
    assert events[-1] == TokenReloadEvent(path, "changed", changed=True)
    clock.now += 60.0
    await auth.authorization()
    assert events[-1] == TokenReloadEvent(path, "periodic", changed=False)
    assert await auth.unauthorized("Bearer opaque-two") is False
    assert events[-1] == TokenReloadEvent(path, "401", changed=False)
    rotate(sa, {"token": b""})
    clock.now += 1.0
    await auth.authorization()
    assert events[-1] == TokenReloadEvent(path, "changed", changed=False, error="is empty")
    rotate(sa, {"token": b"opaque-three"})
    clock.now += 1.0
    assert await auth.authorization() == "Bearer opaque-three"
    assert events[-1] == TokenReloadEvent(path, "retry", changed=True)
    assert len(events) == auth.reads - 1
    shown = repr(events)
    assert "opaque-" not in shown
    assert secret.rsplit(".", 1)[-1] not in shown


# Every open() and os.open() raises the "open" audit event (PEP 578) with the
# path: counting those for one file counts its reads by any code, ours or a
# library's, with no stand-in for the reader. A hook cannot be removed, so it
# only counts while a test names a path to watch.
_watched: dict[str, int] = {}


def _count_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _watched and args and isinstance(args[0], str | bytes | Path):
        path = os.fsdecode(args[0])  # type: ignore[arg-type]
        if path in _watched:
            _watched[path] += 1


sys.addaudithook(_count_opens)


async def test_token_file_is_read_once_before_the_first_request(tmp_path: Path) -> None:
    """From Config.in_cluster to the first answer, the token file is opened exactly once."""
    ca = trustme.CA()
    with TokenServer(ca).running() as server:
        server.allow("sekret-one")
        root = make_sa_folder(
            tmp_path / "sa", {"token": b"sekret-one\n", "ca.crt": ca.cert_pem.bytes()}
        )
        token = str(root / "token")
        _watched[token] = 0
        try:
            config = Config.in_cluster(
                root=root,
                environ={
                    "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                    "KUBERNETES_SERVICE_PORT": str(server.port),
                },
            )
            async with Client(config, retries=0) as k8s:
                await k8s.request("GET", "/api")
                opened = _watched[token]
        finally:
            del _watched[token]
    assert opened == 1
    assert server.log == [("/api", "sekret-one", 200)]
