"""Command-line tasks: ``flask db upgrade``, ``flask seed-demo``, ``flask new-token-key``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from models import migrate
from webapp import deps
from webapp.config import new_token_key

db_cli = AppGroup("db", help="Database schema migrations (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"Database is at {revision}.")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"Database is at {revision}.")


@db_cli.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(message: str) -> None:
    """Generate a migration from the difference between the models and the database."""
    from alembic import command

    command.revision(
        migrate.alembic_config(current_app.config["DATABASE_URL"]),
        message=message,
        autogenerate=True,
    )


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo organisation and its users (development only)."""
    if current_app.config["ENVIRONMENT"] == "production":
        raise click.ClickException("Refusing to seed demo users into a production database.")
    from webapp.dev.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo

    with deps.database().sessions() as session:
        created = seed_demo(session)
    click.echo("Demo organisation created." if created else "Demo organisation already present.")
    click.echo(f"Demo logins (password: {DEMO_PASSWORD}):")
    for user in DEMO_USERS:
        click.echo(f"  {user.role.label:<28} {user.email}")


@click.command("new-token-key")
@click.argument("key_id", default="k1")
def new_token_key_command(key_id: str) -> None:
    """Print a fresh RENDEZVOUS_TOKEN_KEYS entry (prepend it to rotate)."""
    click.echo(new_token_key(key_id))


@click.command("rotate-token-keys")
@with_appcontext
def rotate_token_keys_command() -> None:
    """Re-encrypt every stored calendar token under the newest key of RENDEZVOUS_TOKEN_KEYS."""
    from webapp.services.credentials import rotate_token_keys

    cipher = deps.cipher()
    with deps.database().sessions() as session:
        counts = rotate_token_keys(session, cipher)
    click.echo(f"Newest key: {cipher.current_key_id}")
    for label, count in counts.items():
        click.echo(f"  {label}: {count}")
    if counts["failed"]:
        raise click.ClickException(
            f"{counts['failed']} link(s) could not be decrypted with any key in the ring; keep the "
            "old keys until they are re-linked."
        )
    click.echo("Every token now uses the newest key; older keys may be removed from the ring.")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(new_token_key_command)
    app.cli.add_command(rotate_token_keys_command)
