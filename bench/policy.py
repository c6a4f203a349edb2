"""The policy the benchmark runs with: the shipped one, with the changes listed in `CHANGES`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bench.alerts import RESTART_ALERT
from zerotouch.policy import load_policy

REPO = Path(__file__).resolve().parent.parent

CHANGES = [
    f"a runbook `bench-restart` first: `{RESTART_ALERT}` → `restart_deployment`, verified by rollout health "
    "held 1 s (no PromQL: scenarios 1-4 and 6 run without Prometheus)",
    "guardrails that throttle a storm on purpose are lifted so the figures are zerotouch's own capacity: "
    "global rate 100 → 100000 actions/min, blast radius 5 → 10000 in flight per namespace; "
    "the per-target cooldown stays at the shipped 5 min",
    "every severity notifies only the `dashboard` channel (Slack and PagerDuty are outside this machine)",
]


FAST_CHANGES = [
    "for the full loop (scenario 5) the shipped runbooks' waits shrink as in the end-to-end tests: verification "
    "holds 2 s (timeout 12 s), PromQL windows `[Nm]` → `[10s]`, resolution cooldown 3 s",
]


def bench_policy(target: Path, *, fast_verify: bool = False, target_cooldown: str | None = None) -> Path:
    document: dict[str, Any] = yaml.safe_load((REPO / "deploy/policy/zerotouch.yaml").read_text())
    if fast_verify:
        document["resolution_cooldown"] = "3s"
        for runbook in document["runbooks"]:
            verify = runbook.setdefault("verify", {})
            verify.update({"hold_for": "2s", "timeout": "12s"})
            if verify.get("promql"):
                verify["promql"] = re.sub(r"\[(\d+)m\]", "[10s]", verify["promql"])
    document["runbooks"].insert(0, {
        "name": "bench-restart",
        "description": "Benchmark target: rolling restart, verified by rollout health.",
        "match": {"alertname": [RESTART_ALERT]},
        "steps": [{"action": "restart_deployment"}],
        "verify": {"rollout": True, "hold_for": "1s", "timeout": "60s"},
        "retry_cooldown": "5m",
        "max_attempts": 1,
        "confidence": 0.9,
    })
    guardrails = document.setdefault("guardrails", {})
    guardrails["global_rate_per_minute"] = 100000
    guardrails["max_in_flight_per_namespace"] = 10000
    if target_cooldown:
        # Several stock alerts name one workload; this guardrail is what keeps them to one action.
        guardrails["target_cooldown"] = target_cooldown
    document["escalation"] = {sev: [{"after": "0s", "notify": ["dashboard"]}] for sev in ("P0", "P1", "P2", "P3", "P4")}
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(target)
    return target
