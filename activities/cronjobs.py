"""Imported CronJobs: run a CronJob's jobTemplate as the Job of one scheduled time; hand over.

`create_cronjob_job` reads the CronJob at run time (the suspended CronJob stays the single
source of the pod template) and creates the Job the Kubernetes CronJob controller would create
for that scheduled time, with the same name (``<cronjob>-<unix minutes>``) and an owner
reference to the CronJob: a retry, a catch-up or the CronJob itself finds it there instead of
running it twice. While the CronJob is not suspended yet (the handover's first run) it refuses
to start next to a Job the CronJob is running (Forbid-like; retried until that one ends).
"""

from __future__ import annotations

from datetime import UTC

from kubernetes.client import ApiClient, BatchV1Api
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.keepalive import keeps_alive
from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller, Timeout
from activities.kubernetes_actions import ACTION_KEY, JOB_TTL_SECONDS, SCHEDULE_LABEL, SCHEDULED_TIME, Obj
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.cronjobs import (
    CRONJOB_SCHEDULED_TIMESTAMP,
    HANDED_OVER_ANNOTATION,
    IMPORTED_AS_ANNOTATION,
    CronJobPatch,
    CronJobRunRequest,
    ScheduleUnpause,
    cronjob_job_name,
)
from zerotouch.schedules import JobOutcome

CRONJOB_ACTIVE = "CronJobJobActive"  # retryable: the CronJob's own Job is still running


def _finished(job: Obj) -> bool:
    status = job.get("status") or {}
    conditions = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    return bool(conditions & {"Complete", "Failed"}) or bool(status.get("succeeded"))


def cronjob_job_manifest(cronjob: Obj, request: CronJobRunRequest) -> Obj:
    """The Job of one scheduled time from the CronJob's jobTemplate (as the CronJob controller builds it)."""
    meta = cronjob["metadata"]
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    spec = dict(template.get("spec") or {})
    spec.setdefault("ttlSecondsAfterFinished", JOB_TTL_SECONDS)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": cronjob_job_name(meta["name"], request.scheduled_time),
            "namespace": meta["namespace"],
            "labels": {**(template_meta.get("labels") or {}), SCHEDULE_LABEL: request.schedule,
                       "app.kubernetes.io/managed-by": "zerotouch"},
            "annotations": {**(template_meta.get("annotations") or {}), ACTION_KEY: request.idempotency_key,
                            SCHEDULED_TIME: request.scheduled_time.isoformat(),
                            CRONJOB_SCHEDULED_TIMESTAMP: request.scheduled_time.astimezone(UTC).isoformat()},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
    }


class CronJobActivities:
    """CronJob reads and writes through the official client (sync: run on a thread pool)."""

    def __init__(self, *, api_client: ApiClient, request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._batch = BatchV1Api(api_client)
        self._call = KubeCaller(request_timeout)

    def _cronjob(self, namespace: str, name: str) -> Obj:
        return self._call(self._batch.read_namespaced_cron_job, name, namespace, what=f"cronjob {namespace}/{name}")

    @activity.defn(name=names.CREATE_CRONJOB_JOB)
    @keeps_alive
    def create_cronjob_job(self, request: CronJobRunRequest) -> JobOutcome:
        """Create the Job of one scheduled time from the CronJob's jobTemplate; one already there is that run's."""
        cronjob = self._cronjob(request.namespace, request.cronjob)
        job = cronjob_job_name(request.cronjob, request.scheduled_time)
        what = f"job {request.namespace}/{job}"
        jobs = self._call(self._batch.list_namespaced_job, request.namespace, what=f"jobs in {request.namespace}")
        items = jobs.get("items") or []
        if any(j["metadata"]["name"] == job for j in items):
            return JobOutcome(job=job, created=False, detail=f"{what} already exists")
        if not (cronjob.get("spec") or {}).get("suspend"):
            uid = cronjob["metadata"]["uid"]
            running = sorted(j["metadata"]["name"] for j in items if not _finished(j) and any(
                ref.get("uid") == uid for ref in j["metadata"].get("ownerReferences") or []))
            if running:  # never both: the CronJob (not suspended yet) is running its own Job
                raise ApplicationError(f"cronjob {request.namespace}/{request.cronjob} is still running "
                                       f"{', '.join(running)}; not starting {job} next to it", type=CRONJOB_ACTIVE)
        try:
            self._call(self._batch.create_namespaced_job, request.namespace, cronjob_job_manifest(cronjob, request),
                       what=what)
        except ApplicationError as error:
            if error.type == errors.CONFLICT:  # AlreadyExists: created since we looked
                return JobOutcome(job=job, created=False, detail=f"{what} already exists")
            raise
        activity.logger.info("create_cronjob_job %s: created", what)
        return JobOutcome(job=job, created=True, detail=f"{what} created")

    @activity.defn(name=names.SUSPEND_CRONJOB)
    @keeps_alive
    def suspend_cronjob(self, patch: CronJobPatch) -> str:
        """Suspend the CronJob the schedule replaces (idempotent); refuse if it is not marked as imported."""
        what = f"cronjob {patch.namespace}/{patch.cronjob}"
        cronjob = self._cronjob(patch.namespace, patch.cronjob)
        marked = (cronjob["metadata"].get("annotations") or {}).get(IMPORTED_AS_ANNOTATION)
        if marked != patch.schedule_id:  # `--undo` ran meanwhile, or another import owns it
            raise ApplicationError(f"{what} is not marked as imported into {patch.schedule_id} (it says "
                                   f"{marked!r}); leaving it as it is", type=errors.INVALID_TARGET, non_retryable=True)
        if (cronjob.get("spec") or {}).get("suspend"):
            return f"{what} already suspended"
        now = activity.info().current_attempt_scheduled_time.astimezone(UTC).isoformat()
        self._call(self._batch.patch_namespaced_cron_job, patch.cronjob, patch.namespace,
                   {"metadata": {"annotations": {HANDED_OVER_ANNOTATION: now}}, "spec": {"suspend": True}}, what=what)
        activity.logger.info("suspend_cronjob %s: suspended", what)
        return f"{what} suspended"


class ScheduleStateActivities:
    """The handover's last step: unpause the imported schedule once its CronJob is suspended."""

    def __init__(self, *, client: Client) -> None:
        self._client = client

    @activity.defn(name=names.UNPAUSE_SCHEDULE)
    async def unpause_schedule(self, request: ScheduleUnpause) -> None:
        handle = self._client.get_schedule_handle(request.schedule_id)
        if (await handle.describe()).schedule.state.paused:
            await handle.unpause(note=request.note)
