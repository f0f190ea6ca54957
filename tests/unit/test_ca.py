"""``CAWatcher``: the CA bundle is re-checked every 5 s and after a verification failure."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import trustme

from asyncpod import CAReloadEvent, CAWatcher, ConfigError
from asyncpod._tls import create_ssl_context
from tests.helpers.sa_folder import make_sa_folder, rotate


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sa(tmp_path: Path) -> Path:
    """A service-account folder holding a CA bundle."""
    return make_sa_folder(tmp_path / "sa", {"ca.crt": trustme.CA().cert_pem.bytes()})


def watcher(sa: Path, clock: Clock) -> CAWatcher:
    """A watcher on the folder's ca.crt."""
    build = functools.partial(create_ssl_context, ca_file=sa / "ca.crt")
    return CAWatcher(sa / "ca.crt", build, clock=clock)


def test_same_context_until_the_file_changes(sa: Path) -> None:
    """Without a change, every connection gets the same context."""
    clock = Clock()
    w = watcher(sa, clock)
    first = w.ssl_context()
    for _ in range(10):
        clock.now += 6
        assert w.ssl_context() is first
    assert w.builds == 1


def test_change_seen_within_5_seconds(sa: Path) -> None:
    """A swapped bundle gives a new context at the next check, at most 5 s later."""
    clock = Clock()
    w = watcher(sa, clock)
    first = w.ssl_context()
    rotate(sa, {"ca.crt": trustme.CA().cert_pem.bytes()})
    clock.now += 4.9
    assert w.ssl_context() is first
    clock.now += 0.2
    assert w.ssl_context() is not first
    assert w.builds == 2


def test_verification_failure_checks_at_once(sa: Path) -> None:
    """After a verification failure the next connection looks at the file."""
    clock = Clock()
    w = watcher(sa, clock)
    first = w.ssl_context()
    rotate(sa, {"ca.crt": trustme.CA().cert_pem.bytes()})
    w.verification_failed()
    assert w.ssl_context() is not first


def test_broken_bundle_keeps_the_old_one(sa: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A bundle that does not load keeps the previous context, with a warning."""
    clock = Clock()
    w = watcher(sa, clock)
    first = w.ssl_context()
    rotate(sa, {"ca.crt": b"-----BEGIN CERTIFICATE-----\ngarbage\n"})
    w.verification_failed()
    with caplog.at_level(logging.WARNING, logger="asyncpod"):
        assert w.ssl_context() is first
    assert "keeping the previous CA bundle" in caplog.text
    rotate(sa, {"ca.crt": trustme.CA().cert_pem.bytes()})
    clock.now += 5.1
    assert w.ssl_context() is not first


def test_first_build_failure_is_a_config_error(tmp_path: Path) -> None:
    """A bundle that does not load at start is a ConfigError naming the file."""
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=str(bad)):
        watcher(tmp_path, Clock())


def test_rebuilds_are_reported_with_their_reason(sa: Path) -> None:
    """on_event gets a CAReloadEvent per new context: "changed", or "verification failed"."""
    clock = Clock()
    events: list[CAReloadEvent] = []
    build = functools.partial(create_ssl_context, ca_file=sa / "ca.crt")
    w = CAWatcher(sa / "ca.crt", build, clock=clock, on_event=events.append)
    clock.now += 6
    w.ssl_context()
    assert events == []  # checked, unchanged: nothing to report
    rotate(sa, {"ca.crt": trustme.CA().cert_pem.bytes()})
    clock.now += 6
    w.ssl_context()
    assert events == [CAReloadEvent(str(sa / "ca.crt"), "changed")]
    w.verification_failed()
    w.ssl_context()
    assert len(events) == 1  # looked again at once; the file is the same
    rotate(sa, {"ca.crt": trustme.CA().cert_pem.bytes()})
    w.verification_failed()
    w.ssl_context()
    assert events[-1] == CAReloadEvent(str(sa / "ca.crt"), "verification failed")
    assert w.builds == 3
