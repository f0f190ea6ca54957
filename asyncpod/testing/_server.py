"""The HTTP entry of the sandbox: authentication, impersonation, faults, routing, dispatch.

The verbs, the watch server, subresources and representations live in their
own modules; this one reads requests and writes answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from asyncpod import _json
from asyncpod.testing import _discovery, _jwt, _openapi, _reviews, _status, _verbs
from asyncpod.testing._auth import ADMIN, ANONYMOUS, PUBLIC_PATHS, User
from asyncpod.testing._faults import Drop, Fault, RequestRecord, abort, drop, injected_error
from asyncpod.testing._objects import Stored
from asyncpod.testing._podlogs import serve_log
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._routes import TRUE, Route, parse_rest, verb_of
from asyncpod.testing._status import StatusError
from asyncpod.testing._subresources import evict, scale_of, token_request, update_scale
from asyncpod.testing._tables import encode_list, render_list, render_object
from asyncpod.testing._watchserver import serve_watch

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox

logger = logging.getLogger("asyncpod.testing")

JSON = "application/json"
NOT_FOUND_TEXT = b"404 page not found\n"
# Flow-control identities: the real server sends the uid of the FlowSchema and
# PriorityLevel that admitted a request; admins ("exempt") and others differ.
_PF_EXEMPT = ("36df030f-8a80-4737-9877-812374b12509", "ee0700f5-bf29-45f5-aba3-6e0613a9926f")
_PF_SERVICE_ACCOUNTS = (
    "305fe1e1-1742-411a-ba5b-ad74aa5f77b0",
    "cbb5d065-17e7-445c-8023-1b3b176d1e7e",
)


class Handler:
    """Answers the requests of one listener (``"https"``, ``"proxy"`` or ``"unix"``)."""

    def __init__(self, sandbox: Sandbox, listener: str) -> None:
        self.sb = sandbox
        self.store = sandbox._store
        self.listener = listener
        self.authenticated = listener == "https"

    # ---- responses

    def _headers(self, audit_id: str, user: User | None, content_type: str) -> dict[str, str]:
        """The headers every answer of the API server carries (audit id, flow-control uids)."""
        headers = {"Audit-Id": audit_id, "Cache-Control": "no-cache, private"}
        headers["Content-Type"] = content_type
        if user is not None:
            pf = _PF_EXEMPT if user is ADMIN else _PF_SERVICE_ACCOUNTS
            headers["X-Kubernetes-Pf-Flowschema-Uid"] = pf[0]
            headers["X-Kubernetes-Pf-Prioritylevel-Uid"] = pf[1]
        return headers

    def _error(self, err: StatusError, audit_id: str, user: User | None) -> web.Response:
        """Imitates the API server's error answers: a ``Status`` body with the HTTP code."""
        headers = self._headers(audit_id, user, JSON)
        if err.status == 403:
            headers["X-Content-Type-Options"] = "nosniff"
        headers.update(err.headers)
        return web.Response(status=err.status, body=_json.dumps(err.body), headers=headers)

    def _not_found_text(self, audit_id: str, user: User | None) -> web.Response:
        """Imitates the plain-text 404 of a path outside the resource API."""
        headers = self._headers(audit_id, user, "text/plain; charset=utf-8")
        headers["X-Content-Type-Options"] = "nosniff"
        return web.Response(status=404, body=NOT_FOUND_TEXT, headers=headers)

    # ---- entry point

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Imitates the filter chain: faults, authentication, impersonation, then routing."""
        started = time.time()
        audit_id = self.sb._audit_ids()
        method = request.method
        path = request.path
        query = request.query
        user: User | None = None
        answer = 0
        try:
            fault = self.sb.faults.take(
                method, path, watch=query.get("watch") in TRUE or "/watch/" in path
            )
            if fault is not None:
                response = await self._fault(request, fault, audit_id)
                if response is not None:
                    answer = response.status
                    return response
            if self.authenticated:
                user = self.sb._authenticator.authenticate(request.headers.get("Authorization"))
                if user is None:
                    response = self._error(_status.unauthorized(), audit_id, None)
                    answer = 401
                    return response
            else:
                user = ADMIN
            if "Impersonate-User" in request.headers:
                user = self._impersonate(request, user)
            response = await self._route(request, method, path, query, user, audit_id, fault)
            answer = response.status
            if fault is not None and fault.kind == "drop_after":
                drop()
            return response
        except StatusError as err:
            answer = err.status
            return self._error(err, audit_id, user)
        except Drop:
            # The client sees the connection close; aiohttp's attempt to send
            # this never-delivered answer fails quietly on the closed transport.
            answer = 0
            abort(request)
            return web.Response(status=500)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # A sandbox bug answers like the API server's panic handler, not a traceback.
            logger.exception("the sandbox failed on %s %s", method, path)
            answer = 500
            failure = StatusError(
                _status.status(
                    500, f"Internal error occurred: {type(exc).__name__}: {exc}", "InternalError"
                )
            )
            return self._error(failure, audit_id, user)
        finally:
            self.sb.requests.append(
                RequestRecord(
                    method,
                    path,
                    request.query_string,
                    user.name if user else "",
                    self.listener,
                    answer,
                    started,
                )
            )

    def _impersonate(self, request: web.BaseRequest, user: User) -> User:
        """Imitates the impersonation filter (``Impersonate-User``/``-Group``/``-Uid``)."""
        # kubectl --as / --as-group: the caller needs the "impersonate" verb.
        name = request.headers["Impersonate-User"]
        if user is ANONYMOUS or not self.sb.rules.allowed(user, "impersonate", "", "users", None):
            raise _status.StatusError(
                _status.status(
                    403,
                    f'users "{name}" is forbidden: User "{user.name}" cannot impersonate '
                    'resource "users" in API group "" at the cluster scope',
                    "Forbidden",
                    {"name": name, "kind": "users"},
                )
            )
        groups = list(request.headers.getall("Impersonate-Group", []))
        if name.startswith("system:serviceaccount:") and name.count(":") == 3:
            namespace = name.split(":")[2]
            groups += ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
        if "system:authenticated" not in groups:
            groups.append("system:authenticated")
        return User(name, request.headers.get("Impersonate-Uid", ""), tuple(groups))

    async def _fault(
        self, request: web.BaseRequest, fault: Fault, audit_id: str
    ) -> web.StreamResponse | None:
        """Plays a planned fault: an overloaded or failing server, or a dropped connection."""
        if fault.kind == "drop_before":
            drop()
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind in ("status", "error", "throttle"):
            if fault.delay:
                await asyncio.sleep(fault.delay)
            await request.read()
            err = injected_error(fault)
            # An injected 401 is exactly the real one: no flow-control headers.
            return self._error(err, audit_id, None if err.status == 401 else ADMIN)
        return None

    # ---- routing

    async def _route(
        self,
        request: web.BaseRequest,
        method: str,
        path: str,
        query: Mapping[str, str],
        user: User,
        audit_id: str,
        fault: Fault | None,
    ) -> web.StreamResponse:
        """Imitates the API server's routing: discovery, unknown paths (404), then resources."""
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            return self._non_resource(method, path, user, audit_id)
        if parts[0] == "api":
            if len(parts) == 1:
                return self._json_path(
                    method,
                    path,
                    user,
                    audit_id,
                    _discovery.api_versions(self.sb.server_address),
                )
            if parts[1] != "v1":
                return self._not_found_text(audit_id, user)
            group, version, rest = "", "v1", parts[2:]
        else:
            if len(parts) == 1:
                return self._json_path(
                    method, path, user, audit_id, _discovery.api_group_list(self.store)
                )
            if len(parts) == 2:
                body = _discovery.api_group(self.store, parts[1])
                if body is None:
                    return self._not_found_text(audit_id, user)
                return self._json_path(method, path, user, audit_id, body)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            doc = _discovery.resource_list(self.store, group, version)
            if doc is None:
                return self._not_found_text(audit_id, user)
            return self._json_path(method, path, user, audit_id, doc)
        if (group, version) not in self.store.by_version and not (
            version == "v1" and group in ("authentication.k8s.io", "authorization.k8s.io")
        ):
            return self._not_found_text(audit_id, user)
        route = parse_rest(rest)
        route.group, route.version = group, version
        route.rt = self.store.lookup(group, version, route.plural)
        verb = verb_of(method, route, query)
        if group in ("authentication.k8s.io", "authorization.k8s.io") and method == "POST":
            return await self._review(request, route, user, audit_id)
        self._authorize(user, verb, route)
        rt = route.rt
        if rt is None or (route.namespace is not None and not rt.namespaced):
            raise _status.unknown_resource()
        if rt.namespaced and route.namespace is None and route.name:
            # Named objects of namespaced resources only live under /namespaces/NS/.
            raise _status.unknown_resource()
        if route.subresource and route.subresource not in rt.subresources:
            raise _status.unknown_resource()
        return await self._dispatch(request, method, verb, route, rt, query, user, audit_id, fault)

    def _authorize(self, user: User, verb: str, route: Route) -> None:
        """Imitates RBAC's 403 for a resource request the rules do not allow."""
        resource = route.plural + (f"/{route.subresource}" if route.subresource else "")
        if user is ANONYMOUS or not self.sb.rules.allowed(
            user, verb, route.group, resource, route.namespace
        ):
            raise _status.forbidden(
                user.name,
                verb,
                route.group,
                route.plural,
                route.subresource,
                route.namespace,
                route.name,
            )

    def _json_path(
        self, method: str, path: str, user: User, audit_id: str, body: Any
    ) -> web.Response:
        """A JSON document at a non-resource path; anonymous users only reach the public ones."""
        if user is ANONYMOUS and path not in PUBLIC_PATHS:
            raise _status.forbidden_path(user.name, method.lower(), path)
        return web.Response(
            status=200, body=_json.dumps(body), headers=self._headers(audit_id, user, JSON)
        )

    def _non_resource(self, method: str, path: str, user: User, audit_id: str) -> web.Response:
        """Imitates the non-resource paths: version, health, OIDC discovery, OpenAPI v3."""
        if path in ("/version", "/version/"):
            return self._json_path(method, path, user, audit_id, _discovery.VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(
                status=200,
                body=b"ok",
                headers=self._headers(audit_id, user, "text/plain; charset=utf-8"),
            )
        if path == "/.well-known/openid-configuration":
            body = _jwt.openid_configuration(self.sb.server_address)
            return self._json_path(method, path, user, audit_id, body)
        if path == "/openid/v1/jwks":
            auth = self.sb._authenticator
            return self._json_path(
                method, path, user, audit_id, _jwt.jwks(auth.public_key, auth.pki.key_id)
            )
        if user is ANONYMOUS:
            raise _status.forbidden_path(user.name, method.lower(), path)
        if path == "/openapi/v3":
            return self._json_path(method, path, user, audit_id, _openapi.index(self.store))
        if path.startswith("/openapi/v3/"):
            doc = _openapi.document(self.store, path[len("/openapi/v3/") :])
            if doc is not None:
                return self._json_path(method, path, user, audit_id, doc)
        return self._not_found_text(audit_id, user)

    # ---- resources

    async def _dispatch(
        self,
        request: web.BaseRequest,
        method: str,
        verb: str,
        route: Route,
        rt: ResourceType,
        query: Mapping[str, str],
        user: User,
        audit_id: str,
        fault: Fault | None,
    ) -> web.StreamResponse:
        """Runs a resource verb: reads the body, calls the store, writes the answer."""
        store = self.store
        headers = self._headers(audit_id, user, JSON)
        sub = route.subresource
        dry_run = query.get("dryRun") == "All"
        manager = ""
        if method in ("POST", "PUT", "PATCH"):
            manager = query.get("fieldManager") or _manager_from(request)
        if verb == "watch":
            return await serve_watch(self.sb, request, rt, route, query, headers, fault)
        if verb == "list":
            items, list_rv, token, remaining = _verbs.list_objects(
                store, rt, route.namespace, query
            )
            accept = request.headers.get("Accept", "")
            body = render_list(rt, items, list_rv, token, remaining, accept, query)
            return _answer(body, headers)
        if verb == "get":
            assert route.name is not None
            if sub == "log":
                text = self._headers(audit_id, user, "text/plain")
                return await serve_log(self.sb, request, rt, route, query, text)
            stored = store.get(rt, route.namespace, route.name)
            if sub == "scale":
                return _answer(_json.dumps(scale_of(stored.obj, rt)), headers)
            return self._object(request, stored, rt, route, headers)
        if verb == "create":
            body = await _read_body(request)
            if sub == "eviction":
                return _answer(_json.dumps(evict(store, rt, route, dry_run=dry_run)), headers, 201)
            if sub == "token":
                return _answer(_json.dumps(token_request(self.sb, rt, route, body)), headers, 201)
            stored = _verbs.create(store, rt, route, body, dry_run=dry_run, manager=manager)
            return self._object(request, stored, rt, route, headers, 201)
        if verb == "update":
            body = await _read_body(request)
            if sub == "scale":
                scale = update_scale(store, rt, route, body, dry_run=dry_run, manager=manager)
                return _answer(_json.dumps(scale), headers)
            stored = _verbs.replace(store, rt, route, body, dry_run=dry_run, manager=manager)
            return self._object(request, stored, rt, route, headers)
        if verb == "patch":
            kind = _verbs.patch_type(request.headers.get("Content-Type", ""), rt)
            raw = await request.read()
            if kind == "apply":
                stored, created = _verbs.apply(store, rt, route, raw, query, dry_run=dry_run)
                return self._object(request, stored, rt, route, headers, 201 if created else 200)
            patched = _verbs.patch(store, rt, route, kind, raw, dry_run=dry_run, manager=manager)
            if isinstance(patched, Stored):
                return self._object(request, patched, rt, route, headers)
            return _answer(_json.dumps(patched), headers)
        if verb == "delete":
            options = await _read_body(request, empty_ok=True)
            gone = _verbs.delete(store, rt, route, options, query, dry_run=dry_run)
            if isinstance(gone, Stored):
                return self._object(request, gone, rt, route, headers)
            return _answer(_json.dumps(gone), headers)
        if verb == "deletecollection":
            deleted = _verbs.delete_collection(store, rt, route.namespace, query, dry_run=dry_run)
            return _answer(encode_list(rt, deleted, store.rv, None, None), headers)
        raise _verbs.method_not_allowed()

    def _object(
        self,
        request: web.BaseRequest,
        stored: Stored,
        rt: ResourceType,
        route: Route,
        headers: dict[str, str],
        status: int = 200,
    ) -> web.Response:
        """An object in the representation the ``Accept`` header asks for."""
        accept = request.headers.get("Accept", "")
        body = render_object(stored, rt, route.version, accept, request.query, self.store.rv)
        return _answer(body, headers, status)

    async def _review(
        self, request: web.BaseRequest, route: Route, user: User, audit_id: str
    ) -> web.Response:
        """Imitates the create-only review resources of the authentication/authorization groups."""
        if "protobuf" in request.headers.get("Content-Type", ""):
            body = _reviews.protobuf_review(await request.read())
        else:
            body = await _read_body(request, empty_ok=True) or {}
        answer = _reviews.review(self.sb, route.plural, body, user)
        return _answer(_json.dumps(answer), self._headers(audit_id, user, JSON), 201)


def _answer(body: bytes, headers: dict[str, str], status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, headers=headers)


async def _read_body(request: web.BaseRequest, *, empty_ok: bool = False) -> Any:
    raw = await request.read()
    return _verbs.decode_body(raw, request.headers.get("Content-Type", ""), empty_ok=empty_ok)


def _manager_from(request: web.BaseRequest) -> str:
    # The API server names an Update's manager after the User-Agent's first word.
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0].strip() or "unknown"
