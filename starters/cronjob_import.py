"""Import CronJobs as schedule declarations; hand their work over to the schedules; undo that.

Mapping (one table-driven test per row in tests/schedules/test_cronjob_import.py):

==========================  ==================================================================
CronJob                     schedule declaration
==========================  ==================================================================
``schedule``                ``cron`` (``?`` → ``*``; day-of-month *and* day-of-week restricted
                            → two expressions, cron's OR; ``@every D`` → ``interval``)
``timeZone``                ``time_zone`` (none: UTC)
``concurrencyPolicy``       ``overlap``: Allow → ALLOW_ALL, Forbid → SKIP, Replace → CANCEL_OTHER
``startingDeadlineSeconds`` ``catchup_window`` (below Temporal's 10 s minimum: 10 s and a warning)
``suspend``                 ``paused: true`` with a note
==========================  ==================================================================

The handover (`handover`): mark each CronJob (the schedule replacing it, whether it was
suspended before), create the schedules *paused* through the reconcile code (`apply`, with the
policy's own declarations, so none of those is deleted), then per active CronJob a durable
CronJobHandoverWorkflow runs the schedule's workflow once now and, only if that succeeded,
suspends the CronJob and unpauses the schedule. `undo` deletes the schedule first, then
restores ``suspend`` as it was before the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml
from kubernetes.client import ApiClient, BatchV1Api
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from starters import schedules
from zerotouch.cronjobs import (
    CRONJOB_HANDOVER_WORKFLOW,
    HANDED_OVER_ANNOTATION,
    IMPORTED_AS_ANNOTATION,
    SUSPENDED_BEFORE_ANNOTATION,
    CronJobHandoverInput,
    CronJobHandoverResult,
    handover_workflow_id,
)
from zerotouch.durations import format_duration
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.schedules import (
    CRONJOB_RUN_WORKFLOW,
    MIN_CATCHUP_WINDOW,
    CronJobRunArgs,
    ScheduleDeclaration,
    cron_calendar,
    schedule_id,
)

Obj = dict[str, Any]
OVERLAP_OF_CONCURRENCY = {"Allow": "ALLOW_ALL", "Forbid": "SKIP", "Replace": "CANCEL_OTHER"}
DEFAULT_TIMEOUT = timedelta(minutes=30)


@dataclass
class Imported:
    """One CronJob and the declaration that replaces it."""

    namespace: str
    cronjob: str
    declaration: ScheduleDeclaration
    suspended: bool  # before the import (an imported CronJob's annotation says, not its current state)
    warnings: list[str] = field(default_factory=list)

    @property
    def what(self) -> str:
        return f"CronJob {self.namespace}/{self.cronjob}"


def declaration_name(namespace: str, name: str) -> str:
    """``<namespace>-<name>``, shortened with a hash to the declaration's 40 characters."""
    full = f"{namespace}-{name}"
    if len(full) <= 40:
        return full
    return f"{full[:33].rstrip('-')}-{hashlib.sha256(full.encode()).hexdigest()[:6]}"


def _every(text: str) -> timedelta:
    from zerotouch.durations import parse_duration

    return parse_duration(text.replace(" ", ""))


def cron_of(schedule: str) -> tuple[list[str], timedelta | None]:
    """A CronJob's ``schedule`` as the declaration's cron expressions (or interval)."""
    text = " ".join(schedule.split())
    if text.startswith("@every"):
        return [], _every(text[len("@every"):])
    if text.startswith("@"):
        cron_calendar(text)  # raises for an unknown macro
        return [text], None
    fields = [f.replace("?", "*") for f in text.split()]
    if len(fields) == 5 and fields[2] != "*" and fields[4] != "*":
        # cron runs when either day field matches; Temporal ORs calendars, so one per day field.
        expressions = [" ".join([*fields[:4], "*"]), " ".join([*fields[:2], "*", fields[3], fields[4]])]
    else:
        expressions = [" ".join(fields)]
    for expression in expressions:
        cron_calendar(expression)
    return expressions, None


def declaration_of(cronjob: Obj) -> Imported:
    """The declaration replacing a CronJob (ValueError if its schedule cannot be expressed)."""
    meta, spec = cronjob["metadata"], cronjob.get("spec") or {}
    namespace, name = meta["namespace"], meta["name"]
    annotations = meta.get("annotations") or {}
    if IMPORTED_AS_ANNOTATION in annotations:  # imported before: we may have suspended it ourselves
        suspended = annotations.get(SUSPENDED_BEFORE_ANNOTATION) == "true"
    else:
        suspended = bool(spec.get("suspend"))
    warnings: list[str] = []
    try:
        cron, interval = cron_of(str(spec.get("schedule", "")))
    except ValueError as error:
        raise ValueError(f"CronJob {namespace}/{name}: schedule {spec.get('schedule')!r}: {error}") from None
    fields: dict[str, Any] = {
        "name": declaration_name(namespace, name),
        "workflow": CRONJOB_RUN_WORKFLOW,
        "cron": cron,
        "time_zone": spec.get("timeZone") or "UTC",
        "overlap": OVERLAP_OF_CONCURRENCY.get(str(spec.get("concurrencyPolicy") or "Allow"), "ALLOW_ALL"),
        "notes": f"imported from CronJob {namespace}/{name}",
    }
    if interval is not None:
        fields["interval"] = interval
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        window = timedelta(seconds=int(deadline))
        if window < MIN_CATCHUP_WINDOW:
            warnings.append(f"CronJob {namespace}/{name}: startingDeadlineSeconds {deadline} is below Temporal's "
                            f"minimum catch-up window; using {format_duration(MIN_CATCHUP_WINDOW)}")
            window = MIN_CATCHUP_WINDOW
        fields["catchup_window"] = window
    if suspended:
        fields["paused"] = True
        fields["notes"] += "; the CronJob was suspended, so the schedule is paused (unpause it to run it)"
    timeout = DEFAULT_TIMEOUT
    active_deadline = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("activeDeadlineSeconds")
    if active_deadline is not None:
        timeout = max(timeout, timedelta(seconds=int(active_deadline) + 60))
    fields["arguments"] = {"namespace": namespace, "cronjob": name}
    if timeout != DEFAULT_TIMEOUT:
        fields["arguments"]["timeout"] = format_duration(timeout)
        fields["execution_timeout"] = timeout + timedelta(minutes=10)
    declaration = ScheduleDeclaration.model_validate(fields)
    return Imported(namespace, name, declaration, suspended, warnings)


def render_yaml(imported: Sequence[Imported]) -> str:
    """The declarations as a policy ``schedules:`` section (defaults left out)."""
    items = [item.declaration.model_dump(mode="json", exclude_defaults=True) for item in imported]
    for item in items:
        item.setdefault("workflow", CRONJOB_RUN_WORKFLOW)
    return yaml.safe_dump({"schedules": items}, sort_keys=False, width=110)


# --- the cluster ----------------------------------------------------------------------------


def _json(response: Any) -> Obj:
    data: Obj = json.loads(response.data)
    return data


def read_cronjobs(api_client: ApiClient, namespace: str | None = None) -> list[Obj]:
    """The CronJobs of one namespace (or all), by namespace and name."""
    batch = BatchV1Api(api_client)
    if namespace:
        listed = _json(batch.list_namespaced_cron_job(namespace, _preload_content=False))
    else:
        listed = _json(batch.list_cron_job_for_all_namespaces(_preload_content=False))
    items: list[Obj] = listed.get("items") or []
    for item in items:  # list items may lack kind/apiVersion; the mapping reads metadata and spec only
        item.setdefault("spec", {})
    return sorted(items, key=lambda c: (c["metadata"]["namespace"], c["metadata"]["name"]))


def import_cronjobs(api_client: ApiClient, namespace: str | None = None) -> list[Imported]:
    return [declaration_of(cronjob) for cronjob in read_cronjobs(api_client, namespace)]


def _annotate(api_client: ApiClient, item: Imported, annotations: dict[str, str | None],
              spec: Obj | None = None) -> None:
    body: Obj = {"metadata": {"annotations": annotations}}
    if spec is not None:
        body["spec"] = spec
    BatchV1Api(api_client).patch_namespaced_cron_job(item.cronjob, item.namespace, body, _preload_content=False)


# --- handover and undo ------------------------------------------------------------------------


@dataclass
class Handover:
    """What happened to one CronJob."""

    what: str
    schedule: str
    handed_over: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def handover(client: Client, api_client: ApiClient, imported: Sequence[Imported],
                   policy_declarations: Sequence[ScheduleDeclaration] = (), cluster: str = "",
                   timeout: timedelta = timedelta(minutes=10)) -> list[Handover]:
    """Create the schedules (paused) and hand each active CronJob over once its schedule's first run succeeded."""
    # 1. Mark each CronJob (once: a second import keeps what the first one saw).
    for item in imported:
        sid = schedule_id(item.declaration.name, cluster)
        current = BatchV1Api(api_client).read_namespaced_cron_job(item.cronjob, item.namespace,
                                                                  _preload_content=False)
        annotations = _json(current)["metadata"].get("annotations") or {}
        if annotations.get(IMPORTED_AS_ANNOTATION) != sid:
            _annotate(api_client, item, {IMPORTED_AS_ANNOTATION: sid,
                                         SUSPENDED_BEFORE_ANNOTATION: "true" if item.suspended else "false"})
    # 2. The schedules, paused until their handover (apply never unpauses one; the policy's stay as they are).
    names = {item.declaration.name for item in imported}
    paused = [item.declaration.model_copy(update={
        "paused": True, "notes": item.declaration.notes + ("" if item.suspended else "; handover pending")})
        for item in imported]
    await schedules.apply(client, [d for d in policy_declarations if d.name not in names] + paused, cluster)
    # 3. One durable handover per active CronJob, all at once; wait for them up to `timeout`.
    outcomes: list[Handover] = []
    started: list[tuple[Imported, WorkflowHandle[Any, CronJobHandoverResult]]] = []
    for item in imported:
        sid = schedule_id(item.declaration.name, cluster)
        if item.suspended:
            outcomes.append(Handover(item.what, item.declaration.name, False,
                                     "was suspended: left suspended, its schedule created paused"))
            continue
        cronjob = _json(BatchV1Api(api_client).read_namespaced_cron_job(item.cronjob, item.namespace,
                                                                        _preload_content=False))
        if (cronjob.get("spec") or {}).get("suspend") and \
                HANDED_OVER_ANNOTATION in (cronjob["metadata"].get("annotations") or {}):
            outcomes.append(Handover(item.what, item.declaration.name, True, "already handed over"))
            continue
        handle = await client.start_workflow(
            CRONJOB_HANDOVER_WORKFLOW,
            CronJobHandoverInput(schedule=item.declaration.name, schedule_id=sid, cluster=cluster,
                                 arguments=CronJobRunArgs.model_validate(item.declaration.arguments),
                                 first_run_attempts=item.declaration.workflow_attempts),
            id=handover_workflow_id(item.namespace, item.cronjob, cluster),
            task_queue=queue_for(WORKFLOWS_QUEUE, cluster), result_type=CronJobHandoverResult,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # a handover under way: wait for it
            execution_timeout=CronJobRunArgs.model_validate(item.declaration.arguments).timeout + timedelta(minutes=15),
        )
        started.append((item, handle))

    async def result(item: Imported, handle: WorkflowHandle[Any, CronJobHandoverResult]) -> Handover:
        try:
            done = await asyncio.wait_for(handle.result(), timeout.total_seconds())
        except TimeoutError:
            return Handover(item.what, item.declaration.name, False,
                            f"handover still running after {format_duration(timeout)} (workflow {handle.id}); "
                            "the CronJob stays active until its schedule's first run succeeds")
        except WorkflowFailureError as error:
            return Handover(item.what, item.declaration.name, False,
                            f"handover failed ({error.cause}): the CronJob is left as it was")
        return Handover(item.what, item.declaration.name, done.handed_over, done.detail)

    outcomes += await asyncio.gather(*(result(item, handle) for item, handle in started))
    return outcomes


async def undo(client: Client, api_client: ApiClient, namespace: str | None = None,
               cluster: str = "") -> list[Handover]:
    """Delete each imported schedule, then give its CronJob back the ``suspend`` it had before the import."""
    restored = []
    for cronjob in read_cronjobs(api_client, namespace):
        annotations = cronjob["metadata"].get("annotations") or {}
        sid = annotations.get(IMPORTED_AS_ANNOTATION)
        if not sid:
            continue
        item = declaration_of(cronjob)
        # A handover under way would suspend it after we restore it: stop that first.
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(handover_workflow_id(item.namespace, item.cronjob, cluster)).terminate(
                reason="zerotouch schedules import-cronjobs --undo")
        try:
            await client.get_schedule_handle(sid).delete()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        # The schedule is gone before the CronJob runs again: never both active.
        _annotate(api_client, item, {IMPORTED_AS_ANNOTATION: None, SUSPENDED_BEFORE_ANNOTATION: None,
                                     HANDED_OVER_ANNOTATION: None}, spec={"suspend": item.suspended})
        state = "left suspended (it was before the import)" if item.suspended else "resumed (suspend: false)"
        restored.append(Handover(item.what, item.declaration.name, False, f"schedule {sid} deleted; CronJob {state}"))
    return restored


def render_outcomes(outcomes: Sequence[Handover]) -> str:
    if not outcomes:
        return "no CronJobs"
    return "\n".join(f"{'✓' if o.handed_over else '·'} {o.what} → schedule {o.schedule}: {o.detail}"
                     for o in outcomes)
