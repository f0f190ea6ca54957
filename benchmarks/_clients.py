"""The clients under test, each configured as it would be in a Pod.

Each client does the same four things in its own idiomatic way: GET one pod,
LIST the pods of a namespace, WATCH them, and hold an idle watch open. Peers
use their typed APIs (objects are decoded into their models), because that is
what their users pay for.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio

Route = str  # "https", "proxy", "unix"

POD_NAME = "web-0"


@dataclass
class Context:
    """Where the server is and how a Pod would authenticate to it."""

    route: Route
    https_url: str
    http_url: str
    unix_socket: str
    ca_file: str
    token: str
    token_file: str
    kubeconfig: str
    proxy_kubeconfig: str
    connections: int = 100

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def base_url(self) -> str:
        if self.route == "https":
            return self.https_url
        if self.route == "proxy":
            return self.http_url
        return "http://localhost"

    def headers(self) -> dict[str, str]:
        if self.route == "https":
            return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        return {"Accept": "application/json"}


def pod_path(namespace: str, name: str = POD_NAME) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


class BenchClient:
    """The operations a workload needs; a subclass per library."""

    name: ClassVar[str]
    backend: ClassVar[str] = "asyncio"
    routes: ClassVar[tuple[Route, ...]] = ("https", "proxy", "unix")
    rotating_token: ClassVar[bool] = False
    # Which environment runs it (benchmarks/_envs.py): "user" is a plain
    # install of asyncpod, "peers" has the bench extra, "before" another revision.
    env: ClassVar[str] = "peers"
    # (decoder, HTTP engine) as the report names them, for clients without a runtime().
    stack: ClassVar[tuple[str, str]] = ("json", "?")

    def unavailable(self) -> str | None:
        """Why this client cannot run at all here, or ``None``."""
        return None

    def runtime(self) -> dict[str, str]:
        """The decoder and HTTP engine this client runs with, for the report's rows."""
        decoder, engine = self.stack
        return {"decoder": decoder, "engine": engine}

    async def open(self, ctx: Context) -> None:
        raise NotImplementedError

    async def get(self, namespace: str) -> None:
        raise NotImplementedError

    async def list(self, namespace: str) -> int:
        raise NotImplementedError

    async def watch(self, namespace: str, limit: int) -> int:
        raise NotImplementedError

    async def idle_watch(self, namespace: str) -> None:
        await self.watch(namespace, 1)

    async def aclose(self) -> None:
        return None

    note: str = ""
    events: int = 0  # watch events so far, also when a capped watch is cancelled


# --- asyncpod --------------------------------------------------------------


class Asyncpod(BenchClient):
    """asyncpod's ``Client`` on an engine and event loop (``None``: the default engine)."""

    engine: ClassVar[str | None] = None
    rotating_token = True
    env = "user"

    def runtime(self) -> dict[str, str]:
        import asyncpod
        from asyncpod import _json

        # An older revision (--before) may not have describe().
        describe = getattr(_json, "describe", lambda: str(getattr(_json, "ENGINE", "?")))
        return {
            "decoder": describe(),
            "engine": asyncpod.choose_engine(self.backend, self.engine),  # type: ignore[arg-type]
            "asyncpod": f"{asyncpod.__version__} from {Path(asyncpod.__file__).parent}",
        }

    def unavailable(self) -> str | None:
        if self.engine in (None, "aiohttp"):
            return None
        try:
            from asyncpod_transports import create_transport

            from asyncpod import HTTPSEndpoint, StaticTLS

            endpoint = HTTPSEndpoint("https://127.0.0.1:1", StaticTLS(ssl.create_default_context()))
            create_transport(endpoint, engine=self.engine)  # type: ignore[arg-type]
        except Exception as exc:
            return f"engine {self.engine!r} not available ({type(exc).__name__})"
        return None

    async def open(self, ctx: Context) -> None:
        import asyncpod

        if ctx.route == "https":
            config = asyncpod.Config.https(
                ctx.https_url, token_file=ctx.token_file, ca_file=ctx.ca_file
            )
        elif ctx.route == "proxy":
            config = asyncpod.Config.proxy(ctx.http_url)
        else:
            config = asyncpod.Config.unix_socket(ctx.unix_socket)
        self.client = asyncpod.Client(
            config,
            engine=self.engine,  # type: ignore[arg-type]
            max_connections=ctx.connections,
            timeout=60.0,
        )
        await self.client.__aenter__()
        self.has_watch = hasattr(self.client, "watch")
        notes = []
        if not self.has_watch:
            notes.append("W3/W5 through Client.stream (Client.watch not available)")
        if ctx.route == "https" and type(self.client._auth).__name__ == "StaticToken":
            notes.append("the token file is read once (no rotating token file)")
        self.note = "; ".join(notes)

    async def get(self, namespace: str) -> None:
        await self.client.get_json(pod_path(namespace))

    async def list(self, namespace: str) -> int:
        return len((await self.client.get_json(pods_path(namespace)))["items"])

    async def watch(self, namespace: str, limit: int) -> int:
        count = 0
        if self.has_watch:
            async for _event in self.client.watch("pods", namespace=namespace):
                count += 1
                self.events = count
                if count >= limit:
                    break
            return count
        from asyncpod import _json

        params = {"watch": "true", "allowWatchBookmarks": "true"}
        async with self.client.stream("GET", pods_path(namespace), params=params) as response:
            async for line in response.aiter_lines():
                _json.loads(line)
                count += 1
                self.events = count
                if count >= limit:
                    break
        return count

    async def aclose(self) -> None:
        await self.client.aclose()


class AsyncpodAiohttp(Asyncpod):
    engine = "aiohttp"


class AsyncpodAnyio(Asyncpod):
    engine = "anyio"


class AsyncpodTrio(Asyncpod):
    backend = "trio"


class AsyncpodBefore(Asyncpod):
    """The default engine of another revision (``--before REF``), installed the same way."""

    env = "before"


class AsyncpodBeforeTrio(AsyncpodBefore):
    backend = "trio"


# --- raw aiohttp -------------------------------------------------------------


class Aiohttp(BenchClient):
    """Raw aiohttp, the reference: one session, ``resp.json()``."""

    env = "user"

    def runtime(self) -> dict[str, str]:
        import aiohttp

        return {"decoder": "json", "engine": f"aiohttp {aiohttp.__version__}"}

    async def open(self, ctx: Context) -> None:
        import aiohttp

        if ctx.route == "unix":
            connector: aiohttp.BaseConnector = aiohttp.UnixConnector(
                path=ctx.unix_socket, limit=ctx.connections
            )
        else:
            connector = aiohttp.TCPConnector(limit=ctx.connections, ssl=ctx.ssl_context())
        self.base = ctx.base_url()
        self.session = aiohttp.ClientSession(connector=connector, headers=ctx.headers())

    def decode(self, body: bytes) -> Any:
        return json.loads(body)

    async def get(self, namespace: str) -> None:
        async with self.session.get(self.base + pod_path(namespace)) as resp:
            resp.raise_for_status()
            self.decode(await resp.read())

    async def list(self, namespace: str) -> int:
        async with self.session.get(self.base + pods_path(namespace)) as resp:
            resp.raise_for_status()
            return len(self.decode(await resp.read())["items"])

    async def watch(self, namespace: str, limit: int) -> int:
        count = 0
        url = self.base + pods_path(namespace)
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        async with self.session.get(url, params=params) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                self.decode(line)
                count += 1
                self.events = count
                if count >= limit:
                    break
        return count

    async def aclose(self) -> None:
        await self.session.close()


class AiohttpMsgspec(Aiohttp):
    """Raw aiohttp decoding with msgspec: the fastest-decoder reference."""

    env = "peers"

    def runtime(self) -> dict[str, str]:
        import msgspec

        return {**super().runtime(), "decoder": f"msgspec {msgspec.__version__}"}

    async def open(self, ctx: Context) -> None:
        import msgspec

        self._decoder = msgspec.json.Decoder()
        await super().open(ctx)

    def decode(self, body: bytes) -> Any:
        return self._decoder.decode(body)


# --- raw httpx ---------------------------------------------------------------


class Httpx(BenchClient):
    """Raw httpx, one ``AsyncClient``."""

    stack = ("json", "httpx")

    async def open(self, ctx: Context) -> None:
        import httpx

        limits = httpx.Limits(
            max_connections=ctx.connections, max_keepalive_connections=ctx.connections
        )
        if ctx.route == "unix":
            transport = httpx.AsyncHTTPTransport(uds=ctx.unix_socket, limits=limits)
            self.client = httpx.AsyncClient(
                transport=transport, base_url=ctx.base_url(), headers=ctx.headers()
            )
        else:
            self.client = httpx.AsyncClient(
                base_url=ctx.base_url(),
                headers=ctx.headers(),
                verify=ctx.ssl_context(),
                limits=limits,
                timeout=None,
            )

    async def get(self, namespace: str) -> None:
        resp = await self.client.get(pod_path(namespace))
        resp.raise_for_status()
        resp.json()

    async def list(self, namespace: str) -> int:
        resp = await self.client.get(pods_path(namespace))
        resp.raise_for_status()
        return len(resp.json()["items"])

    async def watch(self, namespace: str, limit: int) -> int:
        count = 0
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        async with self.client.stream("GET", pods_path(namespace), params=params) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                json.loads(line)
                count += 1
                self.events = count
                if count >= limit:
                    break
        return count

    async def aclose(self) -> None:
        await self.client.aclose()


# --- kubernetes_asyncio -------------------------------------------------------


class KubernetesAsyncio(BenchClient):
    """kubernetes_asyncio from a kubeconfig (token + CA), typed models."""

    stack = ("json + models", "aiohttp")

    routes = ("https", "proxy")

    async def open(self, ctx: Context) -> None:
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        path = ctx.kubeconfig if ctx.route == "https" else ctx.proxy_kubeconfig
        await config.load_kube_config(config_file=path, client_configuration=configuration)
        configuration.connection_pool_maxsize = ctx.connections
        self.api_client = client.ApiClient(configuration)
        self.v1 = client.CoreV1Api(self.api_client)

    async def get(self, namespace: str) -> None:
        await self.v1.read_namespaced_pod(POD_NAME, namespace)

    async def list(self, namespace: str) -> int:
        return len((await self.v1.list_namespaced_pod(namespace)).items)

    async def watch(self, namespace: str, limit: int) -> int:
        from kubernetes_asyncio import watch

        count = 0
        async with watch.Watch() as w:
            async for _event in w.stream(self.v1.list_namespaced_pod, namespace):
                count += 1
                self.events = count
                if count >= limit:
                    break
        return count

    async def aclose(self) -> None:
        await self.api_client.close()


# --- lightkube --------------------------------------------------------------


class Lightkube(BenchClient):
    """lightkube's ``AsyncClient`` from a kubeconfig, typed models."""

    stack = ("json + models", "httpx")

    routes = ("https", "proxy")

    async def open(self, ctx: Context) -> None:
        from lightkube import AsyncClient, KubeConfig

        path = ctx.kubeconfig if ctx.route == "https" else ctx.proxy_kubeconfig
        self.client = AsyncClient(config=KubeConfig.from_file(path), timeout=None)

    async def get(self, namespace: str) -> None:
        from lightkube.resources.core_v1 import Pod

        await self.client.get(Pod, POD_NAME, namespace=namespace)

    async def list(self, namespace: str) -> int:
        from lightkube.resources.core_v1 import Pod

        return len([pod async for pod in self.client.list(Pod, namespace=namespace)])

    async def watch(self, namespace: str, limit: int) -> int:
        from lightkube.resources.core_v1 import Pod

        count = 0
        async for _event in self.client.watch(Pod, namespace=namespace):
            count += 1
            self.events = count
            if count >= limit:
                break
        return count

    async def aclose(self) -> None:
        await self.client.close()


# --- kr8s ------------------------------------------------------------------


class Kr8s(BenchClient):
    """kr8s (asyncio API) from a kubeconfig; its objects wrap dicts."""

    stack = ("json", "httpx")

    routes = ("https", "proxy")

    async def open(self, ctx: Context) -> None:
        import kr8s.asyncio

        path = ctx.kubeconfig if ctx.route == "https" else ctx.proxy_kubeconfig
        self.api = await kr8s.asyncio.api(kubeconfig=path)

    async def get(self, namespace: str) -> None:
        from kr8s.asyncio.objects import Pod

        await Pod.get(POD_NAME, namespace=namespace, api=self.api)

    async def list(self, namespace: str) -> int:
        return len([pod async for pod in self.api.get("pods", namespace=namespace)])

    async def watch(self, namespace: str, limit: int) -> int:
        count = 0
        async for _event in self.api.watch("pods", namespace=namespace):
            count += 1
            self.events = count
            if count >= limit:
                break
        return count


# --- the official client, on a thread pool ------------------------------------


class Kubernetes(BenchClient):
    """The official ``kubernetes`` client (sync), driven through a thread pool."""

    stack = ("json + models", "urllib3 threads")

    routes = ("https", "proxy")

    async def open(self, ctx: Context) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        path = ctx.kubeconfig if ctx.route == "https" else ctx.proxy_kubeconfig
        config.load_kube_config(config_file=path, client_configuration=configuration)
        configuration.connection_pool_maxsize = ctx.connections
        self.api_client = client.ApiClient(configuration)
        self.v1 = client.CoreV1Api(self.api_client)
        self.limiter = anyio.CapacityLimiter(ctx.connections)

    async def get(self, namespace: str) -> None:
        await anyio.to_thread.run_sync(
            self.v1.read_namespaced_pod, POD_NAME, namespace, limiter=self.limiter
        )

    async def list(self, namespace: str) -> int:
        result = await anyio.to_thread.run_sync(
            self.v1.list_namespaced_pod, namespace, limiter=self.limiter
        )
        return len(result.items)

    async def watch(self, namespace: str, limit: int) -> int:
        def run() -> int:
            from kubernetes import watch

            count = 0
            w = watch.Watch()
            for _event in w.stream(self.v1.list_namespaced_pod, namespace):
                count += 1
                self.events = count
                if count >= limit:
                    w.stop()
                    break
            return count

        return await anyio.to_thread.run_sync(run, limiter=self.limiter, abandon_on_cancel=True)


def _named(cls: type[BenchClient], name: str) -> type[BenchClient]:
    cls.name = name
    return cls


CLIENTS: dict[str, type[BenchClient]] = {
    "asyncpod": _named(Asyncpod, "asyncpod"),
    "asyncpod-aiohttp": _named(AsyncpodAiohttp, "asyncpod-aiohttp"),
    "asyncpod-anyio": _named(AsyncpodAnyio, "asyncpod-anyio"),
    "asyncpod-trio": _named(AsyncpodTrio, "asyncpod-trio"),
    "asyncpod-before": _named(AsyncpodBefore, "asyncpod-before"),
    "asyncpod-before-trio": _named(AsyncpodBeforeTrio, "asyncpod-before-trio"),
    "aiohttp": _named(Aiohttp, "aiohttp"),
    "aiohttp-msgspec": _named(AiohttpMsgspec, "aiohttp-msgspec"),
    "httpx": _named(Httpx, "httpx"),
    "kubernetes_asyncio": _named(KubernetesAsyncio, "kubernetes_asyncio"),
    "lightkube": _named(Lightkube, "lightkube"),
    "kr8s": _named(Kr8s, "kr8s"),
    "kubernetes": _named(Kubernetes, "kubernetes"),
}

DESCRIPTIONS = {
    "asyncpod": "asyncpod as installed, default engine on asyncio",
    "asyncpod-aiohttp": "asyncpod, aiohttp engine (asyncio)",
    "asyncpod-anyio": "asyncpod, anyio engine on asyncio",
    "asyncpod-trio": "asyncpod as installed, on trio (the anyio engine)",
    "asyncpod-before": "asyncpod of the --before revision, default engine on asyncio",
    "asyncpod-before-trio": "asyncpod of the --before revision, on trio",
    "aiohttp": "raw aiohttp, json.loads (the reference)",
    "aiohttp-msgspec": "raw aiohttp, msgspec decoding",
    "httpx": "raw httpx, json.loads",
    "kubernetes_asyncio": "kubernetes_asyncio, typed models",
    "lightkube": "lightkube AsyncClient, typed models",
    "kr8s": "kr8s (asyncio API), dict-backed objects",
    "kubernetes": "official kubernetes client on a thread pool",
}
