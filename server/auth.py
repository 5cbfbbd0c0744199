"""Identity: anonymous buyers with signed tokens, and the organizer's admin token.

A buyer token is `<buyer_id>.<signature>`, the signature an HMAC-SHA256 of the
buyer id under `SEATMAP_SECRET`, so any server process can verify it without
a lookup and a forged or altered token fails. This module owns token format
and checks; it never stores anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from .errors import Unauthorized


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenSigner:
    def __init__(self, secret: str, admin_token: str) -> None:
        self._key = secret.encode()
        self._admin = admin_token.encode()

    def _sign(self, buyer_id: str) -> str:
        return _b64(hmac.new(self._key, b"buyer:" + buyer_id.encode(), hashlib.sha256).digest())

    def issue(self) -> tuple[str, str]:
        buyer_id = "b_" + secrets.token_urlsafe(12)
        return buyer_id, f"{buyer_id}.{self._sign(buyer_id)}"

    def buyer_of(self, token: str) -> str:
        """The buyer id a token proves, or Unauthorized."""
        buyer_id, sep, signature = token.rpartition(".")
        if not sep or not buyer_id or not hmac.compare_digest(signature, self._sign(buyer_id)):
            raise Unauthorized("the buyer token is missing, malformed or not signed by this server")
        return buyer_id

    def is_admin(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._admin)


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
