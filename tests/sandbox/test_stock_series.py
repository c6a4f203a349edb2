"""Every series the stock kube-prometheus alerts in the policy read, served by the sandbox's exporters."""

from __future__ import annotations

import httpx

from sandbox import SandboxCluster
from tests.support.kube_prometheus import policy_alert_metric_names
from tests.support.waiting import wait_until

from .scrape import page

EXPORTER_PAGES = ("/metrics/kube-state-metrics", "/metrics/kubelet", "/metrics/cadvisor", "/metrics/node-exporter")


def _served(cluster: SandboxCluster) -> set[str]:
    names: set[str] = set()
    for path in EXPORTER_PAGES:
        names |= {line.split("{")[0].split(" ")[0] for line in page(cluster, path).splitlines()
                  if line and not line.startswith("#")}
    return names


def test_each_series_the_policys_stock_alerts_read_is_served(cluster: SandboxCluster) -> None:
    # Some series exist only while something is wrong or an object exists: make each happen.
    cluster.inject("crashloop", namespace="shop", deployment="web")  # waiting reasons
    hpa = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "checkout", "namespace": "shop"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
                    "minReplicas": 2, "maxReplicas": 4}}
    assert httpx.post(f"{cluster.url}/apis/autoscaling/v1/namespaces/shop/horizontalpodautoscalers",
                      json=hpa).status_code == 201
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop"},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "migrate", "image": "busybox:1.36.1"}]}}}}
    assert httpx.post(f"{cluster.url}/apis/batch/v1/namespaces/shop/jobs", json=job).status_code == 201
    cluster.finish_job("shop", "migrate", "Failed")
    wanted = set(policy_alert_metric_names())
    wait_until(lambda: wanted <= _served(cluster), timeout=10.0)
