"""MTTR per drill class on the sandbox (BENCHMARKS.md): every fault class with its alert delivered through
the real relay, the shipped runbooks with the tests' shortened waits (fast_policy), and the false positives.

    python -m pytest tests/drills/measure_drills.py -s -p no:randomly

Not part of the test run (no test_ prefix): it takes minutes and prints a table.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.drills.conftest import DrillStack
from zerotouch.drill_models import DrillResult

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _d(name: str, fault: str, target: str, alertname: str, expect: str = "auto_resolved",
       **labels: str) -> dict[str, Any]:
    namespace, _, workload = target.partition("/")
    extra = {"deadline": "90s"} if expect != "no_action" else {"quiet_for": "15s"}
    return {"name": name, "fault": fault, "target": target, "expect": expect, **extra,
            "alert": {"alertname": alertname, "labels": {"namespace": namespace, "deployment": workload, **labels}}}


DRILLS = [
    _d("crashloop", "crashloop", "shop/web", "KubePodCrashLooping"),
    _d("oom", "oom", "shop/checkout", "KubePodOOMKilled"),
    _d("overload", "overload", "shop/email-worker", "KafkaConsumerLagHigh"),
    _d("bad-deploy", "bad_deploy", "shop/web", "HighErrorRateAfterDeploy"),
    _d("disk-pressure", "disk_pressure", "shop/checkout", "DiskSpaceHigh"),
    _d("stuck-pending", "stuck_pending", "shop/web", "KubeContainerWaiting", reason="ContainerCreating"),
    _d("stuck-rollout", "stuck_rollout", "shop/web", "KubeDeploymentRolloutStuck"),
    _d("unfixable", "unfixable", "shop/email-worker", "KubePodCrashLooping", expect="escalated"),
    _d("volume-filling", "volume_filling", "shop/pvc/data-db-0", "KubePersistentVolumeFillingUp",
       expect="escalated", persistentvolumeclaim="data-db-0"),
    _d("watchdog", "watchdog_alert", "monitoring/alertmanager", "Watchdog", expect="no_action"),
    _d("flapping", "flapping_alert", "shop/web", "KubePodCrashLooping", expect="no_action"),
    _d("healthy", "healthy_workload_alert", "shop/checkout", "KubePodOOMKilled", expect="no_action"),
    _d("storm", "duplicate_storm", "shop/email-worker", "KafkaConsumerLagHigh", expect="no_action"),
]


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


async def test_measure_every_class(drills: DrillStack) -> None:
    rows: list[DrillResult] = []
    for declared in DRILLS:
        for _ in range(2):
            rows.append(await drills.run(str(declared["name"])))
    print("\n| drill | fault | expect | outcome | pass | detect s | first action s | recovered s | actions |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.name} | {r.fault} | {r.expect} | {r.outcome} | {'yes' if r.passed else 'NO'} | "
              f"{_s(r.detect_seconds)} | {_s(r.first_action_seconds)} | {_s(r.recover_seconds)} | "
              f"{', '.join(r.actions) or '-'} |")
