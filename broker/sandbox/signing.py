"""``Cronofy-HMAC-SHA256`` signatures for everything the sandbox POSTs to an app (§7.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac

HEADER = "Cronofy-HMAC-SHA256"


def sign(body: bytes, secrets: list[str]) -> str:
    """base64(HMAC-SHA256(secret, body)) per active client secret, comma-joined."""
    return ",".join(
        base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode()
        for secret in secrets
    )


def verify(header: str | None, body: bytes, secret: str) -> bool:
    """True if any comma-separated value in ``header`` matches ``secret``'s signature."""
    if not header:
        return False
    expected = sign(body, [secret]).encode()
    return any(hmac.compare_digest(part.strip().encode(), expected) for part in header.split(","))
