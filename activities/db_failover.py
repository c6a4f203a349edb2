"""DatabaseFailoverWorkflow's activities on the data queue: each a short verb over the policy's target.

The worker injects how references become DSNs, where PostgreSQL's programs are and (built on first
use, so a data worker that never repoints a Secret needs no Kubernetes) the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kubernetes import client as k8s
from temporalio import activity

from activities.db_failover_fence import fence_old_primary
from activities.db_failover_pg import Postgres
from activities.db_failover_probe import confirm_primary_down, measure_replica_lag
from activities.db_failover_promote import promote_replica, verify_new_primary
from activities.db_failover_rejoin import rejoin_old_primary
from activities.db_failover_repoint import repoint_connection_file, repoint_kubernetes_secret
from activities.keepalive import keeps_alive
from activities.pg_binaries import find_bin_dir
from zerotouch import activity_names as names
from zerotouch.db_failover_models import FailoverStep, FailoverStepResult
from zerotouch.recovery_databases import ConnectionFileRepoint


class DatabaseFailoverActivities:
    def __init__(self, *, dsn_for: Callable[[str], str], api_client: Callable[[], k8s.ApiClient],
                 bin_dir: Callable[[], Path] = find_bin_dir) -> None:
        self._dsn_for, self._api_client, self._bin_dir = dsn_for, api_client, bin_dir

    def _servers(self, step: FailoverStep) -> tuple[Postgres, Postgres]:
        target = step.target
        return (Postgres(target.primary, dsn_for=self._dsn_for, bin_dir=self._bin_dir),
                Postgres(target.replica, dsn_for=self._dsn_for, bin_dir=self._bin_dir))

    @activity.defn(name=names.CONFIRM_PRIMARY_DOWN)
    @keeps_alive
    def confirm_primary_down(self, step: FailoverStep) -> FailoverStepResult:
        """psql -c 'SELECT 1' <primary>, N times: ok when every try failed."""
        primary, _ = self._servers(step)
        return confirm_primary_down(primary, step.target.probes, step.target.probe_interval.total_seconds())

    @activity.defn(name=names.MEASURE_REPLICA_LAG)
    @keeps_alive
    def measure_replica_lag(self, step: FailoverStep) -> FailoverStepResult:
        """pg_waldump <old primary> vs pg_last_wal_replay_lsn() <replica>: lag_bytes, or None (unknown)."""
        return measure_replica_lag(*self._servers(step))

    @activity.defn(name=names.FENCE_OLD_PRIMARY)
    @keeps_alive
    def fence_old_primary(self, step: FailoverStep) -> FailoverStepResult:
        """pg_ctl stop -m fast -D <old primary>; ok only when confirmed stopped."""
        primary, _ = self._servers(step)
        return fence_old_primary(primary, step.target.fence.stop_timeout)

    @activity.defn(name=names.PROMOTE_REPLICA)
    @keeps_alive
    def promote_replica(self, step: FailoverStep) -> FailoverStepResult:
        """SELECT pg_promote() <replica>, until it leaves recovery."""
        _, replica = self._servers(step)
        return promote_replica(replica, step.target.promote_timeout)

    @activity.defn(name=names.REPOINT_DATABASE_CONSUMERS)
    @keeps_alive
    def repoint_database_consumers(self, step: FailoverStep) -> FailoverStepResult:
        """Write the new primary's host/port where the policy's consumers read it."""
        new = step.target.replica
        changed: list[str] = []
        unchanged: list[str] = []
        for spec in step.target.repoint:
            if isinstance(spec, ConnectionFileRepoint):
                moved, detail = repoint_connection_file(spec, new)
            else:
                moved, detail = repoint_kubernetes_secret(spec, new, self._api_client)
            (changed if moved else unchanged).append(detail)
        return FailoverStepResult(ok=True, detail="; ".join([*changed, *unchanged]) or "no consumers to repoint",
                                  after={"consumers_point_at": new.describe(), "changed": str(len(changed))})

    @activity.defn(name=names.VERIFY_NEW_PRIMARY)
    @keeps_alive
    def verify_new_primary(self, step: FailoverStep) -> FailoverStepResult:
        """SELECT txid_current() <new primary>; the canary rows before the promotion have no gap."""
        _, replica = self._servers(step)
        return verify_new_primary(replica, step.target.canary, step.canary_until)

    @activity.defn(name=names.REJOIN_OLD_PRIMARY)
    @keeps_alive
    def rejoin_old_primary(self, step: FailoverStep) -> FailoverStepResult:
        """pg_rewind <old primary> from <new primary>; start it as a standby; wait until it streams."""
        primary, replica = self._servers(step)
        return rejoin_old_primary(primary, replica, step.target.promote_timeout * 2)
