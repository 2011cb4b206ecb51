"""What a self-scheduling link is for, kept on its row: the candidate's name and email and the
interview title, encrypted with the app's Sealer (AES-GCM), the associated data binding the
ciphertext to this column of this link (its token hash), so it cannot be moved to another row.
The token itself is kept the same way while the link is open, so the recruiter can copy the
link again (it is a bearer link: never logged, shown only to the recruiter who made it).

The recruiter's list shows them (to the organisation's own users only: rows are looked up in
the actor's organisation), the candidate notices read the address from them, and the compliance
pages find a candidate's links by ``email_hash`` (the SHA-256 the audit trail uses for mail
recipients). They are deleted with the link.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from models import SchedulingLink
from webapp.security import Sealer

#: Longest sealed details accepted (name 200 + email 320 + title 200, JSON-escaped, + AES-GCM).
MAX_SEALED = 8192


@dataclass(frozen=True)
class LinkDetails:
    name: str
    email: str
    title: str


def email_hash(address: str) -> str:
    """SHA-256 of the trimmed, lower-cased address (as ``webapp.mail.recipient_hash``)."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def _associated_data(token_hash: str) -> bytes:
    return f"scheduling_link.candidate_sealed:{token_hash}".encode()


def seal_details(sealer: Sealer, link: SchedulingLink, details: LinkDetails) -> None:
    """Store ``details`` on ``link`` (whose token hash is set): encrypted, with the address hash."""
    plain = json.dumps({"n": details.name, "e": details.email, "t": details.title})
    link.candidate_sealed = sealer.seal_bytes(plain.encode(), _associated_data(link.token_hash))
    link.candidate_email_hash = email_hash(details.email)


def open_details(sealer: Sealer, link: SchedulingLink) -> LinkDetails | None:
    """The link's details, or None for a link made before they were kept, or one that does not
    open (another key, or the ciphertext moved to another row)."""
    blob = link.candidate_sealed
    if not blob or len(blob) > MAX_SEALED:
        return None
    opened = sealer.open_bytes(bytes(blob), _associated_data(link.token_hash))
    if opened is None:
        return None
    try:
        value = json.loads(opened)
        return LinkDetails(str(value["n"]), str(value["e"]), str(value["t"]))
    except (ValueError, KeyError, TypeError):
        return None


def seal_token(sealer: Sealer, link: SchedulingLink, token: str) -> None:
    link.token_sealed = sealer.seal_bytes(
        token.encode(), f"scheduling_link.token_sealed:{link.token_hash}".encode()
    )


def open_token(sealer: Sealer, link: SchedulingLink) -> str | None:
    """The link's token while it is kept (an open link made since it is), else None."""
    blob = link.token_sealed
    if not blob or len(blob) > MAX_SEALED:
        return None
    opened = sealer.open_bytes(
        bytes(blob), f"scheduling_link.token_sealed:{link.token_hash}".encode()
    )
    return opened.decode() if opened is not None else None
