"""Debian's real Prometheus and Alertmanager, run in the foreground on free loopback ports."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from embedded.scrape import ScrapeJob
from zerotouch.ports import free_port

# What the existing callers (the e2e tests, the benchmarks) group by: one incident per target.
DEFAULT_GROUP_BY = ("alertname", "namespace", "deployment")


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
    def __init__(self, command: list[str], log: Path, ready_url: str) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.wait_ready(ready_url)
        except BaseException:
            self.stop()  # the caller never gets a handle to stop it with
            raise

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
    """Alertmanager whose only receiver is the relay's webhook, authorised by ``token_file``.

    ``cluster=False`` runs it without gossip: a lone peer would otherwise wait for the cluster to
    settle before its first notification.
    """

    def __init__(self, workdir: Path, relay_url: str, token_file: Path, *,
                 group_by: list[str] | None = None, group_wait: str = "0s", group_interval: str = "1s",
                 port: int | None = None, cluster: bool = True) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = alertmanager_config(relay_url, token_file, group_by=group_by or list(DEFAULT_GROUP_BY),
                                     group_wait=group_wait, group_interval=group_interval)
        config_file = workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        (workdir / "am-data").mkdir(exist_ok=True)
        cluster_port = free_port()
        gossip = ([f"--cluster.listen-address=127.0.0.1:{cluster_port}",
                   f"--cluster.advertise-address=127.0.0.1:{cluster_port}"] if cluster
                  else ["--cluster.listen-address="])
        super().__init__([
            binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # The externalURL its webhooks carry, where incidents confirm resolution (otherwise the
            # hostname's address, which Debian maps to 127.0.1.1 where nothing listens).
            f"--web.external-url={self.url}",
            *gossip,
        ], workdir / "alertmanager.log", f"{self.url}/-/ready")


class Prometheus(_Process):
    """Prometheus scraping ``scrape_targets`` (job `sandbox`), ``extra_jobs`` and ``jobs``, evaluating
    ``rule_file`` (one or several) every ``interval`` and alerting ``alertmanager`` (host:port).

    ``resend_delay``: how soon a firing alert is sent again. Alerts that fire before Prometheus has
    discovered its Alertmanager are lost until then (upstream default 1m).
    """

    def __init__(self, workdir: Path, scrape_targets: list[str], rule_file: Path | Sequence[Path],
                 alertmanager: str, extra_jobs: dict[str, list[str]] | None = None, *,
                 jobs: Sequence[ScrapeJob] = (), interval: str = "1s", resend_delay: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        every = [ScrapeJob("sandbox", scrape_targets)] if scrape_targets else []
        every += [ScrapeJob(job, targets) for job, targets in (extra_jobs or {}).items()]
        rule_files = [rule_file] if isinstance(rule_file, Path) else list(rule_file)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
            "scrape_configs": [job.config() for job in [*every, *jobs]],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        super().__init__([
            binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            *([f"--rules.alert.resend-delay={resend_delay}"] if resend_delay else []),
        ], workdir / "prometheus.log", f"{self.url}/-/ready")
