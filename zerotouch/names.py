"""Names shared by workers, starters and workflows: task queues, handlers, search attributes.

One place, so that the relay, the CLI, the stock `temporal` CLI and the workers agree.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

WORKFLOWS_QUEUE = "zerotouch-workflows"
KUBERNETES_QUEUE = "zerotouch-kubernetes"
DATA_QUEUE = "zerotouch-data"
OBSERVE_QUEUE = "zerotouch-observe"
BACKUP_QUEUE = "zerotouch-backup"  # long, disk- and CPU-heavy: backups and test restores scale on their own
ALL_QUEUES = (WORKFLOWS_QUEUE, KUBERNETES_QUEUE, DATA_QUEUE, OBSERVE_QUEUE, BACKUP_QUEUE)
# Verifications that hold for minutes (wait_for_rollout, wait_for_promql: async, no thread while they
# sleep) get a slot budget of their own on a queue beside their worker's, served by the same process: on
# the main queue, a storm's waits held the slots the next incidents' actions needed (BENCHMARKS.md, 3).
KUBERNETES_WAITS_QUEUE = "zerotouch-kubernetes-waits"
OBSERVE_WAITS_QUEUE = "zerotouch-observe-waits"
WAITS_QUEUE_OF = {KUBERNETES_QUEUE: KUBERNETES_WAITS_QUEUE, OBSERVE_QUEUE: OBSERVE_WAITS_QUEUE}
WORKER_OF_WAITS_QUEUE = {waits: queue for queue, waits in WAITS_QUEUE_OF.items()}



def queue_for(base: str, cluster: str = "") -> str:
    """The task queue of ``base`` for one cluster scope; the default scope has the plain name.

    A scope per cluster lets one Temporal namespace serve several clusters, each with
    its own Kubernetes workers (and lets tests share a server without sharing workers).
    """
    return f"{base}-{cluster}" if cluster else base


INCIDENT_WORKFLOW = "IncidentWorkflow"

SIGNAL_ALERT_FIRED = "alert_fired"
SIGNAL_ALERT_RESOLVED = "alert_resolved"
UPDATE_APPROVE = "approve"
UPDATE_ABORT = "abort"
UPDATE_TAKE_OVER = "take_over"
UPDATE_REQUEST_RETRY = "request_retry"
# The Web UI's Signal dialog sends signals: the same four decisions under the same names (Temporal
# keeps signal and update names apart), checked by the same validators; a refused one is only noted.
SIGNAL_APPROVE = UPDATE_APPROVE
SIGNAL_ABORT = UPDATE_ABORT
SIGNAL_TAKE_OVER = UPDATE_TAKE_OVER
SIGNAL_REQUEST_RETRY = UPDATE_REQUEST_RETRY
QUERY_STATUS = "status"

SA_INCIDENT_STATE = SearchAttributeKey.for_keyword("IncidentState")
SA_INCIDENT_SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
SA_RUNBOOK = SearchAttributeKey.for_keyword("Runbook")
SA_SERVICE = SearchAttributeKey.for_keyword("Service")
SEARCH_ATTRIBUTES = (SA_INCIDENT_STATE, SA_INCIDENT_SEVERITY, SA_RUNBOOK, SA_SERVICE)

INCIDENT_ID_PREFIX = "incident-"  # every incident workflow ID starts with it (zerotouch.alerts.incident_id_for)
