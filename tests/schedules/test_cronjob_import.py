"""CronJob import (issue 12): the mapping, one table-driven test per row; the handover on the dev server
with a real sandbox (the CronJob is suspended only after its schedule's first run succeeded); `--undo`;
one Job per scheduled time.

The sandbox's clock is frozen at a time none of these CronJobs is due, so its CronJob controller
never fires by itself: every Job here is one a schedule's run made.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from click.testing import CliRunner
from kubernetes import client as k8s
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.cronjobs import CRONJOB_ACTIVE, CronJobActivities, ScheduleStateActivities
from activities.kubernetes import KubernetesActivities
from cli.schedules import schedules as schedules_group
from sandbox import SandboxCluster
from sandbox.jobs import OUTCOME_ANNOTATION
from starters import cronjob_import, schedules
from starters.schedules import build_schedule, workflow_input
from tests.schedules.conftest import TICK, write_policy
from tests.support.waiting import eventually
from workers.run import workflow_runner
from workflows.cronjob_run import CronJobHandoverWorkflow, CronJobRunWorkflow
from zerotouch.cronjobs import (
    HANDED_OVER_ANNOTATION,
    IMPORTED_AS_ANNOTATION,
    SUSPENDED_BEFORE_ANNOTATION,
    CronJobRunInput,
    CronJobRunRequest,
    cronjob_job_name,
)
from zerotouch.names import KUBERNETES_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE, queue_for
from zerotouch.schedules import CronJobRunArgs, schedule_id

NS = "default"
FROZEN = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)  # no CronJob below is due at this time


def cronjob(name: str = "report", schedule: str = "0 3 * * *", outcome: str | None = None,
            **spec: Any) -> dict[str, Any]:
    annotations = {OUTCOME_ANNOTATION: outcome} if outcome else {}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36.1", "command": ["true"]}],
                }}},
            },
            **spec,
        },
    }


def mapped(**spec: Any) -> cronjob_import.Imported:
    """The import of a CronJob with these spec fields (as the API lists it: namespaced, no annotations)."""
    return cronjob_import.declaration_of(cronjob(**spec))


# --- the mapping: one table-driven test per row -------------------------------------------------


@pytest.mark.parametrize(("schedule", "cron", "interval"), [
    ("*/5 * * * *", ["*/5 * * * *"], None),
    ("15 3 * * 1-5", ["15 3 * * 1-5"], None),
    ("0 0 ? * MON", ["0 0 * * MON"], None),  # `?` is Kubernetes' `*`
    ("0 0 1 * MON", ["0 0 1 * *", "0 0 * * MON"], None),  # cron ORs the day fields; Temporal ORs calendars
    ("@hourly", ["@hourly"], None),
    ("@every 90s", [], timedelta(seconds=90)),
])
def test_schedule_becomes_the_cron_spec(schedule: str, cron: list[str], interval: timedelta | None) -> None:
    declaration = mapped(schedule=schedule).declaration
    assert (declaration.cron, declaration.interval) == (cron, interval)
    built = build_schedule(declaration)
    assert [c.comment for c in built.spec.calendars] == cron


@pytest.mark.parametrize(("time_zone", "expected"), [(None, "UTC"), ("Europe/Berlin", "Europe/Berlin"),
                                                     ("America/New_York", "America/New_York")])
def test_time_zone_becomes_the_time_zone(time_zone: str | None, expected: str) -> None:
    fields = {"timeZone": time_zone} if time_zone else {}
    declaration = mapped(**fields).declaration
    assert declaration.time_zone == expected
    assert build_schedule(declaration).spec.time_zone_name == expected


@pytest.mark.parametrize(("policy", "overlap", "temporal"), [
    (None, "ALLOW_ALL", ScheduleOverlapPolicy.ALLOW_ALL),  # Kubernetes' default is Allow
    ("Allow", "ALLOW_ALL", ScheduleOverlapPolicy.ALLOW_ALL),
    ("Forbid", "SKIP", ScheduleOverlapPolicy.SKIP),
    ("Replace", "CANCEL_OTHER", ScheduleOverlapPolicy.CANCEL_OTHER),
])
def test_concurrency_policy_becomes_the_overlap_policy(policy: str | None, overlap: str,
                                                       temporal: ScheduleOverlapPolicy) -> None:
    declaration = mapped(**({"concurrencyPolicy": policy} if policy else {})).declaration
    assert declaration.overlap == overlap
    assert build_schedule(declaration).policy.overlap == temporal


@pytest.mark.parametrize(("deadline", "window", "warned"), [
    (None, timedelta(hours=1), False),  # none: the declaration's default
    (300, timedelta(minutes=5), False),
    (10, timedelta(seconds=10), False),
    (5, timedelta(seconds=10), True),  # below Temporal's minimum: clamped, with a warning
    (0, timedelta(seconds=10), True),
])
def test_starting_deadline_becomes_the_catchup_window(deadline: int | None, window: timedelta,
                                                      warned: bool) -> None:
    imported = mapped(**({"startingDeadlineSeconds": deadline} if deadline is not None else {}))
    assert imported.declaration.catchup_window == window
    assert build_schedule(imported.declaration).policy.catchup_window == window
    assert bool(imported.warnings) == warned
    if warned:
        assert "startingDeadlineSeconds" in imported.warnings[0] and "10s" in imported.warnings[0]


@pytest.mark.parametrize(("suspend", "paused", "note"), [
    (None, False, "imported from CronJob default/report"),
    (False, False, "imported from CronJob default/report"),
    (True, True, "the CronJob was suspended, so the schedule is paused"),
])
def test_suspend_becomes_paused_with_a_note(suspend: bool | None, paused: bool, note: str) -> None:
    declaration = mapped(**({"suspend": suspend} if suspend is not None else {})).declaration
    assert declaration.paused is paused and note in declaration.notes
    state = build_schedule(declaration).state
    assert state.paused is paused and note in (state.note or "")


def test_each_declaration_runs_its_cronjobs_template() -> None:
    declaration = mapped(name="nightly-report").declaration
    assert declaration.name == "default-nightly-report" and declaration.workflow == "CronJobRunWorkflow"
    assert workflow_input(declaration, "c1") == CronJobRunInput(
        schedule="default-nightly-report", cluster="c1",
        arguments=CronJobRunArgs(namespace=NS, cronjob="nightly-report"))
    long = cronjob_import.declaration_name("a-rather-long-namespace-name", "and-an-even-longer-cronjob-name")
    assert len(long) <= 40 and long == cronjob_import.declaration_name("a-rather-long-namespace-name",
                                                                       "and-an-even-longer-cronjob-name")


# --- against a sandbox ----------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[SandboxCluster]:
    cluster = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=TICK).start()
    try:
        cluster.set_clock(FROZEN)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kube(sandbox: SandboxCluster) -> Iterator[k8s.ApiClient]:
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    api = k8s.ApiClient(configuration)
    try:
        yield api
    finally:
        api.close()


def _create(kube: k8s.ApiClient, *cronjobs: dict[str, Any]) -> None:
    for body in cronjobs:
        k8s.BatchV1Api(kube).create_namespaced_cron_job(NS, body)  # type: ignore[arg-type]


def _read(kube: k8s.ApiClient, name: str) -> dict[str, Any]:
    response = k8s.BatchV1Api(kube).read_namespaced_cron_job(name, NS, _preload_content=False)
    data: dict[str, Any] = json.loads(response.data)  # type: ignore[attr-defined]
    return data


def test_the_command_prints_the_declarations_as_yaml(kube: k8s.ApiClient, sandbox: SandboxCluster,
                                                     tmp_path: Path) -> None:
    _create(kube, cronjob("report", concurrencyPolicy="Forbid", startingDeadlineSeconds=5),
            cronjob("archive", schedule="30 1 * * *", suspend=True, timeZone="Europe/Berlin"))
    result = CliRunner().invoke(schedules_group, ["import-cronjobs", "-n", NS, "--kubernetes-url", sandbox.url])
    assert result.exit_code == 0, result.output
    assert "warning: CronJob default/report: startingDeadlineSeconds 5" in result.stderr
    printed = yaml.safe_load(result.stdout)["schedules"]
    assert printed == [
        {"name": "default-archive", "workflow": "CronJobRunWorkflow",
         "arguments": {"namespace": NS, "cronjob": "archive"}, "cron": ["30 1 * * *"], "time_zone": "Europe/Berlin",
         "overlap": "ALLOW_ALL",
         "notes": "imported from CronJob default/archive; the CronJob was suspended, so the schedule is paused "
                  "(unpause it to run it)", "paused": True},
        {"name": "default-report", "workflow": "CronJobRunWorkflow",
         "arguments": {"namespace": NS, "cronjob": "report"}, "cron": ["0 3 * * *"], "catchup_window": "10s",
         "notes": "imported from CronJob default/report"},
    ]
    out = tmp_path / "imported.yaml"
    result = CliRunner().invoke(schedules_group, ["import-cronjobs", "-n", NS, "--kubernetes-url", sandbox.url,
                                      "--out", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert yaml.safe_load(out.read_text())["schedules"] == printed
    # Nothing was changed in the cluster without --apply.
    assert IMPORTED_AS_ANNOTATION not in (_read(kube, "report")["metadata"].get("annotations") or {})


@dataclass
class Stack:
    client: Client
    cluster: str
    sandbox: SandboxCluster
    kube: k8s.ApiClient

    def imported(self) -> list[cronjob_import.Imported]:
        found = cronjob_import.import_cronjobs(self.kube, NS)
        for item in found:
            item.declaration.arguments["poll"] = "100ms"  # tests do not wait 2 s between looks
        return found

    async def schedule_paused(self, name: str) -> bool:
        described = await self.client.get_schedule_handle(schedule_id(name, self.cluster)).describe()
        return described.schedule.state.paused

    def suspended(self, name: str) -> bool:
        return bool(_read(self.kube, name)["spec"].get("suspend"))


@pytest_asyncio.fixture
async def stack(dev_env: WorkflowEnvironment, sandbox: SandboxCluster, kube: k8s.ApiClient,
                scope: str, made: list[str]) -> AsyncIterator[Stack]:
    executor = ThreadPoolExecutor(max_workers=8)
    cronjobs, jobs = CronJobActivities(api_client=kube), KubernetesActivities(api_client=kube)
    workers = [
        Worker(dev_env.client, task_queue=queue_for(WORKFLOWS_QUEUE, scope),
               workflows=[CronJobRunWorkflow, CronJobHandoverWorkflow], workflow_runner=workflow_runner()),
        Worker(dev_env.client, task_queue=queue_for(KUBERNETES_QUEUE, scope), activity_executor=executor,
               activities=[cronjobs.create_cronjob_job, cronjobs.suspend_cronjob, jobs.wait_for_job]),
        Worker(dev_env.client, task_queue=queue_for(OBSERVE_QUEUE, scope),
               activities=[ScheduleStateActivities(client=dev_env.client).unpause_schedule]),
    ]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    made += ["default-report", "default-archive"]  # deleted afterwards (the `made` fixture)
    try:
        yield Stack(dev_env.client, scope, sandbox, kube)
    finally:
        await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False, cancel_futures=True)


async def test_the_cronjob_is_suspended_only_after_the_first_run_succeeded_and_undo_restores_it(
        stack: Stack) -> None:
    # report's Jobs run until the test ends them; archive was suspended before the import.
    _create(stack.kube, cronjob("report", outcome="Running"), cronjob("archive", suspend=True))
    handover = asyncio.create_task(cronjob_import.handover(stack.client, stack.kube, stack.imported(),
                                                           cluster=stack.cluster, timeout=timedelta(seconds=30)))

    async def first_job() -> list[dict[str, Any]]:
        jobs = stack.sandbox.jobs_of(NS, "report")
        return jobs if jobs and (jobs[0].get("status") or {}).get("active") else []

    job = (await eventually(first_job, what="the first run's Job running"))[0]["metadata"]["name"]
    # While the first run runs, the CronJob stays active and the schedule paused: never both active.
    assert not stack.suspended("report") and await stack.schedule_paused("default-report")
    annotations = _read(stack.kube, "report")["metadata"]["annotations"]
    assert annotations[IMPORTED_AS_ANNOTATION] == schedule_id("default-report", stack.cluster)
    assert annotations[SUSPENDED_BEFORE_ANNOTATION] == "false"
    stack.sandbox.finish_job(NS, job, "Complete")
    outcomes = {o.schedule: o for o in await asyncio.wait_for(handover, 30)}
    assert outcomes["default-report"].handed_over, outcomes
    assert f"first run {job} succeeded" in outcomes["default-report"].detail
    assert not outcomes["default-archive"].handed_over and "left suspended" in outcomes["default-archive"].detail
    assert stack.suspended("report") and HANDED_OVER_ANNOTATION in _read(stack.kube, "report")["metadata"][
        "annotations"]
    assert not await stack.schedule_paused("default-report")
    assert stack.suspended("archive") and await stack.schedule_paused("default-archive")
    assert [j["metadata"]["name"] for j in stack.sandbox.jobs_of(NS, "report")] == [job]
    assert stack.sandbox.jobs_of(NS, "archive") == []

    # Importing again finds it handed over: no second first run.
    again = await cronjob_import.handover(stack.client, stack.kube, stack.imported(), cluster=stack.cluster)
    assert {o.schedule: o.detail for o in again}["default-report"] == "already handed over"
    assert len(stack.sandbox.jobs_of(NS, "report")) == 1

    restored = await cronjob_import.undo(stack.client, stack.kube, NS, stack.cluster)
    assert sorted(r.schedule for r in restored) == ["default-archive", "default-report"]
    assert not stack.suspended("report")  # resumed: it was active before the import
    assert stack.suspended("archive")  # it was suspended before the import: stays so
    for name in ("report", "archive"):
        left = _read(stack.kube, name)["metadata"].get("annotations") or {}
        assert not {IMPORTED_AS_ANNOTATION, SUSPENDED_BEFORE_ANNOTATION, HANDED_OVER_ANNOTATION} & set(left)
    for name in ("default-report", "default-archive"):
        with pytest.raises(RPCError) as gone:
            await stack.client.get_schedule_handle(schedule_id(name, stack.cluster)).describe()
        assert gone.value.status == RPCStatusCode.NOT_FOUND


async def test_applying_a_policy_without_the_imported_declarations_keeps_their_schedules(stack: Stack) -> None:
    # Deleting an imported schedule would leave its suspended CronJob with nothing running its job.
    _create(stack.kube, cronjob("archive", suspend=True))
    await cronjob_import.handover(stack.client, stack.kube, stack.imported(), cluster=stack.cluster,
                                  timeout=timedelta(seconds=30))

    async def kept() -> list[schedules.Change]:
        return [c for c in await schedules.plan(stack.client, [], stack.cluster) if c.kind == "kept"]

    [change] = await eventually(kept, what="the imported schedule listed as kept")
    assert change.name == "default-archive"
    assert [c.kind for c in await schedules.apply(stack.client, [], stack.cluster)] == ["kept"]
    assert "import-cronjobs --undo" in schedules.render_changes([change])
    await stack.client.get_schedule_handle(schedule_id("default-archive", stack.cluster)).describe()  # still there


async def test_a_failing_first_run_leaves_the_cronjob_active(stack: Stack) -> None:
    _create(stack.kube, cronjob("report", outcome="Failed"))
    outcomes = await cronjob_import.handover(stack.client, stack.kube, stack.imported(), cluster=stack.cluster,
                                             timeout=timedelta(seconds=30))
    assert [o.handed_over for o in outcomes] == [False]
    assert "first run failed" in outcomes[0].detail and "left active" in outcomes[0].detail
    assert not stack.suspended("report") and await stack.schedule_paused("default-report")
    assert len(stack.sandbox.jobs_of(NS, "report")) == 1


async def test_a_run_for_the_same_scheduled_time_twice_creates_one_job(stack: Stack) -> None:
    """A catch-up (or retry, or backfill) of a time that already ran finds its Job instead of making another."""
    _create(stack.kube, cronjob("report", suspend=True))
    at = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    params = CronJobRunInput(schedule="default-report", cluster=stack.cluster, scheduled_time=at,
                             arguments=CronJobRunArgs(namespace=NS, cronjob="report", poll=timedelta(seconds=0.1)))
    results = [await stack.client.execute_workflow(
        CronJobRunWorkflow.run, params, id=f"{stack.cluster}-same-time-{attempt}",
        task_queue=queue_for(WORKFLOWS_QUEUE, stack.cluster), execution_timeout=timedelta(seconds=30))
        for attempt in range(2)]
    assert [(r.created, r.succeeded) for r in results] == [(True, True), (False, True)]
    jobs = stack.sandbox.jobs_of(NS, "report")  # owned by the CronJob, named as its controller names them
    assert [j["metadata"]["name"] for j in jobs] == [cronjob_job_name("report", at)] == \
        [f"report-{int(at.timestamp()) // 60}"]
    assert jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36.1"


async def test_the_first_run_never_starts_next_to_a_job_the_cronjob_is_running(stack: Stack) -> None:
    """Forbid-like while the CronJob is not suspended yet: its own running Job blocks the first run (retried)."""
    _create(stack.kube, cronjob("report", schedule="*/5 * * * *", outcome="Running"))
    stack.sandbox.set_clock(FROZEN.replace(minute=5, second=10))  # the CronJob's 00:05 Job starts (and runs)

    async def its_job() -> list[dict[str, Any]]:
        return stack.sandbox.jobs_of(NS, "report")

    own = (await eventually(its_job, what="the CronJob's own Job"))[0]["metadata"]["name"]
    at = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    request = CronJobRunRequest(schedule="default-report", namespace=NS, cronjob="report", scheduled_time=at,
                                idempotency_key="default-report@20260105T030000Z")
    activities = CronJobActivities(api_client=stack.kube)
    with pytest.raises(ApplicationError) as refused:
        await asyncio.to_thread(ActivityEnvironment().run, activities.create_cronjob_job, request)
    assert refused.value.type == CRONJOB_ACTIVE and own in str(refused.value) and not refused.value.non_retryable
    stack.sandbox.finish_job(NS, own, "Complete")
    created = await asyncio.to_thread(ActivityEnvironment().run, activities.create_cronjob_job, request)
    assert created.created and created.job == cronjob_job_name("report", at)


async def test_the_command_applies_and_undoes(stack: Stack, dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    _create(stack.kube, cronjob("report"))
    policy = write_policy(tmp_path / "policy.yaml")  # no schedules of its own: only the imported one is made
    common = ["import-cronjobs", "-n", NS, "--kubernetes-url", stack.sandbox.url, "--cluster", stack.cluster,
              "--address", dev_env.client.service_client.config.target_host, "--policy", str(policy), "--json"]

    def run(*extra: str) -> list[dict[str, Any]]:
        result = CliRunner().invoke(schedules_group, [*common, *extra])
        assert result.exit_code == 0, (result.output, result.exception)
        outcomes: list[dict[str, Any]] = json.loads(result.stdout)
        return outcomes

    applied = await asyncio.to_thread(run, "--apply", "--wait", "30s")  # Jobs complete on their own here
    assert [(o["schedule"], o["handed_over"]) for o in applied] == [("default-report", True)]
    assert stack.suspended("report") and not await stack.schedule_paused("default-report")
    undone = await asyncio.to_thread(run, "--undo")
    assert [o["schedule"] for o in undone] == ["default-report"] and "resumed" in undone[0]["detail"]
    assert not stack.suspended("report")
