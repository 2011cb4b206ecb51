"""The app's shared objects: one module knows where they are kept, and everything that serves a
request (the main app and the lean callback app alike) uses the very same objects."""

import re
from pathlib import Path

import pytest
from flask import Flask

from webapp import deps
from webapp.callbacks import CallbackGuard, FastPush, PathDispatcher
from webapp.db import Database
from webapp.jobs import Jobs
from webapp.security import Sealer, TokenCipher

ROOT = Path(__file__).resolve().parents[2]
SLOTS = {
    deps.database: Database,
    deps.cipher: TokenCipher,
    deps.sealer: Sealer,
    deps.jobs: Jobs,
    deps.callback_guard: CallbackGuard,
}


def test_create_app_installs_every_shared_object(app):
    for slot, kind in SLOTS.items():
        assert isinstance(slot.of(app), kind), slot
    with app.app_context():
        for slot in SLOTS:
            assert slot() is slot.of(app)
    assert deps.broker.installed(app)  # None without an aggregator, but always installed


def test_the_callback_app_shares_the_main_apps_objects(app):
    dispatcher = app.wsgi_app
    assert isinstance(dispatcher, PathDispatcher) and isinstance(dispatcher.other, FastPush)
    lean = dispatcher.other.fallback.__self__  # the lean app's bound wsgi_app
    assert isinstance(lean, Flask) and lean is not app
    for slot in deps.CALLBACK_APP_SHARES:
        assert slot.of(lean) is slot.of(app), slot
    assert set(deps.CALLBACK_APP_SHARES) >= set(SLOTS) | {deps.broker}


def test_a_missing_object_is_an_error_not_a_silent_none():
    bare = Flask("bare")
    with bare.app_context(), pytest.raises(KeyError):
        deps.cipher()


@pytest.mark.parametrize("tree", ["webapp", "tests"])
def test_nothing_else_knows_the_keys(tree):
    """Shared objects are reached through webapp/deps.py only, never by their key."""
    lookup = re.compile(r"""extensions\s*(\[|\.get\(|,)\s*f?["']rendezvous\.""")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / tree).rglob("*.py")
        if path != ROOT / "webapp" / "deps.py" and lookup.search(path.read_text())
    ]
    assert offenders == []
