"""The sans-IO resume logic of a watch: tables, a fake clock, and a model of a server."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asyncpod import (
    ForbiddenError,
    GoneError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TooManyRequestsError,
    TransportError,
)
from asyncpod._watch_state import (
    INITIAL_EVENTS_END,
    MIN_WATCH_DURATION,
    WATCH_BACKOFF_MAX,
    Reconnect,
    WatchEvent,
    WatchState,
    watch_policy,
)

# No jitter: each delay is the ceiling of its backoff step.
POLICY = watch_policy(RetryPolicy(random=lambda: 0.0))


def obj(name: str, rv: int) -> dict[str, Any]:
    """A ConfigMap named ``name`` at resourceVersion ``rv``."""
    meta = {"name": name, "namespace": "ns", "resourceVersion": str(rv)}
    return {"kind": "ConfigMap", "metadata": meta}


def ev(kind: str, name: str, rv: int) -> WatchEvent:
    """An event of ``obj(name, rv)``."""
    return WatchEvent(kind, obj(name, rv))


def bookmark(rv: int, *, end: bool = False) -> WatchEvent:
    """A BOOKMARK at ``rv``; with ``end`` the one that ends the initial events."""
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return WatchEvent("BOOKMARK", {"kind": "ConfigMap", "metadata": meta})


def state(rv: str | None = "10", **kwargs: Any) -> WatchState:
    """A state with the jitter-free policy; never gives up unless told."""
    kwargs.setdefault("max_failures", math.inf)
    return WatchState(rv, policy=kwargs.pop("policy", POLICY), **kwargs)


def feed(s: WatchState, events: list[WatchEvent]) -> list[tuple[str, str, str | None]]:
    """What the consumer sees for ``events``: (type, name, resourceVersion)."""
    seen: list[WatchEvent] = []
    for event in events:
        out = s.accept(event)
        if out is not None:
            seen.append(out)
        while s.backlog:
            seen.append(s.backlog.popleft())
    return [(e.type, e.object["metadata"].get("name", ""), e.resource_version) for e in seen]


def dropped() -> TransportError:
    """A connection that dropped after the request was sent."""
    return TransportError("connection reset", sent=True)


@pytest.mark.parametrize(
    ("events", "resume"),
    [
        ([], "10"),
        ([ev("ADDED", "a", 11), ev("MODIFIED", "a", 12)], "12"),
        ([ev("ADDED", "a", 11), bookmark(20)], "20"),
        ([ev("DELETED", "a", 13)], "13"),
        ([WatchEvent("MODIFIED", {"metadata": {}})], "10"),  # no version: the point stays
    ],
)
def test_resume_point_after_a_drop(events: list[WatchEvent], resume: str) -> None:
    """A drop resumes from the last resourceVersion seen, bookmarks included."""
    s = state()
    s.connected(0.0)
    feed(s, events)
    assert s.on_failure(dropped(), 100.0) is not None
    assert s.connect_params(100.0)["resourceVersion"] == resume


def test_bookmarks_are_hidden_unless_asked_for() -> None:
    """A bookmark moves the resume point; it is handed out only with bookmarks=True."""
    assert feed(state(), [bookmark(20)]) == []
    assert feed(state(bookmarks=True), [bookmark(20)]) == [("BOOKMARK", "", "20")]


def test_connect_params_spread_timeouts_and_respect_the_deadline() -> None:
    """timeoutSeconds is 300-600 s as client-go's, and never past timeout_seconds."""
    low = watch_policy(RetryPolicy(random=lambda: 0.0))
    high = watch_policy(RetryPolicy(random=lambda: 0.999))
    assert state(policy=low).connect_params(0.0)["timeoutSeconds"] == 300
    assert state(policy=high).connect_params(0.0)["timeoutSeconds"] == 599
    s = state(timeout_seconds=42.5)
    assert s.connect_params(0.0)["timeoutSeconds"] == 43
    assert s.connect_params(42.4)["timeoutSeconds"] == 1
    params = state().connect_params(0.0)
    assert params["watch"] == "true"
    assert params["allowWatchBookmarks"] == "true"


def test_error_events_raise_the_status_error() -> None:
    """An ERROR event raises the APIError its Status stands for; a 5xx resumes, a 410 does not."""
    s = state()
    status = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "etcd"}
    with pytest.raises(ServerError) as caught:
        s.accept(WatchEvent("ERROR", status))
    assert s.on_failure(caught.value, 0.0) == Reconnect(0.1, "HTTP 500", 1)
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    with pytest.raises(GoneError) as gone_error:
        s.accept(WatchEvent("ERROR", gone))
    with pytest.raises(GoneError):
        s.on_failure(gone_error.value, 0.0)


def test_errors_that_are_not_transient_are_raised() -> None:
    """A 403 or a 410 from the opening request is raised, not retried."""
    s = state()
    for error in (ForbiddenError(403, "Forbidden", "no", {}), GoneError(410, "Gone", "old", {})):
        with pytest.raises(type(error)):
            s.on_failure(error, 0.0)


def test_a_long_stream_that_ends_resumes_at_once() -> None:
    """The server's timeoutSeconds ran out: resume at once, and the failures are cleared."""
    s = state()
    s.connect_params(0.0)
    s.on_failure(dropped(), 0.0)
    s.on_failure(dropped(), 0.1)
    assert s.failures == 2
    s.connected(1.0)
    assert s.on_end(400.0) == Reconnect(0.0, "server timeout", 1)
    assert s.failures == 0
    assert s.reconnects == 3


def test_a_stream_that_ends_at_once_is_a_failure_with_a_floor() -> None:
    """Streams ending within a second back off ever longer, never sooner than a second apart."""
    s = state()
    delays = []
    now = 0.0
    for _ in range(10):
        s.connected(now)
        now += 0.01
        plan = s.on_end(now)
        assert plan is not None
        assert plan.reason == "stream ended early"
        delays.append(plan.delay)
        now += plan.delay
    assert all(d >= MIN_WATCH_DURATION - 0.01 - 1e-9 for d in delays)
    assert delays == sorted(delays)
    assert delays[-1] == WATCH_BACKOFF_MAX
    assert [s.failures, plan.attempt] == [10, 10]
    # So in the first three seconds of such a server, at most three connections.
    assert sum(1 for t in _starts(delays, 0.01) if t < 3.0) <= 3


def _starts(delays: list[float], lived: float) -> list[float]:
    starts, now = [], 0.0
    for delay in delays:
        starts.append(now)
        now += lived + delay
    return starts


def test_a_stream_that_drops_at_once_backs_off() -> None:
    """A stream dropped right after its first byte grows the backoff; bytes do not reset it."""
    s = state()
    s.connected(0.0)
    first = s.on_failure(dropped(), 0.05)
    s.connected(5.0)
    second = s.on_failure(dropped(), 5.05)
    assert first is not None
    assert second is not None
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.delay >= 0.95
    assert second.delay >= 0.95


def test_a_plain_watch_gives_up_after_max_failures() -> None:
    """More failures in a row than max_failures: the last error, saying it gave up."""
    s = state(max_failures=2)
    s.path = "/api/v1/configmaps"
    refused = TransportError("connection refused", sent=False)
    assert s.on_failure(refused, 0.0) == Reconnect(0.1, "connect failed", 1)
    assert s.on_failure(refused, 1.0) == Reconnect(0.2, "connect failed", 2)
    with pytest.raises(
        TransportError, match="watch of /api/v1/configmaps gave up after 3 attempts"
    ):
        s.on_failure(refused, 2.0)
    t = state(max_failures=0)
    t.connected(0.0)
    with pytest.raises(TransportError, match=r"ended the watch 0\.010 s after it opened"):
        t.on_end(0.01)


def test_an_informer_outlives_an_api_server_away_for_a_minute() -> None:
    """Never gives up; one reconnect per failure, backoff capped at 30 s; resumes where it was."""
    s = state("42")
    s.connected(0.0)
    now = 100.0
    plans = [s.on_failure(dropped(), now)]
    while now < 160.0:  # the server is away from 100 s to 160 s
        plan = plans[-1]
        assert plan is not None
        now += plan.delay
        refused = RequestTimeoutError("no answer", sent=False)
        plans.append(s.on_failure(refused, now))
    delays = [p.delay for p in plans if p is not None]
    assert max(delays) == WATCH_BACKOFF_MAX
    assert len(plans) <= 12  # about one connection attempt per backoff step, not a storm
    assert s.connect_params(now)["resourceVersion"] == "42"
    s.connected(now)
    assert feed(s, [ev("MODIFIED", "a", 43)]) == [("MODIFIED", "a", "43")]


def test_retry_after_is_honoured_up_to_the_policy_cap() -> None:
    """A 429 with Retry-After waits that long, at most the policy's max_retry_after."""
    s = state()
    busy = TooManyRequestsError(429, "TooManyRequests", "slow down", {}, retry_after=3.0)
    assert s.on_failure(busy, 0.0) == Reconnect(3.0, "HTTP 429", 1)
    long = ServerError(503, "ServiceUnavailable", "later", {}, retry_after=3600.0)
    plan = s.on_failure(long, 3.0)
    assert plan is not None
    assert plan.delay == POLICY.max_retry_after


def test_the_deadline_ends_the_watch_and_bounds_delays() -> None:
    """Past timeout_seconds no reconnect happens; before it, no delay goes past it."""
    s = state(timeout_seconds=5.0)
    s.connect_params(0.0)
    s.connected(0.0)
    plan = s.on_failure(ServerError(503, "x", "y", {}, retry_after=9.0), 4.0)
    assert plan is not None
    assert plan.delay == pytest.approx(1.0)
    assert s.on_end(5.0) is None


def test_closing_ends_every_decision() -> None:
    """A closed state neither reconnects nor raises: the iteration ends."""
    s = state()
    s.close()
    assert s.on_end(0.0) is None
    assert s.on_failure(dropped(), 0.0) is None
    assert s.on_failure(GoneError(410, "Gone", "old", {}), 0.0) is None


def test_initial_events_are_not_repeated_after_an_early_drop() -> None:
    """A drop during the initial events starts over; ADDED events handed out come once."""
    s = state(None)
    assert feed(s, [ev("ADDED", "a", 3), ev("ADDED", "b", 5)]) == [
        ("ADDED", "a", "3"),
        ("ADDED", "b", "5"),
    ]
    s.on_failure(dropped(), 0.0)
    assert s.connect_params(0.0)["resourceVersion"] is None
    again = [ev("ADDED", "b", 5), ev("ADDED", "a", 3), ev("ADDED", "c", 7), bookmark(9, end=True)]
    assert feed(s, again) == [("ADDED", "c", "7")]
    assert s.resource_version == "9"


def test_an_early_drop_never_loses_a_deletion() -> None:
    """Objects gone while the watch was away come out DELETED, changed ones MODIFIED."""
    s = state(None)
    feed(s, [ev("ADDED", "a", 3), ev("ADDED", "b", 5), ev("ADDED", "c", 6)])
    s.on_failure(dropped(), 0.0)
    # Meanwhile: b deleted, c modified.
    assert feed(s, [ev("ADDED", "a", 3), ev("ADDED", "c", 8)]) == [("MODIFIED", "c", "8")]
    s.on_end(500.0)  # and a second drop, still inside the initial events
    assert feed(s, [ev("ADDED", "c", 8), ev("ADDED", "a", 3), bookmark(9, end=True)]) == [
        ("DELETED", "b", "5")
    ]
    assert feed(s, [ev("DELETED", "a", 10)]) == [("DELETED", "a", "10")]


def test_the_difference_comes_before_the_event_that_ends_the_initial_events() -> None:
    """Without the end bookmark, the first other event ends the initial ones, after the diff."""
    s = state(None, bookmarks=True)
    feed(s, [ev("ADDED", "a", 3), ev("ADDED", "b", 4)])
    s.on_failure(dropped(), 0.0)
    assert feed(s, [ev("ADDED", "b", 4), ev("MODIFIED", "b", 11)]) == [
        ("DELETED", "a", "3"),
        ("MODIFIED", "b", "11"),
    ]


def test_max_failures_must_not_be_negative() -> None:
    """A negative max_failures is refused, naming the parameter."""
    with pytest.raises(ValueError, match="max_failures"):
        state(max_failures=-1)


def test_a_larger_backoff_cap_is_kept() -> None:
    """watch_policy raises the cap to 30 s but keeps a larger one."""
    assert watch_policy(RetryPolicy()).backoff_max == WATCH_BACKOFF_MAX
    assert watch_policy(RetryPolicy(backoff_max=120.0)).backoff_max == 120.0
    assert watch_policy(RetryPolicy()).max_retry_after == RetryPolicy().max_retry_after


# -- a model: a server's history, and a consumer keeping a dict ---------------------

NAMES = ["a", "b", "c", "d"]
operation = st.tuples(st.sampled_from(["put", "delete"]), st.sampled_from(NAMES))
connection = st.fixed_dictionaries(
    {
        "happen_before": st.integers(0, 6),  # changes while the watch is away
        "happen_during": st.integers(0, 4),  # changes while it streams
        "cut": st.integers(0, 6) | st.integers(0, 20),  # events delivered before the end
        "end": st.sampled_from(["drop", "end", "error", "short"]),
        "bookmark": st.booleans(),
    }
)


@attrs.define
class Server:
    """A server's history of versions; ``state_at(rv)`` is what a list at rv returns."""

    ops: list[tuple[str, str]]
    history: list[WatchEvent] = attrs.field(factory=list)
    objects: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    next_op: int = 0

    @property
    def rv(self) -> int:
        """The current resourceVersion (1 + number of changes)."""
        return len(self.history) + 1

    def happen(self, count: int) -> None:
        """Apply up to ``count`` more operations."""
        for _ in range(count):
            if self.next_op >= len(self.ops):
                return
            verb, name = self.ops[self.next_op]
            self.next_op += 1
            rv = self.rv + 1
            if verb == "delete" and name in self.objects:
                del self.objects[name]
                self.history.append(ev("DELETED", name, rv))
            else:
                kind = "MODIFIED" if name in self.objects else "ADDED"
                self.objects[name] = obj(name, rv)
                self.history.append(ev(kind, name, rv))

    def stream(self, rv: str | None, during: int, bookmark: bool) -> list[WatchEvent]:
        """What a watch from ``rv`` receives, while ``during`` more changes happen."""
        out: list[WatchEvent] = []
        if rv is None:
            out = [WatchEvent("ADDED", o) for o in sorted(self.objects.values(), key=_rv)]
            # The end bookmark, or nothing (an older server ends the initial
            # events with the first other event).
            if bookmark:
                out.append(bookmark_at(self.rv, end=True))
            start = self.rv
        else:
            start = int(rv)
        self.happen(during)
        return out + [e for e in self.history if int(e.resource_version or 0) > start]


def bookmark_at(rv: int, *, end: bool = False) -> WatchEvent:
    """A BOOKMARK at ``rv``."""
    return bookmark(rv, end=end)


def _rv(o: dict[str, Any]) -> int:
    return int(o["metadata"]["resourceVersion"])


def _conn(cut: int, end: str, happen_before: int = 0) -> dict[str, Any]:
    return {
        "happen_before": happen_before,
        "happen_during": 0,
        "cut": cut,
        "end": end,
        "bookmark": False,
    }


@settings(max_examples=500, deadline=None)
# A deletion while a watch from scratch is away, its initial events half delivered.
@example(
    2, [("put", "a"), ("put", "b"), ("delete", "a")], [_conn(1, "drop"), _conn(0, "end", 1)], True
)
@given(
    initial=st.integers(0, 6),
    ops=st.lists(operation, max_size=40),
    connections=st.lists(connection, max_size=12),
    from_scratch=st.booleans(),
)
def test_no_duplicate_and_no_gap_whatever_the_drops(
    initial: int,
    ops: list[tuple[str, str]],
    connections: list[dict[str, Any]],
    from_scratch: bool,
) -> None:
    """After any sequence of drops, the consumer's dict equals the server's objects."""
    server = Server(ops)
    server.happen(initial)
    start = None if from_scratch else str(server.rv)
    view: dict[str, int] = (
        {} if from_scratch else {name: _rv(o) for name, o in server.objects.items()}
    )
    s = state(start)
    now = 0.0

    def consume(events: list[WatchEvent]) -> None:
        for event in events:
            out = s.accept(event)
            handed = [] if out is None else [out]
            while s.backlog:
                handed.append(s.backlog.popleft())
            for e in handed:
                name, rv = e.object["metadata"]["name"], int(e.resource_version or 0)
                if e.type == "ADDED":
                    assert name not in view, f"duplicate ADDED {name}"
                    view[name] = rv
                elif e.type == "MODIFIED":
                    assert view.get(name, rv) < rv, f"MODIFIED {name} without a change"
                    assert name in view, f"MODIFIED {name} it never had"
                    view[name] = rv
                else:
                    assert name in view, f"DELETED {name} it never had"
                    del view[name]

    for conn in connections:
        server.happen(conn["happen_before"])
        rv = s.connect_params(now)["resourceVersion"]
        assert rv is None or isinstance(rv, str)
        events = server.stream(rv, conn["happen_during"], conn["bookmark"])
        s.connected(now)
        consume(events[: conn["cut"]])
        now += 0.5 if conn["end"] == "short" else 400.0
        if conn["end"] == "drop":
            plan = s.on_failure(dropped(), now)
        elif conn["end"] == "error":
            plan = s.on_failure(ServerError(500, "InternalError", "etcd", {}), now)
        else:
            plan = s.on_end(now)
        assert plan is not None
        now += plan.delay
    # The last connection stays up until everything happened, then a bookmark.
    server.happen(len(ops))
    rv = s.connect_params(now)["resourceVersion"]
    assert rv is None or isinstance(rv, str)
    s.connected(now)
    final = server.stream(rv, 0, True)
    consume([*final, bookmark_at(server.rv)])
    assert view == {name: _rv(o) for name, o in server.objects.items()}
    assert s.resource_version == str(server.rv)
