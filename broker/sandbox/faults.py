"""Fault injection: rules keyed by method + path (+ account) that delay or replace responses
(§14 J)."""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .state import new_id


@dataclass
class FaultRule:
    rule_id: str
    method: str = "*"
    path: str = "*"
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_ms: int = 0
    count: int | None = None  # None: fire every time
    probability: float = 1.0
    account: str | None = None  # an email or sub; None matches every caller
    fired: int = 0

    def matches_path(self, path: str) -> bool:
        if self.path.startswith("re:"):
            return re.search(self.path[3:], path) is not None
        if self.path.startswith("^"):
            return re.search(self.path, path) is not None
        return fnmatch.fnmatchcase(path, self.path)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "body": self.body,
            "headers": self.headers,
            "latency_ms": self.latency_ms,
            "count": self.count,
            "probability": self.probability,
            "account": self.account,
            "fired": self.fired,
        }


def parse_rule(data: Any) -> FaultRule:
    """Validate a rule posted to ``/_sandbox/faults``."""
    if not isinstance(data, dict):
        raise errors.invalid("rule", "invalid", "a fault rule must be an object")
    method = str(data.get("method", "*")).upper()
    path = data.get("path", "*")
    if not isinstance(path, str) or not path:
        raise errors.invalid("path", "invalid", "path must be a glob or a regex (re:… or ^…)")
    if path.startswith(("re:", "^")):
        try:
            re.compile(path[3:] if path.startswith("re:") else path)
        except re.error as exc:
            raise errors.invalid("path", "invalid", f"bad regex: {exc}") from None
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise errors.invalid("status", "invalid", "status must be an HTTP status code")
    latency = data.get("latency_ms", 0)
    if not isinstance(latency, int | float) or latency < 0 or latency > 60_000:
        raise errors.invalid("latency_ms", "invalid", "latency_ms must be between 0 and 60000")
    if status is None and not latency:
        raise errors.invalid("status", "required", "give a status, a latency_ms, or both")
    count = data.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise errors.invalid("count", "invalid", "count must be a positive integer")
    probability = data.get("probability", 1.0)
    if not isinstance(probability, int | float) or not 0 <= probability <= 1:
        raise errors.invalid("probability", "invalid", "probability must be between 0 and 1")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict):
        raise errors.invalid("headers", "invalid", "headers must be an object")
    return FaultRule(
        rule_id=new_id("flt_", 6),
        method=method,
        path=path,
        status=status,
        body=data.get("body"),
        headers={str(k): str(v) for k, v in headers.items()},
        latency_ms=int(latency),
        count=count,
        probability=float(probability),
        account=(data.get("account") or None),
    )


class FaultSet:
    """The active rules; the first matching rule fires."""

    def __init__(self, seed: int = 0):
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self, rule_id: str | None = None) -> int:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if rule_id is not None and r.rule_id != rule_id]
            return before - len(self._rules)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.public() for r in self._rules]

    def match(self, method: str, path: str, accounts: set[str]) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.method not in {"*", method}:
                    continue
                if not rule.matches_path(path):
                    continue
                if rule.account and rule.account.lower() not in accounts:
                    continue
                if rule.probability < 1 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None
