"""Who is calling (bearer tokens) and what they may do (an ordered rule table)."""

from __future__ import annotations

import fnmatch
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from attrs import define, field, frozen

from asyncpod.testing import _jwt
from asyncpod.testing._pki import PKI


@frozen
class User:
    """An authenticated (or anonymous) caller."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(factory=dict, eq=False)

    def user_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"username": self.name}
        if self.uid:
            info["uid"] = self.uid
        info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = self.extra
        return info


ADMIN = User("kubernetes-admin", groups=("kubeadm:cluster-admins", "system:authenticated"))
ANONYMOUS = User("system:anonymous", groups=("system:unauthenticated",))
# The proxy and Unix listeners stand for a `kubectl proxy` holding admin credentials.
PROXY_USER = ADMIN
PUBLIC_PATHS = frozenset(
    {
        "/version",
        "/version/",
        "/healthz",
        "/livez",
        "/readyz",
        "/openid/v1/jwks",
        "/.well-known/openid-configuration",
    }
)


class Authenticator:
    """Bearer tokens: the admin's static one and signed service-account JWTs."""

    def __init__(self, pki: PKI) -> None:
        self.pki = pki
        self.public_key = pki.signing_key.public_key()
        self.admin_token = secrets.token_urlsafe(32)
        self._lock = threading.Lock()
        # jti -> monotonic time after which the token is refused
        self._revoked: dict[str, float] = {}
        # token -> claims, so a token's signature is checked once
        self._cache: dict[str, dict[str, Any]] = {}
        # (namespace, name) -> uid of service accounts that exist
        self.service_accounts: dict[tuple[str, str], str] = {}

    def issue(
        self, namespace: str, name: str, uid: str, lifetime: float, now: float | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A signed token for a service account, and its claims."""
        claims = _jwt.service_account_claims(namespace, name, uid, lifetime=lifetime, now=now)
        return _jwt.encode(claims, self.pki.signing_key, self.pki.key_id), claims

    def revoke(self, jti: str, after: float = 0.0) -> None:
        """Refuse the token with this ``jti`` ``after`` seconds from now."""
        with self._lock:
            self._revoked[jti] = time.monotonic() + after

    def authenticate(self, authorization: str | None) -> User | None:
        """The caller, ``ANONYMOUS`` without credentials, or ``None`` for a bad token."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if secrets.compare_digest(token, self.admin_token):
            return ADMIN
        claims = self._cache.get(token)
        if claims is None:
            claims = _jwt.decode(token, self.public_key)
            if claims is None:
                return None
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = claims
        now = time.time()
        if not isinstance(claims.get("exp"), int | float) or now >= claims["exp"]:
            return None
        if now < claims.get("nbf", 0) - 1:
            return None
        jti = str(claims.get("jti", ""))
        revoked_at = self._revoked.get(jti)
        if revoked_at is not None and time.monotonic() >= revoked_at:
            return None
        k8s = claims.get("kubernetes.io") or {}
        namespace = str(k8s.get("namespace", ""))
        sa = k8s.get("serviceaccount") or {}
        name, uid = str(sa.get("name", "")), str(sa.get("uid", ""))
        # A token of a deleted (or re-created) service account is refused.
        if self.service_accounts.get((namespace, name)) != uid:
            return None
        extra = {"authentication.kubernetes.io/credential-id": [f"JTI={jti}"]}
        return User(
            f"system:serviceaccount:{namespace}:{name}",
            uid,
            (
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ),
            extra,
        )


@define
class Rule:
    """One line of the access table; ``None`` or ``"*"`` matches anything.

    ``users`` and ``resources`` take shell patterns (``system:serviceaccount:*``,
    ``pods/*``).
    """

    effect: str
    verbs: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    users: tuple[str, ...] | None = None
    namespaces: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    api_groups: tuple[str, ...] | None = None

    def matches(
        self, user: User, verb: str, api_group: str, resource: str, namespace: str | None
    ) -> bool:
        def any_of(patterns: tuple[str, ...] | None, value: str) -> bool:
            return patterns is None or any(
                p == "*" or fnmatch.fnmatchcase(value, p) for p in patterns
            )

        if not any_of(self.verbs, verb) or not any_of(self.resources, resource):
            return False
        if not any_of(self.users, user.name) or not any_of(self.api_groups, api_group):
            return False
        if self.namespaces is not None and not any_of(self.namespaces, namespace or ""):
            return False
        return self.groups is None or any(any_of(self.groups, g) for g in user.groups)


def _tuple(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class AccessRules:
    """An ordered rule table: the first matching rule decides; no match allows.

    Anonymous callers may only read public paths, whatever the table says
    (``system:public-info-viewer``). Example::

        sb.rules.deny(verbs=["delete"], resources=["configmaps"],
                      users=["system:serviceaccount:*"])
    """

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def _add(self, effect: str, **kwargs: Any) -> Rule:
        rule = Rule(effect, **{k: _tuple(v) for k, v in kwargs.items()})
        with self._lock:
            self._rules.append(rule)
        return rule

    def deny(
        self,
        *,
        verbs: str | Iterable[str] | None = None,
        resources: str | Iterable[str] | None = None,
        users: str | Iterable[str] | None = None,
        namespaces: str | Iterable[str] | None = None,
        groups: str | Iterable[str] | None = None,
        api_groups: str | Iterable[str] | None = None,
    ) -> Rule:
        """Answer 403 to the matching requests (unless an earlier rule allowed them)."""
        return self._add(
            "deny",
            verbs=verbs,
            resources=resources,
            users=users,
            namespaces=namespaces,
            groups=groups,
            api_groups=api_groups,
        )

    def allow(
        self,
        *,
        verbs: str | Iterable[str] | None = None,
        resources: str | Iterable[str] | None = None,
        users: str | Iterable[str] | None = None,
        namespaces: str | Iterable[str] | None = None,
        groups: str | Iterable[str] | None = None,
        api_groups: str | Iterable[str] | None = None,
    ) -> Rule:
        """Allow the matching requests (put it before a broader ``deny``)."""
        return self._add(
            "allow",
            verbs=verbs,
            resources=resources,
            users=users,
            namespaces=namespaces,
            groups=groups,
            api_groups=api_groups,
        )

    def restrict_service_accounts(self) -> None:
        """Service accounts may get/list/watch pods and configmaps in their own namespace only.

        This is the policy the reference recordings were made with.
        """
        with self._lock:
            self._rules.append(Rule("own-namespace-read"))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def __len__(self) -> int:
        return len(self._rules)

    def allowed(
        self, user: User, verb: str, api_group: str, resource: str, namespace: str | None
    ) -> bool:
        for rule in self._rules:
            if rule.effect == "own-namespace-read":
                if not user.name.startswith("system:serviceaccount:"):
                    continue
                own = user.name.split(":")[2]
                return (
                    verb in ("get", "list", "watch")
                    and api_group == ""
                    and resource in ("pods", "configmaps", "pods/log")
                    and namespace == own
                )
            if rule.matches(user, verb, api_group, resource, namespace):
                return rule.effect == "allow"
        return True
