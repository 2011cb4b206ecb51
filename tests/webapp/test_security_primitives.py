"""Password hashing, one-time tokens and the token cipher."""

import pytest

from webapp import security
from webapp.config import new_token_key, parse_key_ring
from webapp.security import DecryptionFailed, Sealed, TokenCipher


def test_password_hash_verifies_only_the_right_password():
    hashed = security.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert security.verify_password(hashed, "a long enough password")
    assert not security.verify_password(hashed, "a long enough passwore")
    assert not security.verify_password(None, "anything")
    assert not security.verify_password("not-a-hash", "anything")


def test_password_rules():
    assert security.password_problem("short") is not None
    assert security.password_problem("aaaaaaaaaaaaaaa") is not None
    assert security.password_problem("a reasonable passphrase") is None


def test_tokens_are_long_random_and_stored_hashed():
    a, b = security.new_token(), security.new_token()
    assert a != b and len(a) >= 43  # 256 bits, url-safe base64
    assert security.token_hash(a) != a and len(security.token_hash(a)) == 64


def _cipher(*ids):
    return TokenCipher(parse_key_ring(",".join(new_token_key(i) for i in ids)))


def test_cipher_round_trip_and_binding_to_row():
    cipher = _cipher("k1")
    sealed = cipher.encrypt("secret-token", table="profile_link", column="refresh_token", row_id=7)
    assert b"secret-token" not in sealed.blob
    assert (
        cipher.decrypt(sealed, table="profile_link", column="refresh_token", row_id=7)
        == "secret-token"
    )
    for table, column, row in [
        ("profile_link", "refresh_token", 8),
        ("profile_link", "access_token", 7),
        ("other", "refresh_token", 7),
    ]:
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(sealed, table=table, column=column, row_id=row)


def test_cipher_detects_tampering_and_unknown_keys():
    cipher = _cipher("k1")
    sealed = cipher.encrypt("x", table="t", column="c", row_id=1)
    flipped = bytearray(sealed.blob)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(Sealed("k1", bytes(flipped)), table="t", column="c", row_id=1)
    with pytest.raises(DecryptionFailed):
        _cipher("k9").decrypt(sealed, table="t", column="c", row_id=1)
    assert "x" not in str(DecryptionFailed())


def test_cipher_encrypts_with_newest_key_and_decrypts_with_older():
    ring = parse_key_ring(f"{new_token_key('k2')},{new_token_key('k1')}")
    old = TokenCipher(ring[1:]).encrypt("v", table="t", column="c", row_id=1)
    both = TokenCipher(ring)
    assert both.current_key_id == "k2"
    assert both.decrypt(old, table="t", column="c", row_id=1) == "v"
    assert both.encrypt("v", table="t", column="c", row_id=1).key_id == "k2"
