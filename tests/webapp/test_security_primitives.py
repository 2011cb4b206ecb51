"""Password hashing, one-time tokens, the sealer and the token cipher."""

import pytest

from webapp import security
from webapp.config import new_token_key, parse_key_ring
from webapp.security import DecryptionFailed, Sealed, Sealer, TokenCipher


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


# The sealer: one AES-GCM implementation for references in URLs, sealed JSON and the cipher.


def test_sealer_round_trip_binds_the_purpose():
    sealer = Sealer.from_secret("s" * 48)
    ref = sealer.seal("push", "1234")
    assert "1234" not in ref and "=" not in ref
    assert sealer.open("push", ref) == "1234"
    assert sealer.open("invite", ref) is None  # a reference opens for its own purpose only
    assert Sealer.from_secret("t" * 48).open("push", ref) is None  # nor under another secret
    assert sealer.seal("push", "1234") != ref  # a fresh nonce every time


@pytest.mark.parametrize(
    "token", [None, "", "not base64 at all!", "AAAA", "é" * 10, "A" * 201, "%00%00"]
)
def test_sealer_refuses_what_it_did_not_seal(token):
    assert Sealer.from_secret("s" * 48).open("push", token) is None


def test_sealer_refuses_altered_references():
    sealer = Sealer.from_secret("s" * 48)
    ref = sealer.seal("push", "1234")
    for i in range(len(ref)):
        altered = ref[:i] + ("A" if ref[i] != "A" else "B") + ref[i + 1 :]
        assert sealer.open("push", altered) is None


def test_sealer_opens_only_the_exact_text_it_wrote():
    """Another spelling of the same bytes is refused: the last character with its unused low bits
    changed (which a lenient decoder reads as the same bytes), and stray characters inside."""
    import base64

    sealer = Sealer.from_secret("s" * 48)
    ref = sealer.seal("push", "1234")
    assert len(ref) % 4 in (2, 3)  # the last character carries unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    pad = "=" * (-len(ref) % 4)
    same_bytes = [
        ref[:-1] + c
        for c in alphabet
        if c != ref[-1]
        and base64.urlsafe_b64decode(ref[:-1] + c + pad) == base64.urlsafe_b64decode(ref + pad)
    ]
    assert same_bytes, "no other spelling found: the test would prove nothing"
    for spelling in same_bytes:
        assert sealer.open("push", spelling) is None
    assert sealer.open("push", ref[:5] + "$" + ref[5:]) is None
    assert sealer.open("push", ref[:5] + "\n" + ref[5:]) is None
    assert sealer.open("push", ref) == "1234"


def test_sealed_json_opens_only_as_an_object_within_its_length():
    sealer = Sealer.from_secret("s" * 48)
    token = sealer.seal_json("write:abc", {"summary": "Interview", "n": [1, 2]})
    assert sealer.open_json("write:abc", token) == {"summary": "Interview", "n": [1, 2]}
    assert sealer.open_json("write:abd", token) is None
    assert sealer.open_json("write:abc", token, max_length=len(token) - 1) is None
    assert sealer.open_json("list", sealer.seal("list", "[1, 2]")) is None
    assert sealer.open_json("text", sealer.seal("text", "not json")) is None


#: Sealed by the implementations this sealer replaced (bootstrap.ReferenceSealer,
#: scheduling.Sealer and the cipher's own AES-GCM), with fixed nonces: what is already in
#: databases, job queues and callback URLs registered with the aggregator must still open.
OLD_REFERENCE = "AgICAgICAgICAgICn_g6kRgsyMhbd8iEGY3ZC5oEGI4"
OLD_JSON = "AwMDAwMDAwMDAwMDvOLeERqQQzBRSIlMsZ8vex1-0avcKOUf46d5n1aH20ctttq3RUKsBz5TMsbqbLa_AifOYHE"
OLD_CIPHER_BLOB = bytes.fromhex(
    "01010101010101010101010105a683470df6004ba03b0c7d764a139a882c60abf4be461c336a1eb75c8796dfa2"
)


def test_what_the_replaced_implementations_sealed_still_opens():
    sealer = Sealer.from_secret("s" * 48)
    assert sealer.open("push", OLD_REFERENCE) == "1234"
    assert sealer.open_json("write:abc", OLD_JSON) == {"summary": "Interview", "n": [1, 2]}
    cipher = TokenCipher([("k2", bytes(range(32)))])
    sealed = Sealed("k2", OLD_CIPHER_BLOB)
    assert (
        cipher.decrypt(sealed, table="profile_links", column="refresh_token", row_id=42)
        == "refresh-token-ABC"
    )


def test_the_format_is_unchanged(monkeypatch):
    """Nonce, then ciphertext and tag: sealing with the same nonce gives the old bytes."""
    monkeypatch.setattr(security.os, "urandom", lambda n: b"\x02" * n)
    assert Sealer.from_secret("s" * 48).seal("push", "1234") == OLD_REFERENCE
    monkeypatch.setattr(security.os, "urandom", lambda n: b"\x01" * n)
    cipher = TokenCipher([("k2", bytes(range(32)))])
    sealed = cipher.encrypt(
        "refresh-token-ABC", table="profile_links", column="refresh_token", row_id=42
    )
    assert sealed == Sealed("k2", OLD_CIPHER_BLOB)
