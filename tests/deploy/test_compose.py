"""docker-compose.yml and the Dockerfile, checked without a Docker engine (temporal-setup runs on a dev server)."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import pytest

from cli.main import CommandLineParser as build_parser
from tests.deploy.conftest import REPO
from zerotouch.binaries import temporal_cli
from zerotouch.names import ALL_QUEUES, SEARCH_ATTRIBUTES
from zerotouch.ports import free_port

REQUIRED = {"postgresql", "temporal-schema", "temporal", "temporal-setup", "temporal-ui", "codec-server", "prometheus",
            "alertmanager", "relay"}


def _zerotouch_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [str(a) for a in service["command"]] for name, service in compose["services"].items()
            if isinstance(service.get("command"), list) and service["command"][0] == "zerotouch"}


def test_the_stack_has_every_component(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= REQUIRED


def test_commands_follow_the_cli_contract(compose: dict[str, Any]) -> None:
    commands = _zerotouch_commands(compose)
    assert commands, "no service runs zerotouch"
    for service, argv in commands.items():
        assert argv[1] in ("relay", "worker", "codec-server"), f"{service}: unexpected subcommand {argv[1]!r}"
        try:
            build_parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{service}: `{' '.join(argv)}` is rejected by the zerotouch CLI")


def test_one_worker_per_task_queue(compose: dict[str, Any]) -> None:
    queues = []
    for argv in _zerotouch_commands(compose).values():
        if argv[1] == "worker":
            args = build_parser().parse_args(argv[1:])
            assert args.queue and len(args.queue) == 1
            queues.extend(args.queue)
    assert sorted(queues) == sorted(ALL_QUEUES)


def test_zerotouch_services_share_the_environment_contract(compose: dict[str, Any]) -> None:
    for service in _zerotouch_commands(compose):
        env = compose["services"][service]["environment"]
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233", service
        assert env["ZEROTOUCH_POLICY"] == "/etc/zerotouch/zerotouch.yaml", service
        assert env["PROMETHEUS_URL"] == "http://prometheus:9090", service
        assert "./deploy/policy:/etc/zerotouch:ro" in compose["services"][service]["volumes"], service


def test_every_zerotouch_process_encrypts_payloads_and_serves_metrics(compose: dict[str, Any]) -> None:
    # A process without the keys would write plaintext into history (or fail to read it).
    for service in _zerotouch_commands(compose):
        definition = compose["services"][service]
        assert definition["environment"]["ZEROTOUCH_CODEC_KEYS_FILE"] == "/run/secrets/codec-keys", service
        assert "codec-keys" in definition["secrets"], service
        if definition["command"][1] == "worker":
            assert definition["environment"]["ZEROTOUCH_METRICS_PORT"] == "9464", service
            assert definition["environment"]["ZEROTOUCH_METRICS_HOST"] == "0.0.0.0", service
    assert compose["secrets"]["codec-keys"]["file"] == "./secrets/codec-keys"


def test_temporal_persists_in_postgresql(compose: dict[str, Any]) -> None:
    services = compose["services"]
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/server:")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["environment"]["POSTGRES_USER"] == services["postgresql"]["environment"]["POSTGRES_USER"]
    sql = services["temporal-schema"]["environment"]
    assert (sql["SQL_HOST"], sql["SQL_USER"], sql["SQL_PASSWORD"]) == (
        "postgresql", "temporal", temporal["environment"]["POSTGRES_PWD"])
    # The zerotouch processes start once the namespace and search attributes exist.
    for service in _zerotouch_commands(compose):
        if services[service]["command"][1] != "codec-server":
            assert services[service]["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    assert "8233:8080" in compose["services"]["temporal-ui"]["ports"]


def test_relay_token_reaches_relay_and_alertmanager_as_a_secret(compose: dict[str, Any]) -> None:
    import yaml

    services = compose["services"]
    assert "relay-token" in services["relay"]["secrets"] and "relay-token" in services["alertmanager"]["secrets"]
    assert compose["secrets"]["relay-token"]["file"] == "./secrets/relay-token"
    relay = _zerotouch_commands(compose)["relay"]
    assert relay[relay.index("--token-file") + 1] == "/run/secrets/relay-token"
    am = yaml.safe_load((REPO / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    hook = next(r for r in am["receivers"] if r["name"] == "zerotouch")["webhook_configs"][0]
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/secrets/relay-token"


def test_prometheus_and_alertmanager_mount_the_shipped_configs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in services["alertmanager"]["volumes"]


def test_dockerfile_installs_the_package_on_python_311_slim() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip wheel" in dockerfile or "pip install" in dockerfile
    assert "USER 10001" in dockerfile


def _script(compose: dict[str, Any], service: str) -> str:
    """A one-shot service's shell script as the container's shell gets it (compose turns `$$` into `$`)."""
    return str(compose["services"][service]["command"][0]).replace("$$", "$")


@pytest.mark.parametrize("service", ["temporal-schema", "temporal-setup"])
def test_setup_scripts_are_valid_shell(compose: dict[str, Any], service: str) -> None:
    result = subprocess.run(["sh", "-n", "-c", _script(compose, service)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_temporal_setup_registers_namespace_and_search_attributes_and_can_run_again(compose: dict[str, Any]) -> None:
    """The script against the server version the tests run (a dev server here, PostgreSQL in compose)."""
    port = free_port()
    server = subprocess.Popen([temporal_cli(), "server", "start-dev", "--headless", "--port", str(port),
                               "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    try:
        for _ in range(2):
            result = subprocess.run(["sh", "-c", _script(compose, "temporal-setup")], env=env, capture_output=True,
                                    text=True, timeout=60, check=False)
            assert result.returncode == 0, result.stdout + result.stderr
        listed = subprocess.run([temporal_cli(), "operator", "search-attribute", "list"], env=env,
                                capture_output=True, text=True, timeout=30, check=True).stdout
        for key in SEARCH_ATTRIBUTES:
            assert re.search(rf"^\s*{key.name}\s+Keyword\b", listed, re.MULTILINE), key.name
    finally:
        server.terminate()
        server.wait(timeout=30)
