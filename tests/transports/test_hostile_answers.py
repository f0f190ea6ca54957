"""Answers no honest server sends: gzip bombs, two responses for one request, garbage.

Every engine meets the same raw socket server. Whatever it sends, the client
fails fast with an ``asyncpod.AsyncpodError`` (a ``ProtocolError`` or a
``TransportError``), never a foreign exception, never a hang, and never takes
bytes it did not ask for as the answer to a later request.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import zlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import anyio
import pytest

import asyncpod
from asyncpod import AsyncpodError, ProtocolError, ResponseTooLargeError
from tests.servers.raw import Reply, Seen, answer, chunked, raw_server
from tests.servers.scripted import DISCOVERY

pytestmark = pytest.mark.anyio

FLAVOURS = [("aiohttp", "asyncio"), ("anyio", "asyncio"), ("anyio", "trio")]
# Decoded size of the bomb, and what one gzip member of it holds.
BOMB_SIZE = 1 << 30
MEMBER_SIZE = 16 << 20


@pytest.fixture(params=FLAVOURS, ids=[f"{e}-{b}" for e, b in FLAVOURS])
def flavour(request: pytest.FixtureRequest) -> tuple[str, str]:
    """An engine and the event loop it runs on."""
    return tuple(request.param)  # type: ignore[return-value]


@pytest.fixture
def anyio_backend(flavour: tuple[str, str]) -> str:
    """The event loop of the flavour."""
    return flavour[1]


@pytest.fixture
def engine(flavour: tuple[str, str]) -> str:
    """The engine of the flavour."""
    return flavour[0]


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzip-compressed to about 1 MB (concatenated members, RFC 1952 2.2)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    member = compressor.compress(bytes(MEMBER_SIZE)) + compressor.flush()
    return member * (BOMB_SIZE // MEMBER_SIZE)


def pieces(data: bytes, size: int = 1 << 16) -> Iterator[bytes]:
    """``data`` in slices of ``size`` bytes."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def client(url: str, engine: str, **kwargs: object) -> asyncpod.Client:
    """A client of the raw server on ``engine``."""
    return asyncpod.Client(asyncpod.Config.proxy(url), engine=engine, **kwargs)  # type: ignore[arg-type]


def serve_discovery(seen: Seen) -> Reply | None:
    """Discovery answers, so that ``watch()`` can resolve ``configmaps``."""
    path = urlsplit(seen.target).path
    if path in DISCOVERY:
        return Reply([answer(json.dumps(DISCOVERY[path]).encode())])
    return None


async def drain_watch(k8s: asyncpod.Client) -> None:
    """Read a watch of configmaps until it ends."""
    async with k8s.watch("configmaps") as watch:
        async for _ in watch:
            pass


async def fetch(k8s: asyncpod.Client, path: str, *, stream: bool) -> bytes:
    """GET ``path`` whole, or as a stream read to its end."""
    if not stream:
        return (await k8s.request("GET", path)).content
    async with k8s.stream("GET", path) as response:
        return await response.aread()


# gzip bombs


def bomb_rule(seen: Seen) -> Reply:
    """The bomb as a whole answer, or as a watch stream."""
    found = serve_discovery(seen)
    if found is not None:
        return found
    if "watch=" in seen.target:
        # A watch that never ends: only the client can stop reading it.
        stream = chunked(pieces(gzip_bomb()), Content_Encoding="gzip")
        return Reply(list(stream)[:-1], "hold")
    return Reply([answer(gzip_bomb(), Content_Encoding="gzip")], "close")


@pytest.mark.parametrize("limit", [1 << 20, None], ids=["1MiB", "default"])
async def test_gzip_bomb_answer_is_refused_at_the_limit(engine: str, limit: int | None) -> None:
    """A 1 MB gzip answer that inflates to 1 GiB fails with ResponseTooLargeError within seconds."""
    kwargs = {} if limit is None else {"max_response_size": limit}
    with raw_server(bomb_rule) as server:
        async with client(server.url, engine, retries=0, **kwargs) as k8s:
            began = time.monotonic()
            with anyio.fail_after(20), pytest.raises(ResponseTooLargeError):
                await k8s.request("GET", "/api/v1/namespaces/default/configmaps")
            assert time.monotonic() - began < 10


async def test_gzip_bomb_watch_fails_at_once(engine: str) -> None:
    """A watch stream of gzip-compressed zeros ends with ProtocolError at the line limit."""
    with raw_server(bomb_rule) as server:
        async with client(server.url, engine, retries=0) as k8s:
            began = time.monotonic()
            with anyio.fail_after(20), pytest.raises(ProtocolError):
                await drain_watch(k8s)
            assert time.monotonic() - began < 10


async def test_gzip_bomb_stream_is_decoded_in_bounded_pieces(engine: str) -> None:
    """A streamed gzip bomb arrives decoded, at most 1 MiB per piece, whatever the ratio."""
    read = 0
    largest = 0
    with raw_server(bomb_rule) as server:
        async with client(server.url, engine, retries=0) as k8s:
            with anyio.fail_after(20):
                async with (
                    k8s.stream("GET", "/bomb", params={"watch": "1"}) as response,
                    contextlib.aclosing(response.aiter_bytes()) as body,
                ):
                    async for piece in body:
                        assert piece.count(0) == len(piece)
                        largest = max(largest, len(piece))
                        read += len(piece)
                        if read > 64 << 20:
                            break
    assert read > 64 << 20
    assert largest <= 1 << 20


async def test_small_gzip_answer_is_decoded(engine: str) -> None:
    """An honest gzip answer (and a gzip watch stream) decodes to the JSON the server meant."""
    body = json.dumps({"kind": "ConfigMapList", "items": [{"data": {"k": "v" * 1000}}]}).encode()
    line = json.dumps({"type": "ADDED", "object": {"kind": "ConfigMap", "metadata": {}}})
    stream = (line.encode() + b"\n") * 3

    def rule(seen: Seen) -> Reply:
        if "watch=" in seen.target:
            compressed = zlib.compress(stream, wbits=31)
            return Reply(chunked(pieces(compressed, 7), Content_Encoding="gzip"))
        return Reply([answer(zlib.compress(body, wbits=31), Content_Encoding="gzip")])

    with raw_server(rule) as server:
        async with client(server.url, engine, retries=0) as k8s:
            response = await k8s.request("GET", "/list")
            assert response.json() == json.loads(body)
            async with k8s.stream("GET", "/list", params={"watch": "1"}) as streamed:
                assert await streamed.aread() == stream


async def test_corrupt_gzip_is_a_protocol_error(engine: str) -> None:
    """A body marked gzip that is not gzip fails with ProtocolError."""

    def rule(seen: Seen) -> Reply:
        return Reply([answer(b"this is not gzip data at all", Content_Encoding="gzip")])

    with raw_server(rule) as server:
        async with client(server.url, engine, retries=0) as k8s:
            with pytest.raises(ProtocolError):
                await k8s.request("GET", "/corrupt")


# a second response nobody asked for


FIRST = answer(b"", Content_Length="0")
SECOND = answer(b'{"kind":"Second"}')
NEXT = answer(b'{"kind":"Next"}')


def desync_rule(first: bytes) -> object:
    """Answer the first request with ``first``; every later one with its own answer."""

    def rule(seen: Seen) -> Reply:
        if seen.number == 0:
            return Reply([first])
        return Reply([NEXT])

    return rule


async def test_second_response_in_one_write_is_not_an_answer(engine: str) -> None:
    """Two responses in one write: the first is the answer, and the next call gets its own."""
    with raw_server(desync_rule(FIRST + SECOND)) as server:  # type: ignore[arg-type]
        async with client(server.url, engine, retries=0) as k8s:
            first = await k8s.request("GET", "/first")
            assert first.content == b""
            assert first.headers["Content-Length"] == "0"
            following = await k8s.request("GET", "/next")
            assert following.json() == {"kind": "Next"}
        # The connection that carried the unasked bytes was not used again.
        assert [s.connection for s in server.seen] == [0, 1]


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 17\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0, 17\r\n\r\n",
    ],
    ids=["two-fields", "one-list"],
)
async def test_conflicting_content_length_is_a_protocol_error(engine: str, head: bytes) -> None:
    """Content-Length 0 and 17: ProtocolError; the next call opens a new connection."""
    with raw_server(desync_rule(head + b'{"kind":"Second"}')) as server:  # type: ignore[arg-type]
        async with client(server.url, engine, retries=0) as k8s:
            with pytest.raises(ProtocolError):
                await k8s.request("GET", "/first")
            following = await k8s.request("GET", "/next")
            assert following.json() == {"kind": "Next"}
        assert [s.connection for s in server.seen] == [0, 1]


# garbage and drops


TRUNCATED_GZIP = zlib.compress(os.urandom(4000), wbits=31)[:2000]
HOSTILE = {
    "garbage": Reply([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"], "close"),
    "garbage-then-reset": Reply([b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"], "reset"),
    "head-cut": Reply([b"HTTP/1.1 200 OK\r\nContent-Le"], "close"),
    "body-cut": Reply([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"], "reset"),
    "bad-chunk": Reply([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], "close"),
    "bad-status": Reply([b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"], "close"),
    "nul-header": Reply([b"HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 0\r\n\r\n"], "close"),
    "unknown-coding": Reply([answer(b"{}", Content_Encoding="br")], "close"),
    "corrupt-gzip": Reply([answer(b"not gzip data", Content_Encoding="gzip")], "close"),
    "truncated-gzip": Reply([answer(TRUNCATED_GZIP, Content_Encoding="gzip")], "close"),
    "dropped": Reply((), "reset"),
    "closed": Reply((), "close"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_every_hostile_answer_is_an_asyncpod_error(
    engine: str, name: str, stream: bool
) -> None:
    """Garbage, cut answers, a drop after the request was read: an AsyncpodError, never another."""
    reply = HOSTILE[name]
    with raw_server(lambda seen: Reply(list(reply.chunks), reply.after)) as server:
        async with client(server.url, engine, retries=0) as k8s:
            with anyio.fail_after(10), pytest.raises(AsyncpodError):
                await fetch(k8s, "/hostile", stream=stream)
