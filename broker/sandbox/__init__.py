"""A local Cronofy-compatible aggregator for development and tests (like stripe-mock for Stripe).

Production code never imports this package. Start it with ``python -m broker.sandbox`` or, in
tests, with :func:`broker.sandbox.server.start_sandbox`.
"""

from __future__ import annotations

from .app import create_sandbox_app
from .config import SandboxConfig

__all__ = ["create_sandbox_app", "SandboxConfig"]
