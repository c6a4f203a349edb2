"""kube-state-metrics' CronJob and Job series (internal/store/cronjob.go, job.go)."""

from __future__ import annotations

from typing import Any

from .. import cronjobs, jobs
from ..clock import parse_iso
from ..resources import get_type
from .exposition import Registry, Scrape, owner_labels

_JOBS = get_type("batch", "jobs")
_CRONJOBS = get_type("batch", "cronjobs")


def collect(scrape: Scrape, reg: Registry) -> None:
    _cronjob_families(scrape.store, reg.family)
    _job_families(scrape, reg)


def _epoch(value: str | None) -> float | None:
    when = parse_iso(value)
    return None if when is None else when.timestamp()


def _cronjob_families(store: Any, fam: Any) -> None:
    """kube-state-metrics' CronJob series (cronjob.go), same names, labels and omissions."""
    info = fam("kube_cronjob_info", "gauge", "Info about cronjob.")
    created = fam("kube_cronjob_created", "gauge", "Unix creation timestamp")
    suspend = fam("kube_cronjob_spec_suspend", "gauge", "Suspend flag tells the controller to "
                  "suspend subsequent executions.")
    deadline = fam("kube_cronjob_spec_starting_deadline_seconds", "gauge",
                   "Deadline in seconds for starting the job if it misses scheduled time for "
                   "any reason.")
    active = fam("kube_cronjob_status_active", "gauge", "Active holds pointers to currently "
                 "running jobs.")
    last = fam("kube_cronjob_status_last_schedule_time", "gauge", "LastScheduleTime keeps "
               "information of when was the last time the job was successfully scheduled.")
    success = fam("kube_cronjob_status_last_successful_time", "gauge", "LastSuccessfulTime "
                  "keeps information of when was the last time the job was completed "
                  "successfully.")
    upcoming = fam("kube_cronjob_next_schedule_time", "gauge", "Next time the cronjob should be "
                   "scheduled. The time after lastScheduleTime, or after the cron job's creation "
                   "time if it's never been scheduled. Use this to determine if the job is "
                   "delayed.")
    for cj in store.list(_CRONJOBS):
        meta, spec, status = cj["metadata"], cj.get("spec") or {}, cj.get("status") or {}
        base = {"namespace": meta["namespace"], "cronjob": meta["name"]}
        info.add({**base, "schedule": spec.get("schedule", ""),
                  "concurrency_policy": spec.get("concurrencyPolicy", "Allow"),
                  "timezone": spec.get("timeZone") or "local"}, 1)
        if (stamp := _epoch(meta.get("creationTimestamp"))) is not None:
            created.add(base, stamp)
        suspend.add(base, 1 if spec.get("suspend") else 0)
        if spec.get("startingDeadlineSeconds") is not None:
            deadline.add(base, spec["startingDeadlineSeconds"])
        active.add(base, len(status.get("active") or []))
        if (stamp := _epoch(status.get("lastScheduleTime"))) is not None:
            last.add(base, stamp)
        if (stamp := _epoch(status.get("lastSuccessfulTime"))) is not None:
            success.add(base, stamp)
        upcoming_at = cronjobs.next_schedule_time(cj)
        if upcoming_at is not None and not spec.get("suspend"):
            upcoming.add(base, upcoming_at.timestamp())


def _job_families(scrape: Scrape, reg: Registry) -> None:
    owner = reg.gauge("kube_job_owner", "Information about the Job's owner.")
    succeeded = reg.gauge("kube_job_status_succeeded", "The number of pods which reached "
                          "Phase Succeeded.")
    failed = reg.gauge("kube_job_status_failed", "The number of pods which reached Phase "
                       "Failed and the reason for failure.")
    running = reg.gauge("kube_job_status_active", "The number of actively running pods.")
    completions = reg.gauge("kube_job_spec_completions", "The desired number of successfully "
                            "finished pods the job should be run with.")
    started = reg.gauge("kube_job_status_start_time", "StartTime represents time when the job "
                        "was acknowledged by the Job Manager.")
    complete = reg.gauge("kube_job_complete", "The job has completed its execution.")
    job_failed = reg.gauge("kube_job_failed", "The job has failed its execution.")
    for job in scrape.store.list(_JOBS):
        meta, status = job["metadata"], job.get("status") or {}
        base = {"namespace": meta["namespace"], "job_name": meta["name"]}
        for ref in meta.get("ownerReferences") or [None]:
            owner.add({**base, **owner_labels(ref)}, 1)
        succeeded.add(base, status.get("succeeded", 0))
        failed.add(base, status.get("failed", 0))
        running.add(base, status.get("active", 0))
        completions.add(base, (job.get("spec") or {}).get("completions", 1))
        if (stamp := _epoch(status.get("startTime"))) is not None:
            started.add(base, stamp)
        ended = jobs.finished(job)
        for family, outcome in ((complete, jobs.COMPLETE), (job_failed, jobs.FAILED)):
            if ended == outcome:
                for value in ("true", "false", "unknown"):
                    family.add({**base, "condition": value}, 1 if value == "true" else 0)
