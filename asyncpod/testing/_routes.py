"""What a resource URL names, and which verb its method means."""

from __future__ import annotations

from collections.abc import Mapping

from asyncpod.testing._resources import ResourceType

TRUE = ("true", "1")


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


def parse_rest(rest: list[str]) -> Route:
    """The route of a path's segments after ``/api/v1`` or ``/apis/GROUP/VERSION``."""
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


def verb_of(method: str, route: Route, query: Mapping[str, str]) -> str:
    """The authorization verb of a request, as the API server's RequestInfo names it."""
    if method in ("GET", "HEAD"):
        if route.watch or query.get("watch") in TRUE:
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
