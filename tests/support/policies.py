"""The shipped policy with production waits shortened, for tests that run the real thing."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from zerotouch.policy import load_policy

REPO = Path(__file__).resolve().parents[2]


def fast_policy(target: Path, *, target_cooldown: str = "2s") -> Path:
    """The shipped policy with production waits shortened to seconds; everything else as shipped.

    A test where several alerts name one workload keeps a long ``target_cooldown``: that guardrail is
    what keeps their incidents to one action.
    """
    document = yaml.safe_load((REPO / "deploy/policy/zerotouch.yaml").read_text())
    document["resolution_cooldown"] = "3s"
    document["guardrails"]["target_cooldown"] = target_cooldown
    document["escalation"] = {}
    for runbook in document["runbooks"]:
        runbook["retry_cooldown"] = "1s"
        verify = runbook.setdefault("verify", {})
        verify.update({"hold_for": "2s", "timeout": "12s"})
        if verify.get("promql"):
            verify["promql"] = re.sub(r"\[(\d+)m\]", "[10s]", verify["promql"])
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(target)
    return target
