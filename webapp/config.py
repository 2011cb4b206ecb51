"""Configuration: one table of defaults, secrets only from the environment, checked at start-up.

Every setting is listed once in ``SETTINGS`` with the environment variable it comes from, its
default and whether it is a secret. ``load_config`` builds the Flask config from that table, the
environment and test overrides; ``validate`` refuses to start a production app with a missing
secret. Development mode generates its secrets into ``instance/secrets.json`` (never the repo).
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DATA_CENTERS = ("us", "uk", "de", "au", "ca", "sg")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which one and how to fix it."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _pace(value: object) -> float | None:
    """RENDEZVOUS_BACKGROUND_PACE: a number up to 60, or off (also 0 or a negative number)."""
    text = str(value).strip().lower()
    if text in {"off", "none", "no", "false"}:
        return None
    try:
        pace = float(text)
    except ValueError:
        pace = math.nan
    if not pace <= 60:  # NaN, inf and words fail here too
        raise ConfigError("RENDEZVOUS_BACKGROUND_PACE must be a number up to 60, or `off`")
    return pace if pace > 0 else None


@dataclass(frozen=True)
class Setting:
    key: str
    env: str
    default: Any
    doc: str
    parse: Callable[[str], Any] = str
    secret: bool = False
    required_in_production: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "ENVIRONMENT",
        "RENDEZVOUS_ENV",
        "development",
        "`development` (generates missing secrets into instance/) or `production` (refuses to "
        "start without them)",
    ),
    Setting(
        "SECRET_KEY",
        "SECRET_KEY",
        None,
        "Signs session cookies and CSRF tokens",
        secret=True,
        required_in_production=True,
    ),
    Setting(
        "DATABASE_URL",
        "DATABASE_URL",
        None,
        "SQLAlchemy URL; development default is SQLite in instance/rendezvous.sqlite3. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
        required_in_production=True,
    ),
    Setting(
        "TOKEN_KEYS",
        "RENDEZVOUS_TOKEN_KEYS",
        None,
        "Key ring for calendar tokens at rest: `id:base64-32-byte-key` entries separated by "
        "commas, newest first (the first encrypts, all decrypt)",
        secret=True,
        required_in_production=True,
    ),
    Setting(
        "CRONOFY_CLIENT_ID",
        "CRONOFY_CLIENT_ID",
        None,
        "Cronofy application client id; unset in development = use the local sandbox",
    ),
    Setting(
        "CRONOFY_CLIENT_SECRET",
        "CRONOFY_CLIENT_SECRET",
        None,
        "Cronofy application client secret (also the API key and HMAC key); during a "
        "rotation `new,old` (calls use the first, callbacks may be signed by either)",
        secret=True,
    ),
    Setting(
        "CRONOFY_DATA_CENTER",
        "CRONOFY_DATA_CENTER",
        "us",
        "Cronofy data center: " + ", ".join(DATA_CENTERS),
    ),
    Setting(
        "CRONOFY_API_BASE_URL",
        "CRONOFY_API_BASE_URL",
        None,
        "Explicit API base URL (the sandbox); overrides the data center",
    ),
    Setting(
        "CRONOFY_APP_BASE_URL",
        "CRONOFY_APP_BASE_URL",
        None,
        "Explicit app (browser) base URL (the sandbox); overrides the data center",
    ),
    Setting(
        "CRONOFY_RATE_PER_SECOND",
        "CRONOFY_RATE_PER_SECOND",
        50,
        "Client-side ceiling on aggregator calls per second (the application's limit)",
        parse=int,
    ),
    Setting(
        "CRONOFY_RATE_PER_MINUTE",
        "CRONOFY_RATE_PER_MINUTE",
        500,
        "Client-side ceiling on aggregator calls per minute",
        parse=int,
    ),
    Setting(
        "INTERACTIVE_RESERVE_PERCENT",
        "RENDEZVOUS_INTERACTIVE_RESERVE_PERCENT",
        20,
        "Share (0-90 %) of both aggregator windows reserved for interactive calls (pages, API, "
        "bookings, sign-ins); background jobs only use what leaves this share free",
        parse=int,
    ),
    Setting(
        "BACKGROUND_PACE",
        "RENDEZVOUS_BACKGROUND_PACE",
        "1.25",
        "How evenly background jobs spread their per-minute budget: while that minute cap binds, "
        "they send at most ceil(minute cap x pace / 60) in any second (1.25: 9/s with the "
        "defaults); `off` or 0 lets them burst at their per-second cap",
    ),
    Setting(
        "MICROSOFT_APP_ID",
        "RENDEZVOUS_MICROSOFT_APP_ID",
        None,
        "Azure application id of the calendar service, for the Microsoft 365 / Office 365 "
        "admin-consent link "
        "on the Enterprise Connect tab; unset = the admin enters it",
    ),
    Setting(
        "SMART_INVITE_ORGANIZER_EMAIL",
        "RENDEZVOUS_SMART_INVITE_ORGANIZER_EMAIL",
        None,
        "Organizer address on Smart Invites (candidates of hosts whose calendar cannot "
        "invite). Mail to it must be forwarded to the calendar service's organizer address "
        "for your data center, or candidates' answers are lost; unset = the service's own "
        "organizer address",
    ),
    Setting(
        "SMTP_HOST",
        "RENDEZVOUS_SMTP_HOST",
        None,
        "SMTP server for outgoing mail (booking confirmations, notices); unset in development "
        "= mail is kept in the local outbox (instance/outbox, read at /dev/outbox); unset in "
        "production = no mail is sent",
    ),
    Setting("SMTP_PORT", "RENDEZVOUS_SMTP_PORT", None, "SMTP port (default 587, 465 for ssl)", int),
    Setting(
        "SMTP_SECURITY",
        "RENDEZVOUS_SMTP_SECURITY",
        "starttls",
        "`starttls`, `ssl` (implicit TLS) or `none` (a relay on the same host only)",
    ),
    Setting("SMTP_USER", "RENDEZVOUS_SMTP_USER", None, "SMTP login (unset: no login)"),
    Setting("SMTP_PASSWORD", "RENDEZVOUS_SMTP_PASSWORD", None, "SMTP password", secret=True),
    Setting(
        "MAIL_FROM",
        "RENDEZVOUS_MAIL_FROM",
        "Rendezvous <no-reply@localhost>",
        "From address of outgoing mail",
    ),
    Setting(
        "EC_CLAIM_LEASE_SECONDS",
        "RENDEZVOUS_EC_CLAIM_LEASE_SECONDS",
        120,
        "Enterprise Connect: a mailbox batch claimed by a worker that died is sent again after "
        "this long (keep it above the longest a batch request can take)",
        parse=int,
    ),
    Setting(
        "EC_MAX_AWAITED",
        "RENDEZVOUS_EC_MAX_AWAITED",
        100,
        "Enterprise Connect: the sender sends no further batch while this many of a domain's "
        "mailbox requests await the aggregator's callback (each redeems a code in the "
        "organisation's share of the background lane)",
        parse=int,
    ),
    Setting(
        "PUBLIC_BASE_URL",
        "RENDEZVOUS_PUBLIC_BASE_URL",
        None,
        "Externally visible base URL (`https://host[:port]`): every absolute link (OAuth "
        "redirects, aggregator callbacks, candidate and invitation links) is built from it, "
        "never from the request, and requests naming another host get 400. Development "
        "default: http://RENDEZVOUS_DEV_HOST:RENDEZVOUS_DEV_PORT",
        required_in_production=True,
    ),
    Setting(
        "DEV_HOST",
        "RENDEZVOUS_DEV_HOST",
        "127.0.0.1",
        "Development: the address the development server (`make run`) listens on",
    ),
    Setting(
        "METRICS_TOKEN",
        "RENDEZVOUS_METRICS_TOKEN",
        None,
        "Bearer token operators' monitoring sends to /metrics (aggregator lane usage, 429s, "
        "job backlog; installation-wide, no organisation data); unset = /metrics answers 404",
        secret=True,
    ),
    Setting(
        "DEV_PORT",
        "RENDEZVOUS_DEV_PORT",
        5000,
        "Development: the port the development server listens on",
        parse=int,
    ),
    Setting(
        "REDIS_URL",
        "REDIS_URL",
        None,
        "Redis for the rate limits shared by every worker and the job queue; required in "
        "production (limits kept per process let each worker allow the whole limit); unset "
        "in development = in-process limits and a SQLite job queue",
        required_in_production=True,
    ),
    Setting(
        "JOBS_SQLITE_PATH",
        "RENDEZVOUS_JOBS_SQLITE_PATH",
        None,
        "SQLite file of the job queue when Redis is not configured (default instance/jobs.sqlite3)",
    ),
    Setting(
        "LOGIN_RATE_LIMIT",
        "RENDEZVOUS_LOGIN_RATE_LIMIT",
        "10 per minute",
        "Login attempts allowed per client address (flask-limiter syntax)",
    ),
    Setting(
        "API_RATE_LIMIT",
        "RENDEZVOUS_API_RATE_LIMIT",
        "300 per minute",
        "Requests allowed per API token (per client address without one), flask-limiter syntax",
    ),
    Setting(
        "PASSWORD_HASHING",
        "RENDEZVOUS_PASSWORD_HASHING",
        "strong",
        "argon2id parameters for passwords: `strong` (RFC 9106 low-memory, the only choice in "
        "production) or `cheapest` (test suites only)",
    ),
    Setting(
        "SESSION_IDLE_MINUTES",
        "RENDEZVOUS_SESSION_IDLE_MINUTES",
        60,
        "A session unused this long ends",
        parse=int,
    ),
    Setting(
        "SESSION_MAX_HOURS",
        "RENDEZVOUS_SESSION_MAX_HOURS",
        12,
        "A session ends this long after login, used or not",
        parse=int,
    ),
    Setting(
        "INVITE_DAYS",
        "RENDEZVOUS_INVITE_DAYS",
        7,
        "How long an invitation link stays valid",
        parse=int,
    ),
    Setting(
        "AUDIT_RETENTION_DAYS",
        "RENDEZVOUS_AUDIT_RETENTION_DAYS",
        400,
        "Audit entries older than this are purged by the retention job",
        parse=int,
    ),
    Setting(
        "ERASURE_CONFIRM_ROLE",
        "RENDEZVOUS_ERASURE_CONFIRM_ROLE",
        "admin",
        "Who confirms an erasure a compliance reviewer proposed: `admin` (two people) or "
        "`compliance` (the reviewer alone)",
    ),
    Setting("LOG_LEVEL", "RENDEZVOUS_LOG_LEVEL", "INFO", "Python logging level"),
    Setting(
        "LOG_FORMAT",
        "RENDEZVOUS_LOG_FORMAT",
        None,
        "`json` (one object per line, default in production) or `text`",
    ),
    Setting(
        "PROXY_HOPS",
        "RENDEZVOUS_PROXY_HOPS",
        0,
        "Number of trusted reverse proxies in front of the app (X-Forwarded-*); 0 = none",
        parse=int,
    ),
    Setting(
        "SSO_ALLOW_INSECURE_ISSUERS",
        "RENDEZVOUS_SSO_ALLOW_INSECURE_ISSUERS",
        False,
        "Let single sign-on reach identity providers over plain http or on loopback and "
        "private addresses (development and tests only; refused in production)",
        parse=_bool,
    ),
    Setting(
        "SESSION_COOKIE_SECURE",
        "RENDEZVOUS_SECURE_COOKIES",
        None,
        "Send cookies over HTTPS only; default on in production, off in development",
        parse=_bool,
    ),
)

_BY_KEY = {s.key: s for s in SETTINGS}


def parse_key_ring(value: str) -> list[tuple[str, bytes]]:
    """Parse ``id:base64key,...`` into ``[(id, 32-byte key), ...]``, newest first."""
    ring: list[tuple[str, bytes]] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id.strip() or not encoded.strip():
            raise ConfigError("RENDEZVOUS_TOKEN_KEYS entries look like `k1:<base64 of 32 bytes>`")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            raise ConfigError(
                f"RENDEZVOUS_TOKEN_KEYS: key {key_id.strip()!r} is not base64"
            ) from None
        if len(key) != 32:
            raise ConfigError(
                f"RENDEZVOUS_TOKEN_KEYS: key {key_id.strip()!r} must be 32 bytes (AES-256)"
            )
        if any(existing == key_id.strip() for existing, _ in ring):
            raise ConfigError(f"RENDEZVOUS_TOKEN_KEYS: key id {key_id.strip()!r} appears twice")
        ring.append((key_id.strip(), key))
    if not ring:
        raise ConfigError("RENDEZVOUS_TOKEN_KEYS holds no key")
    return ring


def new_token_key(key_id: str = "k1") -> str:
    """A fresh key-ring entry, as printed by ``flask new-token-key``."""
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def load_config(
    instance_path: str | Path,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the config dict: defaults, then environment, then overrides; then validate."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        raw = environ.get(setting.env)
        if raw is not None and raw != "":
            try:
                value = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env}: {exc}") from None
        config[setting.key] = value
    config.update(overrides)

    production = config["ENVIRONMENT"] == "production"
    if config["ENVIRONMENT"] not in {"production", "development", "testing"}:
        raise ConfigError("RENDEZVOUS_ENV must be `production` or `development`")
    if production:
        missing = [s.env for s in SETTINGS if s.required_in_production and not config.get(s.key)]
        if missing:
            raise ConfigError(
                "Refusing to start in production without "
                + ", ".join(missing)
                + ". Set them in the environment (see README, Configuration)."
            )
    else:
        _fill_development_secrets(Path(instance_path), config)

    for key, env in (
        ("CRONOFY_RATE_PER_SECOND", "CRONOFY_RATE_PER_SECOND"),
        ("CRONOFY_RATE_PER_MINUTE", "CRONOFY_RATE_PER_MINUTE"),
    ):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ConfigError(f"{env} must be a whole number of at least 1")
    reserve = config["INTERACTIVE_RESERVE_PERCENT"]
    if not isinstance(reserve, int) or not 0 <= reserve <= 90:
        raise ConfigError("RENDEZVOUS_INTERACTIVE_RESERVE_PERCENT must be a whole number 0-90")
    config["BACKGROUND_PACE"] = _pace(config["BACKGROUND_PACE"])
    if config["CRONOFY_DATA_CENTER"] not in DATA_CENTERS:
        raise ConfigError("CRONOFY_DATA_CENTER must be one of " + ", ".join(DATA_CENTERS))
    config["PUBLIC_BASE_URL"] = _public_base_url(config)
    config["TRUSTED_HOSTS"] = [urlsplit(config["PUBLIC_BASE_URL"]).hostname]
    if bool(config["CRONOFY_CLIENT_ID"]) != bool(config["CRONOFY_CLIENT_SECRET"]):
        raise ConfigError("Set both CRONOFY_CLIENT_ID and CRONOFY_CLIENT_SECRET, or neither")
    config["TOKEN_KEY_RING"] = parse_key_ring(config["TOKEN_KEYS"])
    if config["ERASURE_CONFIRM_ROLE"] not in {"admin", "compliance"}:
        raise ConfigError("RENDEZVOUS_ERASURE_CONFIRM_ROLE must be `admin` or `compliance`")
    if config["PASSWORD_HASHING"] not in {"strong", "cheapest"}:
        raise ConfigError("RENDEZVOUS_PASSWORD_HASHING must be `strong` or `cheapest`")
    if production and config["PASSWORD_HASHING"] != "strong":
        raise ConfigError("RENDEZVOUS_PASSWORD_HASHING must be `strong` in production")
    if config["SMTP_SECURITY"] not in {"starttls", "ssl", "none"}:
        raise ConfigError("RENDEZVOUS_SMTP_SECURITY must be `starttls`, `ssl` or `none`")
    if config["LOG_FORMAT"] is None:
        config["LOG_FORMAT"] = "json" if production else "text"
    if config["LOG_FORMAT"] not in {"json", "text"}:
        raise ConfigError("RENDEZVOUS_LOG_FORMAT must be `json` or `text`")
    if production and config["SSO_ALLOW_INSECURE_ISSUERS"]:
        raise ConfigError("RENDEZVOUS_SSO_ALLOW_INSECURE_ISSUERS must be off in production")
    if config["SESSION_COOKIE_SECURE"] is None:
        config["SESSION_COOKIE_SECURE"] = production
    return config


def _public_base_url(config: dict[str, Any]) -> str:
    """The configured base URL, checked; in development the dev server's own address. Never
    the request's Host header: a forged one would send OAuth codes and links elsewhere."""
    base = config.get("PUBLIC_BASE_URL")
    if not base:
        host = (config.get("DEV_HOST") or "").strip()
        if host in {"", "0.0.0.0", "::", "[::]"}:  # nosec B104 - refused here, never bound
            raise ConfigError(
                "Set RENDEZVOUS_PUBLIC_BASE_URL to the address people open when the "
                "development server listens on all interfaces"
            )
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        base = f"http://{host}:{config['DEV_PORT']}"
    parts = urlsplit(base.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        parts = parts._replace(netloc="")
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            "RENDEZVOUS_PUBLIC_BASE_URL must be a scheme and host such as "
            "https://rendezvous.example.com (no path)"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _fill_development_secrets(instance: Path, config: dict[str, Any]) -> None:
    """Generate missing development secrets once and keep them in instance/secrets.json."""
    needed = [k for k in ("SECRET_KEY", "TOKEN_KEYS") if not config.get(k)]
    if not config.get("DATABASE_URL"):
        instance.mkdir(mode=0o700, parents=True, exist_ok=True)
        config["DATABASE_URL"] = f"sqlite:///{instance / 'rendezvous.sqlite3'}"
    if not needed:
        return
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = instance / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    generators = {"SECRET_KEY": lambda: secrets.token_urlsafe(48), "TOKEN_KEYS": new_token_key}
    changed = False
    for key in needed:
        if key not in stored:
            stored[key] = generators[key]()
            changed = True
        config[key] = stored[key]
    if changed:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
