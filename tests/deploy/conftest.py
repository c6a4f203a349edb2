"""Static checks of what ships in deploy/ and docker-compose.yml: no servers, no network."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.crd_schema import load_all
from zerotouch.policy import Policy, load_policy

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
POLICY_FILE = DEPLOY / "policy" / "zerotouch.yaml"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "zerotouch.rules.yml"
KUBERNETES = DEPLOY / "kubernetes"
KUSTOMIZE = DEPLOY / "kustomize"
# Every directory a user can `kubectl apply -k`: the base and each overlay.
VARIANTS = ("kubernetes", *(f"kustomize/overlays/{p.name}" for p in sorted((KUSTOMIZE / "overlays").iterdir())))


def tool(name: str) -> str:
    """A Prometheus/Alertmanager CLI; CI installs them, so a missing one is a failure, not a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH; install it (Debian: apt-get install prometheus "
                    "prometheus-alertmanager) or run .ci/run, which does")
    return path


def run_tool(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, cwd=cwd, check=False)


def kubectl() -> str:
    """kubectl, whose built-in kustomize builds the variants; CI installs it, so missing is a failure."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not on PATH; install it (Debian: apt-get install kubernetes-client) or run .ci/run")
    return path


@cache
def built(variant: str) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize deploy/<variant>` prints, i.e. what `kubectl apply -k` would send."""
    result = run_tool(kubectl(), "kustomize", str(DEPLOY / variant))
    assert result.returncode == 0, f"kubectl kustomize deploy/{variant}:\n{result.stderr}"
    return tuple(load_all(result.stdout))


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
