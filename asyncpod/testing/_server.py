"""The HTTP side of the sandbox: routing, authentication, verbs, watches, faults."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from asyncpod import _json
from asyncpod.testing import _discovery, _fields, _jwt, _openapi, _status
from asyncpod.testing._auth import ADMIN, ANONYMOUS, PUBLIC_PATHS, User
from asyncpod.testing._faults import Fault, RequestRecord
from asyncpod.testing._patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._selectors import Matcher, SelectorError, field_matcher, label_matcher
from asyncpod.testing._status import StatusError
from asyncpod.testing._store import Stored, Watcher, now_rfc3339

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
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}
_TRUE = ("true", "1")
# The API server's wording for the statuses a fault can inject.
_INJECTED_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected by the sandbox",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still "
    "be processing the request",
}


class _Drop(Exception):
    """Close the connection without an answer."""


def _drop() -> None:
    raise _Drop


class Route:
    """A parsed resource path."""

    __slots__ = ("group", "name", "namespace", "plural", "rt", "subresource", "version", "watch")

    def __init__(self) -> None:
        self.group = ""
        self.version = ""
        self.plural = ""
        self.namespace: str | None = None
        self.name: str | None = None
        self.subresource: str | None = None
        self.rt: ResourceType | None = None
        self.watch = False


def _verb(method: str, route: Route, query: Mapping[str, str]) -> str:
    if method in ("GET", "HEAD"):
        if route.watch or query.get("watch") in _TRUE:
            return "watch"
        return "get" if route.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    return method.lower()


class Handler:
    """Answers the requests of one listener (``"https"``, ``"proxy"`` or ``"unix"``)."""

    def __init__(self, sandbox: Sandbox, listener: str) -> None:
        self.sb = sandbox
        self.store = sandbox._store
        self.listener = listener
        self.authenticated = listener == "https"

    # ---- responses

    def _headers(self, audit_id: str, user: User | None, content_type: str) -> dict[str, str]:
        headers = {"Audit-Id": audit_id, "Cache-Control": "no-cache, private"}
        headers["Content-Type"] = content_type
        if user is not None:
            pf = _PF_EXEMPT if user is ADMIN else _PF_SERVICE_ACCOUNTS
            headers["X-Kubernetes-Pf-Flowschema-Uid"] = pf[0]
            headers["X-Kubernetes-Pf-Prioritylevel-Uid"] = pf[1]
        return headers

    def _error(self, err: StatusError, audit_id: str, user: User | None) -> web.Response:
        headers = self._headers(audit_id, user, JSON)
        if err.status == 403:
            headers["X-Content-Type-Options"] = "nosniff"
        headers.update(err.headers)
        return web.Response(status=err.status, body=_json.dumps(err.body), headers=headers)

    def _not_found_text(self, audit_id: str, user: User | None) -> web.Response:
        headers = self._headers(audit_id, user, "text/plain; charset=utf-8")
        headers["X-Content-Type-Options"] = "nosniff"
        return web.Response(status=404, body=NOT_FOUND_TEXT, headers=headers)

    # ---- entry point

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.time()
        audit_id = self.sb._audit_ids()
        method = request.method
        path = request.path
        query = request.query
        user: User | None = None
        answer = 0
        try:
            fault = self.sb.faults.take(
                method, path, watch=query.get("watch") in _TRUE or "/watch/" in path
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
                _drop()
            return response
        except StatusError as err:
            answer = err.status
            return self._error(err, audit_id, user)
        except _Drop:
            # The client sees the connection close; aiohttp's attempt to send
            # this never-delivered answer fails quietly on the closed transport.
            answer = 0
            _abort(request)
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
        if fault.kind == "drop_before":
            _drop()
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind in ("status", "error", "throttle"):
            if fault.delay:
                await asyncio.sleep(fault.delay)
            await request.read()
            code = fault.status
            if code == 401:
                # Exactly the real 401: as if the token had just been revoked.
                return self._error(_status.unauthorized(), audit_id, None)
            message = _INJECTED_MESSAGES.get(code, f"the sandbox injected a {code} answer")
            details: dict[str, Any] = {}
            if fault.retry_after is not None:
                details["retryAfterSeconds"] = max(int(fault.retry_after), 1)
            err = StatusError(_status.status(code, message, details=details))
            if fault.retry_after is not None:
                err.headers["Retry-After"] = f"{fault.retry_after:g}"
            return self._error(err, audit_id, ADMIN)
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
        route = _parse_rest(rest)
        route.group, route.version = group, version
        route.rt = self.store.lookup(group, version, route.plural)
        verb = _verb(method, route, query)
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
        if user is ANONYMOUS and path not in PUBLIC_PATHS:
            raise _status.forbidden_path(user.name, method.lower(), path)
        return web.Response(
            status=200, body=_json.dumps(body), headers=self._headers(audit_id, user, JSON)
        )

    def _non_resource(self, method: str, path: str, user: User, audit_id: str) -> web.Response:
        if path in ("/version", "/version/"):
            return self._json_path(method, path, user, audit_id, _discovery.VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(
                status=200,
                body=b"ok",
                headers=self._headers(audit_id, user, "text/plain; charset=utf-8"),
            )
        if path == "/.well-known/openid-configuration":
            body = {
                "issuer": _jwt.ISSUER,
                "jwks_uri": f"https://{self.sb.server_address}/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
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

    # ---- verbs

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
        store = self.store
        namespace = route.namespace
        dry_run = query.get("dryRun") == "All"
        manager = (
            (query.get("fieldManager") or _manager_from(request))
            if method in ("POST", "PUT", "PATCH")
            else ""
        )
        sub = route.subresource
        if verb == "watch":
            return await self._watch(request, rt, route, query, user, audit_id, fault)
        if verb == "list":
            return self._list(request, rt, namespace, query, user, audit_id)
        if verb == "get":
            assert route.name is not None
            if sub == "log":
                return await self._log(request, rt, route, query, user, audit_id)
            stored = store.get(rt, namespace, route.name)
            if sub == "scale":
                return self._send(_scale_of(stored.obj, rt), user, audit_id)
            return self._send_stored(request, stored, user, audit_id, rt, route.version)
        if verb == "create":
            body = await _read_json(request)
            if sub == "eviction":
                assert route.name is not None
                store.delete(rt, namespace, route.name, dry_run=dry_run)
                return self._send(_status.success(code=201), user, audit_id, status=201)
            if sub == "token":
                return self._token_request(rt, route, body, user, audit_id)
            if route.name:
                raise StatusError(
                    _status.status(
                        405,
                        "the server does not allow this method on the requested resource",
                        "MethodNotAllowed",
                        {},
                    )
                )
            stored = store.create(rt, namespace, body, dry_run=dry_run, manager=manager)
            return self._send_stored(request, stored, user, audit_id, rt, route.version, 201)
        if verb == "update":
            assert route.name is not None
            body = await _read_json(request)
            if sub == "scale":
                return self._update_scale(rt, route, body, user, audit_id, dry_run, manager)
            stored = store.update(
                rt, namespace, route.name, body, dry_run=dry_run, manager=manager, subresource=sub
            )
            return self._send_stored(request, stored, user, audit_id, rt, route.version)
        if verb == "patch":
            return await self._patch(request, rt, route, query, user, audit_id, dry_run, manager)
        if verb == "delete":
            assert route.name is not None
            options = await _read_json(request, empty_ok=True) or {}
            stored, gone = store.delete(
                rt,
                namespace,
                route.name,
                dry_run=dry_run,
                preconditions=options.get("preconditions") if isinstance(options, dict) else None,
                propagation=(
                    query.get("propagationPolicy")
                    or (options.get("propagationPolicy") if isinstance(options, dict) else None)
                ),
            )
            if not gone or rt.kind in ("Pod", "Namespace") or rt.custom:
                return self._send_stored(request, stored, user, audit_id, rt, route.version)
            details: dict[str, Any] = {"name": route.name}
            if rt.group:
                details["group"] = rt.group
            details["kind"] = rt.plural
            details["uid"] = stored.obj["metadata"].get("uid")
            return self._send(_status.success(details), user, audit_id)
        if verb == "deletecollection":
            labels, fields = _matchers(query, rt)
            items, _, _, _ = store.select(rt, namespace, labels=labels, fields=fields)
            deleted = []
            for stored in items:
                result, _ = store.delete(
                    rt,
                    namespace or stored.obj["metadata"].get("namespace"),
                    stored.name,
                    dry_run=dry_run,
                )
                deleted.append(result)
            return self._send_list(rt, deleted, store.rv, None, None, user, audit_id)
        raise StatusError(
            _status.status(
                405,
                "the server does not allow this method on the requested resource",
                "MethodNotAllowed",
                {},
            )
        )

    def _send(self, body: Any, user: User, audit_id: str, status: int = 200) -> web.Response:
        return web.Response(
            status=status, body=_json.dumps(body), headers=self._headers(audit_id, user, JSON)
        )

    def _send_stored(
        self,
        request: web.BaseRequest,
        stored: Stored,
        user: User,
        audit_id: str,
        rt: ResourceType,
        version: str,
        status: int = 200,
    ) -> web.Response:
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept:
            return self._send(
                _table(rt, [stored], self.store.rv, request.query), user, audit_id, status
            )
        if "as=PartialObjectMetadata" in accept:
            return self._send(_partial(stored.obj), user, audit_id, status)
        body = stored.full()
        if rt.custom and version != rt.version:
            obj = stored.copy()
            obj["apiVersion"] = f"{rt.group}/{version}"
            body = _json.dumps(obj)
        return web.Response(status=status, body=body, headers=self._headers(audit_id, user, JSON))

    def _list(
        self,
        request: web.BaseRequest,
        rt: ResourceType,
        namespace: str | None,
        query: Mapping[str, str],
        user: User,
        audit_id: str,
    ) -> web.Response:
        labels, fields = _matchers(query, rt)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise _status.bad_request(f"invalid limit: {query.get('limit')}") from None
        items, list_rv, token, remaining = self.store.select(
            rt,
            namespace,
            labels=labels,
            fields=fields,
            limit=max(limit, 0),
            continue_token=query.get("continue") or None,
            resource_version=query.get("resourceVersion"),
            resource_version_match=query.get("resourceVersionMatch"),
        )
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept:
            table = _table(rt, items, list_rv, query)
            if token:
                table["metadata"]["continue"] = token
            return self._send(table, user, audit_id)
        if "as=PartialObjectMetadataList" in accept:
            meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
            if token:
                meta["continue"] = token
            return self._send(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                    "items": [_partial(s.obj) for s in items],
                },
                user,
                audit_id,
            )
        return self._send_list(rt, items, list_rv, token, remaining, user, audit_id)

    def _send_list(
        self,
        rt: ResourceType,
        items: list[Stored],
        list_rv: int,
        token: str | None,
        remaining: int | None,
        user: User,
        audit_id: str,
    ) -> web.Response:
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if token:
            meta["continue"] = token
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        head = _json.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
        # Assemble from each object's cached encoding: lists are the hot path.
        body = b"".join((head[:-1], b',"items":[', b",".join(s.item() for s in items), b"]}"))
        return web.Response(status=200, body=body, headers=self._headers(audit_id, user, JSON))

    async def _patch(
        self,
        request: web.BaseRequest,
        rt: ResourceType,
        route: Route,
        query: Mapping[str, str],
        user: User,
        audit_id: str,
        dry_run: bool,
        manager: str,
    ) -> web.Response:
        assert route.name is not None
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        kind = _PATCH_TYPES.get(content_type)
        accepted = (
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml"
        )
        if not rt.custom:
            accepted += ", application/strategic-merge-patch+json"
        if kind is None or (kind == "strategic" and rt.custom):
            raise StatusError(
                _status.status(
                    415,
                    "the body of the request was in an unknown format - accepted media types "
                    f"include: {accepted}",
                    "UnsupportedMediaType",
                    {},
                )
            )
        raw = await request.read()
        store = self.store
        sub = route.subresource
        if kind == "apply":
            return self._apply(request, rt, route, raw, query, user, audit_id, dry_run)
        try:
            patch = _json.loads(raw)
        except ValueError as exc:
            raise _status.bad_request(f"error decoding patch: {exc}") from None
        current = store.get(rt, route.namespace, route.name)
        target = _scale_of(current.obj, rt) if sub == "scale" else current.copy()
        try:
            if kind == "merge":
                patched = merge_patch(target, patch)
            elif kind == "json":
                patched = json_patch(target, patch)
            else:
                patched = strategic_merge_patch(target, patch)
        except PatchError as exc:
            if exc.status == 400:
                raise _status.bad_request(str(exc)) from None
            raise StatusError(_status.status(422, str(exc), "Invalid", {})) from None
        if not isinstance(patched, dict):
            raise _status.bad_request("the patched object is not a JSON object")
        if sub == "scale":
            return self._update_scale(rt, route, patched, user, audit_id, dry_run, manager)
        stored = store.replace_object(
            rt,
            route.namespace,
            route.name,
            patched,
            dry_run=dry_run,
            manager=manager,
            subresource=sub,
        )
        return self._send_stored(request, stored, user, audit_id, rt, route.version)

    def _apply(
        self,
        request: web.BaseRequest,
        rt: ResourceType,
        route: Route,
        raw: bytes,
        query: Mapping[str, str],
        user: User,
        audit_id: str,
        dry_run: bool,
    ) -> web.Response:
        assert route.name is not None
        manager = query.get("fieldManager")
        if not manager:
            raise StatusError(
                _status.status(
                    422,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                    "required for apply patch",
                    "Invalid",
                    {
                        "group": "meta.k8s.io",
                        "kind": "PatchOptions",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager",
                            }
                        ],
                    },
                )
            )
        try:
            applied = yaml.safe_load(raw.decode()) if raw.strip() else None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise _status.bad_request(f"error decoding YAML: {exc}") from None
        if not isinstance(applied, dict):
            raise _status.bad_request("the apply patch must be an object")
        meta = applied.get("metadata") or {}
        if meta.get("name") not in (None, route.name):
            raise _status.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({route.name})"
            )
        force = query.get("force") in _TRUE
        store = self.store
        current = store.find(rt, route.namespace, route.name)
        split = "status" in rt.subresources
        sub = route.subresource
        now = now_rfc3339()
        try:
            if current is None:
                if sub:
                    raise _status.not_found(rt.group, rt.plural, route.name)
                merged = _fields.apply(
                    None,
                    applied,
                    manager=manager,
                    api_version=rt.api_version,
                    now=now,
                    force=force,
                    split_status=split,
                )
                body = {k: v for k, v in merged.items() if k != "metadata"}
                body["metadata"] = {
                    **{
                        k: v
                        for k, v in meta.items()
                        if k not in ("managedFields", "resourceVersion")
                    },
                    "name": route.name,
                    **{k: merged["metadata"][k] for k in merged["metadata"]},
                }
                stored = store.create(
                    rt,
                    route.namespace,
                    body,
                    dry_run=dry_run,
                    manager=manager,
                    apply_manager=manager,
                )
                return self._send_stored(request, stored, user, audit_id, rt, route.version, 201)
            if meta.get("resourceVersion") and str(meta["resourceVersion"]) != str(
                current.obj["metadata"]["resourceVersion"]
            ):
                raise _status.conflict(rt.group, rt.plural, route.name)
            merged = _fields.apply(
                current.copy(),
                applied,
                manager=manager,
                api_version=rt.api_version,
                now=now,
                force=force,
                subresource=sub if sub == "status" else None,
                split_status=split,
            )
        except _fields.ApplyConflict as conflict:
            raise StatusError(
                _status.status(409, conflict.message, "Conflict", {"causes": conflict.causes()})
            ) from None
        merged["metadata"].pop("resourceVersion", None)
        stored = store.replace_object(
            rt,
            route.namespace,
            route.name,
            merged,
            dry_run=dry_run,
            manager=manager,
            subresource=sub,
            record=False,
        )
        return self._send_stored(request, stored, user, audit_id, rt, route.version)

    def _update_scale(
        self,
        rt: ResourceType,
        route: Route,
        body: Any,
        user: User,
        audit_id: str,
        dry_run: bool,
        manager: str,
    ) -> web.Response:
        assert route.name is not None
        current = self.store.get(rt, route.namespace, route.name)
        replicas = ((body or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int):
            raise _status.bad_request("spec.replicas must be an integer")
        wanted_rv = ((body or {}).get("metadata") or {}).get("resourceVersion")
        if wanted_rv and str(wanted_rv) != current.obj["metadata"]["resourceVersion"]:
            raise _status.conflict(rt.group, rt.plural, route.name)
        new = current.copy()
        new.setdefault("spec", {})["replicas"] = replicas
        stored = self.store.replace_object(
            rt, route.namespace, route.name, new, dry_run=dry_run, manager=manager
        )
        return self._send(_scale_of(stored.obj, rt), user, audit_id)

    def _token_request(
        self, rt: ResourceType, route: Route, body: Any, user: User, audit_id: str
    ) -> web.Response:
        assert route.name is not None
        assert route.namespace is not None
        sa = self.store.get(rt, route.namespace, route.name)
        spec = (body or {}).get("spec") or {}
        lifetime = int(spec.get("expirationSeconds") or 3600)
        lifetime = max(lifetime, 600)
        token, claims = self.sb._authenticator.issue(
            route.namespace, route.name, sa.obj["metadata"]["uid"], lifetime
        )
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
        answer = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": route.name,
                "namespace": route.namespace,
                "creationTimestamp": None,
            },
            "spec": {
                "audiences": spec.get("audiences") or [_jwt.AUDIENCE],
                "expirationSeconds": lifetime,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {"token": token, "expirationTimestamp": expires},
        }
        return self._send(answer, user, audit_id, status=201)

    async def _review(
        self, request: web.BaseRequest, route: Route, user: User, audit_id: str
    ) -> web.Response:
        if "protobuf" in request.headers.get("Content-Type", ""):
            body = _protobuf_review(await request.read())
        else:
            body = await _read_json(request, empty_ok=True) or {}
        if route.plural == "selfsubjectreviews":
            answer = {
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": now_rfc3339()},
                "status": {"userInfo": user.user_info()},
            }
            return self._send(answer, user, audit_id, status=201)
        if route.plural == "selfsubjectaccessreviews":
            attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
            resource = str(attrs.get("resource", ""))
            if attrs.get("subresource"):
                resource += "/" + str(attrs["subresource"])
            allowed = user is not ANONYMOUS and self.sb.rules.allowed(
                user,
                str(attrs.get("verb", "")),
                str(attrs.get("group", "")),
                resource,
                attrs.get("namespace") or None,
            )
            answer = {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": body.get("spec") or {},
                "status": {"allowed": allowed},
            }
            return self._send(answer, user, audit_id, status=201)
        if route.plural == "tokenreviews":
            token = str((body.get("spec") or {}).get("token", ""))
            who = self.sb._authenticator.authenticate(f"Bearer {token}") if token else None
            status: dict[str, Any] = {"authenticated": who is not None and who is not ANONYMOUS}
            if who is not None and who is not ANONYMOUS:
                status["user"] = who.user_info()
                status["audiences"] = [_jwt.AUDIENCE]
            answer = {
                "kind": "TokenReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": body.get("spec") or {},
                "status": status,
            }
            return self._send(answer, user, audit_id, status=201)
        raise _status.unknown_resource()

    # ---- streams

    async def _watch(
        self,
        request: web.BaseRequest,
        rt: ResourceType,
        route: Route,
        query: Mapping[str, str],
        user: User,
        audit_id: str,
        fault: Fault | None,
    ) -> web.StreamResponse:
        store = self.store
        labels, fields = _matchers(query, rt)
        if route.name:
            # The legacy /watch/.../name form: a watch of one object.
            fields = _both(fields, field_matcher(f"metadata.name={route.name}", rt.plural))
        bookmarks = query.get("allowWatchBookmarks") in _TRUE
        rv_param = query.get("resourceVersion") or ""
        try:
            timeout = float(query.get("timeoutSeconds") or 0)
        except ValueError:
            raise _status.bad_request("invalid timeoutSeconds") from None
        pending: collections.deque[tuple[str, Stored]] = collections.deque()
        wake = asyncio.Event()
        closed = False

        def push(type_: str, stored: Stored) -> None:
            pending.append((type_, stored))
            wake.set()

        def close() -> None:
            nonlocal closed
            closed = True
            wake.set()

        watcher = Watcher(rt.key, route.namespace, labels, fields, push, close)
        initial_end: int | None = None
        end_marker = Stored({"metadata": {"name": "", "resourceVersion": "0"}})
        error: dict[str, Any] | None = None
        if rv_param in ("", "0") or query.get("sendInitialEvents") in _TRUE:
            items, list_rv, _, _ = store.select(rt, route.namespace, labels=labels, fields=fields)
            for stored in items:
                pending.append(("ADDED", stored))
            if bookmarks:
                initial_end = list_rv
                pending.append(("BOOKMARK", end_marker))
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise _status.bad_request(f"invalid resource version: {rv_param}") from None
            store.expire()
            if since < store.compacted:
                error = _status.status(
                    410, f"too old resource version: {since} ({store.compacted})", "Expired"
                )
            else:
                for event in store.events_since(rt.key, since):
                    watcher.offer(event)
        headers = self._headers(audit_id, user, JSON)
        response = web.StreamResponse(status=200, headers=headers)
        response.enable_chunked_encoding()
        if error is not None:
            await response.prepare(request)
            await response.write(b'{"type":"ERROR","object":' + _json.dumps(error) + b"}\n")
            await response.write_eof()
            return response
        # Registered before the first await, right after the snapshot above, so
        # that no change can fall between the initial events and the live ones.
        store.add_watcher(watcher)
        self.sb._open_watches.add(watcher)
        try:
            await response.prepare(request)
        except BaseException:
            store.remove_watcher(watcher)
            self.sb._open_watches.discard(watcher)
            raise
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout if timeout > 0 else None
        interval = self.sb.bookmark_interval
        lead = self.sb.bookmark_lead
        next_bookmark = _next_bookmark(started, interval, deadline, lead) if bookmarks else None
        head = b'{"type":"BOOKMARK","object":{"kind":"' + rt.kind.encode()
        head += b'","apiVersion":"' + rt.api_version.encode() + b'","metadata":{"resourceVersion":"'
        sent = 0
        # kubectl get -w asks for Table rows; each event then carries a one-row Table.
        as_table = "as=Table" in request.headers.get("Accept", "")
        drop_after = fault.after if fault is not None and fault.kind == "watch_drop" else None
        try:
            while True:
                while pending:
                    type_, stored = pending.popleft()
                    if initial_end is not None and stored is end_marker:
                        # The initial events are out: the bookmark that says so
                        # comes before any live event (its version is older).
                        await response.write(
                            head
                            + str(initial_end).encode()
                            + b'","annotations":{"k8s.io/initial-events-end":"true"}}}}\n'
                        )
                        initial_end = None
                        continue
                    if drop_after is not None and sent >= drop_after:
                        _drop()
                    if as_table:
                        body = _json.dumps(_table(rt, [stored], stored.rv, query))
                    else:
                        body = stored.full()
                    await response.write(
                        b'{"type":"' + type_.encode() + b'","object":' + body + b"}\n"
                    )
                    sent += 1
                if closed:
                    break
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                if next_bookmark is not None and now >= next_bookmark:
                    await response.write(head + str(store.rv).encode() + b'"}}}\n')
                    next_bookmark = _next_bookmark(now, interval, deadline, lead)
                    continue
                wait_until = min(
                    t for t in (deadline, next_bookmark, now + 3600.0) if t is not None
                )
                wake.clear()
                if pending or closed:
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), max(wait_until - now, 0))
        except _Drop:
            _abort(request)
            return response
        except ConnectionError:
            # The client went away; nothing more to send.
            return response
        finally:
            store.remove_watcher(watcher)
            self.sb._open_watches.discard(watcher)
        # The client may have closed the stream (it stopped watching) between
        # the last write and this one: nothing to report then.
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _log(
        self,
        request: web.BaseRequest,
        rt: ResourceType,
        route: Route,
        query: Mapping[str, str],
        user: User,
        audit_id: str,
    ) -> web.StreamResponse:
        assert route.name is not None
        assert route.namespace is not None
        store = self.store
        pod = store.get(rt, route.namespace, route.name)
        containers = [c.get("name") for c in (pod.obj.get("spec") or {}).get("containers") or []]
        container = query.get("container") or ""
        if not container:
            if len(containers) > 1:
                raise _status.bad_request(
                    f"a container name must be specified for pod {route.name}, choose one of: "
                    f"[{' '.join(str(c) for c in containers)}]"
                )
            container = str(containers[0]) if containers else ""
        elif container not in containers:
            raise _status.bad_request(f"container {container} is not valid for pod {route.name}")
        key = (route.namespace, route.name, container)
        lines = store.pod_logs.get(key, [])
        start = 0
        tail = query.get("tailLines")
        if tail is not None and tail.isdigit():
            start = max(len(lines) - int(tail), 0)
        headers = self._headers(audit_id, user, "text/plain")
        if query.get("follow") not in _TRUE:
            body = "".join(line + "\n" for line in lines[start:]).encode()
            return web.Response(status=200, body=body, headers=headers)
        response = web.StreamResponse(status=200, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        position = start
        wake = asyncio.Event()
        uid = pod.obj["metadata"]["uid"]
        try:
            while True:
                lines = store.pod_logs.get(key, [])
                if position < len(lines):
                    text = "".join(f"{line}\n" for line in lines[position:])
                    await response.write(text.encode())
                    position = len(lines)
                current = store.find(rt, route.namespace, route.name)
                if current is None or current.obj["metadata"]["uid"] != uid or self.sb._stopping:
                    break
                wake.clear()
                store.log_waiters.append(wake.set)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), 1.0)
            await response.write_eof()
        except ConnectionError:
            # The client stopped following the log.
            pass
        return response


def _next_bookmark(
    now: float, interval: float, deadline: float | None, lead: float = 2.0
) -> float | None:
    """When the next bookmark is due, or ``None``.

    As the watch cache does: every ``interval``, and ``lead`` seconds before
    the watch's deadline unless that is too close to now to be useful.
    """
    due = now + interval
    if deadline is not None:
        before_end = deadline - lead
        if before_end < due and before_end - now >= 0.75 * lead:
            return before_end
        if due >= deadline:
            return None
    return due


def _parse_rest(rest: list[str]) -> Route:
    route = Route()
    if rest[0] == "watch":
        route.watch = True
        rest = rest[1:]
        if not rest:
            return route
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        route.namespace = rest[1]
        rest = rest[2:]
    route.plural = rest[0]
    if len(rest) > 1:
        route.name = rest[1]
    if len(rest) > 2:
        route.subresource = "/".join(rest[2:])
    return route


def _protobuf_review(raw: bytes) -> dict[str, Any]:
    from asyncpod.testing._protobuf import decode_object

    try:
        return decode_object(raw)
    except ValueError:
        return {}


def _both(first: Matcher | None, second: Matcher | None) -> Matcher | None:
    if first is None or second is None:
        return first or second

    def matches(obj: Mapping[str, Any]) -> bool:
        return first(obj) and second(obj)

    return matches


def _matchers(query: Mapping[str, str], rt: ResourceType) -> tuple[Matcher | None, Matcher | None]:
    try:
        return (
            label_matcher(query.get("labelSelector")),
            field_matcher(query.get("fieldSelector"), rt.plural),
        )
    except SelectorError as exc:
        raise _status.bad_request(str(exc)) from None


async def _read_json(request: web.BaseRequest, *, empty_ok: bool = False) -> Any:
    raw = await request.read()
    if "protobuf" in request.headers.get("Content-Type", ""):
        from asyncpod.testing._protobuf import decode_object

        try:
            return decode_object(raw)
        except ValueError as exc:
            raise StatusError(
                _status.status(
                    415,
                    f"{exc}; send application/json or application/yaml",
                    "UnsupportedMediaType",
                    {},
                )
            ) from None
    if not raw.strip():
        if empty_ok:
            return None
        raise _status.bad_request("the body of the request is empty")
    try:
        return _json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw.decode())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _status.bad_request(f"the body of the request could not be decoded: {exc}") from None


def _manager_from(request: web.BaseRequest) -> str:
    # The API server names an Update's manager after the User-Agent's first word.
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0].strip() or "unknown"


def _abort(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _scale_of(obj: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    scale: dict[str, Any] = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0)},
    }
    if selector:
        scale["status"]["selector"] = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return scale


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        created = time.mktime(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return "<unknown>"
    seconds = max(int(time.time() - created), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _pod_cells(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [f"{ready}/{total}", status.get("phase", ""), restarts]


def _deployment_cells(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    wanted = (obj.get("spec") or {}).get("replicas", 0)
    return [
        f"{status.get('readyReplicas', 0)}/{wanted}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
    ]


def _service_cells(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), "<none>", ports]


# Columns (besides Name and Age) of the API server's printers for the built-in kinds.
_PRINTERS: dict[str, tuple[tuple[str, ...], Any]] = {
    "Pod": (("Ready", "Status", "Restarts"), _pod_cells),
    "Deployment": (("Ready", "Up-to-date", "Available"), _deployment_cells),
    "ConfigMap": (("Data",), lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})]),
    "Secret": (("Type", "Data"), lambda o: [o.get("type", ""), len(o.get("data") or {})]),
    "Namespace": (("Status",), lambda o: [(o.get("status") or {}).get("phase", "")]),
    "Service": (("Type", "Cluster-IP", "External-IP", "Port(s)"), _service_cells),
}


def _table(
    rt: ResourceType, items: list[Stored], list_rv: int, query: Mapping[str, str]
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table: what kubectl prints without ``-o``."""
    extra, cells_of = _PRINTERS.get(rt.kind, ((), None)) if not rt.custom else ((), None)
    names = ("Name", *extra, "Age")
    columns = [
        {
            "name": name,
            "type": "integer"
            if name in ("Restarts", "Data", "Up-to-date", "Available")
            else "string",
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": 0,
        }
        for name in names
    ]
    include = query.get("includeObject", "Metadata")
    rows = []
    for stored in items:
        obj = stored.obj
        cells: list[Any] = [obj["metadata"]["name"]]
        if cells_of is not None:
            cells += cells_of(obj)
        cells.append(_age(obj["metadata"].get("creationTimestamp")))
        row: dict[str, Any] = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(list_rv)},
        "columnDefinitions": columns,
        "rows": rows,
    }
