"""Activities: one module per external system, each a class that receives its clients."""

from activities.kubernetes import KubernetesActivities
from activities.notify import NotifyActivities
from activities.policy import PolicyActivities
from activities.postgres import PostgresActivities
from activities.prometheus import PrometheusActivities

__all__ = [
    "KubernetesActivities",
    "NotifyActivities",
    "PolicyActivities",
    "PostgresActivities",
    "PrometheusActivities",
]
