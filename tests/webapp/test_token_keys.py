"""Key rotation end to end: rotate, drop the old key, every token still decrypts."""

from sqlalchemy import select

from broker.types import Credentials
from models import LinkMode, ProfileLink, Role, utcnow
from tests.factories import make_org, make_user
from webapp import create_app, deps
from webapp.config import new_token_key
from webapp.security import DecryptionFailed
from webapp.services import credentials


def _link(session, user, n):
    link = ProfileLink(
        organisation_id=user.organisation_id,
        user_id=user.id,
        mode=LinkMode.BUSINESS,
        sub=f"acc_{n}",
    )
    session.add(link)
    session.flush()
    return link


def test_rotate_then_drop_the_old_key(app_config, session):
    old_ring = app_config["TOKEN_KEYS"]
    app = create_app(app_config)
    org = make_org(session)
    cipher = deps.cipher.of(app)
    tokens = {}
    for n in range(3):
        link = _link(session, make_user(session, org, Role.RECRUITER), n)
        creds = Credentials(
            access_token=f"access-{n}", refresh_token=f"refresh-{n}", expires_at=utcnow(), scope=""
        )
        credentials.store_credentials(link, creds, cipher)
        tokens[link.id] = creds
    session.commit()

    new_ring = f"{new_token_key('k2')},{old_ring}"
    rotated_app = create_app(dict(app_config, TOKEN_KEYS=new_ring))
    result = rotated_app.test_cli_runner().invoke(args=["rotate-token-keys"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted: 3" in result.output and "failed: 0" in result.output
    again = rotated_app.test_cli_runner().invoke(args=["rotate-token-keys"])
    assert "already current: 3" in again.output

    only_new = create_app(dict(app_config, TOKEN_KEYS=new_ring.split(",")[0]))
    session.expire_all()
    for link in session.scalars(select(ProfileLink)):
        assert link.key_id == "k2"
        creds = credentials.load_credentials(link, deps.cipher.of(only_new))
        assert (creds.access_token, creds.refresh_token) == (
            tokens[link.id].access_token,
            tokens[link.id].refresh_token,
        )


def test_ciphertext_copied_to_another_row_does_not_decrypt(app, session):
    org = make_org(session)
    cipher = deps.cipher.of(app)
    a = _link(session, make_user(session, org), 1)
    b = _link(session, make_user(session, org), 2)
    credentials.store_credentials(a, Credentials("secret-a", "refresh-a", utcnow(), ""), cipher)
    b.access_token, b.refresh_token, b.key_id = a.access_token, a.refresh_token, a.key_id
    b.token_expires_at = a.token_expires_at
    session.commit()
    try:
        credentials.load_credentials(b, cipher)
    except DecryptionFailed:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("a ciphertext moved to another row must not decrypt")


def test_rotation_reports_links_no_key_can_open(app_config, session):
    app = create_app(app_config)
    org = make_org(session)
    link = _link(session, make_user(session, org), 9)
    credentials.store_credentials(link, Credentials("a", "r", utcnow(), ""), deps.cipher.of(app))
    session.commit()
    stranger = create_app(dict(app_config, TOKEN_KEYS=new_token_key("k7")))
    result = stranger.test_cli_runner().invoke(args=["rotate-token-keys"])
    assert result.exit_code != 0 and "could not be decrypted" in result.output


def test_a_queued_revocation_token_rotates_too(app_config, session):
    """A disconnected service account's refresh token waits in the revocation queue: rotation
    re-encrypts it, so dropping the old key does not leave it unrevocable."""
    from models import PendingRevocation
    from webapp.services import revocations

    old_ring = app_config["TOKEN_KEYS"]
    app = create_app(app_config)
    org = make_org(session)
    revocations.queue(
        session,
        ["ser_q"],
        organisation_id=org.id,
        reason="test",
        tokens={"ser_q": "sa-refresh-token"},
        cipher=deps.cipher.of(app),
    )
    session.commit()
    new_ring = f"{new_token_key('k2')},{old_ring}"
    rotated_app = create_app(dict(app_config, TOKEN_KEYS=new_ring))
    result = rotated_app.test_cli_runner().invoke(args=["rotate-token-keys"])
    assert "re-encrypted: 1" in result.output and "failed: 0" in result.output
    only_new = create_app(dict(app_config, TOKEN_KEYS=new_ring.split(",")[0]))
    session.expire_all()
    row = session.scalar(select(PendingRevocation))
    assert row.key_id == "k2"

    class Broker:
        tokens: list = []

        def revoke(self, token):
            self.tokens.append(token)

    broker = Broker()
    assert revocations.run(session, broker, cipher=deps.cipher.of(only_new)).revoked == 1
    assert broker.tokens == ["sa-refresh-token"]
