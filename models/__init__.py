"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from models.api_token import ApiToken
from models.audit import AuditEntry, AuditEntryImmutable
from models.base import CATEGORIES, Base, utcnow
from models.calendar_link import (
    Attention,
    LinkMode,
    LinkStatus,
    OAuthState,
    PendingRevocation,
    ProfileLink,
)
from models.compliance import ErasureRequest
from models.enterprise import (
    MailboxKind,
    MailboxList,
    MailboxListLine,
    MailboxRequest,
    MailboxStatus,
    ServiceAccountLink,
)
from models.idempotency import IdempotencyKey
from models.interview import (
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewStatus,
    SchedulingLink,
    SchedulingPreference,
    SlotClaim,
)
from models.loop import InterviewLoop, LoopSession, LoopState
from models.organisation import Organisation
from models.pool import InterviewLoad, Pool, PoolMember
from models.sso import SsoConfig, SsoState
from models.user import LOGIN_ROLES, ROLE_LABELS, CoordinatorAssignment, Role, User

__all__ = [
    "ApiToken",
    "Attention",
    "AuditEntry",
    "AuditEntryImmutable",
    "Base",
    "CATEGORIES",
    "CoordinatorAssignment",
    "CreatedEvent",
    "ErasureRequest",
    "EventStatus",
    "IdempotencyKey",
    "Interview",
    "InterviewLoad",
    "InterviewStatus",
    "InterviewLoop",
    "LoopSession",
    "LoopState",
    "LinkMode",
    "LinkStatus",
    "MailboxRequest",
    "MailboxKind",
    "MailboxList",
    "MailboxListLine",
    "MailboxStatus",
    "OAuthState",
    "PendingRevocation",
    "ProfileLink",
    "Organisation",
    "Pool",
    "PoolMember",
    "LOGIN_ROLES",
    "ROLE_LABELS",
    "Role",
    "ServiceAccountLink",
    "SchedulingLink",
    "SchedulingPreference",
    "SlotClaim",
    "SsoConfig",
    "SsoState",
    "User",
    "utcnow",
]
