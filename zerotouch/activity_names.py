"""The name of every activity, and the task queue it runs on: one definition for both sides.

Activities register under these names (`@activity.defn(name=...)`) and workflows call them
by these names (workflows may not import the activities), so a typo fails at import time
instead of leaving an activity task that no worker ever picks up.
"""

from __future__ import annotations

from typing import Final

from zerotouch.names import (
    BACKUP_QUEUE,
    DATA_QUEUE,
    KUBERNETES_QUEUE,
    KUBERNETES_WAITS_QUEUE,
    OBSERVE_QUEUE,
    OBSERVE_WAITS_QUEUE,
)

# --- zerotouch-kubernetes: remediations and rollout checks -----------------------------
RESTART_DEPLOYMENT: Final = "restart_deployment"
SCALE_DEPLOYMENT: Final = "scale_deployment"
ROLLBACK_DEPLOYMENT: Final = "rollback_deployment"
RAISE_MEMORY_LIMIT: Final = "raise_memory_limit"
EVICT_POD: Final = "evict_pod"
RUN_JOB: Final = "run_job"
GET_ROLLOUT_STATUS: Final = "get_rollout_status"
GET_CLUSTER_USAGE: Final = "get_cluster_usage"
WAIT_FOR_ROLLOUT: Final = "wait_for_rollout"
GET_WORKLOAD_SYMPTOMS: Final = "get_workload_symptoms"  # does the workload show what its alert claims
RESOLVE_WORKLOAD: Final = "resolve_workload"  # owner references (activities/workloads)
# scheduled jobs (workflows/scheduled_job)
CREATE_SCHEDULED_JOB: Final = "create_scheduled_job"
WAIT_FOR_JOB: Final = "wait_for_job"
# secret rotation (workflows/secret_rotation): the Deployments that read the Secret
FIND_SECRET_CONSUMERS: Final = "find_secret_consumers"  # noqa: S105 (an activity name)
ROLL_SECRET_CONSUMERS: Final = "roll_secret_consumers"  # noqa: S105 (an activity name)
# imported CronJobs (workflows/cronjob_run)
CREATE_CRONJOB_JOB: Final = "create_cronjob_job"
SUSPEND_CRONJOB: Final = "suspend_cronjob"
# node recovery (workflows/node_recovery): cordon under an owner, drain by eviction, the provider, Ready again
READ_NODE: Final = "read_node"
CORDON_NODE: Final = "cordon_node"
DRAIN_NODE: Final = "drain_node"
WAIT_FOR_WORKLOADS: Final = "wait_for_workloads"
RESTART_NODE: Final = "restart_node"
WAIT_FOR_NODE_READY: Final = "wait_for_node_ready"
# namespace restore (workflows/namespace_restore): the backup's diff against the namespace, the approved writes
PLAN_NAMESPACE_RESTORE: Final = "plan_namespace_restore"
APPLY_NAMESPACE_RESTORE: Final = "apply_namespace_restore"
VERIFY_NAMESPACE_RESTORE: Final = "verify_namespace_restore"

# --- zerotouch-data: databases -----------------------------------------------------------
TERMINATE_IDLE_CONNECTIONS: Final = "terminate_idle_connections"
GET_CONNECTION_USAGE: Final = "get_connection_usage"
# secret rotation: the Secret that holds the credential versions (only the data worker may touch
# credentials: deploy/kubernetes/rbac.yaml gives its ServiceAccount, and no other, the rotated Secrets)
READ_ROTATION_STATE: Final = "read_rotation_state"
CREATE_PENDING_CREDENTIAL: Final = "create_pending_credential"
FINISH_ROTATION: Final = "finish_rotation"
ROLLBACK_ROTATION: Final = "rollback_rotation"
MARK_ROTATION: Final = "mark_rotation"
# ... and the target system (PostgreSQL, MongoDB, the OAuth provider) learns, tests, forgets a credential
SET_PENDING_CREDENTIAL: Final = "set_pending_credential"
TEST_PENDING_CREDENTIAL: Final = "test_pending_credential"
UNDO_PENDING_CREDENTIAL: Final = "undo_pending_credential"
RESTORE_CURRENT_CREDENTIAL: Final = "restore_current_credential"
REVOKE_PREVIOUS_CREDENTIAL: Final = "revoke_previous_credential"
COUNT_CREDENTIAL_SESSIONS: Final = "count_credential_sessions"
# data-subject requests (workflows/gdpr): every store's part, the subject read from the request vault
RESOLVE_SUBJECT: Final = "resolve_subject"
EXPORT_SUBJECT: Final = "export_subject"
WRITE_EXPORT_MANIFEST: Final = "write_export_manifest"  # counts and hashes of a request's exports, beside them
ERASE_SUBJECT: Final = "erase_subject"
REQUERY_SUBJECT: Final = "requery_subject"
SUPPRESS_SUBJECT: Final = "suppress_subject"
# data retention (workflows/gdpr_retention): one bounded batch of expired rows, or a dry run's count
EXPIRE_ROWS: Final = "expire_rows"
COUNT_EXPIRED_ROWS: Final = "count_expired_rows"
# erased subjects erased again after a database restore (for a restore path; `zerotouch gdpr reapply` by hand)
REAPPLY_SUPPRESSION: Final = "reapply_suppression"
# database failover (workflows/db_failover): probe, measure the lag, fence, promote, repoint, verify, rejoin
CONFIRM_PRIMARY_DOWN: Final = "confirm_primary_down"
MEASURE_REPLICA_LAG: Final = "measure_replica_lag"
FENCE_OLD_PRIMARY: Final = "fence_old_primary"
PROMOTE_REPLICA: Final = "promote_replica"
REPOINT_DATABASE_CONSUMERS: Final = "repoint_database_consumers"
VERIFY_NEW_PRIMARY: Final = "verify_new_primary"
REJOIN_OLD_PRIMARY: Final = "rejoin_old_primary"

# --- zerotouch-observe: metrics, notifications, policy, Governor, ledger -----------------
QUERY_PROMQL: Final = "query_promql"
WAIT_FOR_PROMQL: Final = "wait_for_promql"
SEND_NOTIFICATION: Final = "send_notification"
LOAD_POLICY: Final = "load_policy"
# The Governor's guardrail settings as the workers' policy file says: the only source it accepts.
GOVERNOR_SETTINGS: Final = "governor_settings"
REQUEST_GRANT: Final = "request_grant"
APPEND_INCIDENT_RECORD: Final = "append_incident_record"
UNPAUSE_SCHEDULE: Final = "unpause_schedule"  # the CronJob handover (workflows/cronjob_run)
FORWARD_ALERTS: Final = "forward_alerts"  # an incident merging into its workload's incident
# a resolved incident asking Alertmanager whether its alerts still fire, before it closes
FIND_FIRING_ALERTS: Final = "find_firing_alerts"
APPEND_ROTATION_RECORD: Final = "append_rotation_record"  # a finished rotation in the ledger
APPEND_DSR_RECEIPT: Final = "append_dsr_receipt"  # a data-subject request's receipt (no personal data)
APPEND_RETENTION_RECORD: Final = "append_retention_record"  # a retention run's counts (no personal data)
APPEND_DB_FAILOVER_RECORD: Final = "append_db_failover_record"  # a failover, before/after each step
REQUEST_NODE_LEASE: Final = "request_node_lease"  # the Governor's capacity budget (node recovery)
APPEND_NODE_RECOVERY_RECORD: Final = "append_node_recovery_record"  # a node recovery, before/after each step
APPEND_NAMESPACE_RESTORE_RECORD: Final = "append_namespace_restore_record"  # digests, never Secret values
# the watchdog (workflows/watchdog): a check's query, the relay's last delivery, findings to their incidents
RUN_WATCHDOG_CHECK: Final = "run_watchdog_check"
READ_RELAY_LAST_DELIVERY: Final = "read_relay_last_delivery"
OPEN_WATCHDOG_INCIDENTS: Final = "open_watchdog_incidents"
# drills (workflows/drill): a declared fault in and out, its alert delivered, what followed watched
INJECT_DRILL_FAULT: Final = "inject_drill_fault"
REMOVE_DRILL_FAULT: Final = "remove_drill_fault"
DELIVER_DRILL_ALERT: Final = "deliver_drill_alert"
WATCH_DRILL: Final = "watch_drill"
APPEND_DRILL_RECORD: Final = "append_drill_record"  # a drill's result, read back by `drill report`
STOP_DRILL_PRIMARY: Final = "stop_drill_primary"  # postgres_primary_stop: where the primary's data directory is
RESTORE_DRILL_PRIMARY: Final = "restore_drill_primary"

# --- zerotouch-backup: backups, test restores, retention (workflows/backup*) -------------
TAKE_BACKUP: Final = "take_backup"
VERIFY_BACKUP: Final = "verify_backup"
BACKUP_CATALOG: Final = "backup_catalog"
APPLY_RETENTION: Final = "apply_retention"
# --- zerotouch-observe: the evidence of a verification in the ledger
APPEND_BACKUP_EVIDENCE: Final = "append_backup_evidence"

QUEUE_OF_ACTIVITY: Final[dict[str, str]] = {
    **dict.fromkeys((CONFIRM_PRIMARY_DOWN, MEASURE_REPLICA_LAG, FENCE_OLD_PRIMARY, PROMOTE_REPLICA,
                     REPOINT_DATABASE_CONSUMERS, VERIFY_NEW_PRIMARY, REJOIN_OLD_PRIMARY), DATA_QUEUE),
    **dict.fromkeys((APPEND_DB_FAILOVER_RECORD,), OBSERVE_QUEUE),
    **dict.fromkeys((RESTART_DEPLOYMENT, SCALE_DEPLOYMENT, ROLLBACK_DEPLOYMENT, RAISE_MEMORY_LIMIT, EVICT_POD,
                     RUN_JOB, GET_ROLLOUT_STATUS, GET_CLUSTER_USAGE, CREATE_SCHEDULED_JOB,
                     WAIT_FOR_JOB, CREATE_CRONJOB_JOB, SUSPEND_CRONJOB, RESOLVE_WORKLOAD, FIND_SECRET_CONSUMERS,
                     ROLL_SECRET_CONSUMERS, GET_WORKLOAD_SYMPTOMS), KUBERNETES_QUEUE),
    **dict.fromkeys((READ_NODE, CORDON_NODE, DRAIN_NODE, WAIT_FOR_WORKLOADS, RESTART_NODE, WAIT_FOR_NODE_READY),
                    KUBERNETES_QUEUE),
    **dict.fromkeys((REQUEST_NODE_LEASE, APPEND_NODE_RECOVERY_RECORD), OBSERVE_QUEUE),
    **dict.fromkeys((TERMINATE_IDLE_CONNECTIONS, GET_CONNECTION_USAGE, READ_ROTATION_STATE, CREATE_PENDING_CREDENTIAL,
                     FINISH_ROTATION, ROLLBACK_ROTATION, MARK_ROTATION, SET_PENDING_CREDENTIAL, TEST_PENDING_CREDENTIAL,
                     UNDO_PENDING_CREDENTIAL, RESTORE_CURRENT_CREDENTIAL, REVOKE_PREVIOUS_CREDENTIAL,
                     COUNT_CREDENTIAL_SESSIONS, RESOLVE_SUBJECT, EXPORT_SUBJECT,
                     WRITE_EXPORT_MANIFEST, ERASE_SUBJECT, REQUERY_SUBJECT,
                     SUPPRESS_SUBJECT, EXPIRE_ROWS, COUNT_EXPIRED_ROWS, REAPPLY_SUPPRESSION), DATA_QUEUE),
    WAIT_FOR_ROLLOUT: KUBERNETES_WAITS_QUEUE,  # served by the kubernetes worker, with slots of its own
    WAIT_FOR_PROMQL: OBSERVE_WAITS_QUEUE,  # served by the observe worker, with slots of its own
    **dict.fromkeys((QUERY_PROMQL, SEND_NOTIFICATION, LOAD_POLICY, GOVERNOR_SETTINGS, REQUEST_GRANT,
                     APPEND_INCIDENT_RECORD, UNPAUSE_SCHEDULE, FORWARD_ALERTS, APPEND_BACKUP_EVIDENCE,
                     FIND_FIRING_ALERTS, APPEND_ROTATION_RECORD, APPEND_DSR_RECEIPT,
                     APPEND_RETENTION_RECORD),
                    OBSERVE_QUEUE),
    **dict.fromkeys((TAKE_BACKUP, VERIFY_BACKUP, BACKUP_CATALOG, APPLY_RETENTION), BACKUP_QUEUE),
    **dict.fromkeys((PLAN_NAMESPACE_RESTORE, APPLY_NAMESPACE_RESTORE, VERIFY_NAMESPACE_RESTORE), KUBERNETES_QUEUE),
    APPEND_NAMESPACE_RESTORE_RECORD: OBSERVE_QUEUE,
    **dict.fromkeys((RUN_WATCHDOG_CHECK, READ_RELAY_LAST_DELIVERY, OPEN_WATCHDOG_INCIDENTS), OBSERVE_QUEUE),
    **dict.fromkeys((INJECT_DRILL_FAULT, REMOVE_DRILL_FAULT, DELIVER_DRILL_ALERT, WATCH_DRILL, APPEND_DRILL_RECORD),
                    OBSERVE_QUEUE),
    **dict.fromkeys((STOP_DRILL_PRIMARY, RESTORE_DRILL_PRIMARY), DATA_QUEUE),
}
"""Every activity name, with the (unscoped) task queue whose workers register it."""

ALL_ACTIVITIES: Final = frozenset(QUEUE_OF_ACTIVITY)


def queue_of(name: str) -> str:
    """The base task queue of an activity; KeyError for a name no worker registers."""
    return QUEUE_OF_ACTIVITY[name]
