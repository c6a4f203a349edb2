"""Prometheus and Alertmanager for `zerotouch up --sandbox`: the loop from a fault to an alert to a fix.

Prometheus scrapes the sandbox as kube-prometheus scrapes a cluster, evaluates the stock
kube-prometheus rules (shortened for the demo) and the shipped zerotouch rules as they are;
Alertmanager sends every alert to the relay. Files, data and logs live in the state dir.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from embedded.monitoring import Alertmanager, Prometheus, binary
from embedded.scrape import ScrapeJob, sandbox_jobs, served_exporters
from embedded.stock_rules import stock_groups, write_rule_file

SHIPPED_RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "rules"
SHIPPED_RULE_FILES = ("zerotouch.rules.yml", "zerotouch-schedules.rules.yml", "zerotouch-backups.rules.yml")

# The demo's stock rules: an alert fires once its condition has held for DEMO_HOLD, and range
# windows of hours shrink to DEMO_WINDOW, so a fault injected by hand alerts within a minute.
DEMO_HOLD = "30s"
DEMO_WINDOW = "1m"
SCRAPE_INTERVAL = "5s"
GROUP_BY = ["namespace"]  # as kube-prometheus's Alertmanager ships it
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager"


def monitoring_installed() -> bool:
    """Whether Debian's Prometheus and Alertmanager are installed."""
    try:
        binary("prometheus")
        binary("prometheus-alertmanager")
    except FileNotFoundError:
        return False
    return True


class SandboxMonitoring:
    """Prometheus and Alertmanager of one `zerotouch up --sandbox`; `stop()` ends whichever started."""

    def __init__(self, workdir: Path, *, sandbox_url: str, relay_url: str, token_file: Path,
                 hold: str = DEMO_HOLD, window: str = DEMO_WINDOW, interval: str = SCRAPE_INTERVAL) -> None:
        self.workdir = workdir
        self.hold, self.window, self.interval = hold, window, interval
        self.sandbox_url = sandbox_url
        self.relay_url = relay_url
        self.token_file = token_file
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None

    def scrape_jobs(self) -> list[ScrapeJob]:
        target = self.sandbox_url.removeprefix("http://")
        relay = ScrapeJob("zerotouch-relay", [self.relay_url.removeprefix("http://")])  # zerotouch_schedule_*
        return [*sandbox_jobs(target, served_exporters(self.sandbox_url)), relay]

    def start(self) -> None:
        """Start Alertmanager, then Prometheus; on failure stop what already runs and raise."""
        try:
            self.alertmanager = Alertmanager(self.workdir, self.relay_url, self.token_file, group_by=GROUP_BY,
                                             group_wait="1s", group_interval=self.interval, cluster=False)
            stock = write_rule_file(self.workdir / "kube-prometheus.rules.yml", hold=self.hold, window=self.window,
                                    interval=self.interval)
            rule_files = [stock, *self._shipped_rules()]
            self.prometheus = Prometheus(self.workdir, [], rule_files, self.alertmanager.url.removeprefix("http://"),
                                         jobs=self.scrape_jobs(), interval=self.interval, resend_delay=self.interval)
        except BaseException:
            self.stop()
            raise

    def _shipped_rules(self) -> list[Path]:
        """The shipped rule files without the alerts kube-prometheus already defines.

        deploy/prometheus/rules/ also serves clusters without kube-prometheus, so it defines
        KubePodCrashLooping and KubeDeploymentReplicasMismatch too; loaded next to the stock rules,
        every crash loop would alert twice.
        """
        stock = {rule["alert"] for group in stock_groups() for rule in group["rules"] if "alert" in rule}
        files = []
        for name in SHIPPED_RULE_FILES:
            document = yaml.safe_load((SHIPPED_RULES / name).read_text(encoding="utf-8"))
            for group in document["groups"]:
                group["rules"] = [rule for rule in group["rules"] if rule.get("alert") not in stock]
            target = self.workdir / f"shipped-{name}"
            target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
            files.append(target)
        return files

    @property
    def prometheus_url(self) -> str | None:
        return self.prometheus.url if self.prometheus else None

    @property
    def alertmanager_url(self) -> str | None:
        return self.alertmanager.url if self.alertmanager else None

    def stop(self) -> None:
        """Prometheus first, so no alert is sent to an Alertmanager that is going away."""
        for process in (self.prometheus, self.alertmanager):
            if process is not None:
                process.stop()
        self.prometheus = self.alertmanager = None

    def banner(self) -> list[str]:
        return [
            f"  prometheus      {self.prometheus_url}   (stock kube-prometheus rules with for: {self.hold} and "
            f"{self.window} windows for the demo, plus deploy/prometheus/rules/)",
            f"  alertmanager    {self.alertmanager_url}   (group_by {GROUP_BY}, every alert to the relay)",
        ]
