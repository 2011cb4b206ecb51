"""The app's dependencies built from the configuration, once per app: the calendar broker, the
token cipher and the sealer (stored on the app by ``create_app``), and the values
derived from the aggregator settings (client secrets, the aggregator's browser origin)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.port import CalendarBroker
from webapp.mail import Mailer
from webapp.security import Sealer, TokenCipher


def build_broker(config: Mapping[str, Any]) -> CalendarBroker | None:
    """The Cronofy adapter for the configured endpoint, or None when no aggregator is configured."""
    if not config.get("CRONOFY_CLIENT_ID"):
        return None
    from broker.cronofy import CronofyBroker
    from broker.ratelimit import InProcessRateLimiter, RedisRateLimiter

    reserve = config["INTERACTIVE_RESERVE_PERCENT"] / 100
    limiter = InProcessRateLimiter(
        per_second=config["CRONOFY_RATE_PER_SECOND"],
        per_minute=config["CRONOFY_RATE_PER_MINUTE"],
        interactive_reserve=reserve,
        background_pace=config["BACKGROUND_PACE"],
    )
    if config.get("REDIS_URL"):
        import redis

        limiter = RedisRateLimiter(
            redis.Redis.from_url(config["REDIS_URL"]),
            key_prefix=f"rendezvous:cronofy:{config['CRONOFY_CLIENT_ID']}",
            per_second=config["CRONOFY_RATE_PER_SECOND"],
            per_minute=config["CRONOFY_RATE_PER_MINUTE"],
            interactive_reserve=reserve,
            background_pace=config["BACKGROUND_PACE"],
        )
    explicit = config.get("CRONOFY_API_BASE_URL")
    return CronofyBroker(
        config["CRONOFY_CLIENT_ID"],
        client_secrets(config)[0],
        data_center=None if explicit else config["CRONOFY_DATA_CENTER"],
        api_base_url=explicit or None,
        app_base_url=config.get("CRONOFY_APP_BASE_URL") or None,
        rate_limiter=limiter,
        # A ten-person panel's grid reads eleven calendars at once (availability + free/busy).
        pool_size=16,
    )


def client_secrets(config: Mapping[str, Any]) -> list[str]:
    """CRONOFY_CLIENT_SECRET as a list: the first is used for calls, any verifies callbacks
    (during a secret rotation both the new and the old one sign notifications)."""
    return [s.strip() for s in (config.get("CRONOFY_CLIENT_SECRET") or "").split(",") if s.strip()]


def aggregator_app_origin(config: Mapping[str, Any]) -> str | None:
    """Origin of the aggregator's browser pages (forms may redirect there)."""
    if not config.get("CRONOFY_CLIENT_ID"):
        return None
    if config.get("CRONOFY_APP_BASE_URL"):
        from urllib.parse import urlsplit

        parts = urlsplit(config["CRONOFY_APP_BASE_URL"])
        return f"{parts.scheme}://{parts.netloc}"
    dc = config["CRONOFY_DATA_CENTER"]
    return "https://app.cronofy.com" if dc == "us" else f"https://app-{dc}.cronofy.com"


def build_cipher(config: Mapping[str, Any]) -> TokenCipher:
    return TokenCipher(config["TOKEN_KEY_RING"])


def build_sealer(config: Mapping[str, Any]) -> Sealer:
    return Sealer.from_secret(config["SECRET_KEY"])


def build_mailer(config: Mapping[str, Any], instance_path: str) -> Mailer | None:
    """SMTP from the config, the development outbox, or None (see webapp.mail)."""
    from webapp import mail

    return mail.build_mailer(config, instance_path)
