"""Leader election on a Lease: one leader at a time, failover, stepping down, release."""

from __future__ import annotations

import sys
import textwrap
from datetime import datetime
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import LeaderElection, LeadershipLostError
from asyncpod._leader import LeaseRecord, decide
from asyncpod.testing import Sandbox

# Short periods keep the tests quick; the margins between them (lease - renew = 1 s) are what
# keeps two leaders apart, and are wide against a loaded machine's scheduling delays.
LEASE = 3.0
RENEW = 2.0
RETRY = 0.25
LEASES = "coordination.k8s.io/v1"


# -- the pure decision ----------------------------------------------------------------------


def _record(holder: str, duration: float = 10.0, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(
        holder=holder, lease_duration=duration, renew_time="t0", transitions=transitions
    )


@pytest.mark.parametrize(
    ("current", "observed_at", "now", "expected_holder", "transitions"),
    [
        (LeaseRecord(), 0.0, 0.0, "me", 1),  # nobody holds it
        (_record("me", transitions=3), 0.0, 100.0, "me", 3),  # a renewal keeps transitions
        (_record("other"), 0.0, 9.9, None, None),  # held, not expired as we saw it
        (_record("other", transitions=1), 0.0, 10.0, "me", 2),  # expired: taken, one transition
        (_record("other"), 5.0, 14.0, None, None),  # expiry counts from our own observation
        (_record("", transitions=4), 0.0, 0.0, "me", 5),  # released: taken at once
    ],
)
def test_decide(
    current: LeaseRecord,
    observed_at: float,
    now: float,
    expected_holder: str | None,
    transitions: int | None,
) -> None:
    """client-go's rule: take a Lease only when free or unchanged for its duration, as we saw it."""
    wanted = decide(
        current, identity="me", lease_duration=15, observed_at=observed_at, now=now, wall_time="t1"
    )
    if expected_holder is None:
        assert wanted is None
        return
    assert wanted is not None
    assert wanted.holder == expected_holder
    assert wanted.transitions == transitions
    assert wanted.renew_time == "t1"
    assert wanted.to_spec()["leaseDurationSeconds"] == 15


def test_periods_are_checked() -> None:
    """The durations must leave the leader time to stop before the others may take over."""
    with pytest.raises(ValueError, match="greater than renew_deadline"):
        LeaderElection(None, "x", namespace="n", lease_duration=5, renew_deadline=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"1\.2"):
        LeaderElection(None, "x", namespace="n", renew_deadline=2, retry_period=2)  # type: ignore[arg-type]


# -- against the sandbox ---------------------------------------------------------------------


def _lease(sandbox: Sandbox, name: str) -> dict[str, Any]:
    return sandbox.get("leases", name, namespace="default")


def _elect(k8s: asyncpod.Client, identity: str, **kwargs: Any) -> Any:
    return k8s.leader_election(
        "op",
        identity=identity,
        lease_duration=LEASE,
        renew_deadline=RENEW,
        retry_period=RETRY,
        **kwargs,
    )


@pytest.mark.slow
@pytest.mark.anyio
async def test_one_leader_among_three_and_release_hands_over(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """Three candidates: exactly one leads at every sample; leaving releases to the next."""
    leading: set[str] = set()
    overlaps: list[set[str]] = []
    order: list[str] = []
    done = anyio.Event()

    async def candidate(k8s: asyncpod.Client, identity: str) -> None:
        async with _elect(k8s, identity):
            leading.add(identity)
            order.append(identity)
            await anyio.sleep(4 * RETRY)  # several renewals while leading
            leading.discard(identity)
        if len(order) == 3:
            done.set()

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s, anyio.create_task_group() as tg:
        for identity in ("a", "b", "c"):
            tg.start_soon(candidate, k8s, identity)
        with anyio.fail_after(60):
            while not done.is_set():
                if len(leading) > 1:
                    overlaps.append(set(leading))
                await anyio.sleep(0.01)
    assert overlaps == []
    assert sorted(order) == ["a", "b", "c"]
    spec = _lease(sandbox, "op")["spec"]
    assert spec["holderIdentity"] == ""  # the last one released it
    assert spec["leaseTransitions"] == 2  # a → b → c (a release is not a transition)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_leader_that_cannot_renew_steps_down_before_its_lease_expires(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """Renewals refused by the server: the body is cancelled before others could take over."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config, retries=0) as k8s:
        cancelled_at: list[datetime] = []

        async def lead_until_cancelled() -> None:
            async with _elect(k8s, "stuck"):
                sandbox.faults.add("error", status=500, count=None, method="PUT", path="/leases/")
                try:
                    await anyio.sleep(30)
                finally:
                    cancelled_at.append(datetime.now().astimezone())

        with pytest.raises(LeadershipLostError, match="no renewal succeeded within 2 s"):
            await lead_until_cancelled()
        sandbox.faults.clear()
    spec = _lease(sandbox, "op")["spec"]
    assert spec["holderIdentity"] == "stuck"  # it could not release either
    renewed = datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    expires = renewed.timestamp() + spec["leaseDurationSeconds"]
    assert len(cancelled_at) == 1
    assert cancelled_at[0].timestamp() < expires


@pytest.mark.anyio
async def test_a_body_error_comes_out_as_itself(sandbox: Sandbox, anyio_backend: str) -> None:
    """An exception of the block is raised as is (no ExceptionGroup) and the Lease released."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        with pytest.raises(KeyError, match="boom"):
            async with _elect(k8s, "thrower"):
                raise KeyError("boom")
    assert _lease(sandbox, "op")["spec"]["holderIdentity"] == ""


LEADER_SCRIPT = textwrap.dedent(
    """
    import sys, anyio, asyncpod

    async def main():
        config = asyncpod.Config.proxy(sys.argv[1])
        async with asyncpod.Client(config) as k8s:
            async with k8s.leader_election(
                "op", identity="killed", lease_duration=float(sys.argv[2]),
                renew_deadline=float(sys.argv[3]), retry_period=float(sys.argv[4]),
            ):
                print("LEADING", flush=True)
                await anyio.sleep_forever()

    anyio.run(main)
    """
)


@pytest.mark.slow
@pytest.mark.anyio
async def test_failover_after_the_leader_process_is_killed(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """A leader killed with SIGKILL (no release) is replaced within lease + retry periods."""
    command = [sys.executable, "-c", LEADER_SCRIPT, sandbox.proxy_url]
    command += [str(LEASE), str(RENEW), str(RETRY)]
    async with await anyio.open_process(command, stderr=None) as process:
        assert process.stdout is not None
        output = b""
        with anyio.fail_after(30):
            while b"LEADING" not in output:
                output += await process.stdout.receive()
        config = asyncpod.Config.proxy(sandbox.proxy_url)
        async with asyncpod.Client(config) as k8s:
            election = LeaderElection(
                k8s,
                "op",
                namespace="default",
                identity="successor",
                lease_duration=LEASE,
                renew_deadline=RENEW,
                retry_period=RETRY,
            )
            assert not await election.try_acquire_or_renew()  # held by the live process
            process.kill()  # SIGKILL: no release, no goodbye
            killed = anyio.current_time()
            with anyio.fail_after(30):
                await election.acquire()
            failover = anyio.current_time() - killed
            await election.release()
        await process.wait()
    # The successor saw the last renewal no later than one attempt after the kill; it
    # takes over at its first attempt after a lease duration. 1.5 s is room for load.
    assert LEASE - 2 * RETRY <= failover <= LEASE + 2 * 2.2 * RETRY + 1.5
    assert _lease(sandbox, "op")["spec"]["leaseTransitions"] == 1
