"""RS256 JSON Web Tokens, as the API server issues them to service accounts."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = ISSUER


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def service_account_claims(
    namespace: str, name: str, uid: str, *, lifetime: float, now: float | None = None
) -> dict[str, Any]:
    """The claims of a projected service-account token (see the reference token)."""
    issued = int(time.time() if now is None else now)
    return {
        "aud": [AUDIENCE],
        "exp": issued + int(lifetime),
        "iat": issued,
        "iss": ISSUER,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": uid},
        },
        "nbf": issued,
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }


def encode(claims: dict[str, Any], key: rsa.RSAPrivateKey, key_id: str) -> str:
    """Sign ``claims`` with RS256."""
    header = {"alg": "RS256", "kid": key_id}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64(signature)


def decode(token: str, public_key: rsa.RSAPublicKey) -> dict[str, Any] | None:
    """The claims of a well-signed RS256 token from our issuer, else ``None``.

    Expiry is not checked here: the caller caches decoded tokens and checks
    ``exp`` on every use.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_unb64(parts[0]))
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return None
        public_key.verify(
            _unb64(parts[2]),
            (parts[0] + "." + parts[1]).encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, InvalidSignature):
        return None
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
        return None
    aud = claims.get("aud")
    if AUDIENCE not in (aud if isinstance(aud, list) else [aud]):
        return None
    return claims


def jwks(public_key: rsa.RSAPublicKey, key_id: str) -> dict[str, Any]:
    """The JSON Web Key Set served at ``/openid/v1/jwks``."""
    numbers = public_key.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {
        "keys": [
            {"use": "sig", "kty": "RSA", "kid": key_id, "alg": "RS256", "n": _b64(n), "e": _b64(e)}
        ]
    }


def openid_configuration(server_address: str) -> dict[str, Any]:
    """The API server's ``/.well-known/openid-configuration`` (service-account issuer discovery)."""
    return {
        "issuer": ISSUER,
        "jwks_uri": f"https://{server_address}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
