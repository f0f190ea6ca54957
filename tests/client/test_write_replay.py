"""A write that reached the server is never sent again; a read gets exactly ``1 + retries`` tries.

The server reads each request in full and then drops the connection (reset
or close), on a fresh connection or on a keep-alive connection reused after a
good answer. It counts the copies it received: a POST, PUT, PATCH or DELETE
arrives once and the client raises ``TransportError(sent=True)``; a GET arrives
``1 + retries`` times, as the client's ``RetryPolicy`` is the only retry loop
(aiohttp's own hidden re-send of "idempotent" methods is off).
"""

from __future__ import annotations

import pytest

import asyncpod
from asyncpod import TransportError
from tests.servers.raw import Reply, Seen, answer, raw_server

pytestmark = pytest.mark.anyio

FLAVOURS = [("aiohttp", "asyncio"), ("anyio", "asyncio"), ("anyio", "trio")]
WRITES = ["POST", "PUT", "PATCH", "DELETE"]
TARGET = "/api/v1/namespaces/default/configmaps/victim"


@pytest.fixture(params=FLAVOURS, ids=[f"{e}-{b}" for e, b in FLAVOURS])
def flavour(request: pytest.FixtureRequest) -> tuple[str, str]:
    """An engine and the event loop it runs on."""
    return tuple(request.param)  # type: ignore[return-value]


@pytest.fixture
def anyio_backend(flavour: tuple[str, str]) -> str:
    """The event loop of the flavour."""
    return flavour[1]


def dropping(after: str, reused: bool) -> object:
    """A rule: answer only the very first request when ``reused``, drop every other one."""

    def rule(seen: Seen) -> Reply:
        if reused and seen.number == 0:
            return Reply([answer()], "keep")
        return Reply((), after)  # type: ignore[arg-type]

    return rule


async def send(
    url: str, engine: str, method: str, retries: int, *, warm_up: bool
) -> TransportError:
    """Send ``method`` (after a good GET when ``warm_up``) and return the error it raised."""
    client = asyncpod.Client(asyncpod.Config.proxy(url), engine=engine, retries=retries)  # type: ignore[arg-type]
    async with client:
        if warm_up:
            assert (await client.request("GET", "/warm-up")).status == 200
        content = b'{"kind":"ConfigMap"}' if method in ("POST", "PUT", "PATCH") else None
        with pytest.raises(TransportError) as caught:
            await client.request(method, TARGET, content=content)
    return caught.value


@pytest.mark.parametrize("after", ["reset", "close"])
@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
@pytest.mark.parametrize("method", WRITES)
async def test_write_arrives_once(
    flavour: tuple[str, str], method: str, reused: bool, after: str
) -> None:
    """A write whose connection dropped after the server read it arrives once; sent is true."""
    with raw_server(dropping(after, reused)) as server:  # type: ignore[arg-type]
        error = await send(server.url, flavour[0], method, 2, warm_up=reused)
        assert server.methods(TARGET) == [method]
    assert error.sent
    assert not isinstance(error, asyncpod.ProtocolError)


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("after", ["reset", "close"])
@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
async def test_get_arrives_one_plus_retries_times(
    flavour: tuple[str, str], reused: bool, after: str, retries: int
) -> None:
    """A GET whose connection always drops is sent exactly ``1 + retries`` times."""
    with raw_server(dropping(after, reused)) as server:  # type: ignore[arg-type]
        error = await send(server.url, flavour[0], "GET", retries, warm_up=reused)
        assert server.methods(TARGET) == ["GET"] * (1 + retries)
    assert error.sent
