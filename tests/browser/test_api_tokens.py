"""A person creates an API token on their profile in a real browser, uses it, and revokes it."""

from __future__ import annotations

from playwright.sync_api import expect

from models import Role
from tests.browser.conftest import log_in
from tests.factories import make_org, make_user


def test_create_use_and_revoke_a_token(page, session, live_server):
    user = make_user(session, make_org(session), Role.COORDINATOR)
    log_in(page, user.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My profile").click()
    page.get_by_role("navigation", name="Profile").get_by_role("link", name="API tokens").click()
    expect(page.get_by_text("You have no API tokens yet.")).to_be_visible()

    page.get_by_label("Name").fill("Phone")
    page.get_by_label("Expires after").select_option("30")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Your new token “Phone”")).to_be_visible()
    token = page.get_by_role("textbox", name="Token").input_value()
    assert token.startswith("rdv_")

    api = page.context.request  # carries the browser's cookies too: they must not count
    assert api.get(live_server.url + "/api/v1/me").status == 401
    me = api.get(live_server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200 and me.json()["role"] == "coordinator"

    page.goto("/profile/api-tokens/")  # shown once: never again
    expect(page.get_by_role("textbox", name="Token")).to_have_count(0)
    row = page.get_by_role("row", name="Phone")
    expect(row).to_contain_text(token[:8])
    row.get_by_role("button", name="Revoke Phone").click()
    expect(page.get_by_role("status")).to_contain_text("Token “Phone” revoked.")
    expect(page.get_by_role("row", name="Phone")).to_contain_text("revoked")
    assert (
        api.get(live_server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status
        == 401
    )
