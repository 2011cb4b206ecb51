"""Idempotency keys for the API's POSTs, with Stripe's semantics.

A client that may retry a POST (a timeout, a dropped connection) sends ``Idempotency-Key``: the
first request with a key runs and its response is kept; the same key with the same request
within 24 hours gets that response again, without running twice; the same key with a different
request is refused (422); while the first request still runs, a second one is refused (409).
Keys belong to the person the token acts as.

Kept only while it is useful: the key and the request as SHA-256 hashes, the response sealed at
rest under the token key ring (a scheduling-link response carries a one-time URL). Results that
say nothing was done and may change on a retry (409 conflicts, 429, 5xx) are not kept, as
Stripe keeps none for requests that conflicted or never ran; the key is free again for them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import IdempotencyKey, utcnow
from webapp.security import DecryptionFailed, Sealed, TokenCipher
from webapp.services import rowcount
from webapp.services.errors import Invalid, KeyInUse, KeyReused

HEADER = "Idempotency-Key"
MAX_KEY = 255
TTL = dt.timedelta(hours=24)
_TABLE, _COLUMN = IdempotencyKey.__tablename__, "sealed_response"


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def kept(status: int) -> bool:
    """Whether a response is kept for replay: successes and refusals that would be the same on
    a retry; not conflicts, rate limits or failures on our side, which a retry may get past."""
    return 200 <= status < 300 or (400 <= status < 500 and status not in (408, 409, 425, 429))


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY or not all(33 <= ord(c) <= 126 for c in key):
        raise Invalid(
            f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters (a UUID is a good choice).",
            field=HEADER,
        )
    return key


def fingerprint(method: str, path: str, data: bytes) -> str:
    """The request, for comparing a retry with the first: method, path and the body (as
    canonical JSON when it is JSON, so key order and spacing do not matter)."""
    try:
        body = (
            json.dumps(
                json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
            if data
            else b""
        )
    except (ValueError, UnicodeDecodeError):
        body = data
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def begin(
    session: Session,
    cipher: TokenCipher,
    user_id: int,
    key: str,
    request_hash: str,
    *,
    now: dt.datetime | None = None,
) -> int | Replay:
    """Reserve the key for this request (returns the row id to finish), or the first response
    to replay. Raises Invalid, KeyReused or KeyInUse."""
    key_hash = _key_hash(check_key(key))
    now = now or utcnow()
    for _attempt in range(2):
        row = IdempotencyKey(
            user_id=user_id, key_hash=key_hash, request_hash=request_hash, created_at=now
        )
        session.add(row)
        try:
            session.commit()
            return row.id
        except IntegrityError:
            session.rollback()
        first = session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key_hash == key_hash
            )
        )
        if first is None:
            continue  # it expired and was purged meanwhile
        if first.created_at <= now - TTL:
            session.delete(first)  # expired: the key starts afresh
            session.commit()
            continue
        if first.request_hash != request_hash:
            raise KeyReused(
                f"This {HEADER} was already used for a different request. Use a new "
                "key for a new request.",
                field=HEADER,
            )
        if first.status_code is None or first.sealed_response is None:
            raise KeyInUse(f"A request with this {HEADER} is still being processed. Retry shortly.")
        try:
            return Replay(first.status_code, _open(cipher, first))
        except (DecryptionFailed, ValueError):
            raise KeyInUse(
                f"The first response to this {HEADER} cannot be repeated. Check "
                "the outcome (for example GET /interviews) before using a new "
                "key."
            ) from None
    raise KeyInUse(f"A request with this {HEADER} is still being processed. Retry shortly.")


def finish(session: Session, cipher: TokenCipher, row_id: int, status: int, body: str) -> None:
    """Keep the response for replay, or free the key when a retry should run again."""
    if not kept(status):
        abandon(session, row_id)
        return
    sealed = cipher.encrypt(body, table=_TABLE, column=_COLUMN, row_id=row_id)
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id)
        .values(
            status_code=status,
            sealed_response=f"{sealed.key_id}.{base64.b64encode(sealed.blob).decode()}",
        )
    )
    session.commit()


def abandon(session: Session, row_id: int) -> None:
    """Free the key (the request failed in a way a retry may get past)."""
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
    session.commit()


def _open(cipher: TokenCipher, row: IdempotencyKey) -> str:
    key_id, _, blob = (row.sealed_response or "").partition(".")
    return cipher.decrypt(
        Sealed(key_id, base64.b64decode(blob)), table=_TABLE, column=_COLUMN, row_id=row.id
    )


def purge(session: Session, now: dt.datetime | None = None) -> int:
    """Delete keys past their 24 hours; returns how many."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at <= (now or utcnow()) - TTL)
    )
    session.commit()
    return rowcount(result)
