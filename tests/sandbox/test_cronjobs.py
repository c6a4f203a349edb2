"""batch/v1 CronJobs in the sandbox: the API (python client and kubectl), validation, metrics,
and the controller that runs their Jobs on the sandbox clock.

Controller tests run with a MANUAL tick and a frozen clock: the test sets the time, calls
`cluster.tick()`, and looks. Nothing waits for real minutes to pass.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from sandbox import SandboxCluster, clock_via_http, finish_job_via_http
from sandbox.cronjobs import CRONJOBS
from sandbox.jobs import OUTCOME_ANNOTATION
from tests.support.kube import retry_on_conflict

from .conftest import MANUAL, Kubectl, wait_until

# The client's models type every field Optional; these tests assert what is there, so they
# talk to it untyped rather than narrowing each attribute first.
BatchApi = Any

START = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)  # where the frozen clock starts
FIVE = datetime(2030, 1, 1, 0, 5, tzinfo=UTC)
TEN = datetime(2030, 1, 1, 0, 10, tzinfo=UTC)


def _minutes(when: datetime) -> int:
    return int(when.timestamp()) // 60


def _cronjob(name: str = "report", schedule: str = "*/5 * * * *", outcome: str | None = None,
             **spec: Any) -> dict[str, Any]:
    annotations = {OUTCOME_ANNOTATION: outcome} if outcome else {}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "labels": {"team": "ops"}},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
                }}},
            },
            **spec,
        },
    }


def _status(cluster: SandboxCluster, name: str = "report") -> dict[str, Any]:
    cj = cluster.core.store.get(CRONJOBS, "default", name)
    assert cj is not None
    status: dict[str, Any] = cj.get("status") or {}
    return status


def _names(cluster: SandboxCluster, name: str = "report") -> list[str]:
    return [j["metadata"]["name"] for j in cluster.jobs_of("default", name)]


def _events(core_v1: Any, reason: str) -> list[str]:
    return [e.message for e in core_v1.list_namespaced_event("default").items if e.reason == reason]


@pytest.fixture
def manual(cluster: SandboxCluster) -> SandboxCluster:
    """A MANUAL-tick cluster whose clock is frozen at START."""
    cluster.set_clock(START)
    return cluster


# -- the API --------------------------------------------------------------------------------
def test_crud_list_and_patch_through_python_client(cluster: SandboxCluster,
                                                   batch_v1: BatchApi) -> None:
    created = batch_v1.create_namespaced_cron_job("default", _cronjob(timeZone="Europe/Berlin"))
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.spec.concurrency_policy == "Allow" and created.spec.suspend is False
    assert created.spec.successful_jobs_history_limit == 3
    assert created.spec.failed_jobs_history_limit == 1

    read = batch_v1.read_namespaced_cron_job("report", "default")
    assert read.spec.schedule == "*/5 * * * *" and read.spec.time_zone == "Europe/Berlin"
    assert [c.metadata.name for c in batch_v1.list_namespaced_cron_job("default").items] == ["report"]
    everywhere = {(c.metadata.namespace, c.metadata.name)
                  for c in batch_v1.list_cron_job_for_all_namespaces().items}
    assert everywhere == {("default", "report"), ("shop", "nightly-report")}
    assert [c.metadata.name for c in
            batch_v1.list_namespaced_cron_job("default", label_selector="team=ops").items] == ["report"]

    # merge patch (a dict body), JSON patch (a list body), then a full replace
    patched = batch_v1.patch_namespaced_cron_job("report", "default", {"spec": {"suspend": True}})
    assert patched.spec.suspend is True and patched.metadata.generation == 2
    patched = batch_v1.patch_namespaced_cron_job(
        "report", "default", [{"op": "replace", "path": "/spec/suspend", "value": False},
                              {"op": "add", "path": "/spec/concurrencyPolicy", "value": "Forbid"}])
    assert patched.spec.suspend is False and patched.spec.concurrency_policy == "Forbid"

    def replace() -> client.V1CronJob:
        current = batch_v1.read_namespaced_cron_job("report", "default")
        current.spec.starting_deadline_seconds = 120
        result: client.V1CronJob = batch_v1.replace_namespaced_cron_job("report", "default", current)
        return result

    assert retry_on_conflict(replace).spec.starting_deadline_seconds == 120
    assert [a["kind"] for a in cluster.actions("default", "report")] == \
        ["other", "suspend", "resume", "other"]

    batch_v1.delete_namespaced_cron_job("report", "default")
    with pytest.raises(ApiException) as gone:
        batch_v1.read_namespaced_cron_job("report", "default")
    assert gone.value.status == 404


def test_status_subresource_and_watch(batch_v1: BatchApi) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob())
    status = batch_v1.read_namespaced_cron_job_status("report", "default").status
    assert status.active is None and status.last_schedule_time is None
    seen = []
    for event in watch.Watch().stream(batch_v1.list_namespaced_cron_job, "default", timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        break
    assert seen == [("ADDED", "report")]


def _reason(err: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(str(err.body))
    return body


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"schedule": "61 * * * *"}, "spec.schedule", "above maximum (59)"),
    ({"schedule": "not a schedule"}, "spec.schedule", "expected exactly 5 fields"),
    ({"schedule": "0 0 * * * *"}, "spec.schedule", "expected exactly 5 fields"),
    ({"schedule": "0 0 L * *"}, "spec.schedule", "failed to parse int"),
    ({"schedule": "@fortnightly"}, "spec.schedule", "unrecognized descriptor"),
    ({"schedule": "TZ=UTC 0 0 * * *"}, "spec.schedule", "use timeZone field instead"),
    ({"schedule": ""}, "spec.schedule", "Required value"),
    ({"timeZone": "Mars/Olympus_Mons"}, "spec.timeZone", "unknown time zone"),
    ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy", 'supported values: "Allow"'),
    ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds", "greater than or equal to 0"),
    ({"suspend": "yes"}, "spec.suspend", "must be a boolean"),
    ({"jobTemplate": None}, "spec.jobTemplate", "Required value"),
])
def test_validation_errors_are_422_with_the_field(cluster: SandboxCluster, change: dict[str, Any],
                                                  field: str, words: str) -> None:
    """Raw HTTP: the python client refuses some of these bodies itself (a string `suspend`)."""
    body = _cronjob()
    body["spec"].update(change)
    if change.get("jobTemplate", "") is None:
        del body["spec"]["jobTemplate"]
    resp = httpx.post(f"{cluster.url}/apis/batch/v1/namespaces/default/cronjobs", json=body)
    status = resp.json()
    assert resp.status_code == 422 and status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == field
    assert f'CronJob "report" is invalid: {field}' in status["message"] and words in status["message"]


def test_validation_of_template_name_and_patches(batch_v1: BatchApi) -> None:
    body = _cronjob()
    body["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiException) as refused:
        batch_v1.create_namespaced_cron_job("default", body)
    assert refused.value.status == 422 and '"Always": supported values: "OnFailure", "Never"' in \
        _reason(refused.value)["message"]
    with pytest.raises(ApiException) as too_long:
        batch_v1.create_namespaced_cron_job("default", _cronjob(name="r" * 53))
    assert too_long.value.status == 422 and "no more than 52 characters" in _reason(too_long.value)["message"]
    # descriptors, names, steps and @every are what Kubernetes accepts too
    for i, schedule in enumerate(("@daily", "0 9 * JAN-MAR mon-fri", "5/15 * ? * *", "@every 1h30m")):
        batch_v1.create_namespaced_cron_job("default", _cronjob(name=f"ok-{i}", schedule=schedule))
    # a patch is validated like a create
    with pytest.raises(ApiException) as bad_patch:
        batch_v1.patch_namespaced_cron_job("ok-0", "default", {"spec": {"schedule": "* * *"}})
    assert bad_patch.value.status == 422
    assert batch_v1.read_namespaced_cron_job("ok-0", "default").spec.schedule == "@daily"


# -- the controller, on a driven clock ----------------------------------------------------------
@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_job_created_at_the_scheduled_time_and_completes(manual: SandboxCluster,
                                                         batch_v1: BatchApi) -> None:
    cluster = manual
    batch_v1.create_namespaced_cron_job("default", _cronjob())
    cluster.tick()
    cluster.set_clock(FIVE - timedelta(seconds=1))
    cluster.tick()
    assert _names(cluster) == [] and "lastScheduleTime" not in _status(cluster)

    cluster.set_clock(FIVE)
    cluster.tick()
    name = f"report-{_minutes(FIVE)}"
    assert _names(cluster) == [name]
    job = batch_v1.read_namespaced_job(name, "default")
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("CronJob", "report", True)
    assert owner.uid == batch_v1.read_namespaced_cron_job("report", "default").metadata.uid
    assert job.metadata.labels == {"app": "report"}
    assert job.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        "2030-01-01T00:05:00+00:00"
    status = batch_v1.read_namespaced_cron_job("report", "default").status
    assert status.last_schedule_time == FIVE and [r.name for r in status.active] == [name]

    cluster.tick()  # the Job starts
    cluster.tick()  # and succeeds, the way every sandbox Job does
    assert batch_v1.read_namespaced_job(name, "default").status.succeeded == 1
    cluster.tick()  # the CronJob notices
    status = batch_v1.read_namespaced_cron_job("report", "default").status
    assert status.active is None and status.last_successful_time == FIVE
    cluster.tick()
    assert _names(cluster) == [name]  # one run per scheduled time, however many ticks

    metrics = cluster.metrics()
    base = 'namespace="default",cronjob="report"'
    assert f"kube_cronjob_status_last_schedule_time{{{base}}} {int(FIVE.timestamp())}" in metrics
    assert f"kube_cronjob_next_schedule_time{{{base}}} {int(TEN.timestamp())}" in metrics
    assert f"kube_cronjob_spec_suspend{{{base}}} 0" in metrics
    assert (f'kube_cronjob_info{{{base},schedule="*/5 * * * *",concurrency_policy="Allow",'
            f'timezone="local"}} 1') in metrics
    assert (f'kube_job_owner{{namespace="default",job_name="{name}",owner_kind="CronJob",'
            'owner_name="report",owner_is_controller="true"} 1') in metrics


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_only_the_most_recent_missed_time_runs(manual: SandboxCluster, batch_v1: BatchApi) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob())
    manual.set_clock(TEN + timedelta(minutes=7))  # 00:05, 00:10 and 00:15 all passed
    manual.tick()
    assert _names(manual) == [f"report-{_minutes(TEN + timedelta(minutes=5))}"]


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_time_zone_decides_the_hour(manual: SandboxCluster, batch_v1: BatchApi) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob(schedule="0 2 * * *", timeZone="Asia/Tokyo"))
    tokyo_two = datetime(2030, 1, 1, 17, 0, tzinfo=UTC)  # 02:00 on Jan 2 in Tokyo (UTC+9)
    manual.set_clock(tokyo_two - timedelta(seconds=1))
    manual.tick()
    assert _names(manual) == []
    manual.set_clock(tokyo_two)
    manual.tick()
    assert _names(manual) == [f"report-{_minutes(tokyo_two)}"]
    job = manual.jobs_of("default", "report")[0]
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        "2030-01-02T02:00:00+09:00"


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_forbid_skips_while_a_job_is_active(manual: SandboxCluster, batch_v1: BatchApi,
                                            core_v1: Any) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob(outcome="Running", concurrencyPolicy="Forbid"))
    manual.set_clock(FIVE)
    manual.tick()
    first = f"report-{_minutes(FIVE)}"
    manual.set_clock(TEN)
    for _ in range(3):
        manual.tick()
    assert _names(manual) == [first]  # still running, so 00:10 is not started
    assert batch_v1.read_namespaced_job(first, "default").status.active == 1
    assert len(_events(core_v1, "JobAlreadyActive")) == 1
    assert _status(manual)["lastScheduleTime"] == "2030-01-01T00:05:00Z"

    manual.finish_job("default", first, "Failed")
    manual.tick()
    # As in Kubernetes, with no startingDeadlineSeconds the skipped time runs late.
    assert _names(manual) == [first, f"report-{_minutes(TEN)}"]
    status = _status(manual)
    assert "lastSuccessfulTime" not in status and status["lastScheduleTime"] == "2030-01-01T00:10:00Z"


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_replace_deletes_the_active_job(manual: SandboxCluster, batch_v1: BatchApi) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob(outcome="Running", concurrencyPolicy="Replace"))
    manual.set_clock(FIVE)
    manual.tick()
    manual.tick()
    manual.set_clock(TEN)
    manual.tick()
    second = f"report-{_minutes(TEN)}"
    assert _names(manual) == [second]
    assert [r["name"] for r in _status(manual)["active"]] == [second]


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_allow_runs_jobs_side_by_side(manual: SandboxCluster, batch_v1: BatchApi) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob(outcome="Running"))
    manual.set_clock(FIVE)
    manual.tick()
    manual.set_clock(TEN)
    manual.tick()
    both = [f"report-{_minutes(FIVE)}", f"report-{_minutes(TEN)}"]
    assert _names(manual) == both and [r["name"] for r in _status(manual)["active"]] == both


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_suspend_stops_new_jobs_and_resume_picks_up(manual: SandboxCluster,
                                                    batch_v1: BatchApi) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob(suspend=True, startingDeadlineSeconds=60))
    manual.set_clock(FIVE)
    manual.tick()
    assert _names(manual) == []
    assert "kube_cronjob_next_schedule_time{" not in "\n".join(
        line for line in manual.metrics().splitlines() if 'cronjob="report"' in line)
    manual.set_clock(FIVE + timedelta(seconds=30))
    batch_v1.patch_namespaced_cron_job("report", "default", {"spec": {"suspend": False}})
    manual.tick()  # 00:05 is 30 s ago, within the 60 s deadline: it runs
    assert _names(manual) == [f"report-{_minutes(FIVE)}"]


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_starting_deadline_skips_a_time_missed_beyond_it(manual: SandboxCluster, batch_v1: BatchApi,
                                                         core_v1: Any) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob(startingDeadlineSeconds=60))
    manual.set_clock(FIVE + timedelta(seconds=61))
    manual.tick()
    manual.tick()
    assert _names(manual) == [] and "lastScheduleTime" not in _status(manual)
    assert _events(core_v1, "MissSchedule") == ["Missed scheduled time to start a job: 2030-01-01T00:05:00Z"]
    manual.set_clock(TEN + timedelta(seconds=59))
    manual.tick()
    assert _names(manual) == [f"report-{_minutes(TEN)}"]


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_history_limits_and_cascading_delete(manual: SandboxCluster, batch_v1: BatchApi) -> None:
    batch_v1.create_namespaced_cron_job("default", _cronjob(schedule="* * * * *", successfulJobsHistoryLimit=2))
    for minute in range(1, 5):
        manual.set_clock(datetime(2030, 1, 1, 0, minute, tzinfo=UTC))
        for _ in range(3):
            manual.tick()
    assert _names(manual) == [f"report-{_minutes(datetime(2030, 1, 1, 0, m, tzinfo=UTC))}" for m in (3, 4)]
    batch_v1.delete_namespaced_cron_job("report", "default")
    manual.tick()
    assert batch_v1.list_namespaced_job("default").items == []


def test_background_loop_with_an_advanced_clock(cluster: SandboxCluster, batch_v1: BatchApi) -> None:
    """How a test that does not drive ticks uses it: move the clock, then poll."""
    cluster.set_clock(FIVE - timedelta(seconds=10))
    batch_v1.create_namespaced_cron_job("default", _cronjob())
    cluster.advance_clock(10)
    name = f"report-{_minutes(FIVE)}"
    wait_until(lambda: name in _names(cluster)
               and batch_v1.read_namespaced_job(name, "default").status.succeeded == 1)
    wait_until(lambda: batch_v1.read_namespaced_cron_job("report", "default").status.last_successful_time)


@pytest.mark.parametrize("cluster", [MANUAL], indirect=True)
def test_clock_and_jobs_over_http(manual: SandboxCluster, batch_v1: BatchApi) -> None:
    assert clock_via_http(manual.url)["now"] == "2030-01-01T00:00:30Z"
    batch_v1.create_namespaced_cron_job("default", _cronjob(outcome="Running"))
    assert clock_via_http(manual.url, advance_seconds=270)["now"] == "2030-01-01T00:05:00Z"
    manual.tick()
    manual.tick()
    name = f"report-{_minutes(FIVE)}"
    job = finish_job_via_http(manual.url, "default", name, "Complete")
    assert job["status"]["succeeded"] == 1 and job["status"]["completionTime"] == "2030-01-01T00:05:00Z"
    refused = httpx.post(f"{manual.url}/sandbox/v1/jobs/finish",
                         json={"namespace": "default", "name": name, "outcome": "Complete"})
    assert refused.status_code == 400 and "already finished" in refused.json()["error"]
    assert clock_via_http(manual.url, set_to="2031-06-01T12:00:00Z")["now"] == "2031-06-01T12:00:00Z"


# -- kubectl ------------------------------------------------------------------------------------
def test_kubectl_discovery_table_and_patch(cluster: SandboxCluster, kubectl: Kubectl) -> None:
    resources = kubectl("api-resources", "--api-group=batch").stdout
    assert any(line.split()[:2] == ["cronjobs", "cj"] for line in resources.splitlines())
    table = kubectl("get", "cronjobs", "-n", "shop").stdout.splitlines()
    assert table[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE",
                                "AGE"]
    assert table[1].split()[:7] == ["nightly-report", "0", "2", "*", "*", "*", "Etc/UTC"]
    assert table[1].split()[7:10] == ["True", "0", "<none>"]

    kubectl("create", "cronjob", "hello", "-n", "default", "--image=busybox", "--schedule=*/10 * * * *",
            "--", "echo", "hi")
    kubectl("patch", "cronjob", "hello", "-n", "default", "-p", '{"spec":{"suspend":true}}')
    got = json.loads(kubectl("get", "cj", "hello", "-n", "default", "-o", "json").stdout)
    assert got["spec"]["suspend"] is True and got["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "restartPolicy"] == "OnFailure"
    kubectl("patch", "cronjob", "hello", "-n", "default", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    assert [a["kind"] for a in cluster.actions("default", "hello")] == ["other", "suspend", "resume"]

    # a manual run, as an operator would start one
    kubectl("create", "job", "hello-now", "-n", "default", "--from=cronjob/hello")
    wait_until(lambda: "hello-now" in [j["metadata"]["name"] for j in cluster.jobs_of("default", "hello")])
    bad = kubectl("create", "cronjob", "broken", "-n", "default", "--image=busybox",
                  "--schedule=99 * * * *", check=False)
    assert bad.returncode != 0 and "spec.schedule" in bad.stderr
    kubectl("delete", "cronjob", "hello", "-n", "default")
    assert "hello" not in kubectl("get", "cronjobs", "-A").stdout
