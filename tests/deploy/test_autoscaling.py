"""Autoscaling components: KEDA on each queue's backlog, or the CPU fallback; never both, never the backup worker."""

from __future__ import annotations

from typing import Any

import pytest

from cli.main import CommandLineParser as build_parser
from tests.deploy.conftest import VARIANTS, built
from zerotouch.names import ALL_QUEUES, BACKUP_QUEUE, WORKFLOWS_QUEUE

Obj = dict[str, Any]
KEDA = "kustomize/overlays/keda"
HPA = "kustomize/overlays/hpa"


def _of(variant: str, kind: str) -> list[Obj]:
    return [doc for doc in built(variant) if doc["kind"] == kind]


def _workers(variant: str) -> dict[str, Obj]:
    """``{queue: worker Deployment}``."""
    found = {}
    for deployment in _of(variant, "Deployment"):
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        args = build_parser().parse_args(command[1:])
        if args.command == "worker":
            (queue,) = args.queue
            found[queue] = deployment
    return found


def _env(deployment: Obj) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


def test_one_scaled_object_per_scalable_worker_on_its_own_queue() -> None:
    workers = _workers(KEDA)
    assert set(workers) == set(ALL_QUEUES)
    scaled = {doc["spec"]["scaleTargetRef"]["name"]: doc for doc in _of(KEDA, "ScaledObject")}
    for queue, deployment in workers.items():
        name = deployment["metadata"]["name"]
        if queue == BACKUP_QUEUE:
            # Its repository volume is ReadWriteOnce: a second replica could not mount it.
            assert name not in scaled and deployment["spec"]["replicas"] == 1
            continue
        spec = scaled.pop(name)["spec"]
        assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        (trigger,) = spec["triggers"]
        metadata = trigger["metadata"]
        assert trigger["type"] == "temporal"
        assert metadata["taskQueue"] == queue
        assert metadata["queueTypes"] == ("workflow" if queue == WORKFLOWS_QUEUE else "activity")
        env = _env(deployment)
        assert metadata["endpoint"] == env["TEMPORAL_ADDRESS"] and metadata["namespace"] == env["TEMPORAL_NAMESPACE"]
        assert int(metadata["targetQueueSize"]) >= 1
        # A queue without a poller delays every remediation by a cold start.
        assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    assert not scaled, f"ScaledObjects for no worker: {sorted(scaled)}"


def test_the_cpu_fallback_scales_the_same_deployments_within_the_same_bounds() -> None:
    bounds = {doc["spec"]["scaleTargetRef"]["name"]: (doc["spec"]["minReplicaCount"], doc["spec"]["maxReplicaCount"])
              for doc in _of(KEDA, "ScaledObject")}
    fallback = {doc["spec"]["scaleTargetRef"]["name"]: (doc["spec"]["minReplicas"], doc["spec"]["maxReplicas"])
                for doc in _of(HPA, "HorizontalPodAutoscaler")}
    assert fallback == bounds


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_variant_lets_two_controllers_scale_one_deployment(variant: str) -> None:
    deployments = {doc["metadata"]["name"] for doc in _of(variant, "Deployment")}
    targets = [doc["spec"]["scaleTargetRef"]["name"]
               for doc in _of(variant, "ScaledObject") + _of(variant, "HorizontalPodAutoscaler")]
    assert len(targets) == len(set(targets)), variant
    assert set(targets) <= deployments, variant
