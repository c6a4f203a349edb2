"""The zerotouch stack as `zerotouch up` runs it, but as separate processes on free ports.

Separate processes so each one's RSS and CPU time can be read, and so the load generator
(this process) does not share a GIL with the relay or the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.alerts import RESTART_ALERT, labels_for, webhook
from bench.procs import Child
from embedded.devserver import SQLITE_PRAGMAS, dev_server_command
from zerotouch.names import ALL_QUEUES, KUBERNETES_QUEUE
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter

CLI = [sys.executable, "-c", "from cli.main import run; run()"]
# Spans are not exported (the console exporter would write each one as JSON into the logs).
CHILD_ENV = {"OTEL_TRACES_EXPORTER": "none"}


@dataclass
class Stack:
    workdir: Path
    client: Client
    temporal: Child
    sandbox: Child
    sandbox_url: str
    relay: Child | None = None
    relay_url: str = ""
    token: str = ""
    worker: Child | None = None  # the first of ``workers``
    workers: list[Child] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def journal_mode(self) -> str:
        """The dev server's SQLite journal mode as stored in its file (WAL persists; synchronous does not)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.workdir / 'temporal.db'}?mode=ro", uri=True)) as db:
            return str(db.execute("PRAGMA journal_mode").fetchone()[0])

    async def actions(self, **filters: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.get(f"{self.sandbox_url}/sandbox/v1/actions", params=filters)
            response.raise_for_status()
            found: list[dict[str, Any]] = response.json()["actions"]
            return found

    async def create_deployments(self, namespace: str, names: list[str]) -> None:
        """Healthy one-replica deployments for the scenarios to act on (one target per sample)."""
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=30.0) as http:
            response = await http.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
            if response.status_code not in (201, 409):
                raise RuntimeError(f"creating namespace {namespace}: {response.status_code} {response.text}")
            semaphore = asyncio.Semaphore(8)

            async def create(name: str) -> None:
                async with semaphore:
                    body = deployment(namespace, name)
                    response = await http.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=body)
                    if response.status_code not in (201, 409):
                        raise RuntimeError(f"creating {namespace}/{name}: {response.status_code} {response.text}")

            await asyncio.gather(*(create(name) for name in names))

    async def post_alert(self, http: httpx.AsyncClient, body: bytes) -> int:
        response = await http.post(f"{self.relay_url}/alertmanager", content=body, headers=self.headers)
        return response.status_code

    async def wait_action(self, namespace: str, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """The first restart the sandbox recorded on namespace/name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await self.actions(namespace=namespace, name=name, kind="restart")
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no restart of {namespace}/{name} within {timeout:.0f}s; see logs in {self.workdir}")


def deployment(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app", "image": "registry.local/bench/app:1.0.0",
                    "resources": {"limits": {"memory": "128Mi"}, "requests": {"memory": "64Mi"}},
                }]},
            },
        },
    }


async def _connect(temporal: Child, address: str, timeout: float = 60.0) -> Client:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not temporal.alive():
            raise RuntimeError(f"temporal dev server exited; see {temporal.log_path}")
        try:
            return await Client.connect(address, data_converter=data_converter())
        except RuntimeError as error:
            last = error
            await asyncio.sleep(0.2)
    raise RuntimeError(f"temporal dev server did not answer on {address}: {last}")


@contextlib.asynccontextmanager
async def zerotouch_stack(
    workdir: Path, *, policy_path: Path, relay: bool = True, worker: bool = True,
    prometheus_url: str | None = None, warm_up: bool = True, sandbox_tick: float = 1.0,
    split_kubernetes: bool = False, monitoring: Callable[[Stack], str] | None = None,
    extra_env: dict[str, str] | None = None, worker_cli: list[str] | None = None,
    worker_queues: Sequence[Sequence[str]] | None = None,
) -> AsyncIterator[Stack]:
    """Dev server (the embedded default's command: SQLite file, WAL, synchronous=normal), sandbox,
    relay and one worker process for all four queues; every child stopped by PID on the way out.

    The sandbox's controller loop costs CPU in proportion to its objects; with hundreds of
    deployments a 1 s tick keeps it from taking a core of this 2-core machine. The first action
    is timed when the sandbox receives the PATCH, which the tick does not delay.

    ``monitoring`` starts Prometheus and Alertmanager once the relay answers (Alertmanager sends
    to it) and returns the Prometheus URL the worker verifies with; its caller stops them.
    ``extra_env`` adds to the relay's and the worker's environment; ``worker_cli`` replaces the
    worker's `zerotouch` command (the latency investigation's tuned worker, `bench.tuned_worker`).
    ``worker_queues`` starts one worker process per entry, serving those queues (empty: all of them);
    ``split_kubernetes`` is the shape with the kubernetes queue's process apart from the rest."""
    workdir.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    try:
        port = free_port()
        address = f"127.0.0.1:{port}"
        temporal = Child("temporal", dev_server_command(db_file=workdir / "temporal.db", port=port, headless=True),
                         workdir)
        children.append(temporal)
        sandbox_port = free_port()
        sandbox = Child("sandbox", [sys.executable, "-m", "sandbox", "--port", str(sandbox_port),
                                    "--tick", str(sandbox_tick)], workdir)
        children.append(sandbox)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        client = await _connect(temporal, address)
        sandbox.wait_http(f"{sandbox_url}/version")
        stack = Stack(workdir=workdir, client=client, temporal=temporal, sandbox=sandbox, sandbox_url=sandbox_url,
                      children=children)
        env = {"TEMPORAL_ADDRESS": address, "ZEROTOUCH_LEDGER_URL": f"sqlite:///{workdir / 'ledger.db'}",
               "ZEROTOUCH_POLICY": str(policy_path), **CHILD_ENV, **(extra_env or {})}
        if prometheus_url:
            env["PROMETHEUS_URL"] = prometheus_url
        if relay:
            stack.token = secrets.token_hex(16)
            token_file = workdir / "relay-token"
            token_file.write_text(stack.token)
            relay_port = free_port()
            stack.relay = Child("relay", [*CLI, "relay", "--port", str(relay_port), "--token-file", str(token_file),
                                          "--policy", str(policy_path), "--address", address], workdir, env)
            children.append(stack.relay)
            stack.relay_url = f"http://127.0.0.1:{relay_port}"
            stack.relay.wait_http(f"{stack.relay_url}/healthz")
        if monitoring is not None:
            env["PROMETHEUS_URL"] = monitoring(stack)
        if worker:
            base = [*(worker_cli or CLI), "worker", "--kubernetes-url", sandbox_url, "--policy", str(policy_path),
                    "--address", address]
            shape = worker_queues or [()]
            if split_kubernetes:
                # The production shape: the kubernetes queue's threads in a process of their own.
                shape = [[queue for queue in ALL_QUEUES if queue != KUBERNETES_QUEUE], [KUBERNETES_QUEUE]]
            for number, queues in enumerate(shape):
                child = Child(_worker_name(number, queues), [*base, *(a for q in queues for a in ("--queue", q))],
                              workdir, env)
                children.append(child)
                stack.workers.append(child)
            stack.worker = stack.workers[0]
        if relay and worker and warm_up:
            await _warm_up(stack)
        yield stack
    finally:
        for child in reversed(children):
            child.stop()


def _worker_name(number: int, queues: Sequence[str]) -> str:
    """`worker` for the first process; the others by their queues (`worker-kubernetes`) or their number."""
    if number == 0:
        return "worker"
    return "worker-" + ("-".join(queue.removeprefix("zerotouch-") for queue in queues) or str(number + 1))


async def _warm_up(stack: Stack) -> None:
    """One incident end to end: proves the pipeline works and starts the Governor before measuring."""
    await stack.create_deployments("bench-warmup", ["warmup-0", "warmup-1"])
    async with httpx.AsyncClient(timeout=30.0) as http:
        for name in ("warmup-0", "warmup-1"):
            status = await stack.post_alert(http, webhook(labels_for(RESTART_ALERT, "bench-warmup", name)))
            if status != 200:
                raise RuntimeError(f"warm-up alert answered {status}; see {stack.workdir}")
            await stack.wait_action("bench-warmup", name, timeout=90.0)


__all__ = ["SQLITE_PRAGMAS", "Stack", "zerotouch_stack"]
