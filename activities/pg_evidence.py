"""The evidence of one test restore as it is gathered: checks in order, seconds per phase, RTO and RPO."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime

from zerotouch.backup_models import CheckResult, EngineVerification


class Evidence:
    """Collects checks and phase durations; `result` turns them into an `EngineVerification`."""

    def __init__(self) -> None:
        self.checks: list[CheckResult] = []
        self.durations: dict[str, float] = {}
        self.tool_versions: dict[str, str] = {}
        self.recovery_target = ""
        self.rto_seconds: float | None = None
        self.rpo_seconds: float | None = None
        self.newest_canary_at: datetime | None = None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.durations[name] = round(self.durations.get(name, 0.0) + time.monotonic() - started, 3)

    def add(self, name: str, ok: bool, output: str, seconds: float = 0.0) -> bool:
        self.checks.append(CheckResult(name=name, ok=ok, output=output.strip(), seconds=round(seconds, 3)))
        return ok

    def extend(self, checks: list[CheckResult]) -> None:
        self.checks.extend(checks)

    @property
    def failed(self) -> bool:
        return any(not check.ok for check in self.checks)

    def measure_rpo(self, newest: datetime | None, reference: datetime) -> None:
        """What recovery lost: the newest canary row present vs the moment recovery aimed at."""
        self.newest_canary_at = newest
        if newest is not None:
            self.rpo_seconds = round(max(0.0, (reference - newest).total_seconds()), 3)

    def result(self) -> EngineVerification:
        return EngineVerification(
            checks=self.checks, recovery_target=self.recovery_target, rto_seconds=self.rto_seconds,
            rpo_seconds=self.rpo_seconds, newest_canary_at=self.newest_canary_at,
            tool_versions=self.tool_versions, durations=self.durations,
        )


def not_run(names: list[str]) -> str:
    return f"checks not run: {', '.join(names)}" if names else ""
