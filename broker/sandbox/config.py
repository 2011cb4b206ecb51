"""The sandbox's options: one table of defaults, overridable per instance.

Where the reference (§16) leaves behaviour open, the option exists and its default is the
documented or most likely behaviour, so tests can exercise both readings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Options that take one of a few words.
CHOICES: dict[str, frozenset[str]] = {
    "sa_callback_state": frozenset({"authorization", "top_level"}),
    "revoke_non_account_subs": frozenset({"refuse", "accept"}),
}


@dataclass
class SandboxConfig:
    """Everything that can be tuned on a sandbox instance."""

    client_id: str = "sandbox-client"
    client_secrets: list[str] = field(default_factory=lambda: ["sandbox-secret"])
    #: Exact redirect URIs the app registered. Like Cronofy, the consent page refuses any other
    #: (none until the app registers its own: a code must never go where the app did not ask).
    allowed_redirect_uris: list[str] = field(default_factory=list)
    state_file: str | None = None
    seed: int = 20240611

    # Tokens (§1.2, §1.3, §2.2)
    token_ttl: int = 3600
    service_account_token_ttl: int = 1800
    code_ttl: int = 600
    #: Cronofy says the refresh token "may change"; the docs example echoes it (§16.1).
    rotate_refresh_tokens: bool = False
    #: Revoking a service account also revokes the mailboxes linked through it (§16, unconfirmed).
    cascade_service_account_revoke: bool = False
    #: Link accounts authorized in the same browser into one account, as Cronofy's cookie does
    #: (§1.6).
    link_accounts_by_cookie: bool = False

    # Reads (§4)
    page_size: int = 100
    events_window_past_days: int = 16
    events_window_future_days: int = 201

    # Writes (§5, §16.4)
    readonly_calendar_status: int = 422
    unknown_event_delete_status: int = 202
    duplicate_calendar_names_rejected: bool = True
    #: Whether the app's own writes produce `change` notifications on its channels (§16.8).
    notify_own_changes: bool = False
    #: Seconds before conferencing details are assigned (only with automatic delivery).
    conferencing_delay: float = 0.2

    # Availability (§6, §16.5)
    default_start_interval: int = 30
    default_max_results: int = 256
    max_max_results: int = 512
    max_participant_groups: int = 10
    max_members_per_group: int = 50
    max_query_periods: int = 50
    max_query_span_days: int = 35
    max_sequence_results: int = 20
    max_sequence_steps: int = 10

    # Rate limiting (§11)
    rate_limit_enabled: bool = True
    rate_limit_per_second: int = 50
    rate_limit_per_minute: int = 500

    # Notifications and callbacks (§7.2)
    auto_deliver: bool = True
    delivery_timeout: float = 5.0
    retry_initial_delay: float = 1.0
    retry_max_delay: float = 600.0
    #: After failing for this long, a channel is closed (Cronofy: 24 h).
    retry_window_seconds: float = 86400.0
    max_callback_url_length: int = 128
    #: Open channels one account may hold for one application (docs create-channel: 128, and
    #: "we recommend only using one"); creating another is 422.
    max_channels_per_account: int = 128

    # Batch and service-account batches (§10, §2.3)
    max_batch_entries: int = 50
    max_service_account_batch: int = 50

    # Service-account (delegated access) callbacks (§2.4). No reachable source says whether
    # they carry Cronofy-HMAC-SHA256 or where ``state`` comes back, so both are switches. The
    # default is the stricter reading for the app: unsigned (it must not rely on a signature).
    sa_callback_signed: bool = False
    #: ``authorization`` ({"authorization": {"code", "state"}}) or ``top_level``
    #: ({"authorization": {"code"}, "state": …}).
    sa_callback_state: str = "authorization"

    # Revocation (§1.4): revoking by ``sub`` is documented for accounts; for a service account
    # (``ser_…``) or a room (``res_…``) it is unconfirmed. ``refuse`` (the stricter reading)
    # answers 400 invalid_request; ``accept`` revokes.
    revoke_non_account_subs: str = "refuse"

    def update(self, values: dict[str, Any]) -> list[str]:
        """Apply known options from ``values``; return the names that are not options (or
        whose value is not one of the option's choices)."""
        known = {f.name: f for f in dataclasses.fields(self)}
        unknown = []
        for key, value in values.items():
            if (
                key not in known
                or key in {"client_id", "state_file"}
                or (key in CHOICES and value not in CHOICES[key])
            ):
                unknown.append(key)
                continue
            current = getattr(self, key)
            if isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int) and not isinstance(value, bool):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            setattr(self, key, value)
        return unknown

    def public(self) -> dict[str, Any]:
        """Options safe to show on the control API (no secrets)."""
        data = dataclasses.asdict(self)
        data.pop("client_secrets")
        return data
