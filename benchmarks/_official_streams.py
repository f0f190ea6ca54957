"""The official client's ``stream()`` and ``portforward()``, measured in a process of its own.

Run by ``benchmarks/streams.py`` in the ``peers`` environment as
``python -m benchmarks._official_streams SPEC_JSON``; prints one JSON line of
results (``{"na": "why"}`` when the client is not installed). The spec names the
kubeconfig, the pod, its forwarded port (an echo server), the repetitions and
the sizes; the measures are those of asyncpod's rows in ``streams.py``, except
that port-forward is measured in exchanges (see ``_exchange``).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from typing import Any


def _exec_true(api: Any, stream: Any, pod: str, repeats: int) -> float:
    def once() -> None:
        client = stream(
            api.connect_get_namespaced_pod_exec,
            pod,
            "default",
            command=["true"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        client.run_forever(timeout=30)
        if client.returncode != 0:
            msg = f"exec true ended with {client.returncode}"
            raise RuntimeError(msg)

    once()  # warm up: connection pool, TLS session
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _round_trip(api: Any, stream: Any, pod: str, repeats: int) -> float:
    client = stream(
        api.connect_get_namespaced_pod_exec,
        pod,
        "default",
        command=["cat"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        binary=True,
        _preload_content=False,
    )
    times = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            client.write_stdin(b"x")
            got = b""
            while not got:
                got = client.read_stdout(timeout=10)
            times.append(time.perf_counter() - started)
    finally:
        client.close()
    return statistics.median(times) * 1000


STEP = 256 << 10
EXCHANGES_1 = "port-forward, 1 connection, 256 KiB exchanges, MB/s"
EXCHANGES_8 = "port-forward, 8 connections, 256 KiB exchanges, MB/s"


def _exchange(sock: Any, size: int) -> None:
    """Send 256 KiB, read its echo, and again: at most 256 KiB in flight.

    The client's proxy thread blocks in a send while it reads nothing, so a
    pump that keeps sending while the echo flows back deadlocks once the
    buffers on the way fill; exchanges never fill them.
    """
    block = os.urandom(STEP)
    for _ in range(size // STEP):
        sock.sendall(block)
        received = 0
        while received < STEP:
            data = sock.recv(STEP)
            if not data:
                msg = f"the forwarded connection ended after {received} bytes"
                raise RuntimeError(msg)
            received += len(data)


def _forward(api: Any, portforward: Any, pod: str, port: int, size: int, connections: int) -> float:
    forwards = [
        portforward(api.connect_get_namespaced_pod_portforward, pod, "default", ports=str(port))
        for _ in range(connections)
    ]
    sockets = [forward.socket(port) for forward in forwards]
    for sock in sockets:
        sock.setblocking(True)
    errors: list[BaseException] = []

    def run(sock: Any) -> None:
        try:
            _exchange(sock, size)
        except BaseException as exc:  # reported after the join, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(sock,)) for sock in sockets]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for sock in sockets:
        sock.close()
    if errors:
        raise errors[0]
    return connections * size / 1e6 / elapsed


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        import kubernetes
        from kubernetes import client, config
        from kubernetes.stream import portforward, stream
    except ImportError as exc:
        print(json.dumps({"na": f"the official client is not installed: {exc}"}))
        return
    configuration = client.Configuration()
    config.load_kube_config(config_file=spec["kubeconfig"], client_configuration=configuration)
    api = client.CoreV1Api(client.ApiClient(configuration))
    pod, port, repeats = spec["pod"], spec["port"], spec["repeats"]
    results = {
        "version": kubernetes.__version__,
        "exec true, ms": _exec_true(api, stream, pod, repeats),
        "1-byte round trip in a session, ms": _round_trip(api, stream, pod, repeats * 10),
        EXCHANGES_1: _forward(api, portforward, pod, port, 64 << 20, 1),
        EXCHANGES_8: _forward(api, portforward, pod, port, 16 << 20, 8),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
