"""Repointing the consumers at the new primary: a connection file, or a Kubernetes Secret's host and port.

Both are idempotent: what already points at the new primary is left alone (and reported unchanged).
The file is replaced atomically (a consumer reads the old or the new one, never half); the Secret
is written with its resourceVersion, and a 409 (someone wrote it meanwhile) is read again.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from zerotouch.recovery_databases import ConnectionFileRepoint, DatabaseServer, KubernetesSecretRepoint

CONFLICT_ATTEMPTS = 10


def repoint_connection_file(spec: ConnectionFileRepoint, new: DatabaseServer) -> tuple[bool, str]:
    """(changed, detail): the file holds the new primary's host, port and database."""
    path = Path(spec.path)
    wanted = {"host": new.host, "port": new.port, "dbname": new.dbname}
    try:
        if json.loads(path.read_text(encoding="utf-8")) == wanted:
            return False, f"{path} already points at {new.describe()}"
    except (OSError, ValueError):
        pass  # missing or unreadable: written below
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(wanted, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
    return True, f"{path} now points at {new.describe()}"


def repoint_kubernetes_secret(spec: KubernetesSecretRepoint, new: DatabaseServer,
                              api_client: Callable[[], k8s.ApiClient]) -> tuple[bool, str]:
    """(changed, detail): the Secret's host and port keys hold the new primary's address."""
    core: Any = k8s.CoreV1Api(api_client())  # handed plain dicts, as kubectl would
    wanted = {spec.host_key: new.host, spec.port_key: str(new.port)}
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        secret: Any = core.read_namespaced_secret(spec.name, spec.namespace)
        data = dict(secret.data or {})
        if all(_decoded(data.get(key)) == value for key, value in wanted.items()):
            return False, f"{spec.describe()} already points at {new.describe()}"
        data.update({key: base64.b64encode(value.encode()).decode() for key, value in wanted.items()})
        body = {"metadata": {"name": spec.name, "namespace": spec.namespace,
                             "resourceVersion": secret.metadata.resource_version,
                             "labels": secret.metadata.labels, "annotations": secret.metadata.annotations},
                "type": secret.type, "data": data}
        try:
            core.replace_namespaced_secret(spec.name, spec.namespace, body)
        except ApiException as error:
            if error.status == 409 and attempt < CONFLICT_ATTEMPTS:
                continue
            raise
        return True, f"{spec.describe()} now points at {new.describe()}"
    raise AssertionError("unreachable")


def _decoded(value: str | None) -> str | None:
    return None if value is None else base64.b64decode(value).decode("utf-8", "replace")
