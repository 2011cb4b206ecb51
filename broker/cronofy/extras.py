"""Push channels, Enterprise Connect, conferencing and Smart Invites of CronofyBroker."""

from __future__ import annotations

from collections.abc import Sequence

import pycronofy

from broker.cronofy import decode, encode
from broker.cronofy.requestor import Requestor
from broker.errors import Invalid
from broker.port import OnRefresh
from broker.types import (
    CONFERENCING_PROVIDERS,
    Channel,
    Credentials,
    Resource,
    ServiceAccountAuthorizationRequest,
    SmartInvite,
    SmartInviteWrite,
)


class ExtraCalls:
    """Part of CronofyBroker (see ``broker.cronofy.broker``); calls through its ``_api``."""

    _api: Requestor

    # -- channels ------------------------------------------------------------------------------

    def create_channel(
        self,
        creds: Credentials,
        callback_url: str,
        *,
        calendar_ids: Sequence[str] = (),
        only_managed: bool = False,
        on_refresh: OnRefresh | None = None,
    ) -> Channel:
        if len(callback_url) > 128:
            raise Invalid(
                "callback_url longer than 128 characters",
                fields={"callback_url": ("errors.too_long",)},
                operation="create_channel",
            )

        def call(c: pycronofy.Client) -> Channel:
            return decode.channel(
                c.create_notification_channel(
                    callback_url, calendar_ids=tuple(calendar_ids), only_managed=only_managed
                )
            )

        # Not idempotent: a retried POST could open a second channel.
        return self._api.user_call("create_channel", creds, on_refresh, call, idempotent=False)

    def channels(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Channel, ...]:
        return self._api.user_call(
            "channels",
            creds,
            on_refresh,
            lambda c: tuple(decode.channel(x) for x in c.list_notification_channels()),
            idempotent=True,
        )

    def close_channel(
        self, creds: Credentials, channel_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        self._api.user_call(
            "close_channel",
            creds,
            on_refresh,
            lambda c: c.close_notification_channel(channel_id),
            idempotent=True,
        )

    # -- Enterprise Connect --------------------------------------------------------------------

    def authorize_service_account_user(
        self,
        sa_creds: Credentials,
        request: ServiceAccountAuthorizationRequest,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Ask for access to one mailbox; the answer arrives later at ``request.callback_url``."""
        self._api.user_call(
            "authorize_service_account_user",
            sa_creds,
            on_refresh,
            lambda c: c.authorize_with_service_account(
                request.email, request.scope, request.callback_url, state=request.state
            ),
            idempotent=False,
        )

    def authorize_service_account_users(
        self,
        sa_creds: Credentials,
        requests_: Sequence[ServiceAccountAuthorizationRequest],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Ask for access to 1–50 mailboxes in one call (state per entry, as documented)."""
        entries = encode.service_account_authorizations(requests_)
        self._api.user_call(
            "authorize_service_account_users",
            sa_creds,
            on_refresh,
            lambda c: c.authorize_multiple_accounts_via_service_account([dict(e) for e in entries]),
            idempotent=False,
        )

    def resources(
        self, sa_creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Resource, ...]:
        return self._api.user_call(
            "resources",
            sa_creds,
            on_refresh,
            lambda c: tuple(decode.resource(r) for r in c.resources()),
            idempotent=True,
        )

    # -- conferencing --------------------------------------------------------------------------

    def conferencing_authorization_url(
        self,
        creds: Credentials,
        redirect_uri: str,
        *,
        provider_name: str | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> str:
        """Where to send a person to connect Zoom, GoTo or Teams to their account."""
        if provider_name is not None and provider_name not in CONFERENCING_PROVIDERS:
            raise Invalid(
                f"unknown conferencing provider_name {provider_name[:32]!r}",
                fields={"provider_name": ("errors.invalid",)},
                operation="conferencing_authorization_url",
            )
        return self._api.user_call(
            "conferencing_authorization_url",
            creds,
            on_refresh,
            lambda c: c.get_conferencing_services_auth_link(redirect_uri, provider_name),
            idempotent=True,
        )

    # -- Smart Invites (API key) ---------------------------------------------------------------

    def upsert_smart_invite(self, invite: SmartInviteWrite) -> SmartInvite:
        """Create or update an invitation (the documented body: ``method: request``, the
        organizer's name and email, and the ``callback_url`` answers are reported to)."""
        body = encode.smart_invite_body(invite)

        # pycronofy's upsert_smart_invite cannot send ``method``: post the body through its
        # request handler (API key, our transport) instead.
        def call(c: pycronofy.Client) -> SmartInvite:
            data = c.request_handler.post("smart_invites", data=body, use_api_key=True).json()
            return decode.smart_invite(data, invite.smart_invite_id)

        return self._api.app_call("upsert_smart_invite", call)

    def smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        return self._api.app_call(
            "smart_invite",
            lambda c: decode.smart_invite(
                c.get_smart_invite(smart_invite_id, recipient_email), smart_invite_id
            ),
        )

    def cancel_smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        return self._api.app_call(
            "cancel_smart_invite",
            lambda c: decode.smart_invite(
                c.cancel_smart_invite(smart_invite_id, {"email": recipient_email}),
                smart_invite_id,
            ),
        )
