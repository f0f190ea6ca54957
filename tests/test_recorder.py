"""The event recorder: events.k8s.io/v1 Events about objects, repeats counted in a series."""

from __future__ import annotations

from typing import Any

import pytest

import asyncpod
from asyncpod import EventRecorder, InvalidNameError
from asyncpod.testing import Sandbox

pytestmark = pytest.mark.anyio


def _events(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        e
        for e in sandbox.objects("events.events.k8s.io", namespace="default")
        if e.get("reportingController") == "example.com/test"
    ]


async def test_repeats_fold_into_one_series(sandbox: Sandbox, anyio_backend: str) -> None:
    """The same event three times is one Event with series.count 3; another reason is another."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        cm = await k8s.create("configmaps", {"metadata": {"name": "subject"}})
        recorder = EventRecorder(k8s, "example.com/test", "pod-1")
        first = await recorder.publish(cm, reason="Synced", action="Reconcile", note="all good")
        for _ in range(2):
            repeat = await recorder.publish(
                cm, reason="Synced", action="Reconcile", note="all good"
            )
        await recorder.publish(cm, type="Warning", reason="Failed", action="Reconcile", note="x")
    assert repeat["metadata"]["name"] == first["metadata"]["name"]
    stored = {e["reason"]: e for e in _events(sandbox)}
    assert set(stored) == {"Synced", "Failed"}
    synced = stored["Synced"]
    assert synced["series"]["count"] == 3
    assert synced["regarding"]["kind"] == "ConfigMap"
    assert synced["regarding"]["uid"] == cm["metadata"]["uid"]
    assert synced["reportingInstance"] == "pod-1"
    assert stored["Failed"]["type"] == "Warning"
    assert "series" not in stored["Failed"]
    posts = sandbox.requests.filter("POST", r"/apis/events\.k8s\.io/v1/.*")
    assert len(posts) == 2  # the repeats were patches, not new objects


async def test_bad_events_are_refused_and_long_notes_cut(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """A type other than Normal/Warning is refused before sending; a note is cut to 1 kB."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        cm = await k8s.create("configmaps", {"metadata": {"name": "subject"}})
        recorder = EventRecorder(k8s, "example.com/test", "pod-1")
        with pytest.raises(InvalidNameError, match="Normal' or 'Warning"):
            await recorder.publish(cm, type="Info", reason="R", action="A")  # type: ignore[arg-type]
        event = await recorder.publish(cm, reason="Long", action="A", note="é" * 2000)
    assert len(event["note"].encode()) <= 1024
    assert event["note"].endswith("...")
