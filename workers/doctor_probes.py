"""The probes behind `zerotouch doctor` and `up`'s start-up report: can the workers' clients reach anything?

Each builds its client the way the workers do (`workers.clients`), asks one harmless question with
a short timeout and answers a `Check`; none writes, none sends a notification. Messages are
trimmed to their first line and scrubbed of the password a DSN or URL may carry.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from kubernetes import client as k8s
from psycopg.conninfo import conninfo_to_dict

from workers.clients import KubernetesUnconfigured, kubernetes_api_client, mongo_url_for, postgres_dsn_for
from zerotouch.doctor import (
    POLICY_DISABLES,
    PROMETHEUS_FAILING_DISABLES,
    PROMETHEUS_MISSING_DISABLES,
    Check,
    DoctorReport,
    Reference,
    check_channels,
    kubernetes_disables,
    references,
)
from zerotouch.policy import Policy, PolicyError, load_policy
from zerotouch.settings import WorkerSettings

DEFAULT_TIMEOUT = 3.0


def _first_line(error: BaseException, *secrets: str | None) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:300]


def _kubernetes_error(error: BaseException) -> str:
    """An API answer as its status, a network error as its cause (urllib3 nests it in three reprs)."""
    if isinstance(error, k8s.ApiException):
        return f"HTTP {error.status} {error.reason}"
    reason = getattr(error, "reason", None)
    cause = reason if isinstance(reason, BaseException) else error
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(cause))
    return f"{type(cause).__name__}: {errno.group(0) if errno else _first_line(cause)}"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _kubernetes_source(settings: WorkerSettings) -> str:
    if settings.kubernetes_url:
        return "without auth, as the sandbox"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "in-cluster service account"
    return f"kubeconfig {os.environ.get('KUBECONFIG') or '~/.kube/config'}"


def probe_kubernetes(settings: WorkerSettings, policy: Policy | None, timeout: float) -> Check:
    """GET /version with the credentials the Kubernetes worker would use."""
    disables = kubernetes_disables(policy)
    try:
        configured = kubernetes_api_client(settings)
    except KubernetesUnconfigured as error:
        return Check(kind="kubernetes", name="Kubernetes API", status="missing", detail=str(error),
                     disables=disables)
    configuration = configured.configuration
    configured.close()
    configuration.retries = 0  # one try within the timeout; the workers retry, a report must not wait
    source = _kubernetes_source(settings)
    try:
        with k8s.ApiClient(configuration) as api:
            version = k8s.VersionApi(api).get_code(_request_timeout=timeout)
    except Exception as error:  # any failure is the answer: unreachable, refused, TLS, 401
        return Check(kind="kubernetes", name="Kubernetes API", status="failing",
                     detail=f"{configuration.host} ({source}) does not answer: {_kubernetes_error(error)}",
                     disables=disables)
    return Check(kind="kubernetes", name="Kubernetes API", status="ok",
                 detail=f"{configuration.host} ({source}) answers: Kubernetes {version.git_version}")


def probe_prometheus(settings: WorkerSettings, timeout: float) -> Check:
    """GET /api/v1/status/buildinfo on the Prometheus PromQL verification would query."""
    url = settings.prometheus_url
    if not url:
        return Check(kind="prometheus", name="Prometheus", status="missing",
                     detail="not configured ($PROMETHEUS_URL is not set)", disables=PROMETHEUS_MISSING_DISABLES)
    shown = _without_credentials(url)
    try:
        response = httpx.get(f"{url.rstrip('/')}/api/v1/status/buildinfo", timeout=timeout)
        response.raise_for_status()
        version = response.json()["data"]["version"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
        return Check(kind="prometheus", name="Prometheus", status="failing",
                     detail=f"{shown} does not answer as Prometheus: {type(error).__name__}: "
                            f"{_first_line(error, urlsplit(url).password)}",
                     disables=PROMETHEUS_FAILING_DISABLES)
    return Check(kind="prometheus", name="Prometheus", status="ok", detail=f"{shown} answers: Prometheus {version}")


def probe_postgres(reference: Reference, timeout: float) -> Check:
    """Resolve the reference as the workers do, then connect (nothing else) with a short timeout."""
    name = f"PostgreSQL {reference.name}"
    try:
        dsn = postgres_dsn_for(reference.name)
    except KeyError as error:
        return Check(kind="postgres", name=name, status="missing", detail=str(error.args[0]),
                     disables=reference.disables())
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return Check(kind="postgres", name=name, status="failing", detail="its DSN is not a valid connection string",
                     disables=reference.disables())
    password = str(params.get("password") or "")
    where = f"{params.get('host') or 'local socket'}:{params.get('port') or 5432}/{params.get('dbname') or ''}"
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(timeout)), application_name="zerotouch-doctor"):
            pass
    except psycopg.Error as error:
        return Check(kind="postgres", name=name, status="failing",
                     detail=f"{where}: cannot connect: {_first_line(error, password)}",
                     disables=reference.disables())
    return Check(kind="postgres", name=name, status="ok", detail=f"{where}: connects")


def probe_mongodb(reference: Reference, timeout: float) -> Check:
    """Resolve the reference, then ping the server with a short server-selection timeout."""
    import pymongo  # only policies with MongoDB targets pay for the import
    from pymongo.errors import ConfigurationError, PyMongoError

    name = f"MongoDB {reference.name}"
    try:
        url = mongo_url_for(reference.name)
    except KeyError as error:
        return Check(kind="mongodb", name=name, status="missing", detail=str(error.args[0]),
                     disables=reference.disables())
    password = urlsplit(url).password if "://" in url else None
    milliseconds = int(timeout * 1000)
    try:
        mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            url, serverSelectionTimeoutMS=milliseconds, connectTimeoutMS=milliseconds)
        with mongo:
            mongo.admin.command("ping")
            where = ", ".join(f"{host}:{port}" for host, port in mongo.topology_description.server_descriptions())
    except (PyMongoError, ConfigurationError, ValueError) as error:
        return Check(kind="mongodb", name=name, status="failing",
                     # pymongo appends its whole topology description: the first host's error says enough.
                     detail=f"cannot connect: {type(error).__name__}: "
                            f"{_first_line(error, password).split(' (configured timeouts')[0].split(', Timeout:')[0]}",
                     disables=reference.disables())
    return Check(kind="mongodb", name=name, status="ok", detail=f"{where}: answers ping")


def _policy(settings: WorkerSettings, policy: Policy | None) -> tuple[Policy | None, Check]:
    try:
        loaded = policy or load_policy(settings.policy_path)
    except PolicyError as error:
        return None, Check(kind="policy", name="policy", status="failing", detail=_first_line(error),
                           disables=POLICY_DISABLES, required=True)
    return loaded, Check(kind="policy", name="policy", status="ok",
                         detail=f"{settings.policy_path}: {len(loaded.runbooks)} runbooks", required=True)


def run_checks(settings: WorkerSettings, *, policy: Policy | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> DoctorReport:
    """Every check, the probes concurrently so the report takes one timeout, not one per piece.

    ``policy``: the one already loaded (`up` has); else the policy file ``settings`` names is loaded.
    """
    loaded, policy_check = _policy(settings, policy)
    refs = references(loaded) if loaded else []
    with ThreadPoolExecutor(max_workers=4 + len(refs)) as pool:
        kubernetes = pool.submit(probe_kubernetes, settings, loaded, timeout)
        prometheus = pool.submit(probe_prometheus, settings, timeout)
        connections = [pool.submit(probe_postgres if ref.engine == "postgres" else probe_mongodb, ref, timeout)
                       for ref in refs]
        checks = [policy_check, kubernetes.result(), prometheus.result(), *(c.result() for c in connections)]
    return DoctorReport(checks=checks + (check_channels(loaded) if loaded else []))
