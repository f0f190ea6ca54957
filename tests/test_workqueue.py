"""The work queue: de-duplication, one worker per key, delays and backoff, graceful shutdown."""

from __future__ import annotations

import anyio
import pytest

from asyncpod import QueueShutDownError, WorkQueue
from asyncpod._workqueue import ItemBackoff, QueueState

# -- the sans-IO state, with the time given -------------------------------------------------


def test_a_queued_key_is_queued_once() -> None:
    """Adding a key that waits already changes nothing."""
    state: QueueState[str] = QueueState()
    assert state.add("a")
    assert not state.add("a")
    assert state.add("b")
    assert [state.pop(), state.pop(), state.pop()] == ["a", "b", None]


def test_a_key_added_while_held_comes_back_after_done() -> None:
    """A key added while a worker holds it is not handed out again until done."""
    state: QueueState[str] = QueueState()
    state.add("a")
    assert state.pop() == "a"
    assert not state.add("a")  # held: marked, not queued
    assert state.pop() is None
    assert state.done("a")  # queued again now
    assert state.pop() == "a"
    assert not state.done("a")
    assert state.pop() is None


@pytest.mark.parametrize(
    ("adds", "now", "expected"),
    [
        ([("a", 5.0)], 4.9, []),
        ([("a", 5.0)], 5.0, ["a"]),
        ([("a", 5.0), ("b", 3.0)], 6.0, ["b", "a"]),  # by due time
        ([("a", 5.0), ("a", 2.0)], 2.0, ["a"]),  # the earlier time wins
        ([("a", 2.0), ("a", 5.0)], 2.0, ["a"]),  # a later time does not postpone
        ([("a", 2.0), ("a", 5.0)], 9.0, ["a"]),  # and the key comes once
    ],
)
def test_delays(adds: list[tuple[str, float]], now: float, expected: list[str]) -> None:
    """Delayed keys are queued at their due time, earliest first, each once."""
    state: QueueState[str] = QueueState()
    for key, due in adds:
        state.add_after(key, due, now=0.0)
    state.promote(now)
    out = []
    while (key := state.pop()) is not None:
        out.append(key)
    assert out == expected


def test_next_due_skips_superseded_times() -> None:
    """The next wake-up is the earliest live due time."""
    state: QueueState[str] = QueueState()
    state.add_after("a", 9.0, now=0.0)
    state.add_after("a", 4.0, now=0.0)
    assert state.next_due() == 4.0
    state.promote(4.0)
    assert state.next_due() is None
    assert state.delayed == 0


def test_shutdown_refuses_new_keys_and_drops_delayed_ones() -> None:
    """After shut_down, adds are ignored, delayed keys dropped, queued ones still handed out."""
    state: QueueState[str] = QueueState()
    state.add("queued")
    state.add_after("later", 5.0, now=0.0)
    state.shut_down()
    assert not state.add("new")
    assert not state.add_after("new", 1.0, now=0.0)
    state.promote(10.0)
    assert state.pop() == "queued"
    assert state.pop() is None


def test_item_backoff_matches_client_go() -> None:
    """5 ms doubling per failure, capped at 1000 s; forget starts over."""
    backoff: ItemBackoff[str] = ItemBackoff()
    delays = [backoff.when("k") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0
    assert backoff.failures("k") == 20
    assert backoff.when("other") == 0.005  # per key
    backoff.forget("k")
    assert backoff.when("k") == 0.005


# -- the queue on a running event loop -------------------------------------------------------


@pytest.mark.anyio
async def test_workers_never_share_a_key(anyio_backend: str) -> None:
    """Eight workers, keys added again and again while held: one worker per key, none lost."""
    queue: WorkQueue[int] = WorkQueue()
    holders: dict[int, int] = {}
    overlap = 0
    processed: dict[int, int] = {}
    readded: set[int] = set()
    all_twice = anyio.Event()

    async def worker() -> None:
        nonlocal overlap
        async for key in queue:
            holders[key] = holders.get(key, 0) + 1
            overlap = max(overlap, holders[key])
            await anyio.sleep(0.001)
            if key not in readded:
                readded.add(key)
                queue.add(key)  # changed while in flight: must come again
            processed[key] = processed.get(key, 0) + 1
            holders[key] -= 1
            queue.done(key)
            if len(processed) == 50 and min(processed.values()) >= 2:
                all_twice.set()

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(worker)
        for round_ in range(5):
            for key in range(50):
                queue.add(key)
            await anyio.sleep(0 if round_ else 0.01)
        with anyio.fail_after(30):
            await all_twice.wait()
        await queue.shutdown()
    assert overlap == 1
    assert set(processed) == set(range(50))
    assert all(count >= 2 for count in processed.values())  # the re-add came through


@pytest.mark.anyio
async def test_duplicates_while_queued_are_processed_once(anyio_backend: str) -> None:
    """A hundred adds of one key before a worker looks: it is handed out once."""
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(100):
        queue.add("a")
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    with anyio.move_on_after(0.05) as scope:
        await queue.get()
    assert scope.cancelled_caught


@pytest.mark.anyio
async def test_add_after_waits_and_add_rate_limited_backs_off(anyio_backend: str) -> None:
    """A delayed key arrives no sooner than asked; a rate-limited one after its backoff."""
    queue: WorkQueue[str] = WorkQueue(backoff_base=0.2)
    start = anyio.current_time()
    queue.add_after("later", 0.3)
    queue.add("now")
    assert await queue.get() == "now"
    assert anyio.current_time() - start < 0.3
    assert await queue.get() == "later"
    assert anyio.current_time() - start >= 0.3
    queue.done("later")
    start = anyio.current_time()
    queue.add_rate_limited("later")
    queue.add_rate_limited("later")  # second failure: 0.4 s, but the earlier 0.2 s wins
    assert queue.num_requeues("later") == 2
    assert await queue.get() == "later"
    assert anyio.current_time() - start >= 0.2
    queue.forget("later")
    assert queue.num_requeues("later") == 0


@pytest.mark.anyio
async def test_shutdown_drains_in_flight_work(anyio_backend: str) -> None:
    """shutdown(drain=True) returns only after the key a worker holds is done."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("slow")
    key = await queue.get()
    finished: list[str] = []

    async def finish() -> None:
        await anyio.sleep(0.2)
        finished.append(key)
        queue.done(key)

    async with anyio.create_task_group() as tg:
        tg.start_soon(finish)
        await queue.shutdown(drain=True)
        assert finished == ["slow"]
    queue.add("ignored")
    assert len(queue) == 0
    with pytest.raises(QueueShutDownError):
        await queue.get()


@pytest.mark.anyio
async def test_shutdown_wakes_idle_workers(anyio_backend: str) -> None:
    """Workers waiting on an empty queue end their loop when it shuts down."""
    queue: WorkQueue[str] = WorkQueue()
    ended = 0

    async def worker() -> None:
        nonlocal ended
        async for _ in queue:
            pass
        ended += 1

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(worker)
            await anyio.sleep(0.01)
            await queue.shutdown()
    assert ended == 4
