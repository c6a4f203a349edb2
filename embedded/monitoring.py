"""Debian's real Prometheus and Alertmanager, run in the foreground on free loopback ports."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from zerotouch.ports import free_port


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not found:
        raise FileNotFoundError(f"{name} is not installed (Debian: apt-get install prometheus prometheus-alertmanager)")
    return found


def fast_rules(source: Path, target: Path, hold: str = "1s") -> Path:
    """The shipped rules with every `for:` shortened, so a test sees alerts within seconds."""
    document = yaml.safe_load(source.read_text())
    for group in document["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = hold
            if "expr" in rule:
                # Range windows sized for production scrape intervals shrink to a few seconds.
                rule["expr"] = re.sub(r"\[(\d+)m\]", "[10s]", str(rule["expr"]))
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def alertmanager_config(relay_url: str, token_file: Path, *, group_by: list[str], group_wait: str = "0s",
                        group_interval: str = "1s") -> dict[str, Any]:
    """Alertmanager routing every alert to the relay with its token, grouped and flushed as given."""
    return {
        "route": {
            "receiver": "zerotouch",
            "group_by": group_by,
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": "1h",
        },
        "receivers": [{
            "name": "zerotouch",
            "webhook_configs": [{
                "url": f"{relay_url}/alertmanager",
                "send_resolved": True,
                "max_alerts": 0,  # every alert of a group in one webhook
                "http_config": {"authorization": {"credentials_file": str(token_file)}},
            }],
        }],
    }


class _Process:
    def __init__(self, command: list[str], log: Path) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"process exited with {self.process.returncode}; log: {self._log.name}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{url} not ready in {timeout}s; log: {self._log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Alertmanager(_Process):
    def __init__(self, workdir: Path, relay_url: str, token_file: Path) -> None:
        self.port, cluster_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = alertmanager_config(relay_url, token_file, group_by=["alertname", "namespace", "deployment"])
        config_file = workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        (workdir / "am-data").mkdir(exist_ok=True)
        super().__init__([
            binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--cluster.listen-address=127.0.0.1:{cluster_port}",
            f"--cluster.advertise-address=127.0.0.1:{cluster_port}",
        ], workdir / "alertmanager.log")
        self.wait_ready(f"{self.url}/-/ready")


class Prometheus(_Process):
    def __init__(self, workdir: Path, scrape_targets: list[str], rule_file: Path, alertmanager: str,
                 extra_jobs: dict[str, list[str]] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rule_file)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
            "scrape_configs": [{"job_name": "sandbox", "static_configs": [{"targets": scrape_targets}]}] + [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in (extra_jobs or {}).items()
            ],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        super().__init__([
            binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ], workdir / "prometheus.log")
        self.wait_ready(f"{self.url}/-/ready")
