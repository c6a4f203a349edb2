"""batch/v1 CronJobs: the CronJob controller.

Follows kube-controller-manager's cronjob controller (v2): on each sync the
most recent unmet schedule time since `status.lastScheduleTime` (or the
creation time) is run, once, as a Job named `<cronjob>-<unix minutes>`;
older missed times are not caught up. `startingDeadlineSeconds` drops a
time that is already too late, `concurrencyPolicy` decides what happens
while an earlier Job is still active, and finished Jobs beyond the history
limits are deleted. Time is the sandbox clock's (clock.py), so tests move
it instead of waiting for minutes to pass.

Schedule parsing lives in cron_schedule.py.
"""

from __future__ import annotations

import contextlib
import copy
from datetime import datetime, timedelta, tzinfo
from typing import Any

from . import jobs
from .clock import parse_iso, to_iso
from .cron_schedule import Schedule, parse_schedule
from .errors import ApiError
from .pods import random_suffix
from .resources import get_type
from .store import Obj, Store

CRONJOBS = get_type("batch", "cronjobs")
JOBS = get_type("batch", "jobs")
EVENTS = get_type("", "events")

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
MAX_NAME_LENGTH = 52  # 63 minus the 11 characters of "-<unix minutes>"

def schedule_of(cronjob: Obj) -> Schedule | None:
    spec = cronjob.get("spec") or {}
    try:
        return parse_schedule(str(spec.get("schedule", "")), spec.get("timeZone"))
    except ValueError:
        return None


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def next_schedule_time(cronjob: Obj) -> datetime | None:
    """kube-state-metrics' reading: the first time after lastScheduleTime, else after creation."""
    schedule = schedule_of(cronjob)
    status = cronjob.get("status") or {}
    base = parse_iso(status.get("lastScheduleTime")) or parse_iso(
        cronjob["metadata"].get("creationTimestamp"))
    if schedule is None or base is None:
        return None
    return schedule.next_after(base)


def owner_ref(cronjob: Obj) -> dict[str, Any]:
    meta = cronjob["metadata"]
    return {"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def job_from_template(cronjob: Obj, scheduled: datetime, zone: tzinfo) -> Obj:
    """The Job a CronJob runs at `scheduled` (getJobFromTemplate2 in Kubernetes)."""
    meta = cronjob["metadata"]
    template = copy.deepcopy(cronjob["spec"].get("jobTemplate") or {})
    tpl_meta = template.get("metadata") or {}
    annotations = dict(tpl_meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = scheduled.astimezone(zone).isoformat()
    return {
        "metadata": {
            "name": job_name(meta["name"], scheduled),
            "namespace": meta["namespace"],
            "labels": dict(tpl_meta.get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [owner_ref(cronjob)],
        },
        "spec": template.get("spec") or {},
        "status": {},
    }


def _controlled_by(obj: Obj, owner: Obj) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def _job_ref(job: Obj) -> dict[str, Any]:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"], "apiVersion": "batch/v1",
            "resourceVersion": meta["resourceVersion"]}


class CronJobController:
    """One sync per CronJob per controller tick, under the store lock."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def sync_all(self) -> None:
        for cronjob in self.store.list(CRONJOBS):
            self.sync(cronjob)

    def sync(self, cronjob: Obj) -> None:
        now = self.store.clock.now()
        ns, name = cronjob["metadata"]["namespace"], cronjob["metadata"]["name"]
        spec = cronjob.get("spec") or {}
        status = copy.deepcopy(cronjob.get("status") or {})
        owned = [j for j in self.store.list(JOBS, ns) if _controlled_by(j, cronjob)]
        self._track_children(cronjob, status, owned)
        self._trim_history(cronjob, owned)
        schedule = schedule_of(cronjob)
        if not spec.get("suspend") and schedule is not None:
            self._run_due(cronjob, status, schedule, now)
        self._write_status(ns, name, status)

    # -- status ---------------------------------------------------------------
    def _track_children(self, cronjob: Obj, status: dict[str, Any], owned: list[Obj]) -> None:
        """status.active = owned unfinished Jobs (keeping the refs already there);
        lastSuccessfulTime = the newest completion among owned Jobs that succeeded."""
        unfinished = {j["metadata"]["uid"]: j for j in owned if not jobs.finished(j)}
        active = [ref for ref in status.get("active") or [] if ref.get("uid") in unfinished]
        known = {ref["uid"] for ref in active}
        for job in sorted(unfinished.values(), key=lambda j: j["metadata"]["name"]):
            if job["metadata"]["uid"] not in known:
                active.append(_job_ref(job))
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        last = parse_iso(status.get("lastSuccessfulTime"))
        for job in owned:
            if jobs.finished(job) == jobs.COMPLETE:
                done = parse_iso((job.get("status") or {}).get("completionTime"))
                if done is not None and (last is None or done > last):
                    last = done
                    self._event(cronjob, "Normal", "SawCompletedJob",
                                f"Saw completed job: {job['metadata']['name']}, status: Complete")
        if last is not None:
            status["lastSuccessfulTime"] = to_iso(last)

    def _trim_history(self, cronjob: Obj, owned: list[Obj]) -> None:
        spec = cronjob.get("spec") or {}
        for outcome, key, default in ((jobs.COMPLETE, "successfulJobsHistoryLimit", 3),
                                      (jobs.FAILED, "failedJobsHistoryLimit", 1)):
            limit = spec.get(key, default)
            done = [j for j in owned if jobs.finished(j) == outcome]
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or "",
                                     j["metadata"]["name"]))
            for job in done[: max(0, len(done) - int(limit))]:
                self.store.delete(JOBS, job["metadata"]["namespace"], job["metadata"]["name"])
                self._event(cronjob, "Normal", "SuccessfulDelete",
                            f"Deleted job {job['metadata']['name']}")

    def _write_status(self, ns: str, name: str, status: dict[str, Any]) -> None:
        current = self.store.get(CRONJOBS, ns, name)
        if current is not None and (current.get("status") or {}) != status:
            updated = copy.deepcopy(current)
            updated["status"] = status
            self.store.update(CRONJOBS, updated, check_version=False)

    # -- scheduling -----------------------------------------------------------
    def _run_due(self, cronjob: Obj, status: dict[str, Any], schedule: Schedule,
                 now: datetime) -> None:
        spec, meta = cronjob["spec"], cronjob["metadata"]
        earliest = parse_iso(status.get("lastScheduleTime")) or parse_iso(
            meta.get("creationTimestamp"))
        if earliest is None:
            return
        scheduled = schedule.latest(earliest, now)
        if scheduled is None:
            return
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            # Too late to start; Kubernetes leaves lastScheduleTime alone and says so once.
            self._event(cronjob, "Warning", "MissSchedule",
                        f"Missed scheduled time to start a job: {to_iso(scheduled)}")
            return
        name = job_name(meta["name"], scheduled)
        active = status.get("active") or []
        if any(ref.get("name") == name for ref in active) or \
                status.get("lastScheduleTime") == to_iso(scheduled):
            return
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self._event(cronjob, "Normal", "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency "
                        f"policy is Forbid (scheduled time {to_iso(scheduled)})")
            return
        if policy == "Replace":
            for ref in active:
                if self.store.get(JOBS, ref["namespace"], ref["name"]) is not None:
                    self.store.delete(JOBS, ref["namespace"], ref["name"])
                    self._event(cronjob, "Normal", "SuccessfulDelete",
                                f"Deleted job {ref['name']}")
            active = []
        existing = self.store.get(JOBS, meta["namespace"], name)
        if existing is None:
            created = self.store.create(JOBS, job_from_template(cronjob, scheduled, schedule.zone))
            active = [*active, _job_ref(created)]
            self._event(cronjob, "Normal", "SuccessfulCreate", f"Created job {name}")
        elif _controlled_by(existing, cronjob) and not jobs.finished(existing) and \
                not any(ref.get("uid") == existing["metadata"]["uid"] for ref in active):
            active = [*active, _job_ref(existing)]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        status["lastScheduleTime"] = to_iso(scheduled)

    # -- events -----------------------------------------------------------------
    def _event(self, cronjob: Obj, kind: str, reason: str, message: str) -> None:
        """A core/v1 Event about the CronJob, recorded once per distinct message."""
        meta = cronjob["metadata"]
        for event in self.store.list(EVENTS, meta["namespace"]):
            involved = event.get("involvedObject") or {}
            if involved.get("uid") == meta["uid"] and event.get("reason") == reason and \
                    event.get("message") == message:
                return
        now = self.store.clock.iso()
        # A name collision is all that can fail here; an event is never worth a crash.
        with contextlib.suppress(ApiError):
            self.store.create(EVENTS, {
                "metadata": {"name": f"{meta['name']}.{random_suffix(10)}",
                             "namespace": meta["namespace"]},
                "involvedObject": {"kind": "CronJob", "namespace": meta["namespace"],
                                   "name": meta["name"], "uid": meta["uid"],
                                   "apiVersion": "batch/v1"},
                "reason": reason, "message": message, "type": kind,
                "source": {"component": "cronjob-controller"},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": "cronjob-controller",
            })
