"""The JSON codec: the decoder a plain install runs, and the collector pause for large bodies."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest

from asyncpod import _json


def pod_list(size: int) -> bytes:
    """A PodList-shaped document of at least ``size`` bytes."""
    pod = {"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"containers": []}}
    count = size // len(json.dumps(pod)) + 1
    return json.dumps({"kind": "PodList", "items": [pod] * count}).encode()


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    """Whatever a test does, the collector is on again after it."""
    yield
    gc.enable()


@pytest.mark.parametrize("size", [100, _json.LARGE_BODY, 3 * _json.LARGE_BODY])
def test_small_and_large_bodies_decode_alike(size: int, collector_enabled: None) -> None:
    """A body decodes to what the standard library reads, below and above the pause size."""
    body = pod_list(size)
    assert _json.loads_body(body) == json.loads(body)
    assert gc.isenabled()


def test_a_program_that_disabled_the_collector_keeps_it_disabled(
    collector_enabled: None,
) -> None:
    """A large decode never switches on a collector that the program switched off."""
    gc.disable()
    _json.loads_body(pod_list(2 * _json.LARGE_BODY))
    assert not gc.isenabled()


def test_a_bad_large_body_leaves_the_collector_on(collector_enabled: None) -> None:
    """A large body that is not JSON raises ValueError and the collector runs again."""
    body = pod_list(2 * _json.LARGE_BODY)[:-1]
    with pytest.raises(ValueError, match=r"."):
        _json.loads_body(body)
    assert gc.isenabled()


def collections_during_decode(body: bytes) -> int:
    """How many collections started while ``_json.loads_body(body)`` ran."""
    starts: list[str] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            starts.append(phase)

    gc.collect()  # start from empty young generations
    gc.callbacks.append(record)
    try:
        _json.loads_body(body)
    finally:
        gc.callbacks.remove(record)
    return len(starts)


def test_the_collector_is_paused_during_a_large_decode(
    collector_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No collection runs while a large body's objects are built (without the pause, many do)."""
    body = pod_list(4 * _json.LARGE_BODY)
    assert collections_during_decode(body) == 0
    monkeypatch.setattr(_json, "LARGE_BODY", len(body) + 1)
    assert collections_during_decode(body) > 0
