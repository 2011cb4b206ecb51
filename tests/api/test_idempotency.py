"""Idempotency-Key on the API's POSTs (Stripe's semantics): the same key and request within 24
hours return the first response without acting twice; another request under the key is 422; a
second request while the first runs is 409; keys are per person, expire, and are purged."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Base, IdempotencyKey, Interview, SchedulingLink, utcnow
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.webapp.scheduling_support import next_weekday
from webapp import deps
from webapp.services import idempotency


def free_slots(api, panel) -> list[str]:
    params = [("panel", str(link.id)) for _u, link in panel] + [
        ("start_date", next_weekday(1).isoformat()),
        ("days", "5"),
    ]
    return [s["start"] for s in api.get("/availability", query_string=params).get_json()["slots"]]


def new_interview(panel, start: str, **extra) -> dict:
    return {
        "panel": [link.id for _u, link in panel],
        "start": start,
        "title": "Idempotent",
        "candidate_name": "Ida",
        "candidate_email": "ida@gmail.example",
        **extra,
    }


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_a_retry_with_the_same_key_gets_the_first_response_and_books_once(
    client, session, sandbox, recruiter, panel
):
    api = ApiClient(client, issue_token(session, recruiter))
    start = free_slots(api, panel)[0]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = api.post("/interviews", json=new_interview(panel, start), headers=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    audits = count(session, AuditEntry)
    # The same request again (keys in another order): the first answer, nothing done again.
    body = new_interview(panel, start)
    again = api.post("/interviews", json=dict(reversed(list(body.items()))), headers=key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(session, Interview) == 1 and count(session, AuditEntry) == audits
    # The same key for another request is refused, and changes nothing.
    other = api.post(
        "/interviews", json=new_interview(panel, free_slots(api, panel)[-1]), headers=key
    )
    assert assert_error(other, 422, "idempotency_key_reused")["fields"] == {
        "Idempotency-Key": [other.get_json()["error"]["message"]]
    }
    assert count(session, Interview) == 1
    # Without a key (or with a new one) the same body is a new request: the slot is taken now.
    assert_error(api.post("/interviews", json=body), 409, "slot_taken")
    assert_error(
        api.post("/interviews", json=body, headers={"Idempotency-Key": "another"}),
        409,
        "slot_taken",
    )


def test_keys_belong_to_their_person_and_expire(client, session, sandbox, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    colleague, _their_link = panel[0]
    theirs = ApiClient(client, issue_token(session, colleague))
    starts = free_slots(api, panel)
    key = {"Idempotency-Key": "order-1234"}
    mine = api.post("/interviews", json=new_interview(panel, starts[0]), headers=key)
    assert mine.status_code == 201
    # A colleague's identical key is theirs: no replay of Riley's answer, no refusal either.
    other = theirs.post("/interviews", json=new_interview(panel[1:], starts[-1]), headers=key)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert other.get_json()["uid"] != mine.get_json()["uid"]
    # Within 24 hours another request under Riley's key is refused; after them it runs afresh.
    hour = dt.timedelta(hours=1)
    elsewhere = next(
        s
        for s in starts
        if all(
            abs(dt.datetime.fromisoformat(s) - dt.datetime.fromisoformat(t)) >= hour
            for t in (starts[0], starts[-1])
        )
    )
    assert_error(
        api.post("/interviews", json=new_interview(panel[:1], elsewhere), headers=key),
        422,
        "idempotency_key_reused",
    )
    session.execute(
        IdempotencyKey.__table__.update()
        .where(IdempotencyKey.user_id == recruiter.id)
        .values(created_at=utcnow() - idempotency.TTL - dt.timedelta(seconds=1))
    )
    session.commit()
    later = api.post("/interviews", json=new_interview(panel[:1], elsewhere), headers=key)
    assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers
    assert count(session, Interview) == 3
    # The hourly purge deletes keys past 24 hours, and only those.
    assert count(session, IdempotencyKey) == 2
    assert idempotency.purge(session, now=utcnow() + dt.timedelta(hours=23)) == 0
    assert idempotency.purge(session, now=utcnow() + idempotency.TTL) == 2
    assert count(session, IdempotencyKey) == 0


def test_the_kept_response_is_sealed_and_replayed_whole(
    app, client, session, sandbox, recruiter, panel
):
    api = ApiClient(client, issue_token(session, recruiter))
    body = {
        "panel": [link.id for _u, link in panel],
        "start_date": next_weekday(1).isoformat(),
        "days": 2,
        "candidate_name": "Casey",
        "candidate_email": "casey@gmail.example",
        "title": "Sealed",
    }
    key = {"Idempotency-Key": "link-" + uuid.uuid4().hex}
    first = api.post("/scheduling-links", json=body, headers=key)
    again = api.post("/scheduling-links", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert count(session, SchedulingLink) == 1
    token = first.get_json()["url"].rsplit("/", 1)[1]
    with deps.database.of(app).engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert token not in repr(tuple(row)), table.name
                assert key["Idempotency-Key"] not in repr(tuple(row)), table.name


def test_refusals_are_kept_but_conflicts_are_not(app, client, session, sandbox, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    start = free_slots(api, panel)[0]
    past = (utcnow() - dt.timedelta(days=1)).isoformat()
    key = {"Idempotency-Key": "past-1"}
    refused = api.post("/interviews", json=new_interview(panel, past), headers=key)
    assert_error(refused, 422)
    replayed = api.post("/interviews", json=new_interview(panel, past), headers=key)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json() == refused.get_json()
    # A slot taken by someone else is a conflict a retry may get past: not kept.
    blocker = api.post("/interviews", json=new_interview(panel, start)).get_json()["uid"]
    key = {"Idempotency-Key": "retry-me"}
    assert_error(
        api.post("/interviews", json=new_interview(panel, start), headers=key), 409, "slot_taken"
    )
    assert api.post(f"/interviews/{blocker}/cancel").status_code == 200
    retried = api.post("/interviews", json=new_interview(panel, start), headers=key)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers


def test_a_retried_cancel_answers_as_the_first_did(client, session, sandbox, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    uid = api.post("/interviews", json=new_interview(panel, free_slots(api, panel)[0])).get_json()[
        "uid"
    ]
    key = {"Idempotency-Key": "cancel-" + uid}
    first = api.post(f"/interviews/{uid}/cancel", headers=key)
    again = api.post(f"/interviews/{uid}/cancel", headers=key)
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    # Without the key, cancelling twice is refused as before.
    assert_error(api.post(f"/interviews/{uid}/cancel"), 422)


@pytest.mark.parametrize("value", ["", "x" * 256, "with space", "tab\there", "ü"])
def test_a_malformed_key_is_422_and_changes_nothing(
    client, session, sandbox, recruiter, panel, value
):
    api = ApiClient(client, issue_token(session, recruiter))
    start = free_slots(api, panel)[0]
    response = api.post(
        "/interviews", json=new_interview(panel, start), headers={"Idempotency-Key": value}
    )
    error = assert_error(response, 422)
    assert "Idempotency-Key" in error["fields"]
    assert count(session, Interview) == 0 and count(session, IdempotencyKey) == 0


def test_a_second_request_while_the_first_runs_is_409(app, session, sandbox, recruiter, panel):
    start = free_slots(ApiClient(app.test_client(), issue_token(session, recruiter)), panel)[0]
    token = issue_token(session, recruiter)
    # The first request waits on a slow aggregator; the second arrives meanwhile.
    sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=800)
    results = {}

    def post(name, delay):
        import time

        time.sleep(delay)
        client = ApiClient(app.test_client(), token)
        results[name] = client.post(
            "/interviews", json=new_interview(panel, start), headers={"Idempotency-Key": "slow-1"}
        )

    threads = [
        threading.Thread(target=post, args=("first", 0)),
        threading.Thread(target=post, args=("second", 0.3)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["first"].status_code == 201
    assert_error(results["second"], 409, "idempotency_key_in_use")
    assert count(session, Interview) == 1
    # Once the first has finished, a retry gets its answer.
    again = ApiClient(app.test_client(), token).post(
        "/interviews", json=new_interview(panel, start), headers={"Idempotency-Key": "slow-1"}
    )
    assert again.status_code == 201 and again.get_json() == results["first"].get_json()
