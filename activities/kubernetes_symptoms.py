"""Does a deployment show the symptom an alert claims? Read from its pods, as an SRE would look.

- ``oom_killed``: a container was killed for memory within the window (its last termination, or now).
- ``crash_looping``: a container waits in CrashLoopBackOff, or restarted within the window.
- ``unhealthy``: either of those, any container waiting (image pulls, creation), or the rollout
  not healthy (replicas missing, unavailable or unready).

A healthy workload answers "absent" with what was looked at, so the incident's timeline says why
nothing was done.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from activities.kubernetes_rollout import Obj, rollout_status
from zerotouch.models import SymptomCheck, SymptomReport


def _finished_at(terminated: Obj) -> datetime | None:
    value = terminated.get("finishedAt")
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _recent(terminated: Obj, since: datetime) -> bool:
    """A termination without a time counts: the kubelet has not written it yet, so it is new."""
    finished = _finished_at(terminated)
    return finished is None or finished >= since


def _container_findings(pod: Obj, since: datetime) -> dict[str, list[str]]:
    name = pod["metadata"]["name"]
    found: dict[str, list[str]] = {"oom_killed": [], "crash_looping": [], "waiting": []}
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        container = f"{name}/{status.get('name', '?')}"
        state, last = status.get("state") or {}, status.get("lastState") or {}
        for terminated in (state.get("terminated") or {}, last.get("terminated") or {}):
            if terminated.get("reason") == "OOMKilled" and _recent(terminated, since):
                found["oom_killed"].append(f"{container} OOMKilled")
                break
        waiting = (state.get("waiting") or {}).get("reason")
        last_terminated = last.get("terminated") or {}
        restarted = bool(last_terminated) and int(status.get("restartCount") or 0) > 0 \
            and _recent(last_terminated, since)
        if waiting == "CrashLoopBackOff" or restarted:
            found["crash_looping"].append(f"{container} {'CrashLoopBackOff' if waiting else 'restarted'}")
        if waiting:
            found["waiting"].append(f"{container} waiting ({waiting})")
    return found


def symptom_report(check: SymptomCheck, deploy: Obj, pods: list[Obj], now: datetime) -> SymptomReport:
    """One verdict from the deployment and the pods its selector matches."""
    since = now - timedelta(seconds=check.window_seconds)
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    found: dict[str, list[str]] = {"oom_killed": [], "crash_looping": [], "waiting": []}
    for pod in live:
        for kind, items in _container_findings(pod, since).items():
            found[kind].extend(items)
    if check.symptom == "unhealthy":
        rollout = rollout_status(deploy, pods)
        evidence = found["oom_killed"] + found["crash_looping"] + found["waiting"]
        if not rollout.healthy:
            evidence.insert(0, rollout.detail)
        absent = f"healthy: {rollout.detail}, no container waiting or restarted"
    else:
        evidence = found[check.symptom]
        what = "killed for memory" if check.symptom == "oom_killed" else "crash looping or restarted"
        absent = f"no container of {len(live)} pod(s) {what}"
    window = f"in the last {check.window_seconds / 60:g} min"
    if evidence:
        unique = list(dict.fromkeys(evidence))
        return SymptomReport(present=True, detail="; ".join(unique[:3]) + (" …" if len(unique) > 3 else ""))
    return SymptomReport(present=False, detail=f"{absent} {window}")
