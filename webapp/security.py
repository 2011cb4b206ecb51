"""Security primitives: access policies, password hashing, one-time tokens and the token cipher.

Nothing here imports the request: views and services pass what they need.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from models import Role

F = TypeVar("F", bound=Callable)

# ---------------------------------------------------------------------------------------------
# Access policies: every endpoint declares who may use it; undeclared endpoints are refused.

PUBLIC = "public"
ANY_USER = "any-user"
ALL_ROLES = frozenset(Role)


def allow(*roles: Role) -> Callable[[F], F]:
    """Declare that only users with one of ``roles`` may use this view."""
    if not roles:
        raise ValueError("allow() needs at least one role; use public or signed_in otherwise")
    policy = frozenset(roles)

    def mark(view: F) -> F:
        view.access_policy = policy  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Declare a view usable without logging in (login page, error pages, static files)."""
    view.access_policy = PUBLIC  # type: ignore[attr-defined]
    return view


def signed_in(view: F) -> F:
    """Declare a view usable by any logged-in user, whatever their role."""
    view.access_policy = ANY_USER  # type: ignore[attr-defined]
    return view


def policy_of(view: Callable | None) -> object | None:
    return getattr(view, "access_policy", None)


def permits(policy: object, role: Role | None) -> bool:
    """Whether a user with ``role`` (None = anonymous) passes ``policy``."""
    if policy == PUBLIC:
        return True
    if role is None:
        return False
    if policy == ANY_USER:
        return True
    return isinstance(policy, frozenset) and role in policy


# ---------------------------------------------------------------------------------------------
# Passwords

_hasher = PasswordHasher()
#: A real hash of a random password, verified against when the email is unknown so that the
#: response time does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """A human reason why ``password`` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    if len(set(password)) < 4:
        return "Use a less repetitive password."
    return None


# ---------------------------------------------------------------------------------------------
# One-time tokens (invitations, OAuth state, links): 256 bits from `secrets`, stored as SHA-256.

def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# ---------------------------------------------------------------------------------------------
# Token cipher: AES-256-GCM, associated data binds a ciphertext to its table, column and row.

class DecryptionFailed(Exception):
    """Ciphertext was tampered with, moved to another row, or its key is not in the ring."""

    def __str__(self) -> str:  # never echo ciphertext or key material
        return "stored secret could not be decrypted"


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes  # 12-byte nonce + ciphertext + tag


class TokenCipher:
    """Encrypts calendar tokens at rest under a key ring (first key encrypts, any key decrypts)."""

    def __init__(self, ring: Iterable[tuple[str, bytes]]):
        self._ring = list(ring)
        if not self._ring:
            raise ValueError("the key ring is empty")
        self._keys = {key_id: AESGCM(key) for key_id, key in self._ring}

    @property
    def current_key_id(self) -> str:
        return self._ring[0][0]

    @property
    def key_ids(self) -> list[str]:
        return [key_id for key_id, _ in self._ring]

    @staticmethod
    def associated_data(table: str, column: str, row_id: object) -> bytes:
        return f"rendezvous:{table}:{column}:{row_id}".encode()

    def encrypt(self, plaintext: str, *, table: str, column: str, row_id: object) -> Sealed:
        nonce = os.urandom(12)
        aad = self.associated_data(table, column, row_id)
        blob = nonce + self._keys[self.current_key_id].encrypt(nonce, plaintext.encode(), aad)
        return Sealed(self.current_key_id, blob)

    def decrypt(self, sealed: Sealed, *, table: str, column: str, row_id: object) -> str:
        aead = self._keys.get(sealed.key_id)
        if aead is None or len(sealed.blob) < 12 + 16:
            raise DecryptionFailed()
        aad = self.associated_data(table, column, row_id)
        try:
            return aead.decrypt(sealed.blob[:12], sealed.blob[12:], aad).decode()
        except Exception:
            raise DecryptionFailed() from None
