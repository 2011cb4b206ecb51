"""Fixtures for the JSON API: users with personal tokens, and a client that sends them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from models import Role, User
from tests.factories import make_user
from webapp.services import Actor, api_tokens


@dataclass
class TokenUser:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def issue_token(session, user: User, *, days: int = 90, name: str = "tests") -> str:
    actor = Actor(user.id, user.email, user.organisation_id, user.role)
    _, plaintext = api_tokens.create_token(session, actor, name=name, days=days)
    return plaintext


@pytest.fixture
def token_user(session, org):
    """``token_user(role, **user_fields)`` → a user of ``org`` and a fresh token of theirs."""

    def make(role: Role = Role.RECRUITER, **kwargs) -> TokenUser:
        user = make_user(session, org, role, **kwargs)
        return TokenUser(user, issue_token(session, user))

    return make


class ApiClient:
    """The Flask test client, sending a bearer token and JSON."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.token = token

    def request(self, method: str, path: str, *, token: str | None = None, headers=None, **kwargs):
        headers = dict(headers or {})
        token = token or self.token
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(client):
    return ApiClient(client)


def assert_error(response, status: int, code: str | None = None):
    """The response is the API's one error shape with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    # A booking that lost its slot also gets the free slots it may take instead.
    extra = {"slots"} if body["error"].get("code") == "slot_taken" else set()
    assert (
        {"code", "message", "fields"} <= set(body["error"]) <= {"code", "message", "fields"} | extra
    )
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]
