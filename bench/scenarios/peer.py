"""Scenario 4: the same webhook → PATCH path through Event-Driven Ansible's `ansible-rulebook`, interleaved.

ansible-rulebook ships the `eda.builtin.webhook` source itself (no `ansible.eda` collection
needed, so no local source plugin either). Its rule runs `ansible.builtin.uri` through
`run_module` (ansible-core, started by ansible-runner per action, as EDA does) with the PATCH
`kubectl rollout restart` sends: the pod template's `restartedAt` annotation.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path

import httpx
import yaml

from bench.alerts import RESTART_ALERT, labels_for, webhook
from bench.procs import Child
from bench.report import Goal, Section
from bench.scenarios.latency import sample
from bench.stack import zerotouch_stack
from bench.stats import median, ms, spread
from zerotouch.ports import free_port

NAMESPACE = "bench-peer"


def rulebook(port: int, sandbox_url: str) -> list[dict[str, object]]:
    alert = "event.payload.alerts[0].labels"
    return [{
        "name": "zerotouch benchmark peer: restart on alert",
        "hosts": "all",
        "sources": [{"eda.builtin.webhook": {"host": "127.0.0.1", "port": port}}],
        "rules": [{
            "name": "restart the alerting deployment",
            "condition": f'event.payload.alerts[0].labels.alertname == "{RESTART_ALERT}"',
            "action": {"run_module": {
                "name": "ansible.builtin.uri",
                "module_args": {
                    "url": f"{sandbox_url}/apis/apps/v1/namespaces/{{{{ {alert}.namespace }}}}"
                           f"/deployments/{{{{ {alert}.deployment }}}}",
                    "method": "PATCH",
                    "headers": {"Content-Type": "application/strategic-merge-patch+json"},
                    "body_format": "json",
                    "body": {"spec": {"template": {"metadata": {"annotations": {
                        "kubectl.kubernetes.io/restartedAt": "{{ event.meta.received_at }}"}}}}},
                    "status_code": [200],
                },
            }},
        }],
    }]


def start_rulebook(workdir: Path, sandbox_url: str) -> tuple[Child, str]:
    executable = shutil.which("ansible-rulebook")
    if executable is None:
        raise RuntimeError("ansible-rulebook is not installed: pip install -e '.[bench]' ansible-core")
    if shutil.which("ansible-playbook") is None:
        raise RuntimeError("ansible-core is not installed (run_module needs it): pip install ansible-core")
    port = free_port()
    rules = workdir / "rulebook.yml"
    rules.write_text(yaml.safe_dump(rulebook(port, sandbox_url), sort_keys=False))
    inventory = workdir / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    child = Child("ansible-rulebook", [executable, "--rulebook", str(rules), "--inventory", str(inventory)], workdir,
                  {"ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1"})
    child.wait_port(port, timeout=120.0)
    return child, f"http://127.0.0.1:{port}/endpoint"




async def run(workdir: Path, policy_path: Path, *, quick: bool) -> Section:
    runs = 3 if quick else 20
    zt_names = [f"zt{i}" for i in range(runs + 1)]
    eda_names = [f"eda{i}" for i in range(runs + 1)]
    zerotouch: list[float] = []
    eda: list[float] = []
    async with zerotouch_stack(workdir, policy_path=policy_path) as stack:
        await stack.create_deployments(NAMESPACE, zt_names + eda_names)
        peer, peer_url = start_rulebook(workdir, stack.sandbox_url)
        stack.children.append(peer)
        try:
            async with httpx.AsyncClient(timeout=60.0) as http:

                async def eda_sample(name: str) -> float:
                    body = webhook(labels_for(RESTART_ALERT, NAMESPACE, name))
                    sent = time.time()
                    response = await http.post(peer_url, content=body, headers={"Content-Type": "application/json"})
                    if response.status_code != 200:
                        raise RuntimeError(f"ansible-rulebook answered {response.status_code}: {response.text}")
                    action = await stack.wait_action(NAMESPACE, name, timeout=120.0)
                    return float(action["timestamp"]) - sent

                # One unmeasured run each: the first action of both pays for imports and caches.
                await eda_sample(eda_names[-1])
                await sample(stack, http, NAMESPACE, zt_names[-1])
                for i in range(runs):
                    order = ("zerotouch", "eda") if i % 2 == 0 else ("eda", "zerotouch")
                    for who in order:
                        if who == "eda":
                            eda.append(await eda_sample(eda_names[i]))
                        else:
                            zerotouch.append((await sample(stack, http, NAMESPACE, zt_names[i]))[0])
                        await asyncio.sleep(0.5)
        finally:
            peer.stop()
    ratio = median(eda) / median(zerotouch)
    return Section(
        title="4. Peer: Event-Driven Ansible, side by side",
        how=(f"{runs} alerts to each, alternating which goes first, one fresh deployment per alert, both acting on "
             "the same sandbox: zerotouch through relay → workflow → Governor → activity; ansible-rulebook through "
             "its built-in `eda.builtin.webhook` source and a rule whose `run_module` action runs "
             "`ansible.builtin.uri` with a strategic-merge PATCH of the pod template's `restartedAt` annotation "
             "(what `kubectl rollout restart` sends). Timed from just before the webhook is sent until the sandbox "
             "receives the PATCH. zerotouch also reads the deployment first and records a durable grant; the EDA "
             "rule has no cooldown, no dedup, no approval and no audit trail."),
        table=[["", "alert → PATCH median (min-max)"],
               ["zerotouch", spread([v * 1000 for v in zerotouch], 0, " ms")],
               ["ansible-rulebook (run_module uri)", spread([v * 1000 for v in eda], 0, " ms")],
               ["ratio EDA / zerotouch (medians)", f"{ratio:.1f}x"]],
        goals=[Goal("peer latency ratio (no bar)", None,
                    f"EDA {ms(median(eda))} vs zerotouch {ms(median(zerotouch))}: {ratio:.1f}x")],
        notes=["No local source plugin was needed: ansible-rulebook "
               "ships `eda.builtin.webhook`. Its `run_module` needs ansible-core (not in ansible-rulebook's own "
               "dependencies): `.ci/run` installs it."],
        data={"zerotouch": zerotouch, "eda": eda},
    )
