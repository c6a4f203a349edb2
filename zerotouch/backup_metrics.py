"""Per-target backup gauges (zerotouch_backup_*), read from the repository at each scrape.

`deploy/prometheus/rules/zerotouch-backups.rules.yml` turns them into alerts: no successful
verification within the target's `verify_within`, no backup within `backup_within`. The
objectives are exported too, so one rule serves every target without copying its numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from zerotouch.backup_repository import BackupRepository
from zerotouch.backups import BackupTarget

log = logging.getLogger("zerotouch.backups")


class BackupMetrics(Collector):
    def __init__(self, repository: BackupRepository, targets: Sequence[BackupTarget]) -> None:
        self._repository = repository
        self._targets = list(targets)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        labels = ["backup_target", "engine"]

        def family(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"zerotouch_backup_{name}", doc, labels=labels)

        last_backup = family("last_success_timestamp_seconds", "When the newest backup finished (Unix seconds).")
        verified = family("last_verified_timestamp_seconds",
                          "When the newest successful test restore finished (Unix seconds).")
        verification_ok = family("last_verification_ok", "1 when the newest verification passed, 0 when it failed.")
        restore = family("restore_duration_seconds", "RTO measured by the newest verification (restore → checks).")
        rpo = family("rpo_seconds", "RPO measured by the newest verification (recovery target → newest canary).")
        size = family("size_bytes", "Size of the newest backup.")
        count = family("count", "Backups in the repository.")
        verify_within = family("verify_within_seconds", "Objective: a successful verification at least this often.")
        backup_within = family("backup_within_seconds", "Objective: a new backup at least this often.")
        for target in self._targets:
            values = [target.name, target.engine]
            verify_within.add_metric(values, target.objectives.verify_within.total_seconds())
            backup_within.add_metric(values, target.objectives.backup_within.total_seconds())
            try:
                records = self._repository.backups(target.name)
            except (OSError, ValueError) as error:  # an unreadable repository must not break /metrics
                log.warning("backup metrics for %s: %s", target.name, error)
                continue
            count.add_metric(values, len(records))
            if not records:
                continue
            newest = records[-1].manifest
            last_backup.add_metric(values, newest.finished_at.timestamp())
            size.add_metric(values, newest.size_bytes)
            reports = sorted((v for r in records for v in r.verifications), key=lambda v: v.finished_at)
            passed = [v for v in reports if v.ok]
            if passed:
                verified.add_metric(values, passed[-1].finished_at.timestamp())
            if reports:
                latest = reports[-1]
                verification_ok.add_metric(values, 1.0 if latest.ok else 0.0)
                if latest.rto_seconds is not None:
                    restore.add_metric(values, latest.rto_seconds)
                if latest.rpo_seconds is not None:
                    rpo.add_metric(values, latest.rpo_seconds)
        return [last_backup, verified, verification_ok, restore, rpo, size, count, verify_within, backup_within]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
