"""Retries, deadlines, connection hygiene and events, against a real server that misbehaves."""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import warnings

import anyio
import pytest

import asyncpod
from asyncpod import (
    Config,
    RequestEvent,
    RequestTimeoutError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    TooManyRequestsError,
    TransportError,
)
from tests.helpers.clients import ClientFactory
from tests.servers.fault import (
    FaultServer,
    drop,
    hang,
    respond,
    slow,
    status_error,
    wait_until,
)

pytestmark = pytest.mark.anyio


async def test_429_with_retry_after_waits_and_retries(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """A 429 with Retry-After: 1 is retried after about a second, for a POST too."""
    server.next(status_error(429, retry_after="1"))
    async with make_client(server) as k8s:
        start = anyio.current_time()
        response = await k8s.request("POST", "/api/v1/namespaces/default/pods", json={})
        elapsed = anyio.current_time() - start
    assert response.status == 200
    # The upper bound only rules out a second wait; a busy CI machine is slow.
    assert 0.9 <= elapsed < 5.0
    assert len(server.seen("POST")) == 2


async def test_503_on_get_retried(server: FaultServer, make_client: ClientFactory) -> None:
    """A GET answered 503 without Retry-After is retried and succeeds."""
    server.next(status_error(503), times=2)
    async with make_client(server) as k8s:
        assert (await k8s.get_json("/api"))["kind"] == "Status"
    assert len(server.seen("GET", "/api")) == 3


async def test_503_on_post_not_retried(server: FaultServer, make_client: ClientFactory) -> None:
    """A POST answered 503 without Retry-After may have been applied: it is raised."""
    server.next(status_error(503))
    async with make_client(server) as k8s:
        with pytest.raises(ServerError) as caught:
            await k8s.request("POST", "/api/v1/namespaces/default/configmaps", json={})
    assert caught.value.status == 503
    assert len(server.seen("POST")) == 1


async def test_retries_exhausted_raise_the_last_answer(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """After ``retries`` retries the last error answer is raised."""
    server.default = status_error(503)
    async with make_client(server, retries=RetryPolicy(retries=2, backoff_base=0.01)) as k8s:
        with pytest.raises(ServerError):
            await k8s.get_json("/api")
    assert len(server.seen("GET")) == 3


async def test_dropped_post_not_replayed(server: FaultServer, make_client: ClientFactory) -> None:
    """A POST that reached the server and lost its connection is sent once only."""
    server.next(drop)
    async with make_client(server) as k8s:
        with pytest.raises(TransportError) as caught:
            await k8s.request("POST", "/api/v1/namespaces/default/pods", json={"kind": "Pod"})
    assert caught.value.sent
    assert len(server.seen("POST")) == 1


async def test_dropped_get_retried(server: FaultServer, make_client: ClientFactory) -> None:
    """A GET that lost its connection is sent again and succeeds."""
    server.next(drop, times=2)
    async with make_client(server) as k8s:
        await k8s.get_json("/api")
    assert len(server.seen("GET")) == 3


async def test_post_retried_when_connect_failed(make_client: ClientFactory) -> None:
    """A POST whose connect was refused is retried once the server listens."""
    server = FaultServer()
    server.reserve_port()
    try:
        server.start_later(0.2)
        async with make_client(server) as k8s:
            response = await k8s.request("POST", "/api/v1/namespaces/default/pods", json={})
        assert response.status == 200
        assert len(server.seen("POST")) == 1
    finally:
        server.stop()
        server.shutdown()


async def test_connect_refused_gives_up_clearly(make_client: ClientFactory) -> None:
    """With nothing listening the call fails with 'could not connect' after its retries."""
    server = FaultServer()
    server.reserve_port()
    policy = RetryPolicy(retries=2, backoff_base=0.01)
    async with make_client(server, retries=policy) as k8s:
        with pytest.raises(TransportError, match="connect") as caught:
            await k8s.get_json("/api")
    assert not caught.value.sent
    server.shutdown()


async def test_server_restart_during_5000_gets(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """Killing and restarting the server under 5,000 GETs at 64 concurrent: none hangs."""
    total, concurrency = 5000, 64
    outcomes: list[str] = []
    failures: list[BaseException] = []
    done = 0
    policy = RetryPolicy(backoff_base=0.05, backoff_max=1.0, retries=8)

    async with make_client(server, retries=policy, timeout=10.0) as k8s:

        async def worker(count: int) -> None:
            nonlocal done
            for _ in range(count):
                try:
                    await k8s.request("GET", "/api")
                    outcomes.append("ok")
                except TransportError as exc:
                    failures.append(exc)
                    outcomes.append("failed")
                done += 1

        async def killer() -> None:
            await wait_until(lambda: done >= 1500, within=30)
            await anyio.to_thread.run_sync(server.stop)
            await anyio.sleep(0.3)
            await anyio.to_thread.run_sync(server.start)

        start = anyio.current_time()
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(killer)
                for _ in range(concurrency):
                    tg.start_soon(worker, total // concurrency)
                tg.start_soon(worker, total % concurrency)
        elapsed = anyio.current_time() - start

    assert len(outcomes) == total
    for exc in failures:
        assert str(exc)  # a clear message, never an empty one
    assert outcomes.count("ok") >= total - 10, failures[:3]
    assert server.connections > concurrency  # the restart forced new connections
    print(f"5000 GETs across a restart: {elapsed:.2f} s, {len(failures)} failed")


async def test_cancelling_200_requests_leaves_no_connection(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """200 cancelled in-flight requests leave no open connection and no ResourceWarning."""
    server.default = hang
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        async with make_client(server, max_connections=200) as k8s:
            async with anyio.create_task_group() as tg:
                for _ in range(200):
                    tg.start_soon(k8s.get_json, "/api")
                assert await wait_until(lambda: len(server.requests) == 200)
                tg.cancel_scope.cancel()
            assert await wait_until(lambda: server.open_connections == 0, within=2)
            # The client still works after the cancellations.
            server.default = respond()
            await k8s.get_json("/api")
        # Anything left unclosed warns when collected: collect now, inside the block.
        gc.collect()


async def test_pool_is_bounded(server: FaultServer, make_client: ClientFactory) -> None:
    """50 concurrent calls with max_connections=4 never open more than 4 connections."""
    server.default = slow(0.02)
    async with make_client(server, max_connections=4) as k8s, anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(k8s.get_json, "/api")
    assert server.max_open_connections <= 4
    assert len(server.requests) == 50


async def test_one_pool_per_client(server: FaultServer, make_client: ClientFactory) -> None:
    """Sequential calls reuse one keep-alive connection: no hidden extra sessions."""
    async with make_client(server) as k8s:
        for _ in range(20):
            await k8s.get_json("/api")
    assert server.connections == 1


async def test_idle_keepalive_closed_by_server_is_replaced(
    make_client: ClientFactory,
) -> None:
    """A keep-alive connection the server closed while idle is replaced; the POST succeeds once."""
    with FaultServer(idle_close=0.1) as server:
        async with make_client(server, retries=0) as k8s:
            await k8s.get_json("/api")
            await anyio.sleep(0.3)
            response = await k8s.request("POST", "/api/v1/namespaces/default/pods", json={})
            assert response.status == 200
        assert server.connections == 2
        assert len(server.seen("POST")) == 1


async def test_timeout_when_server_never_answers(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """A server that never answers gives RequestTimeoutError at the client's timeout."""
    server.default = hang
    async with make_client(server, timeout=0.3) as k8s:
        start = anyio.current_time()
        with pytest.raises(RequestTimeoutError, match=r"0\.3 s") as caught:
            await k8s.get_json("/api")
        elapsed = anyio.current_time() - start
    assert isinstance(caught.value, TimeoutError)
    assert 0.25 <= elapsed < 4.0


async def test_stream_head_timeout(server: FaultServer, make_client: ClientFactory) -> None:
    """A stream whose head never comes times out too."""
    server.default = hang
    async with make_client(server, timeout=0.2) as k8s:
        with pytest.raises(RequestTimeoutError):
            async with k8s.stream("GET", "/api/v1/pods", params={"watch": "1"}):
                pass


async def test_retry_never_sleeps_past_the_callers_deadline(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """A Retry-After longer than the caller's deadline raises the 429 at once."""
    server.next(status_error(429, retry_after="5"))
    async with make_client(server) as k8s:
        start = anyio.current_time()
        with anyio.fail_after(3), pytest.raises(TooManyRequestsError) as caught:
            await k8s.get_json("/api")
        assert anyio.current_time() - start < 2.5
    assert caught.value.retry_after == 5


async def test_retries_stay_inside_the_client_timeout(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """A server failing for ever costs at most the client's timeout."""
    server.default = status_error(503)
    policy = RetryPolicy(retries=100, backoff_base=0.05, backoff_max=0.1)
    async with make_client(server, timeout=0.5, retries=policy) as k8s:
        start = anyio.current_time()
        with pytest.raises((ServerError, RequestTimeoutError)):
            await k8s.get_json("/api")
        # Far below the 100 retries' 10 s, with room for a busy machine.
        assert anyio.current_time() - start < 3.0


async def test_events_and_logs(
    server: FaultServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A retried call emits RequestEvent per attempt, a RetryEvent, and an INFO log line."""
    events: list[asyncpod.Event] = []
    server.next(status_error(503))
    caplog.set_level(logging.INFO, logger="asyncpod")
    async with make_client(server, on_event=events.append) as k8s:
        await k8s.get_json("/api", params={"limit": 1})
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["RequestEvent", "RetryEvent", "RequestEvent"]
    first, retry, second = events
    assert isinstance(first, RequestEvent)
    assert (first.method, first.path, first.status) == ("GET", "/api", 503)
    assert first.elapsed >= 0
    assert isinstance(retry, RetryEvent)
    assert (retry.reason, retry.attempt) == ("HTTP 503", 1)
    assert isinstance(second, RequestEvent)
    assert second.status == 200
    [record] = [r for r in caplog.records if r.name == "asyncpod"]
    assert record.levelno == logging.INFO
    assert "retrying GET /api" in record.getMessage()
    assert "HTTP 503" in record.getMessage()


async def test_failing_event_hook_never_breaks_a_call(
    server: FaultServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_event callback that raises is logged and the call still succeeds."""

    def broken(event: asyncpod.Event) -> None:
        raise RuntimeError("metrics backend down")

    async with make_client(server, on_event=broken) as k8s:
        await k8s.get_json("/api")
    assert "on_event callback failed" in caplog.text


async def test_transport_error_event(make_client: ClientFactory) -> None:
    """A failed exchange emits a RequestEvent without status and with the error's class."""
    server = FaultServer()
    server.reserve_port()
    events: list[asyncpod.Event] = []
    async with make_client(server, retries=0, on_event=events.append) as k8s:
        with pytest.raises(TransportError):
            await k8s.get_json("/api")
    [event] = events
    assert isinstance(event, RequestEvent)
    assert event.status is None
    assert event.error == "TransportError"
    server.shutdown()


async def test_rate_limit_paces_calls(server: FaultServer, make_client: ClientFactory) -> None:
    """rate_limit=(20, 2): 10 calls take at least 0.4 s."""
    async with make_client(server, rate_limit=(20, 2)) as k8s:
        start = anyio.current_time()
        for _ in range(10):
            await k8s.get_json("/api")
        assert anyio.current_time() - start >= 0.35


async def test_no_rate_limit_by_default(server: FaultServer, make_client: ClientFactory) -> None:
    """Without rate_limit, 50 calls are not paced."""
    async with make_client(server) as k8s:
        start = anyio.current_time()
        for _ in range(50):
            await k8s.get_json("/api")
        # A pace of even 10 per second would take 5 s.
        assert anyio.current_time() - start < 5.0


async def test_connect_timeout(make_client: ClientFactory) -> None:
    """A server whose accept queue is full gives RequestTimeoutError at connect_timeout, unsent."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # Fill the accept queue: the kernel then drops further SYNs.
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            config = Config.proxy(f"http://127.0.0.1:{port}")
            async with make_client(config, connect_timeout=0.2, retries=0, timeout=5) as k8s:
                start = anyio.current_time()
                with pytest.raises(RequestTimeoutError) as caught:
                    await k8s.request("POST", "/api/v1/namespaces/default/pods", json={})
                assert anyio.current_time() - start < 4.0
            assert not caught.value.sent
        finally:
            for filler in fillers:
                filler.close()


async def test_closing_the_client_stops_retries(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """A call waiting to retry ends at once when the client is closed."""
    server.default = status_error(503)
    policy = RetryPolicy(retries=10, backoff_base=0.2, jitter=0.0)
    k8s = make_client(server, retries=policy)
    await k8s.__aenter__()
    caught: list[BaseException] = []

    async def call() -> None:
        try:
            await k8s.get_json("/api")
        except TransportError as exc:
            caught.append(exc)

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        assert await wait_until(lambda: len(server.requests) == 1)
        await k8s.aclose()
    assert anyio.current_time() - start < 5.0
    [error] = caught
    assert "closed" in str(error)
    assert len(server.requests) == 1
