"""Owner resolution rules over a dict of objects (the activity reads the same through the API)."""

from __future__ import annotations

from typing import Any

from activities.workloads import WorkloadResolver
from zerotouch.workloads import WorkloadQuery, WorkloadRef

Obj = dict[str, Any]


def _obj(kind: str, name: str, owner: tuple[str, str] | None = None, **spec: Any) -> tuple[tuple[str, str], Obj]:
    refs = [{"kind": owner[0], "name": owner[1], "controller": True}] if owner else []
    return (kind, name), {"metadata": {"name": name, "namespace": "shop", "ownerReferences": refs}, "spec": spec}


CLUSTER = dict([
    _obj("Deployment", "web"),
    _obj("ReplicaSet", "web-7d9c5fb8d4", ("Deployment", "web")),
    _obj("Pod", "web-7d9c5fb8d4-x2kqz", ("ReplicaSet", "web-7d9c5fb8d4")),
    _obj("StatefulSet", "db"),
    _obj("Pod", "db-0", ("StatefulSet", "db")),
    _obj("CronJob", "backup"),
    _obj("Job", "backup-28912345", ("CronJob", "backup")),
    _obj("Pod", "backup-28912345-x2kqz", ("Job", "backup-28912345")),
    _obj("Pod", "debug"),
    _obj("Pod", "argo-x2kqz", ("Rollout", "argo")),
    _obj("HorizontalPodAutoscaler", "web", scaleTargetRef={"kind": "Deployment", "name": "web"}),
])


def _resolve(**labels: str) -> WorkloadRef:
    reads: list[tuple[str, str]] = []

    def read(kind: str, namespace: str, name: str) -> Obj | None:
        reads.append((kind, name))
        return CLUSTER.get((kind, name)) if namespace == "shop" else None

    return WorkloadResolver(read).resolve(WorkloadQuery(labels={"namespace": "shop", **labels}))


def test_a_deployments_pod_resolves_through_its_replicaset() -> None:
    ref = _resolve(pod="web-7d9c5fb8d4-x2kqz")
    assert (ref.kind, ref.name) == ("Deployment", "web")
    assert ref.describe() == "pod shop/web-7d9c5fb8d4-x2kqz → replicaset shop/web-7d9c5fb8d4 → deployment shop/web"


def test_statefulset_cronjob_and_bare_pods() -> None:
    assert _resolve(pod="db-0").describe() == "pod shop/db-0 → statefulset shop/db"
    assert (_resolve(pod="backup-28912345-x2kqz").kind, _resolve(job_name="backup-28912345").kind) == (
        "CronJob", "CronJob")
    bare = _resolve(pod="debug")
    assert (bare.kind, bare.name) == ("Pod", "debug")


def test_a_replaced_pod_resolves_by_its_name_when_the_owner_exists() -> None:
    ref = _resolve(pod="web-7d9c5fb8d4-qz9bb")
    assert (ref.kind, ref.name) == ("Deployment", "web")
    assert "(gone)" in ref.describe()
    missing = _resolve(pod="cart-7d9c5fb8d4-qz9bb")
    assert not missing.found and "no deployment shop/cart" in missing.reason
    odd = _resolve(pod="hand-made")
    assert not odd.found and "not one a controller makes" in odd.reason


def test_unmanaged_owners_and_hpas() -> None:
    argo = _resolve(pod="argo-x2kqz")
    assert not argo.found and "Rollout" in argo.reason
    assert (_resolve(horizontalpodautoscaler="web").kind, _resolve(horizontalpodautoscaler="web").name) == (
        "Deployment", "web")
    assert not _resolve(horizontalpodautoscaler="nope").found
    assert not _resolve().found
