"""The channel protocol, sans-IO: handshake, framing, channels, close signal, Status."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from asyncpod import AsyncpodError
from asyncpod._websocket import (
    EXEC_PROTOCOLS,
    MAX_MESSAGE,
    V4,
    V5,
    ChannelClosed,
    ChannelConnection,
    ChannelData,
    ConnectionClosed,
    StreamProtocolError,
    accept_for,
    check_handshake,
    exit_code_of,
    handshake_headers,
    parse_status,
)


def _server() -> Protocol:
    return Protocol(Side.SERVER, state=State.OPEN, max_size=None)


def _server_bytes(*messages: bytes) -> bytes:
    server = _server()
    for message in messages:
        server.send_binary(message)
    return b"".join(server.data_to_send())


def _messages_received_by_server(wire: bytes) -> list[Frame]:
    server = _server()
    server.receive_data(wire)
    return [f for f in server.events_received() if isinstance(f, Frame)]


def test_accept_matches_rfc_6455_example() -> None:
    """Sec-WebSocket-Accept is computed as RFC 6455 section 1.3 shows."""
    assert accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_offers_v5_and_v4_in_one_header() -> None:
    """Both channel protocols go in one comma-separated header, v5 first."""
    headers, accept = handshake_headers(EXEC_PROTOCOLS)
    assert headers["Sec-WebSocket-Protocol"] == "v5.channel.k8s.io, v4.channel.k8s.io"
    assert headers["Sec-WebSocket-Version"] == "13"
    assert accept == accept_for(headers["Sec-WebSocket-Key"])


@pytest.mark.parametrize(
    ("chosen", "accept_ok", "error"),
    [
        (V5, True, None),
        (V4, True, None),
        ("", True, "chose the subprotocol none"),
        ("base64.channel.k8s.io", True, "chose the subprotocol 'base64.channel.k8s.io'"),
        (V5, False, "wrong Sec-WebSocket-Accept"),
    ],
)
def test_check_handshake_table(chosen: str, accept_ok: bool, error: str | None) -> None:
    """The 101 must prove it is a WebSocket and name a protocol that was offered."""
    headers = {"sec-websocket-accept": "right" if accept_ok else "wrong"}
    if chosen:
        headers["sec-websocket-protocol"] = chosen
    if error is None:
        assert check_handshake(headers, "right", EXEC_PROTOCOLS, "GET /x") == chosen
    else:
        with pytest.raises(StreamProtocolError, match=error):
            check_handshake(headers, "right", EXEC_PROTOCOLS, "GET /x")


@given(st.lists(st.integers(0, 200), max_size=20))
def test_chunking_never_changes_events(cuts: list[int]) -> None:
    """However the bytes are split, the same channel events come out."""
    wire = _server_bytes(b"\x01out", b"\x02err", b"\xff\x01", b"\x03{}")
    connection = ChannelConnection(V5)
    events: list[Any] = []
    previous = 0
    for cut in [*sorted(min(c, len(wire)) for c in cuts), len(wire)]:
        events += connection.receive_data(wire[previous:cut]) if cut > previous else []
        previous = max(previous, cut)
    assert events == [
        ChannelData(1, b"out"),
        ChannelData(2, b"err"),
        ChannelClosed(1),
        ChannelData(3, b"{}"),
    ]


def test_close_signal_is_data_on_v4() -> None:
    """On v4 byte 255 is no close signal (v4 has none): it is an ordinary channel."""
    connection = ChannelConnection(V4)
    assert connection.receive_data(_server_bytes(b"\xff\x01")) == [ChannelData(255, b"\x01")]


def test_fragmented_message_is_one_channel_message() -> None:
    """A message in continuation frames is joined before its channel byte is read."""
    server = _server()
    server.send_binary(b"\x01hel", fin=False)
    server.send_continuation(b"lo", fin=True)
    connection = ChannelConnection(V5)
    assert connection.receive_data(b"".join(server.data_to_send())) == [ChannelData(1, b"hello")]


def test_send_splits_into_32_kib_messages() -> None:
    """Large stdin goes out in messages of at most 32 KiB, channel byte included, masked."""
    connection = ChannelConnection(V5)
    data = bytes(range(256)) * 1000
    connection.send(0, data)
    frames = _messages_received_by_server(connection.data_to_send())
    assert all(len(f.data) <= MAX_MESSAGE for f in frames)
    assert all(f.data[0] == 0 for f in frames)
    assert b"".join(f.data[1:] for f in frames) == data


def test_close_channel_sends_the_v5_signal() -> None:
    """close_channel(0) sends [255, 0] on v5."""
    connection = ChannelConnection(V5)
    connection.close_channel(0)
    assert [f.data for f in _messages_received_by_server(connection.data_to_send())] == [
        b"\xff\x00"
    ]


def test_close_channel_on_v4_is_refused() -> None:
    """v4 cannot half-close stdin: a clear error names both protocols."""
    connection = ChannelConnection(V4)
    with pytest.raises(AsyncpodError, match=r"v4\.channel\.k8s\.io.*v5\.channel\.k8s\.io"):
        connection.close_channel(0)


def test_resize_message() -> None:
    """resize(w, h) sends {"Width": w, "Height": h} on channel 4."""
    connection = ChannelConnection(V5)
    connection.resize(120, 40)
    (frame,) = _messages_received_by_server(connection.data_to_send())
    assert frame.data[0] == 4
    assert json.loads(frame.data[1:]) == {"Width": 120, "Height": 40}


def test_ping_and_pong() -> None:
    """ping() queues a ping; the server's ping is answered with a pong."""
    connection = ChannelConnection(V5)
    connection.ping()
    (frame,) = _messages_received_by_server(connection.data_to_send())
    assert frame.opcode is Opcode.PING
    server = _server()
    server.send_ping(b"k")
    assert connection.receive_data(b"".join(server.data_to_send())) == []
    (pong,) = _messages_received_by_server(connection.data_to_send())
    assert (pong.opcode, pong.data) == (Opcode.PONG, b"k")


def test_port_prefix_is_removed_once_per_channel() -> None:
    """Port-forward: the first message of each channel carries the port, which is dropped."""
    connection = ChannelConnection(V4, port_prefixed=True)
    wire = _server_bytes(b"\x00\x50\x00", b"\x01\x50\x00", b"\x00data", b"\x00\x50\x00x")
    assert connection.receive_data(wire) == [ChannelData(0, b"data"), ChannelData(0, b"\x50\x00x")]


def test_close_frame_and_eof_end_the_connection() -> None:
    """A close frame gives ConnectionClosed with its code; EOF without one gives it too."""
    server = _server()
    server.send_close(1000, "done")
    connection = ChannelConnection(V5)
    assert connection.receive_data(b"".join(server.data_to_send())) == [
        ConnectionClosed(1000, "done")
    ]
    other = ChannelConnection(V5)
    (event,) = other.receive_data(b"")
    assert isinstance(event, ConnectionClosed)
    assert event.code is None


def test_masked_frame_from_server_is_a_protocol_error() -> None:
    """A server that masks its frames breaks RFC 6455 5.1: StreamProtocolError."""
    client_side = Protocol(Side.CLIENT, state=State.OPEN)
    client_side.send_binary(b"\x01x")
    connection = ChannelConnection(V5)
    with pytest.raises(StreamProtocolError, match="WebSocket protocol"):
        connection.receive_data(b"".join(client_side.data_to_send()))


def _failure(code: str) -> dict[str, Any]:
    return {
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code}]},
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({}, 0),
        ({"status": "Success"}, 0),
        (_failure("1"), 1),
        (_failure("137"), 137),
        (_failure("x"), None),
        ({"status": "Failure", "reason": "InternalError", "message": "no such file"}, None),
        ({"status": "Failure", "reason": "NonZeroExitCode", "details": {}}, None),
    ],
)
def test_exit_code_table(status: dict[str, Any], code: int | None) -> None:
    """The exit code comes from the ExitCode cause of a NonZeroExitCode Status only."""
    assert exit_code_of(status) == code


def test_parse_status_keeps_plain_text_as_the_message() -> None:
    """A JSON Status is decoded; plain text (pre-v4 servers) becomes a Failure's message."""
    assert parse_status(b'{"status":"Success"}') == {"status": "Success"}
    assert parse_status(b"") == {}
    assert parse_status(b"boom") == {"status": "Failure", "message": "boom"}
