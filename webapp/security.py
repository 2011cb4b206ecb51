"""Security primitives: access policies, password hashing, one-time tokens, sealing (the one
AES-GCM implementation) and the token cipher built on it.

Nothing here imports the request: views and services pass what they need.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from argon2 import Parameters, PasswordHasher, extract_parameters, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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

#: argon2id parameters by name (the ``PASSWORD_HASHING`` setting). ``strong`` is argon2-cffi's
#: default, RFC 9106's low-memory profile; ``cheapest`` (argon2-cffi's profile for test suites)
#: makes a hash take microseconds instead of a fifth of a second, and production refuses it.
HASHING_PROFILES: dict[str, Parameters] = {
    "strong": profiles.RFC_9106_LOW_MEMORY,
    "cheapest": profiles.CHEAPEST,
}


def password_hasher(profile: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(HASHING_PROFILES[profile])


def use_password_hashing(profile: str) -> None:
    """Hash new passwords (and rehash old ones at login) with the named profile; the app
    factory calls this with its configuration."""
    global _profile, _hasher, _DUMMY_HASH
    if profile != _profile:
        hasher = password_hasher(profile)
        _profile, _hasher, _DUMMY_HASH = profile, hasher, hasher.hash(secrets.token_urlsafe(16))


def hashing_parameters() -> Parameters:
    """The parameters new password hashes get."""
    return HASHING_PROFILES[_profile]


_profile = "strong"
_hasher = password_hasher("strong")
#: A real hash of a random password, verified against when the email is unknown so that the
#: response time does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 12


def hash_password(password: str, *, salt_of: str | None = None) -> str:
    """An argon2id hash. With ``salt_of`` (the hash of another account at the same address) the
    new hash takes that hash's salt: every account at one address then shares a salt, so a
    login checks the password against all of them with one argon2 computation (see
    ``verify_passwords``)."""
    parsed = _parsed(salt_of)
    return _hasher.hash(password, salt=parsed[1] if parsed else None)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _parsed(password_hash: str | None) -> tuple[Parameters, bytes, bytes] | None:
    """Parameters, salt and digest of an argon2 hash (PHC string format), or None."""
    if not password_hash:
        return None
    try:
        parameters = extract_parameters(password_hash)
        salt, digest = password_hash.split("$")[-2:]
        return parameters, _b64(salt), _b64(digest)
    except (InvalidHashError, ValueError, binascii.Error):
        return None


def verify_passwords(password_hashes: Sequence[str | None], password: str) -> list[bool]:
    """Which of these hashes (None: no password yet) the password matches.

    One argon2 computation per distinct salt and parameters, and one against a dummy hash when
    there is nothing to check: accounts at one address share a salt (``hash_password``), so
    the time a login takes says nothing about how many organisations have an account there."""
    matched = [False] * len(password_hashes)
    groups: dict[tuple, tuple[Parameters, bytes, list[tuple[int, bytes]]]] = {}
    for index, password_hash in enumerate(password_hashes):
        parsed = _parsed(password_hash)
        if parsed is not None:
            p, salt, digest = parsed
            key = (p.type, p.version, p.time_cost, p.memory_cost, p.parallelism, p.hash_len, salt)
            groups.setdefault(key, (p, salt, []))[2].append((index, digest))
    try:
        secret = password.encode("utf-8")
    except UnicodeEncodeError:  # no password set here can contain it
        groups = {}
    if not groups:
        verify_password(None, "not a password")
        return matched
    for p, salt, members in groups.values():
        computed = hash_secret_raw(
            secret,
            salt,
            time_cost=p.time_cost,
            memory_cost=p.memory_cost,
            parallelism=p.parallelism,
            hash_len=p.hash_len,
            type=p.type,
            version=p.version,
        )
        for index, digest in members:
            matched[index] = hmac.compare_digest(computed, digest)
    return matched


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
# Sealing: AES-256-GCM, implemented here once. A sealed blob is a 12-byte random nonce followed
# by the ciphertext and its 16-byte tag; associated data binds it to where it belongs (a purpose,
# or a table, column and row), so it neither opens elsewhere nor opens at all once altered.

NONCE_SIZE = 12
TAG_SIZE = 16


class Sealer:
    """Seals and opens values under one 256-bit key.

    ``seal``/``open``: opaque, tamper-proof references for URLs (a link id in a callback URL, an
    API cursor), URL-safe base64 without padding; ``seal_json``/``open_json``: JSON objects the
    same way (job arguments, candidate links); ``seal_bytes``/``open_bytes``: the raw form, for
    the token cipher. Opening anything forged, altered, too long or bound to another purpose
    gives None.
    """

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    @classmethod
    def from_secret(cls, secret_key: str) -> Sealer:
        """The app's sealer: its key derived from SECRET_KEY."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"rendezvous reference sealer v1"
        )
        return cls(hkdf.derive(secret_key.encode()))

    def seal_bytes(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def open_bytes(self, blob: bytes, associated_data: bytes) -> bytes | None:
        if len(blob) < NONCE_SIZE + TAG_SIZE:
            return None
        try:
            return self._aead.decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], associated_data)
        except InvalidTag:
            return None

    def seal(self, purpose: str, value: str) -> str:
        blob = self.seal_bytes(value.encode(), purpose.encode())
        return base64.urlsafe_b64encode(blob).rstrip(b"=").decode()

    def open(self, purpose: str, token: str | None, *, max_length: int = 200) -> str | None:
        if not token or len(token) > max_length:
            return None
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if base64.urlsafe_b64encode(blob).rstrip(b"=").decode() != token:
                # Only the exact text seal() wrote opens: the decoder would otherwise skip
                # stray characters and ignore the unused low bits of the last one.
                return None
            opened = self.open_bytes(blob, purpose.encode())
            return opened.decode() if opened is not None else None
        except (ValueError, binascii.Error):  # not base64, or not UTF-8 (UnicodeDecodeError)
            return None

    def seal_json(self, purpose: str, value: dict) -> str:
        return self.seal(purpose, json.dumps(value))

    def open_json(self, purpose: str, token: str | None, *, max_length: int = 8192) -> dict | None:
        raw = self.open(purpose, token, max_length=max_length)
        try:
            value = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


# ---------------------------------------------------------------------------------------------
# Token cipher: calendar tokens at rest, sealed under a key ring; the associated data binds a
# ciphertext to its table, column and row.


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
        self._keys = {key_id: Sealer(key) for key_id, key in self._ring}

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
        aad = self.associated_data(table, column, row_id)
        blob = self._keys[self.current_key_id].seal_bytes(plaintext.encode(), aad)
        return Sealed(self.current_key_id, blob)

    def decrypt(self, sealed: Sealed, *, table: str, column: str, row_id: object) -> str:
        sealer = self._keys.get(sealed.key_id)
        opened = (
            sealer.open_bytes(sealed.blob, self.associated_data(table, column, row_id))
            if sealer is not None
            else None
        )
        if opened is None:
            raise DecryptionFailed()
        try:
            return opened.decode()
        except UnicodeDecodeError:
            raise DecryptionFailed() from None
