"""The sans-IO watch decoder: framing, bounds, and chunking independence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncpod import ProtocolError, WatchDecoder, WatchEvent
from asyncpod._status import status_error
from asyncpod._watch import decode_event

# Recorded from a real kube-apiserver v1.36.
REFERENCE = Path(__file__).parent / "data"


def _event(kind: str, name: str, rv: int, note: str = "") -> bytes:
    obj = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "resourceVersion": str(rv)},
        # JSON strings may hold other line separators; only b"\n" splits.
        "data": {"note": note + "\u2028\u2029\r\x85"},
    }
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


BODY = b"".join(
    _event(kind, f"cm-{i}", 100 + i, "é" * i)
    for i, kind in enumerate(["ADDED", "MODIFIED", "DELETED", "ADDED", "BOOKMARK"] * 3)
)


def _decode_with_cuts(body: bytes, cuts: list[int]) -> list[WatchEvent]:
    decoder = WatchDecoder()
    events: list[WatchEvent] = []
    start = 0
    for cut in sorted(cuts):
        events += decoder.feed(body[start:cut])
        start = cut
    events += decoder.feed(body[start:])
    events += decoder.close()
    return events


EXPECTED = _decode_with_cuts(BODY, [])


def test_decodes_every_event_in_order() -> None:
    """Fifteen lines give fifteen events, in the order they were sent."""
    assert [e.object["metadata"]["name"] for e in EXPECTED] == [f"cm-{i}" for i in range(15)]
    assert EXPECTED[4].type == "BOOKMARK"


@given(st.lists(st.integers(0, len(BODY))))
def test_chunking_never_changes_events(cuts: list[int]) -> None:
    """Wherever the chunks split, the same events come out."""
    assert _decode_with_cuts(BODY, cuts) == EXPECTED


def test_one_byte_at_a_time_equals_whole() -> None:
    """Feeding byte by byte equals feeding the whole body."""
    decoder = WatchDecoder()
    events: list[WatchEvent] = []
    for i in range(len(BODY)):
        events += decoder.feed(BODY[i : i + 1])
    assert events == EXPECTED
    assert decoder.pending == 0


def test_final_line_without_newline_is_decoded_at_close() -> None:
    """A last event without its newline comes out of close()."""
    decoder = WatchDecoder()
    assert decoder.feed(BODY[:-1]) == EXPECTED[:-1]
    assert decoder.close() == EXPECTED[-1:]


def test_body_cut_inside_an_event_is_a_protocol_error() -> None:
    """A body that ends mid-event raises ProtocolError at close()."""
    decoder = WatchDecoder()
    decoder.feed(BODY[:50])
    with pytest.raises(ProtocolError):
        decoder.close()


def test_blank_lines_and_crlf_are_ignored() -> None:
    """Empty lines between events and a trailing CR do not produce events."""
    line = _event("ADDED", "a", 1)
    decoder = WatchDecoder()
    events = decoder.feed(b"\n\r\n" + line[:-1] + b"\r\n\n")
    assert [e.type for e in events] == ["ADDED"]


def test_line_longer_than_max_object_size_is_refused() -> None:
    """A line beyond max_object_size raises, even before its newline arrives."""
    decoder = WatchDecoder(max_object_size=100)
    with pytest.raises(ProtocolError, match="max_object_size"):
        decoder.feed(b"{" + b" " * 200)


def test_no_lower_limit_than_max_object_size() -> None:
    """A 5 MiB event passes with the default limit."""
    big = _event("ADDED", "big", 1, "x" * (5 * 1024 * 1024))
    decoder = WatchDecoder()
    events = []
    for i in range(0, len(big), 65536):
        events += decoder.feed(big[i : i + 65536])
    assert len(events) == 1
    assert len(events[0].object["data"]["note"]) > 5 * 1024 * 1024


@pytest.mark.parametrize(
    "line",
    [b"not json", b"[1,2]", b'{"type":"ADDED"}', b'{"type":"WHAT","object":{}}'],
)
def test_malformed_events_are_protocol_errors(line: bytes) -> None:
    """Lines that are not watch events raise ProtocolError."""
    with pytest.raises(ProtocolError):
        decode_event(line)


def _reference_chunks(name: str) -> list[bytes]:
    """The chunked body of a recorded watch, one bytes per HTTP chunk."""
    raw = (REFERENCE / name).read_bytes()
    body = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[1]
    chunks = []
    while True:
        size_line, _, body = body.partition(b"\n")
        size = int(size_line.strip() or b"0", 16)
        if size == 0:
            return chunks
        chunks.append(body[:size])
        body = body[size:].lstrip(b"\r\n")


def test_recorded_watch_splits_an_event_across_chunks() -> None:
    """The recorded stream ends its initial events with the initial-events-end bookmark."""
    chunks = _reference_chunks("watch-configmaps-rv0.http")
    decoder = WatchDecoder()
    events = [e for c in chunks for e in decoder.feed(c)] + decoder.close()
    assert [e.type for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[-1].is_initial_events_end
    assert events[-1].resource_version == "249"


def test_recorded_410_error_event_maps_to_gone() -> None:
    """The recorded ERROR event with code 410 becomes a GoneError."""
    chunks = _reference_chunks("watch-configmaps-rv-too-old-410-in-stream.http")
    decoder = WatchDecoder()
    (event,) = [e for c in chunks for e in decoder.feed(c)]
    error = status_error(event.object)
    assert type(error).__name__ == "GoneError"
    assert error.status == 410
    assert error.reason == "Expired"


BAD_LINES = [
    b"not json\n",
    b"[1,2]\n",
    b'{"type":"WHAT","object":{}}\n',
    b"{" + b"x" * 3000 + b"\n",  # longer than the decoder's max_object_size below
]


def _feed_until_error(
    body: bytes, cuts: list[int]
) -> tuple[list[WatchEvent], ProtocolError | None]:
    """Feed ``body`` cut at ``cuts`` as a watch does; the events, and the error that ended it."""
    decoder = WatchDecoder(max_object_size=2000)
    events: list[WatchEvent] = []
    start = 0
    try:
        for cut in [*sorted(cuts), len(body)]:
            events += decoder.feed(body[start:cut])
            start = cut
            if decoder.error is not None:
                raise decoder.error
        events += decoder.close()
    except ProtocolError as exc:
        return events, exc
    return events, None


@given(st.lists(st.integers(0, len(BODY))))
def test_lazy_lines_give_the_same_events(cuts: list[int]) -> None:
    """lines() then decode_event, as a watch reads, gives feed()'s events for any chunking."""
    decoder = WatchDecoder()
    lines: list[bytes] = []
    start = 0
    for cut in [*sorted(cuts), len(BODY)]:
        lines += decoder.lines(BODY[start:cut])
        start = cut
    assert [decode_event(line) for line in lines] + decoder.close() == EXPECTED


def test_lazy_lines_skip_blank_lines_and_refuse_long_ones() -> None:
    """lines() drops blank and CR-only lines and raises on a line beyond max_object_size."""
    line = _event("ADDED", "a", 1)
    decoder = WatchDecoder(max_object_size=len(line) + 10)
    assert decoder.lines(b"\n\r\n" + line[:-1] + b"\r\n \n") == [line[:-1] + b"\r"]
    with pytest.raises(ProtocolError, match="max_object_size"):
        decoder.lines(b"{" + b" " * (len(line) + 20))
    assert decoder.pending == 0


@given(
    good=st.integers(0, 4),
    bad=st.sampled_from(BAD_LINES),
    cuts=st.lists(st.integers(0, len(BODY) + 4000)),
)
def test_events_before_a_bad_line_come_out_first(good: int, bad: bytes, cuts: list[int]) -> None:
    """Wherever the chunks split, the events before a bad line come out, then ProtocolError."""
    before = b"".join(_event("ADDED", f"cm-{i}", 100 + i) for i in range(good))
    body = before + bad + _event("ADDED", "after", 200)
    events, error = _feed_until_error(body, [c for c in cuts if c <= len(body)])
    assert [e.object["metadata"]["name"] for e in events] == [f"cm-{i}" for i in range(good)]
    assert isinstance(error, ProtocolError)


def test_a_kept_error_is_raised_by_every_later_call() -> None:
    """After a bad line, feed() and close() raise the same ProtocolError; nothing else decodes."""
    decoder = WatchDecoder()
    events = decoder.feed(_event("ADDED", "a", 1) + b"not json\n" + _event("ADDED", "b", 2))
    assert [e.object["metadata"]["name"] for e in events] == ["a"]
    assert isinstance(decoder.error, ProtocolError)
    with pytest.raises(ProtocolError) as fed:
        decoder.feed(_event("ADDED", "c", 3))
    with pytest.raises(ProtocolError) as closed:
        decoder.close()
    assert fed.value is closed.value is decoder.error
    assert decoder.pending == 0
