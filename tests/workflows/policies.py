"""Small policies for workflow tests: fast verification, a local receiver as the pager."""

from __future__ import annotations

from typing import Any

from zerotouch.policy import Policy, parse_policy


def make_policy(receiver_url: str = "http://127.0.0.1:9/unused", **overrides: Any) -> Policy:
    data: dict[str, Any] = {
        "mode": "auto",
        "resolution_cooldown": "10m",
        "approvers": {"names": ["alice"], "groups": {"sre": ["bob", "carol"]}},
        "channels": {
            "dashboard": {"type": "dashboard"},
            "pager": {"type": "webhook", "url": f"{receiver_url}/pager"},
            "chat": {"type": "slack", "url": f"{receiver_url}/chat"},
        },
        "escalation": {
            "P0": [{"after": "0s", "notify": ["pager"]}],
            "P1": [
                {"after": "5m", "notify": ["pager"]},
                {"after": "2h", "notify": ["pager", "chat"]},
                {"after": "0s", "notify": ["chat"], "when": "failed"},
            ],
            "P3": [{"after": "0s", "notify": ["dashboard"]}, {"after": "0s", "notify": ["chat"], "when": "failed"}],
        },
        "runbooks": [
            {
                "name": "restart-crashlooping",
                "match": {"alertname": ["KubePodCrashLooping"]},
                "steps": [{"action": "restart_deployment"}],
                "verify": {"rollout": True, "hold_for": "300ms", "timeout": "5s"},
                "retry_cooldown": "1m",
                "max_attempts": 2,
            },
            {
                "name": "scale-on-lag",
                "match": {"alertname": ["KafkaConsumerLagHigh"]},
                "target": {"deployment_label": "consumergroup"},
                "steps": [{"action": "scale_deployment", "params": {"factor": 2}}],
                "verify": {"rollout": True, "hold_for": "300ms", "timeout": "5s"},
            },
        ],
    }
    data.update(overrides)
    return parse_policy(data, "test-policy")
