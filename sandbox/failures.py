"""Injected API failures, for testing how clients cope with a flaky apiserver."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ApiError

SUPPORTED_STATUS = (0, 403, 404, 409, 422, 429, 500, 503, 504)
# Statuses the sandbox's error table does not name; the client maps them by code anyway.
_REASONS = {403: "Forbidden", 404: "NotFound", 422: "Invalid"}
_MESSAGES = {
    403: "forbidden: the caller may not do this to the requested resource (injected by sandbox)",
    404: "the server could not find the requested resource (injected by sandbox)",
    422: "the request is invalid: the object does not pass validation (injected by sandbox)",
    409: "Operation cannot be fulfilled: the object has been modified (injected by sandbox)",
    429: "the server has received too many requests and has asked us to try again later "
         "(injected by sandbox)",
    500: "an error on the server has prevented the request from succeeding "
         "(injected by sandbox)",
    503: "the server is currently unable to handle the request (injected by sandbox)",
    504: "the server was unable to return a response in the time allotted "
         "(injected by sandbox)",
}


@dataclass
class FailureRule:
    status: int  # 0 = no error, only the delay
    count: int
    path_contains: str = ""
    method: str = ""  # empty = any method
    delay_seconds: float = 0.0
    # Apply then stall: the request is handled (a write applied and logged) and only its
    # answer is held back, as when an apiserver commits and the response is lost or slow.
    delay_after_seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.count > 0 and self.path_contains in path
                and (not self.method or self.method.upper() == method.upper()))


class FailureInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FailureRule] = []

    def add(self, status: int | None = 500, count: int = 1, path_contains: str = "",
            delay_seconds: float = 0.0, method: str = "", delay_after_seconds: float = 0.0) -> FailureRule:
        code = int(status or 0)
        if code not in SUPPORTED_STATUS:
            raise ValueError(f"unsupported failure status {code}; use one of {SUPPORTED_STATUS}")
        if count < 1 or delay_seconds < 0 or delay_after_seconds < 0:
            raise ValueError("count must be >= 1 and delay_seconds, delay_after_seconds >= 0")
        if code and delay_after_seconds:
            raise ValueError("a rule that holds the answer back (delay_after_seconds) sends the real answer; "
                             "use status 0 with it")
        rule = FailureRule(code, int(count), path_contains, method, float(delay_seconds),
                           float(delay_after_seconds))
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> FailureRule | None:
        """Consume one use of the first matching rule, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    taken = FailureRule(**asdict(rule))
                    self._rules = [r for r in self._rules if r.count > 0]
                    return taken
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


def error_for(rule: FailureRule) -> ApiError | None:
    if not rule.status:
        return None
    return ApiError(rule.status, _MESSAGES[rule.status], _REASONS.get(rule.status))


def hold_answer(rule: FailureRule | None) -> None:
    """Stall after the request was handled, before its answer is sent (apply then stall)."""
    if rule is not None and rule.delay_after_seconds:
        time.sleep(rule.delay_after_seconds)
