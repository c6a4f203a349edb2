"""Start/stop, persistence, the module entry point and watch streams."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from sandbox import SandboxCluster

from .conftest import wait_until


def test_start_stop_idempotent_and_port_released() -> None:
    cluster = SandboxCluster(port=0, tick_seconds=0.05)
    try:
        cluster.start()
        url = cluster.url
        cluster.start()
        assert cluster.url == url
        assert httpx.get(f"{url}/version").json()["major"] == "1"
    finally:
        cluster.stop()
        cluster.stop()
    with socket.socket() as sock:  # the port is free again
        sock.bind(("127.0.0.1", cluster.port))


def test_state_file_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    first = SandboxCluster(port=0, tick_seconds=0.05, state_file=state)
    try:
        first.start()
        httpx.patch(f"{first.url}/apis/apps/v1/namespaces/shop/deployments/web",
                    json={"spec": {"replicas": 5}},
                    headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        first.inject("crashloop", namespace="shop", deployment="checkout")
        wait_until(lambda: first.is_healthy("shop", "web"))
    finally:
        first.stop()
    assert json.loads(state.read_text())["faults"][0]["deployment"] == "checkout"
    second = SandboxCluster(port=0, tick_seconds=0.05, state_file=state)
    try:
        second.start()
        deploy = httpx.get(f"{second.url}/apis/apps/v1/namespaces/shop/deployments/web").json()
        assert deploy["spec"]["replicas"] == 5
        assert not second.is_healthy("shop", "checkout")
    finally:
        second.stop()


def test_module_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "sandbox", "--help"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0 and "--state-file" in proc.stdout and "--port" in proc.stdout


def test_watch_streams_changes(cluster: SandboxCluster) -> None:
    url = f"{cluster.url}/apis/apps/v1/namespaces/shop/deployments"
    events = []
    with httpx.stream("GET", url, params={"watch": "true", "timeoutSeconds": "2",
                                          "fieldSelector": "metadata.name=web"}) as resp:
        lines = resp.iter_lines()
        events.append(json.loads(next(lines)))
        httpx.patch(f"{url}/web", json={"spec": {"replicas": 4}},
                    headers={"Content-Type": "application/merge-patch+json"})
        for line in lines:
            events.append(json.loads(line))
            if events[-1]["object"]["spec"]["replicas"] == 4:
                break
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "web"
    assert events[-1]["type"] == "MODIFIED"
    assert {e["object"]["metadata"]["name"] for e in events} == {"web"}


def test_concurrent_clients(cluster: SandboxCluster) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def worker(i: int) -> int:
        codes = 0
        with httpx.Client(base_url=cluster.url) as http:
            for _ in range(15):
                codes += http.get("/api/v1/namespaces/shop/pods").status_code == 200
                codes += http.patch(
                    "/apis/apps/v1/namespaces/shop/deployments/checkout",
                    json={"metadata": {"labels": {f"worker-{i}": "x"}}},
                    headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
        return codes

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(worker, range(8))) == 8 * 30
    labels = httpx.get(f"{cluster.url}/apis/apps/v1/namespaces/shop/deployments/checkout"
                       ).json()["metadata"]["labels"]
    assert {f"worker-{i}" for i in range(8)} <= set(labels)
    assert len(cluster.actions(name="checkout")) == 8 * 15
