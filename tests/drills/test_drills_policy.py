"""The policy's drills section: what may run where, and what each drill must declare."""

from __future__ import annotations

from typing import Any

import pytest

from zerotouch.policy import PolicyError, load_policy, parse_policy


def _drill(**fields: Any) -> dict[str, Any]:
    return {"name": "d", "fault": "crashloop", "target": "shop/web", **fields}


@pytest.mark.parametrize(("drills", "message"), [
    ({"environment": "cluster", "namespaces": ["shop"], "drills": [_drill()]}, "only delete_pod"),
    ({"environment": "cluster", "namespaces": ["other"],
      "drills": [_drill(fault="delete_pod", selector={"app": "web"})]}, "not in drills.namespaces"),
    ({"drills": [_drill(fault="delete_pod")]}, "needs a selector"),
    # Listed namespaces bound delete_pod on the sandbox too; a selector reaches the API server as a query.
    ({"namespaces": ["other"], "drills": [_drill(fault="delete_pod", selector={"app": "web"})]},
     "not in drills.namespaces"),
    ({"drills": [_drill(fault="delete_pod", selector={"app": "web,tier!=db"})]}, "label value"),
    ({"drills": [_drill(fault="delete_pod", selector={"app/x/y": "web"})]}, "label key"),
    ({"drills": [_drill(fault="watchdog_alert", expect="auto_resolved")]}, "expects no_action"),
    ({"drills": [_drill(fault="flapping_alert", expect="no_action")]}, "needs the alert"),
    ({"drills": [_drill(expect="no_action")]}, "no_action is for false-positive drills"),
    ({"drills": [_drill(target="node/worker-1")]}, "node target takes fault node_not_ready"),
    ({"drills": [_drill(target="web")]}, "namespace/name"),
    ({"drills": [_drill(), _drill()]}, "unique"),
])
def test_bad_drills_are_refused_with_the_reason(drills: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy({"drills": drills})


def test_a_real_cluster_takes_reversible_faults_in_its_namespaces() -> None:
    policy = parse_policy({"drills": {"environment": "cluster", "namespaces": ["shop"], "drills": [
        _drill(fault="delete_pod", selector={"app": "web"}),
        _drill(name="fp", fault="watchdog_alert", expect="no_action", alert={"alertname": "Watchdog"})]}})
    assert [d.name for d in policy.drills.drills] == ["d", "fp"]


def test_the_shipped_policy_declares_the_crashloop_drill_on_the_shop_demo() -> None:
    drill = load_policy("deploy/policy/zerotouch.yaml").drills.named("crashloop")
    assert (drill.fault, drill.target, drill.expect) == ("crashloop", "shop/web", "auto_resolved")
    assert drill.alert is not None and drill.alert.alertname == "KubePodCrashLooping"
