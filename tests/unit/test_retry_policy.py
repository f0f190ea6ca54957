"""The retry policy: what is retried, how long it waits, and its bounds."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncpod import ProtocolError, RequestTimeoutError, RetryPolicy, TransportError
from asyncpod._retry import Retry

NO_JITTER = RetryPolicy(jitter=0.0)
WRITES = ["POST", "PUT", "PATCH", "DELETE"]


def test_connect_failure_retried_for_every_verb() -> None:
    """A request that never reached the server is retried whatever its method."""
    error = TransportError("could not connect", sent=False)
    for method in ["GET", "HEAD", *WRITES]:
        retry = NO_JITTER.on_error(method, error, 1)
        assert retry == Retry(0.1, "connect failed")


def test_dropped_connection_retried_only_for_reads() -> None:
    """A connection that failed after sending is retried for GET and HEAD only."""
    error = TransportError("the server closed the connection", sent=True)
    assert NO_JITTER.on_error("GET", error, 1) is not None
    assert NO_JITTER.on_error("HEAD", error, 1) is not None
    for method in WRITES:
        assert NO_JITTER.on_error(method, error, 1) is None


def test_protocol_error_never_retried() -> None:
    """An answer that could not be read would come again: it is not retried."""
    error = ProtocolError("bad chunk")
    assert NO_JITTER.on_error("GET", error, 1) is None


def test_connect_timeout_retried() -> None:
    """A connect timeout of the transport is a connect failure."""
    error = RequestTimeoutError("connect timed out", sent=False)
    assert NO_JITTER.on_error("POST", error, 1) is not None


def test_retry_after_honoured_for_every_verb() -> None:
    """429 and 5xx with Retry-After wait what the server asks, for writes too."""
    for method in ["GET", *WRITES]:
        for status in [429, 500, 503]:
            retry = NO_JITTER.on_status(method, status, 1.0, 1)
            assert retry is not None
            assert retry.delay == 1.0
            assert "Retry-After" in retry.reason


def test_retry_after_capped() -> None:
    """A Retry-After longer than max_retry_after waits max_retry_after."""
    retry = RetryPolicy(max_retry_after=3.0).on_status("GET", 429, 50.0, 1)
    assert retry is not None
    assert retry.delay == 3.0


def test_retry_after_zero_still_backs_off() -> None:
    """Retry-After: 0 does not become a busy loop."""
    retry = NO_JITTER.on_status("POST", 429, 0.0, 3)
    assert retry is not None
    assert retry.delay == pytest.approx(0.4)


def test_5xx_without_retry_after_only_for_reads() -> None:
    """503 without Retry-After is retried for GET, not for POST."""
    assert NO_JITTER.on_status("GET", 503, None, 1) == Retry(0.1, "HTTP 503")
    for method in WRITES:
        assert NO_JITTER.on_status(method, 503, None, 1) is None


def test_429_without_retry_after_not_retried() -> None:
    """A 429 without Retry-After gives no hint of when to come back: raised."""
    assert NO_JITTER.on_status("GET", 429, None, 1) is None


def test_client_errors_never_retried() -> None:
    """4xx answers other than 429 are final, Retry-After or not."""
    for status in [400, 401, 403, 404, 409, 410, 422]:
        assert NO_JITTER.on_status("GET", status, 1.0, 1) is None


def test_501_not_retried_without_retry_after() -> None:
    """501 Not Implemented will not get better by asking again."""
    assert NO_JITTER.on_status("GET", 501, None, 1) is None


def test_backoff_doubles_up_to_max() -> None:
    """Without jitter the delays are 0.1, 0.2, 0.4... capped at backoff_max."""
    policy = RetryPolicy(jitter=0.0, backoff_base=0.1, backoff_max=1.0)
    assert [policy.backoff(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_jitter_uses_the_random_source() -> None:
    """Half jitter spreads a delay over its upper half."""
    low = RetryPolicy(jitter=0.5, random=lambda: 0.999999)
    high = RetryPolicy(jitter=0.5, random=lambda: 0.0)
    assert low.backoff(1) == pytest.approx(0.05, abs=1e-6)
    assert high.backoff(1) == pytest.approx(0.1)


def test_attempts_bounded() -> None:
    """No retry beyond ``retries``."""
    policy = RetryPolicy(retries=2)
    error = TransportError("refused", sent=False)
    assert policy.on_error("GET", error, 2) is not None
    assert policy.on_error("GET", error, 3) is None
    assert policy.on_status("GET", 503, 1.0, 3) is None


def test_zero_retries_disables() -> None:
    """``retries=0`` never retries."""
    policy = RetryPolicy.from_retries(0)
    assert policy.on_error("GET", TransportError("x", sent=False), 1) is None


def test_deadline_never_passed() -> None:
    """A retry whose wait would reach the deadline is not made."""
    assert NO_JITTER.on_status("GET", 429, 2.0, 1, remaining=1.5) is None
    assert NO_JITTER.on_status("GET", 429, 1.0, 1, remaining=1.5) is not None


def test_from_retries() -> None:
    """``Client(retries=)`` takes a count or a policy."""
    policy = RetryPolicy(retries=7)
    assert RetryPolicy.from_retries(policy) is policy
    assert RetryPolicy.from_retries(3).retries == 3
    with pytest.raises(TypeError, match="retries"):
        RetryPolicy.from_retries("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)


def test_evolve() -> None:
    """A policy is frozen and changed with attrs.evolve."""
    policy = attrs.evolve(RetryPolicy(), retries=1)
    assert policy.retries == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.retries = 2  # type: ignore[misc]


policies = st.builds(
    RetryPolicy,
    retries=st.integers(0, 20),
    backoff_base=st.floats(0, 5),
    backoff_max=st.floats(0, 60),
    jitter=st.floats(0, 1),
    max_retry_after=st.floats(0, 120),
    random=st.sampled_from([lambda: 0.0, lambda: 0.5, lambda: 0.9999999]),
)
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
statuses = st.sampled_from([200, 400, 404, 409, 429, 500, 501, 502, 503, 504])
retry_afters = st.none() | st.floats(0, 1e6)
remainings = st.none() | st.floats(0, 1e4)


@given(policies, methods, statuses, retry_afters, remainings)
def test_a_call_never_exceeds_attempts_or_deadline(
    policy: RetryPolicy,
    method: str,
    status: int,
    retry_after: float | None,
    remaining: float | None,
) -> None:
    """Simulated calls: at most ``retries`` retries, and the waits fit the deadline."""
    attempt = 0
    waited = 0.0
    while True:
        attempt += 1
        left = None if remaining is None else remaining - waited
        retry = policy.on_status(method, status, retry_after, attempt, left)
        if retry is None:
            break
        assert retry.delay >= 0
        assert retry.delay <= max(policy.max_retry_after, policy.backoff_max)
        waited += retry.delay
        if remaining is not None:
            assert waited < remaining
    assert attempt - 1 <= policy.retries


@given(policies, st.integers(1, 10_000))
def test_backoff_bounded(policy: RetryPolicy, attempt: int) -> None:
    """Every backoff lies between 0 and backoff_max."""
    delay = policy.backoff(attempt)
    assert 0 <= delay <= policy.backoff_max
