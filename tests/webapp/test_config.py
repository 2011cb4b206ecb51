"""Configuration: one table of defaults, secrets from the environment, fail fast in production."""

import json
import re
from pathlib import Path

import pytest

from webapp import deps
from webapp.config import SETTINGS, ConfigError, load_config, new_token_key, parse_key_ring

PROD = {
    "RENDEZVOUS_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1/rendezvous",
    "RENDEZVOUS_TOKEN_KEYS": new_token_key("k1"),
    "RENDEZVOUS_PUBLIC_BASE_URL": "https://rendezvous.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "RENDEZVOUS_TOKEN_KEYS",
        "RENDEZVOUS_PUBLIC_BASE_URL",
        "REDIS_URL",
    ],
)
def test_production_refuses_to_start_without_a_required_setting(tmp_path, missing):
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ=env)
    assert missing in str(info.value)
    assert not (tmp_path / "secrets.json").exists()


def test_production_error_never_echoes_secret_values(tmp_path):
    env = dict(PROD, RENDEZVOUS_TOKEN_KEYS="k1:not-base64!!")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ=env)
    assert "not-base64" not in str(info.value)


def test_production_with_everything_set_starts_with_secure_cookies(tmp_path):
    config = load_config(tmp_path, environ=PROD)
    assert config["SESSION_COOKIE_SECURE"] is True
    assert not (tmp_path / "secrets.json").exists()


def test_create_app_fails_fast_in_production_without_secrets(tmp_path, monkeypatch):
    from webapp import create_app

    for name in ("SECRET_KEY", "DATABASE_URL", "RENDEZVOUS_TOKEN_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RENDEZVOUS_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_development_generates_secrets_into_instance_once(tmp_path):
    first = load_config(tmp_path, environ={})
    second = load_config(tmp_path, environ={})
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert first["SECRET_KEY"] == second["SECRET_KEY"] == stored["SECRET_KEY"]
    assert first["TOKEN_KEYS"] == stored["TOKEN_KEYS"]
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    assert first["DATABASE_URL"] == f"sqlite:///{tmp_path / 'rendezvous.sqlite3'}"
    assert first["SESSION_COOKIE_SECURE"] is False


def test_environment_overrides_defaults_and_bad_values_are_named(tmp_path):
    config = load_config(tmp_path, environ={"RENDEZVOUS_SESSION_IDLE_MINUTES": "5"})
    assert config["SESSION_IDLE_MINUTES"] == 5
    with pytest.raises(ConfigError, match="RENDEZVOUS_SESSION_IDLE_MINUTES"):
        load_config(tmp_path, environ={"RENDEZVOUS_SESSION_IDLE_MINUTES": "soon"})
    with pytest.raises(ConfigError, match="CRONOFY_DATA_CENTER"):
        load_config(tmp_path, environ={"CRONOFY_DATA_CENTER": "mars"})
    with pytest.raises(ConfigError, match="CRONOFY_CLIENT_SECRET"):
        load_config(tmp_path, environ={"CRONOFY_CLIENT_ID": "abc"})


def test_key_ring_parsing():
    ring = parse_key_ring(f"{new_token_key('k2')},{new_token_key('k1')}")
    assert [key_id for key_id, _ in ring] == ["k2", "k1"]
    assert all(len(key) == 32 for _, key in ring)
    for bad in ["", "k1", "k1:", "k1:AAAA", f"{new_token_key('k1')},{new_token_key('k1')}"]:
        with pytest.raises(ConfigError):
            parse_key_ring(bad)


def test_readme_documents_every_environment_variable():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for setting in SETTINGS:
        assert re.search(rf"`{setting.env}`", readme), f"README does not document {setting.env}"


def _python(code: str, **extra_env: str):
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DATABASE_URL", "RENDEZVOUS_TOKEN_KEYS"}
    }
    env["RENDEZVOUS_ENV"] = "production"
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )


def test_importing_the_code_reads_no_environment_but_building_the_app_does():
    assert (
        _python(
            "import webapp, webapp.views.admin, webapp.views.auth, webapp.services.accounts"
        ).returncode
        == 0
    )
    result = _python("import wsgi")
    assert result.returncode != 0
    assert "Refusing to start in production without SECRET_KEY" in result.stderr


def test_sqlite_database_and_job_queue_files_are_private(tmp_path):
    """Like instance/secrets.json: the development database holds encrypted tokens and the queue
    ids and arguments, so neither is created readable by other local users."""
    import os
    import stat

    from sqlalchemy import text

    from webapp import create_app

    old_umask = os.umask(0o022)
    try:
        instance = tmp_path / "instance"
        # Development generates its secrets, creating the instance folder as it does.
        app = create_app(
            {
                "INSTANCE_PATH": str(instance),
                "ENVIRONMENT": "development",
                "DATABASE_URL": f"sqlite:///{instance / 'rendezvous.sqlite3'}",
            }
        )
        deps.jobs.of(app).enqueue("maintenance.purge_oauth_states")  # the queue is written
        with deps.database.of(app).engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (id INTEGER)"))
        for name in ("rendezvous.sqlite3", "jobs.sqlite3", "secrets.json"):
            mode = stat.S_IMODE((instance / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {oct(mode)}"
        assert stat.S_IMODE(instance.stat().st_mode) & 0o077 == 0
    finally:
        os.umask(old_umask)


def test_a_sqlite_database_runs_in_wal_mode_with_private_wal_files(tmp_path):
    """Readers never wait for a writer, nor a writer for readers (callbacks, pages and jobs write
    at once while a bulk link runs); the write-ahead log holds the same rows as the database,
    so it is as private."""
    import os
    import stat

    from sqlalchemy import text

    from webapp import create_app

    old_umask = os.umask(0o022)
    try:
        instance = tmp_path / "instance"
        app = create_app(
            {
                "INSTANCE_PATH": str(instance),
                "ENVIRONMENT": "development",
                "DATABASE_URL": f"sqlite:///{instance / 'rendezvous.sqlite3'}",
            }
        )
        engine = deps.database.of(app).engine
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (id INTEGER)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            for suffix in ("-wal", "-shm"):
                path = instance / f"rendezvous.sqlite3{suffix}"
                mode = stat.S_IMODE(path.stat().st_mode)
                assert mode == 0o600, f"{path.name} is {oct(mode)}"
        engine.dispose()
    finally:
        os.umask(old_umask)


def test_production_hashes_passwords_with_the_strong_argon2_parameters(tmp_path):
    """Test apps hash with argon2-cffi's cheapest profile (tests/factories.py); a production app
    keeps RFC 9106's low-memory profile and refuses to be configured otherwise."""
    from argon2 import extract_parameters, profiles

    assert load_config(tmp_path, environ=PROD)["PASSWORD_HASHING"] == "strong"
    with pytest.raises(ConfigError, match="RENDEZVOUS_PASSWORD_HASHING"):
        load_config(tmp_path, environ=dict(PROD, RENDEZVOUS_PASSWORD_HASHING="cheapest"))
    with pytest.raises(ConfigError, match="RENDEZVOUS_PASSWORD_HASHING"):
        load_config(tmp_path, environ={"RENDEZVOUS_PASSWORD_HASHING": "fast"})
    # A production app, built in its own process, hashes new passwords with the strong profile.
    database = f"sqlite:///{tmp_path / 'prod.sqlite3'}"
    code = (
        "from webapp import create_app, security\n"
        f"create_app({{'INSTANCE_PATH': {str(tmp_path)!r}}})\n"
        "print(security.hash_password('a long enough password'))\n"
    )
    env = {k: v for k, v in PROD.items() if k != "DATABASE_URL"}
    result = _python(code, DATABASE_URL=database, **env)
    assert result.returncode == 0, result.stderr
    strong = profiles.RFC_9106_LOW_MEMORY
    assert extract_parameters(result.stdout.strip()) == strong
    assert (strong.time_cost, strong.memory_cost, strong.parallelism) == (3, 65536, 4)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"RENDEZVOUS_INTERACTIVE_RESERVE_PERCENT": "95"}, "RENDEZVOUS_INTERACTIVE_RESERVE"),
        ({"RENDEZVOUS_INTERACTIVE_RESERVE_PERCENT": "-1"}, "RENDEZVOUS_INTERACTIVE_RESERVE"),
        ({"RENDEZVOUS_INTERACTIVE_RESERVE_PERCENT": "a fifth"}, "RENDEZVOUS_INTERACTIVE_RESERVE"),
        ({"RENDEZVOUS_BACKGROUND_PACE": "fast"}, "RENDEZVOUS_BACKGROUND_PACE"),
        ({"RENDEZVOUS_BACKGROUND_PACE": "nan"}, "RENDEZVOUS_BACKGROUND_PACE"),
        ({"RENDEZVOUS_BACKGROUND_PACE": "61"}, "RENDEZVOUS_BACKGROUND_PACE"),
        ({"CRONOFY_RATE_PER_SECOND": "0"}, "CRONOFY_RATE_PER_SECOND"),
        ({"CRONOFY_RATE_PER_MINUTE": "-5"}, "CRONOFY_RATE_PER_MINUTE"),
    ],
)
def test_rate_limit_lane_settings_are_validated(tmp_path, env, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ=env)
    assert fragment in str(info.value)


def test_the_interactive_reserve_reaches_the_broker_limiter(tmp_path):
    from broker.ratelimit import BACKGROUND, INTERACTIVE
    from webapp.bootstrap import build_broker

    config = load_config(
        tmp_path,
        environ={
            "CRONOFY_CLIENT_ID": "cid",
            "CRONOFY_CLIENT_SECRET": "csecret",
            "CRONOFY_RATE_PER_SECOND": "50",
            "CRONOFY_RATE_PER_MINUTE": "500",
            "RENDEZVOUS_INTERACTIVE_RESERVE_PERCENT": "30",
        },
    )
    assert load_config(tmp_path / "d", environ={})["INTERACTIVE_RESERVE_PERCENT"] == 20
    broker = build_broker(config)
    assert broker is not None
    try:
        limiter = broker.rate_limiter  # type: ignore[attr-defined]
        assert limiter.caps[INTERACTIVE] == (50, 500)
        assert limiter.caps[BACKGROUND] == (35, 350)
    finally:
        broker.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "paced"),
    [(None, 9), ("1.25", 9), ("2", 14), ("off", None), ("OFF", None), ("0", None), ("-1", None)],
)
def test_the_background_pace_reaches_the_broker_limiter(tmp_path, value, paced):
    from broker.ratelimit import BACKGROUND
    from webapp.bootstrap import build_broker

    environ = {"CRONOFY_CLIENT_ID": "cid", "CRONOFY_CLIENT_SECRET": "csecret"}
    if value is not None:
        environ["RENDEZVOUS_BACKGROUND_PACE"] = value
    broker = build_broker(load_config(tmp_path, environ=environ))
    assert broker is not None
    try:
        limiter = broker.rate_limiter  # type: ignore[attr-defined]
        assert limiter.paced == paced
        assert limiter.caps[BACKGROUND] == (40, 400)
        shown = limiter.usage()["lanes"][BACKGROUND]["cap_second"]
        assert shown == (40 if paced is None else paced)
    finally:
        broker.close()  # type: ignore[attr-defined]


def test_the_background_pace_reaches_the_shared_redis_limiter(tmp_path, redis_url):
    from broker.ratelimit import RedisRateLimiter
    from webapp.bootstrap import build_broker

    environ = {
        "CRONOFY_CLIENT_ID": "cid",
        "CRONOFY_CLIENT_SECRET": "csecret",
        "REDIS_URL": redis_url,
        "RENDEZVOUS_BACKGROUND_PACE": "1.5",
    }
    broker = build_broker(load_config(tmp_path, environ=environ))
    assert broker is not None
    try:
        limiter = broker.rate_limiter  # type: ignore[attr-defined]
        assert isinstance(limiter, RedisRateLimiter) and limiter.paced == 10
    finally:
        broker.close()  # type: ignore[attr-defined]


def test_the_interactive_reserve_reaches_the_shared_redis_limiter(tmp_path, redis_url):
    from broker.ratelimit import BACKGROUND, RedisRateLimiter
    from webapp.bootstrap import build_broker

    environ = {
        "CRONOFY_CLIENT_ID": "cid",
        "CRONOFY_CLIENT_SECRET": "csecret",
        "REDIS_URL": redis_url,
        "RENDEZVOUS_INTERACTIVE_RESERVE_PERCENT": "10",
    }
    broker = build_broker(load_config(tmp_path, environ=environ))
    assert broker is not None
    try:
        limiter = broker.rate_limiter  # type: ignore[attr-defined]
        assert isinstance(limiter, RedisRateLimiter)
        assert limiter.caps[BACKGROUND] == (45, 450)
    finally:
        broker.close()  # type: ignore[attr-defined]
