"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from tests import netguard


@pytest.fixture(autouse=True, scope="session")
def _no_internet():
    """Fail any test that tries to reach a non-loopback address (indico's disallow fixture)."""
    netguard.install()
    yield
    netguard.uninstall()
