"""Static checks of what ships in deploy/ and docker-compose.yml: no servers, no network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from zerotouch.policy import Policy, load_policy

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
POLICY_FILE = DEPLOY / "policy" / "zerotouch.yaml"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "zerotouch.rules.yml"
KUBERNETES = DEPLOY / "kubernetes"


def tool(name: str) -> str:
    """A Prometheus/Alertmanager CLI; CI installs them, so a missing one is a failure, not a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH; install it (Debian: apt-get install prometheus "
                    "prometheus-alertmanager) or run .ci/run, which does")
    return path


def run_tool(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, cwd=cwd, check=False)


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/kubernetes (kustomization.yaml excluded)."""
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                found.append((path, doc))
    return found


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY_FILE)


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
