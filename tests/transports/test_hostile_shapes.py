"""Answers of the right JSON but the wrong shape: each is a ProtocolError that says what."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from asyncpod import ProtocolError
from tests.helpers.clients import make_client
from tests.servers.scripted import DISCOVERY, END, Step, event, scripted_server

pytestmark = pytest.mark.anyio


def _page(body: Any) -> tuple[int, Sequence[Step]]:
    return 200, [json.dumps(body).encode(), END]


def _list(items: Any, token: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": "10"}
    if token is not None:
        metadata["continue"] = token
    return {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": metadata, "items": items}


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ([{"metadata": {"name": "a"}}], "page 1 of the list .* is a JSON array"),
        (_list(["a", "b"]), "item 0 of page 1 .* is a JSON string"),
        (_list([{"metadata": {"name": "a"}}, 7]), "item 1 of page 1 .* is a JSON number"),
        (_list({"a": 1}), "items of page 1 .* are not a JSON array"),
        (_list([{"metadata": "a"}]), "metadata of item 0 .* is a JSON string"),
        ({**_list([]), "metadata": []}, "metadata of page 1 .* is a JSON array"),
    ],
    ids=["array-page", "string-items", "number-item", "object-items", "string-meta", "list-meta"],
)
async def test_malformed_list_page(anyio_backend: str, page: Any, message: str) -> None:
    """A list page of the wrong shape raises ProtocolError naming the part, not AttributeError."""
    async with (
        scripted_server(lambda params: _page(page)) as server,
        make_client(server.url) as k8s,
    ):
        with pytest.raises(ProtocolError, match=message):
            [item async for item in k8s.list("configmaps")]


async def test_a_repeated_continue_token_ends_the_list(anyio_backend: str) -> None:
    """A server that hands back the same continue token is caught on its second page."""

    def script(params: dict[str, str]) -> tuple[int, Sequence[Step]]:
        return _page(_list([{"metadata": {"name": "a", "resourceVersion": "1"}}], token="same"))

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        items = k8s.list("configmaps", chunk_size=1)
        assert (await items.__anext__())["metadata"]["name"] == "a"
        with pytest.raises(ProtocolError, match="makes no progress"):
            await items.__anext__()
        assert len(server.requests) == 2  # the first page, and the one that repeated the token


async def test_the_callers_deadline_holds_across_pages(anyio_backend: str) -> None:
    """A pager that never ends (a new token every page) stops at the caller's deadline."""

    def script(params: dict[str, str]) -> tuple[int, Sequence[Step]]:
        page = int(params.get("continue") or 0) + 1
        return _page(_list([{"metadata": {"name": f"cm-{page}"}}], token=str(page)))

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.move_on_after(1.0) as scope:
            async for _ in k8s.list("configmaps", chunk_size=1):
                pass
        assert scope.cancelled_caught
        assert len(server.requests) > 1


@pytest.mark.parametrize(
    "discovery",
    [
        {**DISCOVERY, "/api": "garbage"},
        {**DISCOVERY, "/api": {"versions": 5}},
        {**DISCOVERY, "/api/v1": {"resources": ["configmaps"]}},
        {**DISCOVERY, "/apis": {"groups": [3]}},
    ],
    ids=["api-string", "versions-number", "resources-strings", "groups-numbers"],
)
async def test_malformed_discovery(anyio_backend: str, discovery: dict[str, Any]) -> None:
    """Discovery documents of the wrong shape raise ProtocolError naming the document."""
    async with (
        scripted_server(lambda params: _page({}), discovery) as server,
        make_client(server.url) as k8s,
    ):
        with pytest.raises(ProtocolError, match=r"discovery document .* is malformed"):
            await k8s.get("configmaps", "x")
        assert server.requests == []  # nothing was sent past discovery


async def test_informer_event_with_string_metadata(anyio_backend: str) -> None:
    """An informer's watch event whose metadata is a string is a ProtocolError."""

    def script(params: dict[str, str]) -> tuple[int, Sequence[Step]]:
        if params.get("watch") != "true":
            return _page(_list([]))
        bad = json.dumps({"type": "ADDED", "object": {"metadata": "x"}}).encode() + b"\n"
        return 200, [event("BOOKMARK", 11), bad]

    async with (
        scripted_server(script) as server,
        make_client(server.url) as k8s,
        k8s.informer("configmaps") as informer,
    ):
        assert (await informer.__anext__()).type == "SYNCED"
        with pytest.raises(ProtocolError, match="metadata of the object of a ADDED event"):
            await informer.__anext__()
