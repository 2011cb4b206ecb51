"""A second organisation for isolation tests: its records share addresses with the first's.

``seed_neighbour`` gives each of the first organisation's people a namesake account (same
address, another password) in a neighbouring organisation, and fills every table that can hold
an address or point at a person with the neighbour's own rows, all naming those addresses. A
test then acts in the first organisation, against the neighbour's ids as well as its own, and
checks with ``snapshot`` that nothing of the neighbour's changed and with ``leaked`` that none
of its markers reached a page or an API answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.types import Credentials
from models import (
    AuditEntry,
    Base,
    CoordinatorAssignment,
    CreatedEvent,
    ErasureRequest,
    Interview,
    InterviewLoad,
    InterviewLoop,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    LoopSession,
    MailboxKind,
    MailboxList,
    MailboxListLine,
    MailboxRequest,
    MailboxStatus,
    Organisation,
    Pool,
    PoolMember,
    ProfileLink,
    Role,
    SchedulingLink,
    ServiceAccountLink,
    User,
    utcnow,
)
from tests.factories import make_org
from webapp import security
from webapp.services import Actor, api_tokens, credentials
from webapp.services.compliance.scope import organisation_scope
from webapp.services.link_details import email_hash

#: The neighbour's password: never the one the first organisation's people log in with.
NEIGHBOUR_PASSWORD = "the neighbour's own password"


@dataclass
class Neighbour:
    org: Organisation
    twins: dict[str, User]
    ids: dict[str, object]
    #: Strings only the neighbour's records hold.
    markers: list[str] = field(default_factory=list)

    def path_value(self, endpoint: str, name: str) -> object | None:
        """The neighbour's id for a route variable, or None when none fits."""
        kind = {
            "user_id": "user",
            "assignment_id": "assignment",
            "uid": "interview",
            "token_id": "api_token",
            "domain_id": "service_account_link",
            "pool_id": "pool",
            "member_id": "pool_member",
        }.get(name)
        if name == "link_id":
            kind = (
                "service_account_link"
                if endpoint.startswith("enterprise.")
                else "scheduling_link"
                if "scheduling_link" in endpoint or endpoint.startswith("candidate_links.")
                else "profile_link"
            )
        if name == "uid" and endpoint.startswith("loops."):
            kind = "interview_loop"
        if name == "request_id":
            kind = "mailbox_request" if endpoint.startswith("enterprise.") else "erasure_request"
        return self.ids.get(kind) if kind else None


def seed_neighbour(session: Session, cipher, people: list[User]) -> Neighbour:
    """A neighbouring organisation holding the addresses of ``people`` in every table it can."""
    suffix = secrets.token_hex(4)
    org = make_org(session, f"Neighbour {suffix}")
    org.business_connect_enabled = True
    other_hash = security.hash_password(NEIGHBOUR_PASSWORD, salt_of=people[0].password_hash)
    twins = {}
    for person in people:
        twin = User(
            organisation_id=org.id,
            email=person.email,
            name=f"Namesake {suffix} {person.id}",
            role=person.role,
            password_hash=other_hash,
            active=True,
            session_version=1,
        )
        session.add(twin)
        twins[person.email] = twin
    recruiter = User(
        organisation_id=org.id,
        email=f"recruiter.{suffix}@neighbour.example",
        name=f"Neighbour Recruiter {suffix}",
        role=Role.RECRUITER,
        password_hash=other_hash,
        active=True,
        session_version=1,
    )
    coordinator = User(
        organisation_id=org.id,
        email=f"coordinator.{suffix}@neighbour.example",
        name=f"Neighbour Coordinator {suffix}",
        role=Role.COORDINATOR,
        password_hash=other_hash,
        active=True,
        session_version=1,
    )
    session.add_all([recruiter, coordinator])
    session.flush()
    address = people[0].email
    twin = twins[address]
    link = ProfileLink(
        organisation_id=org.id,
        user_id=recruiter.id,
        mode=LinkMode.BUSINESS,
        sub=f"acc_neighbour_{suffix}",
        account_id=f"acc_neighbour_{suffix}",
        profile_id=f"pro_neighbour_{suffix}",
        provider="google",
        account_email=address,
        status=LinkStatus.ACTIVE,
        target_calendar_id=f"cal_neighbour_{suffix}",
        conflict_calendar_ids=[f"cal_neighbour_{suffix}"],
    )
    session.add(link)
    session.flush()
    credentials.store_credentials(
        link,
        Credentials(
            access_token=f"neighbour-access-{suffix}",
            refresh_token=f"neighbour-refresh-{suffix}",
            expires_at=utcnow() + dt.timedelta(hours=1),
            scope="",
            sub=link.sub,
            account_id=link.account_id,
        ),
        cipher,
    )
    interview = Interview(
        uid=secrets.token_hex(16),
        organisation_id=org.id,
        created_by_id=recruiter.id,
        host_link_id=link.id,
        panel_link_ids=[link.id],
        status=InterviewStatus.SCHEDULED,
    )
    session.add(interview)
    session.flush()
    session.add(
        CreatedEvent(
            interview_id=interview.id,
            profile_link_id=link.id,
            calendar_id=link.target_calendar_id,
            event_id=f"rdv_neighbour_{suffix}",
        )
    )
    scheduling_link = SchedulingLink(
        token_hash=security.token_hash(secrets.token_urlsafe()),
        organisation_id=org.id,
        created_by_id=recruiter.id,
        host_link_id=link.id,
        panel_link_ids=[link.id],
        duration_minutes=30,
        window_start=utcnow(),
        window_end=utcnow() + dt.timedelta(days=7),
        expires_at=utcnow() + dt.timedelta(days=7),
    )
    domain = address.rsplit("@", 1)[1]
    service_account = ServiceAccountLink(
        organisation_id=org.id,
        provider="exchange",
        domain=domain,
        sub=f"ser_neighbour_{suffix}",
        account_email=f"svc@{domain}",
        status=LinkStatus.ACTIVE,
    )
    interview_loop = InterviewLoop(
        uid=secrets.token_hex(16),
        organisation_id=org.id,
        created_by_id=recruiter.id,
        tzid="Europe/London",
        start_date=dt.date(2030, 1, 7),
        days=5,
        details_sealed=f"neighbour-sealed-{suffix}".encode(),
        candidate_email_hash=email_hash(address),
        sessions=[
            LoopSession(ordinal=1, duration_minutes=60, panel_link_ids=[link.id], video=True),
            LoopSession(
                ordinal=2,
                duration_minutes=45,
                panel_link_ids=[link.id],
                video=False,
                interview_id=interview.id,
            ),
        ],
    )
    session.add_all([scheduling_link, service_account, interview_loop])
    session.flush()
    mailbox = MailboxRequest(
        service_account_link_id=service_account.id,
        organisation_id=org.id,
        user_id=twin.id,
        email=address,
        kind=MailboxKind.MAILBOX,
        status=MailboxStatus.FAILED,
    )
    room = MailboxRequest(
        service_account_link_id=service_account.id,
        organisation_id=org.id,
        email=f"room.{suffix}@{domain}",
        kind=MailboxKind.ROOM,
        display_name=f"Neighbour Room {suffix}",
        resource_sub=f"res_neighbour_{suffix}",
        status=MailboxStatus.LINKED,
    )
    assignment = CoordinatorAssignment(
        organisation_id=org.id, coordinator_id=coordinator.id, manager_id=recruiter.id
    )
    erasure = ErasureRequest(
        organisation_id=org.id,
        person_id=recruiter.id,
        status="proposed",
        future_interviews="keep",
        proposed_by_id=coordinator.id,
    )
    mailbox_list = MailboxList(
        organisation_id=org.id,
        service_account_link_id=service_account.id,
        sent_by_id=twin.id,
        queued=0,
        rejected=1,
        created_at=utcnow(),
    )
    pool = Pool(organisation_id=org.id, name=f"Neighbour pool {suffix}", created_by_id=twin.id)
    session.add_all([mailbox, room, assignment, erasure, mailbox_list, pool])
    session.flush()
    member = PoolMember(organisation_id=org.id, pool_id=pool.id, user_id=twin.id, max_per_day=1)
    session.add_all(
        [
            member,
            InterviewLoad(
                organisation_id=org.id,
                interview_id=interview.id,
                user_id=twin.id,
                pool_id=pool.id,
                starts_at=utcnow() + dt.timedelta(days=1),
            ),
        ]
    )
    session.add(
        MailboxListLine(
            mailbox_list_id=mailbox_list.id,
            line=1,
            email=address,
            entry=f"Neighbour Line {suffix} <{address}>",
            reason="already linked",
        )
    )
    for person in people:
        session.add(
            AuditEntry(
                organisation_id=org.id,
                actor_id=twins[person.email].id,
                actor_label=person.email,
                action="neighbour.did",
                outcome="success",
                target_type="user",
                target_id=str(twins[person.email].id),
                target_label=person.email,
            )
        )
    session.commit()
    token, _ = api_tokens.create_token(
        session, Actor(twin.id, twin.email, org.id, twin.role), name=f"Neighbour token {suffix}"
    )
    ids = {
        "user": twin.id,
        "assignment": assignment.id,
        "interview": interview.uid,
        "api_token": token.id,
        "service_account_link": service_account.id,
        "profile_link": link.id,
        "scheduling_link": scheduling_link.id,
        "mailbox_request": mailbox.id,
        "erasure_request": erasure.id,
        "mailbox_list": mailbox_list.id,
        "interview_loop": interview_loop.uid,
        "pool": pool.id,
        "pool_member": member.id,
    }
    markers = [
        org.name,
        recruiter.name,
        coordinator.name,
        *(t.name for t in twins.values()),
        link.sub,
        link.profile_id,
        link.target_calendar_id,
        interview.uid,
        interview_loop.uid,
        service_account.sub,
        room.resource_sub,
        room.display_name,
        recruiter.email,
        f"Neighbour token {suffix}",
        f"Neighbour Line {suffix}",
        pool.name,
    ]
    return Neighbour(org, twins, ids, markers)


def snapshot(session: Session, organisation_id: int) -> dict[str, list[tuple]]:
    """Every row of every table that belongs to the organisation."""
    session.expire_all()
    rows = {}
    for table in Base.metadata.sorted_tables:
        rows[table.name] = sorted(
            tuple(str(v) for v in row)
            for row in session.execute(
                select(table).where(organisation_scope(table, organisation_id))
            )
        )
    return rows


def leaked(neighbour: Neighbour, text: str, *, asked: str = "") -> list[str]:
    """The neighbour's markers in a response (those the request itself named do not count)."""
    return [m for m in neighbour.markers if m and m in text and m not in asked]
