"""A pod's service-account folder, laid out and rotated as the kubelet does it."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox

FILES = ("ca.crt", "namespace", "token")


def _timestamped_name() -> str:
    # The kubelet's AtomicWriter: "..2026_11_28_20_37_39.4268101411"
    now = datetime.now(timezone.utc)
    return now.strftime("..%Y_%m_%d_%H_%M_%S.") + str(int.from_bytes(os.urandom(4), "big"))


class PodEnvironment:
    """What a pod sees: a service-account folder and the ``KUBERNETES_SERVICE_*`` variables.

    Attributes:
        root: the folder (``ca.crt``, ``namespace``, ``token`` through ``..data``).
        environ: ``KUBERNETES_SERVICE_HOST``, ``_PORT`` and ``_PORT_HTTPS``.
        namespace: the pod's namespace.
        service_account: the service account the token belongs to.
        token_lifetime: seconds each token is valid.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        root: Path,
        namespace: str,
        service_account: str,
        uid: str,
        token_lifetime: float,
    ) -> None:
        self._sandbox = sandbox
        self.root = root
        self.namespace = namespace
        self.service_account = service_account
        self.token_lifetime = token_lifetime
        self._uid = uid
        self._lock = threading.Lock()
        self._token = ""
        self._claims: dict[str, Any] = {}
        self.rotations = 0
        host, port = "127.0.0.1", str(sandbox.port)
        self.environ = {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
        }
        root.mkdir(parents=True, exist_ok=True)
        self._write(first=True)

    def __repr__(self) -> str:
        return (
            f"PodEnvironment(root={str(self.root)!r}, namespace={self.namespace!r}, "
            f"service_account={self.service_account!r})"
        )

    @property
    def token(self) -> str:
        """The current token (the content of ``root/token``)."""
        return self._token

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    @property
    def expires_at(self) -> float:
        """The current token's ``exp`` (seconds since the epoch)."""
        return float(self._claims.get("exp", 0))

    def _write(self, *, first: bool = False) -> None:
        token, claims = self._sandbox._authenticator.issue(
            self.namespace, self.service_account, self._uid, self.token_lifetime
        )
        data_dir = self.root / _timestamped_name()
        data_dir.mkdir()
        contents = {
            "ca.crt": self._sandbox._pki.ca_pem,
            "namespace": self.namespace.encode(),
            "token": token.encode(),
        }
        for name, content in contents.items():
            (data_dir / name).write_bytes(content)
            (data_dir / name).chmod(0o644)
        data_link = self.root / "..data"
        old_target = os.readlink(data_link) if data_link.is_symlink() else None
        # Swap atomically: a temporary link renamed over ..data (rename(2) is atomic).
        temp_link = self.root / "..data_tmp"
        if temp_link.is_symlink():
            temp_link.unlink()
        os.symlink(data_dir.name, temp_link)
        os.replace(temp_link, data_link)
        if first:
            for name in FILES:
                link = self.root / name
                if not link.is_symlink():
                    os.symlink(f"..data/{name}", link)
        if old_target and old_target != data_dir.name:
            old_dir = self.root / old_target
            for child in old_dir.iterdir():
                child.unlink()
            old_dir.rmdir()
        self._token, self._claims = token, claims

    def rotate_token(self, grace: float = 0.0) -> str:
        """Write a new token as the kubelet does; the old one is refused ``grace`` s later.

        Returns:
            the new token.
        """
        with self._lock:
            old_jti = str(self._claims.get("jti", ""))
            self._write()
            self.rotations += 1
            if old_jti:
                self._sandbox._authenticator.revoke(old_jti, after=grace)
            return self._token

    def expire_token(self) -> None:
        """Refuse the current token from now on (as if it had expired), without rotating."""
        self._sandbox._authenticator.revoke(str(self._claims.get("jti", "")), after=0.0)

    def wait_expired(self, timeout: float = 10.0) -> None:
        """Block until the current token has passed its ``exp`` (for short lifetimes)."""
        end = time.monotonic() + timeout
        while time.time() < self.expires_at and time.monotonic() < end:
            time.sleep(0.05)
