"""Personal API tokens on the profile: shown once, stored hashed, expiring, revocable, audited."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from models import ApiToken, AuditEntry, Role, utcnow
from tests.api.conftest import assert_error
from tests.factories import make_user
from webapp import security

TOKEN_RE = re.compile(
    r'id="new-token" class="copy" type="text" readonly value="(rdv_[A-Za-z0-9_-]+)"'
)


def create_via_page(auth, name="Phone", days="90"):
    return auth.post("/profile/api-tokens/", {"name": name, "days": days})


def test_token_is_shown_once_stored_hashed_and_works(app, client, auth, session, org, api):
    user = make_user(session, org, Role.RECRUITER)
    auth.login(user.email)
    page = create_via_page(auth, days="30")
    assert page.status_code == 200
    token = TOKEN_RE.search(page.get_data(as_text=True)).group(1)
    row = session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert row.token_hash == security.token_hash(token) and row.token_hash != token
    assert row.prefix == token[:8] and row.name == "Phone"
    assert abs((row.expires_at - utcnow()) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)
    # Never again: the list shows only the prefix.
    listing = client.get("/profile/api-tokens/").get_data(as_text=True)
    assert token not in listing and f"{row.prefix}…" in listing
    # Nothing secret in the audit trail.
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "api_token.created"))
    assert entry.actor_id == user.id and token not in str(entry.detail)
    # The token works (and its use is noted, to the minute).
    response = api.get("/me", token=token)
    assert response.status_code == 200 and response.get_json()["email"] == user.email
    session.refresh(row)
    assert row.last_used_at is not None


def test_token_form_refuses_bad_input_and_changes_nothing(client, auth, session, org):
    user = make_user(session, org, Role.COORDINATOR)
    auth.login(user.email)
    for name, days, message in [
        ("", "90", "Name the token"),
        ("x" * 101, "90", "Name the token"),
        ("Phone", "7", "30, 90 or 365"),
        ("Phone", "abc", "30, 90 or 365"),
    ]:
        response = create_via_page(auth, name=name, days=days)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert session.scalar(select(ApiToken)) is None


def test_expiry_choices_default_to_ninety_days(client, auth, session, org):
    user = make_user(session, org, Role.ADMIN)
    auth.login(user.email)
    page = client.get("/profile/api-tokens/").get_data(as_text=True)
    assert re.search(r'<option value="90"\s+selected', page)
    for days in ("30", "90", "365"):
        assert create_via_page(auth, name=f"t{days}", days=days).status_code == 200
    lifetimes = sorted(
        round((t.expires_at - t.created_at).total_seconds() / 86400)
        for t in session.scalars(select(ApiToken))
    )
    assert lifetimes == [30, 90, 365]


def test_revoked_token_is_refused_at_once_and_audited(client, auth, session, org, api):
    user = make_user(session, org, Role.COMPLIANCE)
    auth.login(user.email)
    token = TOKEN_RE.search(create_via_page(auth).get_data(as_text=True)).group(1)
    assert api.get("/me", token=token).status_code == 200
    row = session.scalar(select(ApiToken))
    response = auth.post(f"/profile/api-tokens/{row.id}/revoke", form_page="/profile/api-tokens/")
    assert response.status_code == 302
    assert_error(api.get("/me", token=token), 401, "unauthorized")
    actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert "api_token.revoked" in actions and actions[-1] == "api_token.denied"
    listing = client.get("/profile/api-tokens/").get_data(as_text=True)
    assert "revoked" in listing and "Revoke Phone" not in listing


def test_nobody_revokes_someone_elses_token(client, auth, session, org, token_user):
    owner = token_user(Role.RECRUITER)
    row = session.scalar(select(ApiToken).where(ApiToken.user_id == owner.user.id))
    other = make_user(session, org, Role.ADMIN)
    auth.login(other.email)
    response = auth.post(f"/profile/api-tokens/{row.id}/revoke", form_page="/profile/api-tokens/")
    assert response.status_code == 404
    session.refresh(row)
    assert row.revoked_at is None


def test_profile_links_to_api_tokens(client, auth, session, org):
    user = make_user(session, org, Role.RECRUITER)
    auth.login(user.email)
    page = client.get("/profile/").get_data(as_text=True)
    assert 'href="/profile/api-tokens/"' in page


def test_purge_deletes_tokens_a_month_after_they_stop_working(app, session, org, token_user):
    from webapp.services import api_tokens

    kept, old_revoked, old_expired, recent = (token_user(Role.RECRUITER) for _ in range(4))
    now = utcnow()
    rows = {
        t.user.id: session.scalar(select(ApiToken).where(ApiToken.user_id == t.user.id))
        for t in (kept, old_revoked, old_expired, recent)
    }
    rows[old_revoked.user.id].revoked_at = now - dt.timedelta(days=31)
    rows[old_expired.user.id].expires_at = now - dt.timedelta(days=31)
    rows[recent.user.id].revoked_at = now - dt.timedelta(days=29)
    session.commit()
    with app.app_context():
        from webapp.jobs.maintenance import purge_api_tokens

        assert purge_api_tokens() == 2
        assert purge_api_tokens() == 0  # idempotent
    session.expire_all()
    left = {t.user_id for t in session.scalars(select(ApiToken))}
    assert left == {kept.user.id, recent.user.id}
    assert api_tokens.PURGE_AFTER == dt.timedelta(days=30)
