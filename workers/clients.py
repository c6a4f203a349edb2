"""Building the clients activities receive: Kubernetes, PostgreSQL DSNs, HTTP."""

from __future__ import annotations

import os

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from zerotouch.settings import WorkerSettings


def kubernetes_api_client(settings: WorkerSettings) -> k8s.ApiClient:
    """The sandbox by URL, else in-cluster credentials, else the current kubeconfig."""
    if settings.kubernetes_url:
        configuration = k8s.Configuration()
        configuration.host = settings.kubernetes_url
        return k8s.ApiClient(configuration)
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        try:
            k8s_config.load_kube_config(context=settings.kubeconfig_context, client_configuration=configuration)
        except (k8s_config.ConfigException, OSError) as error:
            raise KubernetesUnconfigured(
                f"no Kubernetes credentials ({error}); run in a cluster, set KUBECONFIG, "
                "or use `zerotouch up --sandbox`"
            ) from None
    return k8s.ApiClient(configuration)


class KubernetesUnconfigured(RuntimeError):
    """Neither in-cluster credentials nor a kubeconfig: the Kubernetes worker cannot start."""


def _from_environment(reference: str, variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise KeyError(f"no {what} connection {reference!r}: set {variable}")
    return value


def _suffix(reference: str) -> str:
    return reference.upper().replace("-", "_")


def postgres_dsn_for(reference: str) -> str:
    """A connection reference (``main``) → DSN from ``ZEROTOUCH_PG_<REF>_DSN``; never from history."""
    return _from_environment(reference, f"ZEROTOUCH_PG_{_suffix(reference)}_DSN", "PostgreSQL")


def mongo_url_for(reference: str) -> str:
    """A connection reference (``main``) → URL from ``ZEROTOUCH_MONGO_<REF>_URL``; never from history."""
    return _from_environment(reference, f"ZEROTOUCH_MONGO_{_suffix(reference)}_URL", "MongoDB")
