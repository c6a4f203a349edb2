"""The workers register every activity the workflows call, under its name, on the queue it is sent to."""

from __future__ import annotations

import ast
import inspect
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import get_args

import httpx
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workers.run import ACTIVITY_QUEUES, activities_for, activity_name, build_workers
from workflows import governor
from workflows.backup import calls as backup_calls
from workflows.backup import failures as backup_failures
from workflows.backup import retention as backup_retention
from workflows.backup import verification as backup_verification
from workflows.backup import workflow as backup_workflow
from workflows.cronjob_run import calls as cronjob_calls
from workflows.cronjob_run import workflow as cronjob_workflow
from workflows.db_failover import calls as failover_calls
from workflows.db_failover import guard as failover_guard
from workflows.db_failover import workflow as failover_workflow
from workflows.drill import calls as drill_calls
from workflows.drill import workflow as drill_workflow
from workflows.gdpr import calls as gdpr_calls
from workflows.gdpr import deadlines as gdpr_deadlines
from workflows.gdpr import erasure as gdpr_erasure
from workflows.gdpr import workflow as gdpr_workflow
from workflows.gdpr_retention import calls as retention_calls
from workflows.gdpr_retention import governor as retention_governor
from workflows.gdpr_retention import workflow as retention_workflow
from workflows.incident import calls
from workflows.namespace_restore import calls as restore_calls
from workflows.namespace_restore import governor as restore_governor
from workflows.namespace_restore import workflow as restore_workflow
from workflows.node_recovery import calls as node_calls
from workflows.node_recovery import governor as node_governor
from workflows.node_recovery import workflow as node_workflow
from workflows.scheduled_job import calls as scheduled_job_calls
from workflows.scheduled_job import workflow as scheduled_job_workflow
from workflows.secret_rotation import calls as rotation_calls
from workflows.secret_rotation import governor as rotation_governor
from workflows.secret_rotation import scheduled as rotation_scheduled
from workflows.secret_rotation import steps as rotation_steps
from workflows.secret_rotation import workflow as rotation_workflow
from workflows.watchdog import calls as watchdog_calls
from workflows.watchdog import workflow as watchdog_workflow
from zerotouch import activity_names
from zerotouch.action_params import ESCALATE, PARAMS_OF_ACTION, ActionName
from zerotouch.names import KUBERNETES_QUEUE, OBSERVE_QUEUE, WORKER_OF_WAITS_QUEUE
from zerotouch.settings import WorkerSettings


def _names_used(module: ModuleType) -> set[str]:
    """The `activity_names` constants a module's source refers to (as ``names.X``)."""
    used = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "names":
            value = getattr(activity_names, node.attr, None)
            if isinstance(value, str) and value in activity_names.ALL_ACTIVITIES:
                used.add(value)
    return used


def _settings(tmp_path: Path) -> WorkerSettings:
    return WorkerSettings(kubernetes_url="http://127.0.0.1:9", prometheus_url=None,
                          ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                          policy_path=str(Path("deploy/policy/zerotouch.yaml").resolve()))


async def test_workers_register_every_activity_on_its_queue(time_env: WorkflowEnvironment, task_queue: str,
                                                            tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        built = {queue: activities_for(queue, _settings(tmp_path), http, time_env.client) for queue in ACTIVITY_QUEUES}
        registered = {queue: [activity_name(method) for method in methods] for queue, methods in built.items()}
        everywhere = [name for names in registered.values() for name in names]
        assert len(everywhere) == len(set(everywhere)), "an activity name is registered twice"
        # Exactly the names in zerotouch.activity_names, each served by the worker of the queue workflows send
        # it to (a waits queue is served by the worker beside it: build_workers gives it its own slots).
        assert {name: queue for queue, names in registered.items() for name in names} == \
            {name: WORKER_OF_WAITS_QUEUE.get(queue, queue) for name, queue in activity_names.QUEUE_OF_ACTIVITY.items()}
        # Worker construction validates the definitions (sync ones need the executor).
        with ThreadPoolExecutor(max_workers=4) as executor:
            for queue, methods in built.items():
                async with Worker(time_env.client, task_queue=f"{task_queue}-{queue}", activities=methods,
                                  activity_executor=executor):
                    pass


def test_workflows_call_only_registered_activities() -> None:
    # calls.CALLED is what the incident calls; the source must not use a name it leaves out.
    assert _names_used(calls) <= calls.CALLED
    assert _names_used(governor) <= governor.CALLED  # the workers' policy settings, nothing else
    assert calls.CALLED <= activity_names.ALL_ACTIVITIES
    # apply_action calls a step's action by name: every action but escalate is an activity it may call.
    actions = set(get_args(ActionName)) - {ESCALATE}
    assert actions <= calls.CALLED
    assert set(PARAMS_OF_ACTION) == set(get_args(ActionName))
    # The scheduled job workflow calls exactly what its calls module lists, all registered.
    assert _names_used(scheduled_job_calls) | _names_used(scheduled_job_workflow) <= scheduled_job_calls.CALLED
    assert scheduled_job_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # So do the imported CronJobs' run and handover workflows (issue 12).
    assert _names_used(cronjob_calls) | _names_used(cronjob_workflow) <= cronjob_calls.CALLED
    assert cronjob_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # The backup operation's three workflows (issue 13).
    backup_modules = (backup_calls, backup_failures, backup_retention, backup_verification, backup_workflow)
    assert set().union(*(_names_used(m) for m in backup_modules)) <= backup_calls.CALLED
    assert backup_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Secret rotation (issue 14).
    rotation_modules = (rotation_calls, rotation_governor, rotation_scheduled, rotation_steps, rotation_workflow)
    assert set().union(*(_names_used(m) for m in rotation_modules)) <= rotation_calls.CALLED
    assert rotation_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Data-subject requests (issue 15).
    gdpr_modules = (gdpr_calls, gdpr_deadlines, gdpr_erasure, gdpr_workflow)
    assert set().union(*(_names_used(m) for m in gdpr_modules)) <= gdpr_calls.CALLED
    assert gdpr_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Data retention (issue 15).
    retention_modules = (retention_calls, retention_governor, retention_workflow)
    assert set().union(*(_names_used(m) for m in retention_modules)) <= retention_calls.CALLED
    assert retention_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Namespace restore (issue 16).
    restore_modules = (restore_calls, restore_governor, restore_workflow)
    assert set().union(*(_names_used(m) for m in restore_modules)) <= restore_calls.CALLED
    assert restore_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Database failover (issue 16).
    failover_modules = (failover_calls, failover_guard, failover_workflow)
    assert set().union(*(_names_used(m) for m in failover_modules)) <= failover_calls.CALLED
    assert failover_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Node recovery (issue 16).
    node_modules = (node_calls, node_governor, node_workflow)
    assert set().union(*(_names_used(m) for m in node_modules)) <= node_calls.CALLED
    assert node_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Drills (issue 17).
    assert _names_used(drill_calls) | _names_used(drill_workflow) <= drill_calls.CALLED
    assert drill_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # The watchdog (issue 17).
    assert _names_used(watchdog_calls) | _names_used(watchdog_workflow) <= watchdog_calls.CALLED
    assert watchdog_calls.CALLED <= activity_names.ALL_ACTIVITIES
    # Every activity a worker registers is called by some workflow.
    assert activity_names.ALL_ACTIVITIES - {
        activity_names.REAPPLY_SUPPRESSION,  # for a restore path to call after a restore; no workflow calls it yet
    } == \
        calls.CALLED | scheduled_job_calls.CALLED | cronjob_calls.CALLED | backup_calls.CALLED | governor.CALLED \
        | rotation_calls.CALLED | gdpr_calls.CALLED | retention_calls.CALLED | failover_calls.CALLED \
        | restore_calls.CALLED | node_calls.CALLED | drill_calls.CALLED | watchdog_calls.CALLED


def test_the_old_hand_written_list_is_still_registered() -> None:
    """The names registered before the constants existed: changing one would strand running workflows."""
    expected = {
        "restart_deployment", "scale_deployment", "rollback_deployment", "raise_memory_limit", "evict_pod", "run_job",
        "get_rollout_status", "get_cluster_usage", "wait_for_rollout", "terminate_idle_connections",
        "get_connection_usage", "wait_for_promql", "query_promql", "send_notification", "load_policy",
        "request_grant", "append_incident_record",
    }
    added = {"create_scheduled_job", "wait_for_job"}  # ScheduledJobWorkflow (issue 12)
    added |= {"create_cronjob_job", "suspend_cronjob", "unpause_schedule"}  # imported CronJobs (issue 12)
    added |= {"resolve_workload", "forward_alerts"}  # owner resolution and merging (issue 11)
    added |= {"take_backup", "verify_backup", "backup_catalog", "apply_retention",
              "append_backup_evidence"}  # backups (issue 13)
    added |= {"governor_settings"}  # the Governor's limits only from the workers' policy (issue 18)
    added |= {"find_firing_alerts"}  # a resolved incident confirms at Alertmanager before closing (issue 18)
    added |= {"read_rotation_state", "create_pending_credential", "finish_rotation", "rollback_rotation",
              "mark_rotation", "find_secret_consumers", "roll_secret_consumers", "set_pending_credential",
              "test_pending_credential", "undo_pending_credential", "restore_current_credential",
              "revoke_previous_credential", "count_credential_sessions", "append_rotation_record"}  # issue 14
    added |= {"resolve_subject", "export_subject", "write_export_manifest",
              "erase_subject", "requery_subject", "suppress_subject",
              "append_dsr_receipt", "reapply_suppression"}  # issue 15
    added |= {"expire_rows", "count_expired_rows", "append_retention_record"}  # data retention (issue 15)
    added |= {"plan_namespace_restore", "apply_namespace_restore", "verify_namespace_restore",
              "append_namespace_restore_record"}  # namespace restore (issue 16)
    added |= {"confirm_primary_down", "measure_replica_lag", "fence_old_primary", "promote_replica",
              "repoint_database_consumers", "verify_new_primary", "rejoin_old_primary",
              "append_db_failover_record"}  # database failover (issue 16)
    added |= {"read_node", "cordon_node", "drain_node", "wait_for_workloads", "restart_node", "wait_for_node_ready",
              "request_node_lease", "append_node_recovery_record"}  # node recovery (issue 16)
    added |= {"inject_drill_fault", "remove_drill_fault", "deliver_drill_alert", "watch_drill",
              "append_drill_record"}  # drills (issue 17)
    added |= {"stop_drill_primary", "restore_drill_primary"}  # the PostgreSQL primary-stop drill (issue 17)
    added |= {"run_watchdog_check", "read_relay_last_delivery", "open_watchdog_incidents"}  # the watchdog (issue 17)
    added |= {"get_workload_symptoms"}  # an alert's symptom confirmed on the workload before acting (issue 17)
    assert expected | added == activity_names.ALL_ACTIVITIES


async def test_waits_get_a_queue_and_slots_of_their_own_beside_their_worker(time_env: WorkflowEnvironment,
                                                                          tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"max_concurrent_activities": 3, "max_concurrent_waits": 50})
    async with httpx.AsyncClient() as http:
        with ThreadPoolExecutor(max_workers=3) as executor:
            workers = build_workers(time_env.client, [KUBERNETES_QUEUE, OBSERVE_QUEUE], settings, http=http,
                                    executor=executor, cluster="c1")
    served = {worker.task_queue: worker for worker in workers}
    assert set(served) == {"zerotouch-kubernetes-c1", "zerotouch-kubernetes-waits-c1",
                           "zerotouch-observe-c1", "zerotouch-observe-waits-c1"}
    waits = served["zerotouch-kubernetes-waits-c1"].config()
    assert [activity_name(method) for method in waits["activities"]] == [activity_names.WAIT_FOR_ROLLOUT]
    assert waits["max_concurrent_activities"] == 50
    main = served["zerotouch-kubernetes-c1"].config()
    assert main["max_concurrent_activities"] == 3
    # A wait scheduled on the main queue (before waits had their own) still has a worker there.
    assert activity_names.WAIT_FOR_ROLLOUT in {activity_name(method) for method in main["activities"]}
    assert [activity_name(method) for method in served["zerotouch-observe-waits-c1"].config()["activities"]] == \
        [activity_names.WAIT_FOR_PROMQL]
