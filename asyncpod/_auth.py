"""How requests are authenticated: the ``Auth`` contract and the simple cases."""

from __future__ import annotations

from typing import Protocol

from attrs import field, frozen


class Auth(Protocol):
    """Supplies the ``Authorization`` header of each request.

    ``authorization()`` is on the hot path: it must answer from a cache in the
    common case. ``unauthorized(sent)`` is called after a 401 on a request that
    carried ``sent``; it refreshes the credentials when ``sent`` is still the
    current one and says whether a retry may succeed.
    """

    async def authorization(self) -> str | None: ...

    async def unauthorized(self, sent: str | None) -> bool: ...


@frozen
class NoAuth:
    """No credentials: a proxy or a Unix socket authenticates for us."""

    async def authorization(self) -> str | None:
        return None

    async def unauthorized(self, sent: str | None) -> bool:
        return False


@frozen
class StaticToken:
    """A bearer token that never changes (kubeconfig ``token``, ``Config.https(token=)``)."""

    token: str = field(repr=False)

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"

    async def authorization(self) -> str | None:
        return f"Bearer {self.token}"

    async def unauthorized(self, sent: str | None) -> bool:
        return False
