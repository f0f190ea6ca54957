"""``EventRecorder``: ``events.k8s.io/v1`` Events about objects, repeats folded into a series.

What client-go's ``tools/events`` recorder does, and what ``kubectl describe``
shows under "Events": an Event names the object it is about (``regarding``),
the controller and instance that report it, a reason, an action and a note.
The same event again (same object, type, reason, action and note) within six
minutes is not a new object: the first one's ``series`` counts it, as
client-go's ``EventSeries`` does, so a controller that retries in a loop does
not flood etcd.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Literal

from attrs import define

from asyncpod import _json
from asyncpod._errors import AsyncpodError, InvalidNameError
from asyncpod._objects import metadata_of, micro_time
from asyncpod._paths import segment
from asyncpod._session import Session

logger = logging.getLogger("asyncpod")

# client-go: repeats within this window join the first event's series.
SERIES_WINDOW = 6 * 60.0
# The API server refuses a note over 1 kB (events.k8s.io validation).
MAX_NOTE = 1024
_REMEMBERED = 4096

EventType = Literal["Normal", "Warning"]


@define
class _Series:
    name: str
    namespace: str
    count: int
    first_seen: float


def object_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ObjectReference`` of an object, as ``regarding`` wants it."""
    metadata = metadata_of(obj, "the object of an event")
    reference = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "uid": metadata.get("uid"),
        "resourceVersion": metadata.get("resourceVersion"),
    }
    return {key: value for key, value in reference.items() if value}


class EventRecorder:
    """Publishes Events about objects for one controller instance.

    Args:
        session: the client whose credentials write the Events.
        controller: ``reportingController``, such as ``"example.com/mirror"``.
        instance: ``reportingInstance``, such as the pod's name.
        clock: the monotonic time source of the series window.
    """

    def __init__(
        self,
        session: Session,
        controller: str,
        instance: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self.controller = controller
        self.instance = instance
        self._clock = clock
        self._series: OrderedDict[tuple[Any, ...], _Series] = OrderedDict()

    async def publish(
        self,
        regarding: Mapping[str, Any],
        *,
        reason: str,
        action: str,
        note: str = "",
        type: EventType = "Normal",
    ) -> dict[str, Any]:
        """Record an event about ``regarding``; a repeat updates the first one's series.

        Returns:
            The Event as stored.

        Raises:
            InvalidNameError: ``type`` is not Normal or Warning, or the reason
                or action is empty (the API server would answer 422).
            APIError: the server refused the Event.
        """
        if type not in ("Normal", "Warning"):
            msg = f"an event's type must be 'Normal' or 'Warning', not {type!r}"
            raise InvalidNameError(msg)
        if not reason or not action:
            msg = "an event needs a reason and an action"
            raise InvalidNameError(msg)
        reference = object_reference(regarding)
        namespace = str(reference.get("namespace") or "default")
        note = _truncate(note)
        key = (
            reference.get("apiVersion"),
            reference.get("kind"),
            namespace,
            reference.get("name"),
            reference.get("uid"),
            type,
            reason,
            action,
            note,
        )
        now = self._clock()
        series = self._series.get(key)
        if series is not None and now - series.first_seen < SERIES_WINDOW:
            series.count += 1
            try:
                return await self._count(series)
            except AsyncpodError as exc:
                # The first event is gone (deleted, expired): start a new one.
                logger.info("updating the series of event %s failed: %s", series.name, exc)
        event = await self._create(reference, namespace, type, reason, action, note)
        self._series[key] = _Series(event["metadata"]["name"], namespace, 1, now)
        self._series.move_to_end(key)
        if len(self._series) > _REMEMBERED:
            self._series.popitem(last=False)
        return event

    async def _create(
        self,
        reference: dict[str, Any],
        namespace: str,
        type_: str,
        reason: str,
        action: str,
        note: str,
    ) -> dict[str, Any]:
        # client-go names an event "<object name>.<unix nanoseconds in hex>".
        name = f"{reference.get('name', 'event')}.{time.time_ns():x}"
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "eventTime": micro_time(),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "regarding": reference,
            "type": type_,
            "reason": reason,
            "action": action,
            "note": note,
        }
        response = await self._session.request("POST", _collection(namespace), json=body)
        created: dict[str, Any] = response.json()
        return created

    async def _count(self, series: _Series) -> dict[str, Any]:
        patch = {"series": {"count": series.count, "lastObservedTime": micro_time()}}
        path = f"{_collection(series.namespace)}/{segment(series.name, 'name')}"
        response = await self._session.request(
            "PATCH",
            path,
            content=_json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        updated: dict[str, Any] = response.json()
        return updated


def _collection(namespace: str) -> str:
    return f"/apis/events.k8s.io/v1/namespaces/{segment(namespace, 'namespace')}/events"


def _truncate(note: str) -> str:
    encoded = note.encode()
    if len(encoded) <= MAX_NOTE:
        return note
    return encoded[: MAX_NOTE - 3].decode("utf-8", errors="ignore") + "..."


__all__ = ["EventRecorder", "object_reference"]
