"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here)."""

from __future__ import annotations

from typing import Any

import pytest

from cli.main import CommandLineParser as build_parser
from tests.deploy.conftest import REPO
from zerotouch.names import ALL_QUEUES

REQUIRED = {"postgresql", "temporal", "temporal-ui", "prometheus", "alertmanager", "relay"}


def _zerotouch_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [str(a) for a in service["command"]] for name, service in compose["services"].items()
            if isinstance(service.get("command"), list) and service["command"][0] == "zerotouch"}


def test_the_stack_has_every_component(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= REQUIRED


def test_commands_follow_the_cli_contract(compose: dict[str, Any]) -> None:
    commands = _zerotouch_commands(compose)
    assert commands, "no service runs zerotouch"
    for service, argv in commands.items():
        assert argv[1] in ("relay", "worker"), f"{service}: unexpected subcommand {argv[1]!r}"
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
    temporal = compose["services"]["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgresql"
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
