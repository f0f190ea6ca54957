"""The HTTP/1.1 side of an upgrade: the request head and a 101 followed by WebSocket bytes."""

from __future__ import annotations

import pytest
from asyncpod_transports._http11 import Exchange, upgrade_head

from asyncpod import Request

HEAD_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
)


def test_upgrade_head_asks_for_the_switch_once() -> None:
    """Connection: Upgrade and Upgrade: websocket are sent once, credentials kept for HTTPS."""
    request = Request(
        method="GET",
        target="/api/v1/namespaces/d/pods/w/exec?command=ls",
        headers={"Upgrade": "websocket", "Authorization": "Bearer t", "Connection": "close"},
        upgrade="websocket",
    )
    head = upgrade_head(request, "h:1", strip_credentials=False).decode()
    assert head.count("Upgrade: websocket") == 1
    assert "Connection: Upgrade\r\n" in head
    assert "Connection: close" not in head
    assert "Authorization: Bearer t" in head
    proxied = upgrade_head(request, "h:1", strip_credentials=True).decode()
    assert "Authorization" not in proxied


@pytest.mark.parametrize("split", [0, 10, len(HEAD_101), len(HEAD_101) + 2])
def test_bytes_after_a_101_are_kept_for_the_new_protocol(split: int) -> None:
    """WebSocket bytes that arrive with the 101 head are handed over, not parsed as HTTP."""
    frame = b"\x82\x03\x01hi"
    wire = HEAD_101 + frame
    exchange = Exchange()
    exchange.start("GET")
    exchange.feed(wire[:split]) if split else None
    exchange.feed(wire[split:])
    assert (exchange.status, exchange.head_complete) == (101, True)
    assert exchange.upgrade_tail == frame
