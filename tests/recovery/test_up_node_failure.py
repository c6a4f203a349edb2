"""The README's node recovery walkthrough on `zerotouch up --sandbox`: a node fails and is put back in service.

As a user would: a copy of the shipped policy with the README's `recovery.nodes` block appended, `up --sandbox`,
fail sandbox-node-2 through the sandbox's route, `zerotouch recovery plan node`, send the relay what
Alertmanager would (KubeNodeNotReady with a `node` label, twice: the repeat joins the one recovery), and
follow `zerotouch recovery show --json`. While the provider reboots sandbox-node-2 (the policy's
`provider_delay` keeps that window open) sandbox-node-3 fails too: its plan says the capacity budget refuses,
and `zerotouch recovery start node` ends refused with an incident, sandbox-node-3 never cordoned.
Then sandbox-node-2 is Ready and schedulable, the shop's pods run elsewhere, `recovery list` shows it all.
kubectl is the stock binary with an empty kubeconfig; a missing kubectl fails the test.
The state dir is made with mkdtemp under /tmp: as root the demo database runs as `nobody`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from embedded.statedir import StateDir
from tests.backups.test_up_demo import POLICY, processes_in
from tests.rotation.test_up_demo_rotation import Up, zerotouch
from zerotouch.node_recovery_models import OWNER_ANNOTATION
from zerotouch.policy import load_policy

NODE, SECOND = "sandbox-node-2", "sandbox-node-3"
WORKFLOW_ID, SECOND_ID = f"zerotouch-recovery-node-{NODE}", f"zerotouch-recovery-node-{SECOND}"
PROVIDER_WITHIN, RECOVERED_WITHIN = 60.0, 90.0  # seconds; on an idle machine about 3 s and 25 s
# The README's `cat >> my-policy.yaml <<'EOF'` block, verbatim.
RECOVERY_BLOCK = """\
recovery:
  nodes:
    provider: sandbox        # the sandbox reboots the node; `none` (the default) escalates to a person
    provider_delay: 20s      # how long the node takes to come back: time to try the capacity budget below
"""
FAIL = '{"mode": "NotReady"}'  # the README's `curl -d`
# The README's `curl -d` to the relay, verbatim (line breaks included: they are inside the quotes).
ALERT = """{"version": "4", "groupKey": "{}:{alertname=\\"KubeNodeNotReady\\"}",
  "status": "firing", "receiver": "zerotouch", "alerts": [{"status": "firing", "startsAt": "2026-01-01T00:00:00Z",
  "labels": {"alertname": "KubeNodeNotReady", "node": "sandbox-node-2", "severity": "warning"}}]}"""
PODS_COLUMNS = "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName"
T = TypeVar("T")


def my_policy(path: Path) -> Path:
    """The README's `cp deploy/policy/zerotouch.yaml my-policy.yaml` and `cat >> my-policy.yaml <<'EOF' ... EOF`."""
    shipped = POLICY.read_text()
    assert shipped.endswith("\n") and "recovery" not in yaml.safe_load(shipped), "appending would not be valid"
    path.write_text(shipped + RECOVERY_BLOCK)
    nodes = load_policy(path).recovery.nodes
    assert (nodes.provider, nodes.provider_delay.total_seconds(), nodes.max_concurrent_node_actions) == \
        ("sandbox", 20.0, 1)
    return path


class Kubectl:
    """The stock kubectl as the README runs it (`--server=`), with no user configuration in play."""

    def __init__(self, server: str, directory: Path) -> None:
        found = shutil.which("kubectl")
        if found is None:
            pytest.fail("kubectl is not installed; .ci/run installs it (apt-get install kubernetes-client)")
        self.command = [found, f"--server={server}"]
        (directory / "kubeconfig").write_text("")
        self.environment = {**os.environ, "KUBECONFIG": str(directory / "kubeconfig")}

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.command, *args], env=self.environment, capture_output=True, text=True,
                              timeout=30, check=False)
        assert done.returncode == 0, f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        return done.stdout

    def node_status(self, node: str) -> str:
        found = re.search(rf"^{node}\s+(\S+)\s", self("get", "nodes"), re.MULTILINE)
        assert found, f"kubectl get nodes does not list {node}"
        return found.group(1)

    def shop_pods(self) -> dict[str, str]:
        """{pod: node} from the README's `kubectl get pods -n shop -o custom-columns=...`."""
        lines = self("get", "pods", "-n", "shop", "-o", PODS_COLUMNS).splitlines()
        assert lines[0].split() == ["NAME", "NODE"], lines
        return {name: node for name, node in (line.split() for line in lines[1:])}


def fail_node(sandbox: str, node: str) -> dict[str, Any]:
    """The README's `curl -s -X POST 127.0.0.1:6443/sandbox/v1/nodes/NODE/fail -d '{"mode": "NotReady"}'`."""
    answer = httpx.post(f"{sandbox}/sandbox/v1/nodes/{node}/fail", content=FAIL, timeout=10,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # what curl -d sends
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def node_state(sandbox: str, node: str) -> dict[str, Any]:
    """The README's `curl -s 127.0.0.1:6443/sandbox/v1/nodes/NODE`."""
    state: dict[str, Any] = httpx.get(f"{sandbox}/sandbox/v1/nodes/{node}", timeout=10).json()
    return state


def send_alert(state_dir: Path) -> dict[str, Any]:
    """The README's curl to the relay: the token from the state dir's relay-token file, the body verbatim."""
    relay, token = StateDir(state_dir).endpoints()["relay"], (state_dir / "relay-token").read_text().strip()
    answer = httpx.post(f"{relay}/alertmanager", content=ALERT, timeout=30,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def shown(state_dir: Path, target: str) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(zerotouch(state_dir, "recovery", "show", target, "--json"))
    return row


def steps(row: dict[str, Any]) -> list[str]:
    return [event["step"] for event in (row["status"] or {}).get("timeline", []) if event["outcome"] == "ok"]


def until(what: str, probe: Callable[[], T | None], up: Up, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert up.process.poll() is None, f"`up` exited while waiting for {what}:\n{up.output()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s:\n{up.output()[-3000:]}"
        time.sleep(0.3)
    return found


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="zt-up-nodes-"))
    try:
        yield path
    finally:
        for line in processes_in(path):  # never leave a server behind, even when the test failed
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def test_a_failed_node_is_drained_rebooted_and_back_in_service_and_a_second_failure_is_refused(
        state_dir: Path, tmp_path: Path) -> None:
    policy = my_policy(tmp_path / "my-policy.yaml")
    up = Up(state_dir, tmp_path / "up.log", policy)
    try:
        assert up.banner_line("  policy ").endswith(str(policy)), up.output()[-3000:]
        kubectl = Kubectl(up.sandbox, tmp_path)
        before = kubectl.shop_pods()
        assert NODE in before.values(), f"the demo shop runs pods on {NODE}: {before}"

        assert (fail_node(up.sandbox, NODE)["ready"], kubectl.node_status(NODE)) == ("False", "NotReady")
        planned = zerotouch(state_dir, "recovery", "plan", "node", NODE)
        assert re.search(r"^stage +planned$", planned, re.MULTILINE), planned
        assert "evict shop/" in planned and f"ask the sandbox provider to reboot {NODE}" in planned
        assert f"cordon {NODE} ({OWNER_ANNOTATION}={WORKFLOW_ID})" in planned, "the owner the real run writes"
        assert "PDB web allows" in planned, "the plan shows each PodDisruptionBudget's headroom"
        assert f"capacity budget allows: node {NODE} may be cordoned: 2 schedulable node(s) remain, at least 2 " \
               "required" in planned, planned
        assert kubectl.node_status(NODE) == "NotReady", "a plan changes nothing"

        answered = {"accepted": 1, "incidents": [WORKFLOW_ID], "heartbeats": 0}
        assert send_alert(state_dir) == answered
        assert send_alert(state_dir) == answered  # Alertmanager repeats a group: the repeat joins the one recovery

        def at_provider() -> dict[str, Any] | None:
            row = shown(state_dir, NODE)  # by its node: the newest recovery of it (visibility lags a moment)
            return row if row["workflow_id"] == WORKFLOW_ID and "provider" in steps(row) else None

        row = until(f"{NODE}'s recovery waiting for the provider", at_provider, up, PROVIDER_WITHIN)
        assert steps(row) == ["started", "grant", "lease", "cordon", "drain", "reschedule", "provider"], row

        # The capacity budget, while the provider reboots sandbox-node-2 (for provider_delay): a second node fails.
        # Only what must happen inside that window does: the lease's refusal below names sandbox-node-2's.
        fail_node(up.sandbox, SECOND)
        second_plan = zerotouch(state_dir, "recovery", "plan", "node", SECOND)
        assert f"capacity budget refuses: 1 node action(s) already under way ({NODE})" in second_plan, second_plan
        assert f"started {SECOND_ID}" in zerotouch(state_dir, "recovery", "start", "node", SECOND,
                                                    "--reason", "kubelet down")
        assert f"node lease {NODE} held by {WORKFLOW_ID}" in zerotouch(state_dir, "governor")
        assert kubectl.node_status(NODE) == "NotReady,SchedulingDisabled"
        refused = until(f"{SECOND}'s recovery to end", lambda: (r := shown(state_dir, SECOND))["workflow_id"] ==
                        SECOND_ID and r["execution"] != "running" and r, up, RECOVERED_WITHIN)
        assert refused["stage"] == "refused", refused
        assert "cordon" not in steps(refused) and "lease" not in steps(refused), refused
        assert refused["status"]["outcome"] == (f"capacity budget: 1 node action(s) already under way ({NODE}); "
                                                "the policy allows 1 at once")
        incident = refused["status"]["incident_id"]
        assert "ZerotouchNodeRecoveryEscalated" in incident
        assert re.search(rf"^{re.escape(incident)}\s+escalated\s", zerotouch(state_dir, "incidents"), re.MULTILINE)
        assert NODE not in kubectl.shop_pods().values(), "the drain moved every shop pod off the node"

        def recovered() -> dict[str, Any] | None:
            row = shown(state_dir, NODE)
            return row if row["execution"] != "running" else None

        row = until(f"{NODE} recovered", recovered, up, RECOVERED_WITHIN)
        assert (row["workflow_id"], row["stage"]) == (WORKFLOW_ID, "recovered"), row
        assert steps(row) == ["started", "grant", "lease", "cordon", "drain", "reschedule", "provider", "ready",
                              "uncordon", "lease"], row
        assert node_state(up.sandbox, NODE) == {"name": NODE, "ready": "True", "unschedulable": False,
                                                "fault": None, "provider": None}
        assert kubectl.node_status(NODE) == "Ready"
        after = kubectl.shop_pods()
        assert NODE not in after.values() and len(after) == len(before), (before, after)

        # sandbox-node-3 was never touched: not cordoned, no owner written on it.
        assert node_state(up.sandbox, SECOND)["unschedulable"] is False
        third = json.loads(kubectl("get", "node", SECOND, "-o", "json"))
        assert not third["spec"].get("unschedulable") and OWNER_ANNOTATION not in third["metadata"].get(
            "annotations", {})
        assert kubectl.node_status(SECOND) == "NotReady"

        listed = zerotouch(state_dir, "recovery", "list")
        assert re.search(rf"^{WORKFLOW_ID} +node +{NODE} +recovered ", listed, re.MULTILINE), listed
        assert re.search(rf"^{SECOND_ID} +node +{SECOND} +refused ", listed, re.MULTILINE), listed
        assert len(re.findall(rf"^{WORKFLOW_ID}-plan-\S+ +node +{NODE} +planned \(dry run\)", listed,
                              re.MULTILINE)) == 1, listed
        assert len(re.findall(rf"^{WORKFLOW_ID} ", listed, re.MULTILINE)) == 1, "one recovery per node"
        shown_text = zerotouch(state_dir, "recovery", "show", NODE)
        assert re.search(r"^stage +recovered$", shown_text, re.MULTILINE), shown_text
    finally:
        code = up.stop()
    assert code == 0, up.output()[-3000:]
    assert processes_in(state_dir) == [], "`zerotouch up` left processes running after it stopped"
