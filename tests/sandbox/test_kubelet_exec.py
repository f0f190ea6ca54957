"""The sandbox kubelet's exec as other clients use it, and streams to pods not yet bound."""

from __future__ import annotations

import json

import anyio
import pytest

import asyncpod
from asyncpod.testing import Sandbox
from tests.helpers.raw_websocket import raw_websocket
from tests.helpers.sandbox import pod as pod_manifest

pytestmark = pytest.mark.anyio

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
# What kube-apiserver 1.36 answered (reference: exec-upgrade-pod-without-node-400.http).
NO_HOST = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "pod demo does not have a host assigned",
    "reason": "BadRequest",
    "code": 400,
}


def _exec_path(name: str, *command: str) -> str:
    args = "&".join(f"command={c}" for c in command)
    return f"/api/v1/namespaces/default/pods/{name}/exec?{args}&stdin=true&stdout=true&stderr=true"


@pytest.mark.parametrize("protocol", [V5, V4])
async def test_stdin_in_text_frames_reaches_the_process(sandbox: Sandbox, protocol: str) -> None:
    """A text frame on channel 0 is stdin, as the official Python client sends a str."""
    sandbox.create(pod_manifest("text"))
    sandbox.wait_running("text")
    async with raw_websocket(sandbox.proxy_url, _exec_path("text", "cat"), protocol) as (
        status,
        _,
        ws,
    ):
        assert status == 101
        assert ws is not None
        assert ws.subprotocol == protocol
        await ws.send_text("\x00line one\n")
        output = b""
        with anyio.fail_after(10):
            while output != b"line one\n":
                message = await ws.receive()
                assert message is not None
                assert message[0] == 1, message
                output += message[1:]
        if protocol == V5:
            await ws.send_binary(b"\xff\x00")  # close stdin: cat ends with 0
            with anyio.fail_after(10):
                message = await ws.receive()
            assert message is not None
            assert message[0] == 3
            assert json.loads(message[1:])["status"] == "Success"
        await ws.close()


@pytest.mark.parametrize("subresource", ["exec", "attach", "portforward"])
async def test_a_pod_without_a_node_is_refused_as_the_api_server_does(
    sandbox: Sandbox, subresource: str
) -> None:
    """No spec.nodeName (no kubelet): 400 "does not have a host assigned" before any upgrade."""
    sandbox.kubelet = False
    sandbox.create(pod_manifest("demo"))
    query = "ports=80" if subresource == "portforward" else "command=true&stdout=true"
    path = f"/api/v1/namespaces/default/pods/demo/{subresource}?{query}"
    offered = V4 if subresource == "portforward" else f"{V5},{V4}"
    async with raw_websocket(sandbox.proxy_url, path, offered) as (status, body, ws):
        assert ws is None
    assert status == 400
    assert json.loads(body) == NO_HOST


async def test_exec_works_once_the_kubelet_bound_the_pod(sandbox: Sandbox) -> None:
    """Refused while the pod is unbound; the same exec runs after the fake kubelet binds it."""
    sandbox.kubelet = False
    sandbox.create(pod_manifest("later"))
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        with pytest.raises(asyncpod.BadRequestError) as refused:
            await k8s.exec("later", ["echo", "hi"])
        assert "pod later does not have a host assigned" in str(refused.value)
        sandbox.kubelet = True
        sandbox.wait_running("later")
        result = await k8s.exec("later", ["echo", "hi"])
    assert (result.exit_code, result.stdout) == (0, b"hi\n")
