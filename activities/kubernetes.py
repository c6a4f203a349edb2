"""Kubernetes activities: bounded, idempotent deployment remediations and rollout checks.

Every write reads first, skips if the request's idempotency key is already stored
on the object, and patches with the read resourceVersion, so a retried activity
(say after a worker crash between the API call and completion) never acts twice
and a concurrent change yields a 409 that the next attempt re-reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes.client import ApiClient, AppsV1Api, BatchV1Api, CoreV1Api
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from urllib3.exceptions import HTTPError

from activities.keepalive import keeps_alive
from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller, Timeout
from activities.kubernetes_actions import (
    Obj,
    Plan,
    fail,
    job_finished,
    job_manifest,
    memory_plan,
    restart_plan,
    rollback_plan,
    scale_plan,
    scheduled_job_manifest,
    selector_string,
    stored_keys,
    validated_target,
)
from activities.kubernetes_rollout import hold_healthy, rollout_status
from activities.kubernetes_symptoms import symptom_report
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name
from zerotouch.models import (
    ActionRequest,
    ActionResult,
    ClusterUsage,
    ClusterUsageRequest,
    RolloutCheck,
    RolloutStatus,
    SymptomCheck,
    SymptomReport,
)
from zerotouch.schedules import JobOutcome, JobWait, ScheduledJobRequest

# A conflict usually means the controller just wrote status; re-reading at once is cheap.
CONFLICT_ATTEMPTS = 3
TRANSIENT_TYPES = (errors.CONFLICT, errors.TOO_MANY_REQUESTS, errors.API_UNAVAILABLE)


class KubernetesActivities:
    """Deployment remediations and rollout checks through the official (blocking) client.

    Actions and single looks are sync activities on the worker's thread pool; the rollout wait is
    async and runs each look on a thread, so it holds no pool thread while it sleeps between polls.
    """

    def __init__(self, *, api_client: ApiClient, request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._apps = AppsV1Api(api_client)
        self._core = CoreV1Api(api_client)
        self._batch = BatchV1Api(api_client)
        self._call = KubeCaller(request_timeout)

    def _read(self, namespace: str, name: str) -> Obj:
        return self._call(self._apps.read_namespaced_deployment, name, namespace,
                          what=f"deployment {namespace}/{name}")

    def _apply(self, request: ActionRequest, plan_for: Callable[[Obj], Plan]) -> ActionResult:
        namespace, name = validated_target(request)
        what = f"deployment {namespace}/{name}"
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            deploy = self._read(namespace, name)
            if request.idempotency_key in stored_keys(deploy):
                return ActionResult(applied=False, already_applied=True,
                                    detail=f"{what}: {request.action} already applied for this key")
            plan = plan_for(deploy)
            try:
                self._call(self._apps.patch_namespaced_deployment, name, namespace, plan.patch,
                           what=what, _content_type=plan.content_type)
            except ApplicationError as error:
                if error.type == errors.CONFLICT and attempt < CONFLICT_ATTEMPTS:
                    continue
                raise
            activity.logger.info("%s %s: %s", request.action, what, plan.detail)
            return ActionResult(applied=True, detail=f"{what}: {plan.detail}", before=plan.before, after=plan.after)
        raise fail(f"{what}: still conflicting after {CONFLICT_ATTEMPTS} attempts", errors.CONFLICT)

    # --- actions ---------------------------------------------------------------------

    @activity.defn(name=names.RESTART_DEPLOYMENT)
    @keeps_alive
    def restart_deployment(self, request: ActionRequest) -> ActionResult:
        """Rolling restart, as `kubectl rollout restart` does it."""
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")  # distinct per restart
        return self._apply(request, lambda deploy: restart_plan(deploy, request.idempotency_key, now))

    @activity.defn(name=names.SCALE_DEPLOYMENT)
    @keeps_alive
    def scale_deployment(self, request: ActionRequest) -> ActionResult:
        """Set replicas from `replicas`, `factor` or `delta`, within the request's bounds."""
        return self._apply(request, lambda deploy: scale_plan(deploy, request))

    @activity.defn(name=names.RAISE_MEMORY_LIMIT)
    @keeps_alive
    def raise_memory_limit(self, request: ActionRequest) -> ActionResult:
        """Multiply one container's memory limit by `factor`, capped."""
        return self._apply(request, lambda deploy: memory_plan(deploy, request))

    @activity.defn(name=names.ROLLBACK_DEPLOYMENT)
    @keeps_alive
    def rollback_deployment(self, request: ActionRequest) -> ActionResult:
        """Return to the previous revision's pod template, as `kubectl rollout undo` does."""

        def plan_for(deploy: Obj) -> Plan:
            meta, status = deploy["metadata"], deploy.get("status") or {}
            if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 1)):
                # The newest revision may not have its ReplicaSet yet; "previous" would be wrong.
                raise fail(f"deployment {meta['namespace']}/{meta['name']} is not reconciled yet",
                           errors.NOT_RECONCILED)
            replicasets = self._call(
                self._apps.list_namespaced_replica_set, meta["namespace"],
                label_selector=selector_string(deploy["spec"].get("selector")),
                what=f"replicasets of {meta['namespace']}/{meta['name']}",
            )
            return rollback_plan(deploy, replicasets.get("items") or [], request.idempotency_key)

        return self._apply(request, plan_for)

    @activity.defn(name=names.EVICT_POD)
    @keeps_alive
    def evict_pod(self, request: ActionRequest) -> ActionResult:
        """Evict one pod of the deployment through the Eviction API, so disruption budgets hold."""
        namespace, name = validated_target(request, pod=True)
        pod_name = str(request.pod)
        what = f"pod {namespace}/{pod_name}"
        gone = ActionResult(applied=False, already_applied=True, detail=f"{what} is already gone")
        try:
            pod = self._call(self._core.read_namespaced_pod, pod_name, namespace, what=what)
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return gone
            raise
        deploy = self._read(namespace, name)
        wanted = (deploy["spec"].get("selector") or {}).get("matchLabels") or {}
        labels = pod["metadata"].get("labels") or {}
        if not wanted or any(labels.get(k) != v for k, v in wanted.items()):
            raise fail(f"{what} does not belong to deployment {namespace}/{name}", errors.INVALID_TARGET)
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": pod_name, "namespace": namespace}}
        try:
            self._call(self._core.create_namespaced_pod_eviction, pod_name, namespace, eviction, what=what)
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return gone
            if error.type == errors.TOO_MANY_REQUESTS:
                # A disruption budget refuses for now; it may allow it once replacements are ready.
                raise fail(f"{what}: eviction would violate a PodDisruptionBudget", errors.PDB_VIOLATION) from None
            raise
        activity.logger.info("evict_pod %s: evicted", what)
        return ActionResult(applied=True, detail=f"{what} evicted", before={"pod": pod_name})

    @activity.defn(name=names.RUN_JOB)
    @keeps_alive
    def run_job(self, request: ActionRequest) -> ActionResult:
        """Create the policy's Job template (args only, no shell); does not wait for it to finish."""
        namespace, _ = validated_target(request)
        manifest = job_manifest(request)
        job = manifest["metadata"]["name"]
        what = f"job {namespace}/{job}"
        try:
            self._call(self._batch.create_namespaced_job, namespace, manifest, what=what)
        except ApplicationError as error:
            if error.type == errors.CONFLICT:  # AlreadyExists: the name is derived from the key
                return ActionResult(applied=False, already_applied=True, detail=f"{what} already exists",
                                    after={"job": job})
            raise
        activity.logger.info("run_job %s: created", what)
        return ActionResult(applied=True, detail=f"{what} created",
                            after={"job": job, "image": manifest["spec"]["template"]["spec"]["containers"][0]["image"]})

    # --- scheduled jobs ----------------------------------------------------------------

    @activity.defn(name=names.CREATE_SCHEDULED_JOB)
    @keeps_alive
    def create_scheduled_job(self, request: ScheduledJobRequest) -> JobOutcome:
        """Create the Job of one scheduled time; a Job of that name already there is that run's."""
        manifest = scheduled_job_manifest(request)
        job = manifest["metadata"]["name"]
        what = f"job {request.namespace}/{job}"
        try:
            self._call(self._batch.create_namespaced_job, request.namespace, manifest, what=what)
        except ApplicationError as error:
            if error.type == errors.CONFLICT:  # AlreadyExists: this scheduled time already has its Job
                activity.logger.info("create_scheduled_job %s: already exists", what)
                return JobOutcome(job=job, created=False, detail=f"{what} already exists")
            raise
        activity.logger.info("create_scheduled_job %s: created", what)
        return JobOutcome(job=job, created=True, detail=f"{what} created")

    @activity.defn(name=names.WAIT_FOR_JOB)
    def wait_for_job(self, wait: JobWait) -> JobOutcome:
        """Poll the Job (heartbeating) until it succeeds or fails; raise JobTimeout at the timeout."""
        what = f"job {wait.namespace}/{wait.job}"
        deadline = time.monotonic() + wait.timeout_seconds
        while True:
            detail = ""
            try:
                job = self._call(self._batch.read_namespaced_job, wait.job, wait.namespace, what=what)
                succeeded, failed, detail = job_finished(job)
                if succeeded or failed:
                    return JobOutcome(job=wait.job, succeeded=succeeded, failed=failed, detail=f"{what} {detail}")
            except ApplicationError as error:
                if error.type not in TRANSIENT_TYPES:
                    raise
                detail = f"API error, will look again: {error.message}"
            except (OSError, HTTPError) as error:
                detail = f"API unreachable, will look again: {error}"
            activity.heartbeat(detail)
            if time.monotonic() > deadline:
                raise fail(f"{what} did not finish within {wait.timeout_seconds:g}s ({detail})", errors.JOB_TIMEOUT)
            if activity.is_cancelled():
                raise CancelledError(f"{what}: wait cancelled")
            time.sleep(wait.poll_seconds)

    # --- rollout -----------------------------------------------------------------------

    def _deployment_and_pods(self, namespace: str, deployment: str) -> tuple[Obj, list[Obj]]:
        try:
            namespace = require_namespace(namespace)
            name = require_object_name(deployment, "deployment")
        except InvalidName as error:
            raise fail(str(error), errors.INVALID_TARGET) from None
        deploy = self._read(namespace, name)
        pods = self._call(self._core.list_namespaced_pod, namespace,
                          label_selector=selector_string(deploy["spec"].get("selector")),
                          what=f"pods of {namespace}/{name}")
        return deploy, pods.get("items") or []

    def _rollout(self, check: RolloutCheck) -> RolloutStatus:
        return rollout_status(*self._deployment_and_pods(check.namespace, check.deployment))

    @activity.defn(name=names.GET_WORKLOAD_SYMPTOMS)
    def get_workload_symptoms(self, check: SymptomCheck) -> SymptomReport:
        """Does the deployment show the symptom its alert claims? One look, no waiting."""
        deploy, pods = self._deployment_and_pods(check.namespace, check.deployment)
        return symptom_report(check, deploy, pods, datetime.now(UTC))

    @activity.defn(name=names.GET_ROLLOUT_STATUS)
    def get_rollout_status(self, check: RolloutCheck) -> RolloutStatus:
        """One look at the deployment's rollout, no waiting."""
        return self._rollout(check)

    @activity.defn(name=names.GET_CLUSTER_USAGE)
    def get_cluster_usage(self, _request: ClusterUsageRequest) -> ClusterUsage:
        """How many nodes the cluster has: the budget prices scale-ups by it."""
        nodes = self._call(self._core.list_node, what="nodes")
        return ClusterUsage(nodes=len(nodes.get("items") or []))

    @activity.defn(name=names.WAIT_FOR_ROLLOUT)
    async def wait_for_rollout(self, check: RolloutCheck) -> RolloutStatus:
        """Poll (heartbeating) until healthy for hold_for_seconds; healthy=False at the timeout."""

        def probe() -> RolloutStatus:
            try:
                return self._rollout(check)
            except ApplicationError as error:
                if error.type not in TRANSIENT_TYPES:
                    raise
                return RolloutStatus(healthy=False, detail=f"API error, will look again: {error.message}")
            except (OSError, HTTPError) as error:  # connection trouble: refused, reset, timed out
                return RolloutStatus(healthy=False, detail=f"API unreachable, will look again: {error}")

        return await hold_healthy(check, probe)
