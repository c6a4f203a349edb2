"""The README's main job, as a user runs it: `zerotouch up --sandbox`, break something, fire, watch, stop, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from embedded.sandbox_monitoring import monitoring_installed
from tests.support.policies import fast_policy
from tests.support.processes import interrupt
from zerotouch.ports import free_port


def zerotouch(*args: str, state_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "ZEROTOUCH_STATE_DIR": str(state_dir)},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"zerotouch {' '.join(args)} failed: {result.stderr}")
    return result


class Up:
    def __init__(self, state_dir: Path, ports: dict[str, int], *, sandbox: bool = True,
                 env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.log = (state_dir.parent / "up.log").open("ab")
        self.policy = fast_policy(state_dir.parent / "policy.yaml")
        command = [sys.executable, "-m", "cli", "up", *(["--sandbox"] if sandbox else []),
                   "--state-dir", str(state_dir), "--policy", str(self.policy)]
        for name, port in ports.items():
            command += [f"--{name}-port", str(port)]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        deadline = time.monotonic() + 90
        while not (state_dir / "endpoints.json").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"`zerotouch up` did not come up; see {self.log.name}")
            time.sleep(0.3)

    def stop(self) -> int:
        interrupt(self.process)
        self.log.close()
        return self.process.returncode


@pytest.fixture
def ports() -> dict[str, int]:
    return {"temporal": free_port(), "ui": free_port(), "relay": free_port(), "sandbox": free_port(),
            "codec": free_port()}


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"


def incidents(state_dir: Path, *extra: str) -> list[dict[str, object]]:
    return list(json.loads(zerotouch("incidents", "--json", *extra, state_dir=state_dir).stdout))


def wait_for_incident(state_dir: Path, predicate: object, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        rows = incidents(state_dir)
        for row in rows:
            if predicate(row):  # type: ignore[operator]
                return row
        time.sleep(0.5)
    raise AssertionError(f"no matching incident in {timeout}s: {rows}")


def _metrics_until(url: str, needle: str, timeout: float = 15.0) -> str:
    """Scrape until ``needle`` shows (workflow metrics are exported once a second)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(url, timeout=5).text
        if needle in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{needle} not in {url}:\n{text}")


def test_up_sandbox_crashloop_is_restarted_once_and_state_survives_a_restart(
    state_dir: Path, ports: dict[str, int]
) -> None:
    up = Up(state_dir, ports)
    try:
        endpoints = json.loads((state_dir / "endpoints.json").read_text())
        assert endpoints["sandbox"] == f"http://127.0.0.1:{ports['sandbox']}"
        assert endpoints["codec"] == f"http://127.0.0.1:{ports['codec']}", "without its token"
        assert (state_dir / "relay-token").stat().st_mode & 0o777 == 0o600
        zerotouch("sandbox", "inject", "crashloop", "shop/web", state_dir=state_dir)
        zerotouch("fire", "KubePodCrashLooping", "--label", "namespace=shop", "--label", "deployment=web",
                  "--label", "severity=critical", state_dir=state_dir)
        row = wait_for_incident(state_dir, lambda r: r["state"] == "resolved")
        shown = json.loads(zerotouch("show", str(row["incident_id"]), "--json", state_dir=state_dir).stdout)
        assert [e["kind"] for e in shown["timeline"]][:2] == ["detected", "triage"]
        actions = json.loads(zerotouch("sandbox", "actions", state_dir=state_dir).stdout)
        restarts = [a for a in actions if a["kind"] == "restart" and a["name"] == "web"]
        assert len(restarts) == 1
        # Something no runbook covers stays open (escalated) across a restart of `up`
        # (the shortened policy closes resolved incidents after 3 s; escalated ones stay open).
        zerotouch("fire", "MysteryAlert", "--label", "namespace=shop", "--label", "deployment=checkout",
                  state_dir=state_dir)
        escalated = wait_for_incident(state_dir, lambda r: r["state"] == "escalated")
        # The resolved incident closes after the (shortened) cooldown and lands in the ledger.
        resolved_id = str(row["incident_id"])
        wait_for_incident(state_dir, lambda r: r["incident_id"] == resolved_id and not r["running"])
        assert "intact" in zerotouch("ledger", "verify", state_dir=state_dir).stdout.lower()
        postmortem = zerotouch("postmortem", resolved_id, state_dir=state_dir).stdout
        assert "## Timeline" in postmortem and "restart_deployment" in postmortem
        report = json.loads(zerotouch("report", "--json", state_dir=state_dir).stdout)
        assert report["incidents"] == 1 and report["automation_rate"] == 1.0
        # The relay's /metrics carries the embedded workers' metrics too (one process).
        closed = 'zerotouch_incidents_closed_total{handled_by="automation"'
        metrics = _metrics_until(f"{endpoints['relay']}/metrics", closed)
        assert 'zerotouch_alerts_received_total{status="firing"}' in metrics
        assert 'zerotouch_actions_total{action="restart_deployment"' in metrics
        # One trace from the webhook to the restart, written to the state dir by default.
        spans = (state_dir / "traces.log").read_text()
        assert '"name": "relay.alertmanager"' in spans and '"name": "RunActivity:restart_deployment"' in spans
    finally:
        assert up.stop() == 0
    assert not (state_dir / "endpoints.json").exists(), "endpoints are withdrawn on stop"

    again = Up(state_dir, ports)
    try:
        row = wait_for_incident(state_dir, lambda r: r["incident_id"] == escalated["incident_id"])
        assert row["state"] == "escalated" and row["running"]
        shown = zerotouch("show", str(row["incident_id"]), state_dir=state_dir).stdout
        assert "frozen" in shown and "no runbook matches" in shown
    finally:
        assert again.stop() == 0


def test_policy_check_and_schema(tmp_path: Path) -> None:
    good = zerotouch("policy", "check", "deploy/policy/zerotouch.yaml", state_dir=tmp_path)
    assert "ok" in good.stdout
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("mode: yolo\nrunbooks:\n  - name: x\n    match: {}\n    steps: []\n")
    bad = zerotouch("policy", "check", str(bad_file), state_dir=tmp_path, check=False)
    assert bad.returncode == 2
    assert f"{bad_file}: mode:" in bad.stderr and "runbooks.0.steps" in bad.stderr
    schema = json.loads(zerotouch("policy", "schema", state_dir=tmp_path).stdout)
    assert "runbooks" in schema["properties"]


def test_commands_without_a_running_up_say_so(tmp_path: Path) -> None:
    result = zerotouch("fire", "X", state_dir=tmp_path, check=False)
    assert result.returncode == 2 and "zerotouch up" in result.stderr
    result = zerotouch("sandbox", "inject", "crashloop", "shop", state_dir=tmp_path, check=False)
    assert result.returncode == 2 and "NAMESPACE/DEPLOYMENT" in result.stderr


def _processes_using(path: Path) -> dict[int, str]:
    """PID -> command line of every process whose command line names ``path`` (the test's state dir)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found[int(proc.name)] = cmdline
    return found


def _poll_json(url: str, check: object, timeout: float = 60.0) -> object:
    """GET ``url`` until ``check(json)`` is truthy; its last value explains a failure."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=5).json()
            if check(last):  # type: ignore[operator]
                return last
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.5)
    raise AssertionError(f"{url} did not satisfy {check} in {timeout}s; last answer: {last}")


def _targets_up(answer: dict[str, Any]) -> bool:
    active = answer["data"]["activeTargets"]
    return bool(active) and all(target["health"] == "up" for target in active)


def _has_rule(answer: dict[str, Any], name: str) -> bool:
    return any(rule.get("name") == name for group in answer["data"]["groups"] for rule in group["rules"])


def test_up_sandbox_runs_prometheus_with_the_stock_rules_and_alertmanager_to_the_relay(
    state_dir: Path, ports: dict[str, int]
) -> None:
    if not monitoring_installed():
        pytest.fail("Prometheus/Alertmanager are not installed; CI installs them "
                    "(apt-get install prometheus prometheus-alertmanager)")
    up = Up(state_dir, ports)
    started: dict[int, str] = {}
    try:
        endpoints = json.loads((state_dir / "endpoints.json").read_text())
        prometheus, alertmanager = endpoints["prometheus"], endpoints["alertmanager"]
        started = {pid: cmd for pid, cmd in _processes_using(state_dir.resolve()).items() if pid != up.process.pid}
        # The dev server, Prometheus and Alertmanager: their command lines name the state dir.
        assert {"prometheus", "prometheus-alertmanager"} <= {Path(cmd.split()[0]).name for cmd in started.values()}
        assert (state_dir / "prometheus.log").exists() and (state_dir / "alertmanager.log").exists()
        _poll_json(f"{prometheus}/api/v1/rules", lambda a: _has_rule(a, "KubePodCrashLooping")
                   and _has_rule(a, "Watchdog") and _has_rule(a, "ZerotouchScheduleSkippedRun"))
        targets = _poll_json(f"{prometheus}/api/v1/targets", _targets_up)
        jobs = {t["labels"]["job"]: t for t in targets["data"]["activeTargets"]}  # type: ignore[index]
        assert {"sandbox", "zerotouch-relay"} <= set(jobs)
        if "kube-state-metrics" in jobs:  # the sandbox serves per-exporter endpoints
            assert jobs["kube-state-metrics"]["labels"]["service"] == "kube-state-metrics"
            assert jobs["kube-state-metrics"]["labels"]["endpoint"] == "https-main"
        # Watchdog always fires: Prometheus evaluates the stock rules and sends to Alertmanager.
        _poll_json(f"{alertmanager}/api/v2/alerts?filter=alertname%3D%22Watchdog%22", bool)
        config = yaml.safe_load(httpx.get(f"{alertmanager}/api/v2/status", timeout=5).json()["config"]["original"])
        assert config["route"]["group_by"] == ["namespace"]
        (hook,) = config["receivers"][0]["webhook_configs"]
        assert hook["url"] == f"{endpoints['relay']}/alertmanager" and hook["send_resolved"] is True
        assert Path(hook["http_config"]["authorization"]["credentials_file"]).read_text().strip() == \
            (state_dir / "relay-token").read_text().strip()
    finally:
        code = up.stop()
        leftover = [pid for pid in started if Path(f"/proc/{pid}").exists()]
        for pid in leftover:  # only the ones this test's `up` started, by PID
            os.kill(pid, signal.SIGKILL)
    assert code == 0
    assert not leftover, f"still running after `up` stopped: {[started[pid] for pid in leftover]}"


@pytest.mark.parametrize(("sandbox", "monitoring", "says"), [
    (True, True, "apt-get install prometheus prometheus-alertmanager"),
    (True, False, "--no-monitoring"),
    (False, True, None),  # nothing to scrape, nothing to say
])
def test_up_says_in_one_line_why_promql_verification_is_off(sandbox: bool, monitoring: bool,
                                                            says: str | None) -> None:
    from embedded.up import EmbeddedOptions, _monitoring_off

    lines = _monitoring_off(EmbeddedOptions(sandbox=sandbox, monitoring=monitoring))
    if says is None:
        assert lines == []
    else:
        (line,) = lines
        assert says in line and "PromQL verification is off" in line


def test_up_without_kubernetes_or_prometheus_says_what_works_and_what_each_missing_piece_disables(
    tmp_path: Path, state_dir: Path, ports: dict[str, int]
) -> None:
    from zerotouch.doctor import DoctorReport, render


    # No kubeconfig, no in-cluster credentials, a Prometheus URL nothing answers on, no channel secrets.
    env = {"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": "",
           "PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}", "ZEROTOUCH_SLACK_WEBHOOK_URL": "",
           "ZEROTOUCH_PAGERDUTY_ROUTING_KEY": "", "ZEROTOUCH_PG_MAIN_DSN": ""}
    up = Up(state_dir, {name: port for name, port in ports.items() if name != "sandbox"}, sandbox=False, env=env)
    try:
        banner = _log_until(tmp_path / "up.log", "Ctrl-C stops everything.")
        assert "What works here (`zerotouch doctor` checks again):" in banner
        assert "zerotouch-kubernetes off" in banner, "the workers that can run still run"
        assert "  missing  Kubernetes API" in banner
        assert "→ remediation actions (restart, scale, rollback" in banner
        assert "  FAILING  Prometheus" in banner and "remediation ends escalated to a human" in banner
        assert "  missing  channel slack" in banner and "PostgreSQL demo" in banner
        # `zerotouch doctor` later says the same, line for line; only the demo database's connection is
        # `up`'s own (it hands the DSN to its in-process workers, not to other shells).
        doctor = subprocess.run([sys.executable, "-m", "cli", "doctor", "--json", "--policy", str(up.policy),
                                 "--state-dir", str(state_dir)], capture_output=True, text=True, timeout=60,
                                env={**os.environ, **env})
        assert doctor.returncode == 1, "a configured Prometheus that does not answer is failing"
        report = DoctorReport.model_validate(json.loads(doctor.stdout))
        lines = render(report, indent="  ")
        demo = [i for i, check in enumerate(report.checks) if check.name == "PostgreSQL demo"]
        for line in lines:
            if not any(report.checks[i].detail in line or report.checks[i].disables in line for i in demo):
                assert line in banner, line
    finally:
        assert up.stop() == 0


def _log_until(log: Path, needle: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while needle not in (text := log.read_text(errors="replace")):
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not in {log} after {timeout}s:\n{text[-3000:]}")
        time.sleep(0.2)
    return text
