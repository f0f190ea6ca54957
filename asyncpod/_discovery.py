"""Resources, kubectl's spellings of them, and the discovery cache.

A spelling is what kubectl accepts after ``kubectl get``: ``pods``, ``pod``,
``Pod``, a short name (``po``, ``cm``, ``deploy``), ``deployments.apps`` or
``deployments.v1.apps``. Parsing a spelling is pure; matching it needs the
server's discovery documents (``/api``, ``/apis`` and one resource list per
group-version), which :class:`Discovery` fetches lazily and caches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
from attrs import define, field, frozen

from asyncpod._errors import (
    APIError,
    AsyncpodError,
    NotFoundError,
    ProtocolError,
    UnknownResourceError,
)
from asyncpod._paths import group_version_prefix, resource_path


def _tuple(value: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(value or ())


@frozen(kw_only=False)
class Resource:
    """A kind of object the API server serves, as discovery describes it.

    Attributes:
        group: the API group, ``""`` for the core group.
        version: the version, such as ``"v1"``.
        plural: the resource name in paths (``"deployments"``).
        kind: the object kind (``"Deployment"``).
        namespaced: whether objects live in a namespace.
        singular: the singular name (``"deployment"``).
        short_names: kubectl's short names (``("deploy",)``).
        verbs: what the server allows (``("get", "list", ...)``).
        subresources: the subresources the server serves (``("scale", "status")``).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = field(default="", kw_only=True)
    short_names: tuple[str, ...] = field(default=(), converter=_tuple, kw_only=True)
    verbs: tuple[str, ...] = field(default=(), converter=_tuple, kw_only=True)
    subresources: tuple[str, ...] = field(default=(), converter=_tuple, kw_only=True)

    @property
    def api_version(self) -> str:
        """``"v1"`` for the core group, ``"<group>/<version>"`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """kubectl's ``plural.group`` spelling (``"deployments.apps"``, ``"pods"``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The path of the collection, an object or its subresource.

        ``namespace`` is ignored for cluster-scoped resources.

        Raises:
            InvalidNameError: a part could escape its path segment.
        """
        return resource_path(
            self.group,
            self.version,
            self.plural,
            namespace=namespace if self.namespaced else None,
            name=name,
            subresource=subresource,
        )


@frozen
class Spelling:
    """A parsed resource spelling.

    ``candidates`` lists ``(name, group, version)`` readings in the order kubectl
    tries them; ``group``/``version`` are ``None`` when the spelling leaves
    them open.
    """

    text: str
    candidates: tuple[tuple[str, str | None, str | None], ...]


def parse_spelling(text: str) -> Spelling:
    """Read a kubectl resource spelling.

    ``deployments.v1.apps`` reads first as resource ``deployments``, version
    ``v1``, group ``apps``, then (as kubectl does) as group ``v1.apps``;
    ``deployments.apps`` as group ``apps``; ``pods`` leaves the group open.
    Matching is case-insensitive for the resource part, so a kind (``Pod``)
    works too.

    Raises:
        UnknownResourceError: the spelling is empty or malformed.
    """
    if not isinstance(text, str) or not text.strip() or text != text.strip():
        msg = f"resource spelling {text!r} is empty or has surrounding spaces"
        raise UnknownResourceError(msg)
    if "/" in text or any(ord(c) < 0x21 for c in text):
        msg = (
            f"resource spelling {text!r} is not one kubectl accepts "
            "(use 'pods', 'deployments.apps' or 'deployments.v1.apps')"
        )
        raise UnknownResourceError(msg)
    name, _, rest = text.partition(".")
    name = name.lower()
    rest = rest.lower()
    if not name or text.endswith(".") or rest.startswith(".") or ".." in rest:
        msg = f"resource spelling {text!r} is malformed"
        raise UnknownResourceError(msg)
    candidates: list[tuple[str, str | None, str | None]] = []
    if not rest:
        candidates.append((name, None, None))
    else:
        version, dot, group = rest.partition(".")
        if dot:
            candidates.append((name, group, version))
        candidates.append((name, rest, None))
    return Spelling(text, tuple(candidates))


@frozen
class GroupInfo:
    """One API group from ``/api`` or ``/apis``: its versions, preferred first."""

    name: str
    versions: tuple[str, ...]


def groups_from_discovery(api: Mapping[str, Any], apis: Mapping[str, Any]) -> list[GroupInfo]:
    """The groups of ``/api`` (core) and ``/apis``, in the server's priority order."""
    groups = [GroupInfo("", tuple(str(v) for v in api.get("versions") or ()))]
    for group in apis.get("groups") or ():
        versions = [str(v.get("version")) for v in group.get("versions") or ()]
        preferred = (group.get("preferredVersion") or {}).get("version")
        if preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        groups.append(GroupInfo(str(group.get("name", "")), tuple(versions)))
    return groups


def resources_from_list(group: str, version: str, body: Mapping[str, Any]) -> list[Resource]:
    """The resources of one ``APIResourceList``, subresources folded into their parents."""
    entries = list(body.get("resources") or ())
    subresources: dict[str, list[str]] = {}
    for entry in entries:
        parent, slash, sub = str(entry.get("name", "")).partition("/")
        if slash:
            subresources.setdefault(parent, []).append(sub)
    resources = []
    for entry in entries:
        plural = str(entry.get("name", ""))
        if not plural or "/" in plural:
            continue
        kind = str(entry.get("kind", ""))
        resources.append(
            Resource(
                # A resource may be served from another group-version (rare); honour it.
                str(entry.get("group") or group),
                str(entry.get("version") or version),
                plural,
                kind,
                bool(entry.get("namespaced", False)),
                singular=str(entry.get("singularName") or kind.lower()),
                short_names=entry.get("shortNames") or (),
                verbs=entry.get("verbs") or (),
                subresources=sorted(subresources.get(plural, ())),
            )
        )
    return resources


def match_spelling(
    spelling: Spelling,
    groups: Sequence[GroupInfo],
    lists: Mapping[tuple[str, str], Sequence[Resource]],
    *,
    short_names: bool = True,
) -> Resource | None:
    """The resource a spelling names, or ``None``.

    Full names (plural, singular, lowercased kind) win over short names, as with
    kubectl, whose shortcut expander only applies when no resource matches;
    then the first group in discovery order and its preferred version win.
    """
    for short in (False, True) if short_names else (False,):
        for name, group, version in spelling.candidates:
            for info in groups:
                if group is not None and info.name != group:
                    continue
                for ver in info.versions:
                    if version is not None and ver != version:
                        continue
                    for res in lists.get((info.name, ver), ()):
                        if short:
                            if name in res.short_names:
                                return res
                        elif name in (res.plural, res.singular, res.kind.lower()):
                            return res
    return None


def needed_group_versions(spelling: Spelling, groups: Sequence[GroupInfo]) -> list[tuple[str, str]]:
    """The group-versions whose resource lists can decide ``spelling``."""
    needed: list[tuple[str, str]] = []
    for _name, group, version in spelling.candidates:
        for info in groups:
            if group is not None and info.name != group:
                continue
            for ver in info.versions:
                if version is not None and ver != version:
                    continue
                if (info.name, ver) not in needed:
                    needed.append((info.name, ver))
    return needed


GetJSON = Callable[[str], Awaitable[Any]]


@define
class Discovery:
    """A cache of the server's discovery documents, refreshed once on a miss.

    Args:
        get_json: fetches one path and decodes it (the client's ``get_json``).
    """

    get_json: GetJSON
    _groups: list[GroupInfo] | None = None
    _lists: dict[tuple[str, str], list[Resource]] = field(factory=dict)
    _lock: anyio.Lock | None = None

    def clear(self) -> None:
        """Forget everything; the next lookup asks the server again."""
        self._groups = None
        self._lists = {}

    async def resource(self, spec: str | Resource) -> Resource:
        """The resource a spelling names.

        Raises:
            UnknownResourceError: nothing the server serves matches, even after
                refreshing the cache once.
        """
        if isinstance(spec, Resource):
            return spec
        spelling = parse_spelling(spec)
        for refresh in (False, True):
            if refresh:
                self.clear()
            groups = await self._load_groups()
            needed = needed_group_versions(spelling, groups)
            # The first group-version (the core group for a bare "pods") usually
            # decides: a full name there beats anything later, so the other
            # lists are fetched only when it does not.
            await self._load_lists(needed[:1])
            found = match_spelling(spelling, groups, self._lists, short_names=False)
            if found is None:
                await self._load_lists(needed)
                found = match_spelling(spelling, groups, self._lists)
            if found is not None:
                return found
        msg = f"the server has no resource type {spec!r}"
        raise UnknownResourceError(msg)

    async def resource_for_kind(self, api_version: str, kind: str) -> Resource:
        """The resource serving ``kind`` in ``api_version`` (``"apps/v1"``, ``"v1"``).

        Raises:
            UnknownResourceError: the server serves no such kind.
        """
        group, slash, version = api_version.rpartition("/")
        if not slash:
            group = ""
        for refresh in (False, True):
            if refresh:
                self.clear()
            groups = await self._load_groups()
            if any(g.name == group and version in g.versions for g in groups):
                await self._load_lists([(group, version)])
            for res in self._lists.get((group, version), ()):
                if res.kind == kind:
                    return res
        msg = f"the server has no kind {kind!r} in {api_version!r}"
        raise UnknownResourceError(msg)

    def _get_lock(self) -> anyio.Lock:
        # Created lazily: a lock belongs to the running event loop.
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def _load_groups(self) -> list[GroupInfo]:
        async with self._get_lock():
            if self._groups is None:
                api = await self.get_json("/api")
                try:
                    apis = await self.get_json("/apis")
                except NotFoundError:
                    apis = {}
                try:
                    self._groups = groups_from_discovery(api, apis)
                except (AttributeError, TypeError, ValueError) as exc:
                    raise _malformed("/api and /apis", exc) from None
            return self._groups

    async def _load_lists(self, group_versions: Sequence[tuple[str, str]]) -> None:
        missing = [gv for gv in group_versions if gv not in self._lists]
        if not missing:
            return
        results: dict[tuple[str, str], list[Resource]] = {}
        # The first failure is raised after the task group, as itself: an
        # ExceptionGroup would reach the caller as a foreign exception.
        failures: list[AsyncpodError] = []

        async def fetch(group: str, version: str) -> None:
            path = group_version_prefix(group, version)
            try:
                body = await self.get_json(path)
                results[group, version] = resources_from_list(group, version, body)
            except APIError as exc:
                # An aggregated API that is down (503) or a group that vanished
                # (404) must not hide every other group.
                if exc.status in (403, 404) or exc.status >= 500:
                    results[group, version] = []
                else:
                    failures.append(exc)
            except AsyncpodError as exc:
                failures.append(exc)
            except (AttributeError, TypeError, ValueError) as exc:
                failures.append(_malformed(path, exc))

        limiter = anyio.CapacityLimiter(8)

        async def limited(group: str, version: str) -> None:
            async with limiter:
                await fetch(group, version)

        async with anyio.create_task_group() as tg:
            for group, version in missing:
                tg.start_soon(limited, group, version)
        if failures:
            raise failures[0]
        self._lists.update(results)


def _malformed(what: str, exc: Exception) -> ProtocolError:
    """A discovery document that does not have the shape the API server gives it."""
    msg = f"the discovery document {what} is malformed ({type(exc).__name__}: {exc})"
    return ProtocolError(msg)
