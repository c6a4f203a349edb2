"""Which Deployments read a Secret, and moving them onto a new version of it.

Pods read a Secret's env values only at start, and a mounted one only eventually, so a rotated
credential reaches its consumers by a rollout: a pod-template annotation naming the version,
which, like `kubectl rollout restart`, changes the template and so starts new pods. The same
version twice is the same template, so a retried step never restarts anything a second time.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api
from temporalio.exceptions import ApplicationError

from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller, Timeout
from activities.kubernetes_actions import STRATEGIC, Obj
from zerotouch import activity_errors as errors
from zerotouch.activity_errors import fail
from zerotouch.k8s_names import InvalidName, require_object_name
from zerotouch.rotation_models import Consumer, RolledOut
from zerotouch.rotation_secret import ANNOTATION
from zerotouch.rotations import SecretRef

CONFLICT_ATTEMPTS = 3  # as the deployment actions: a conflict is usually the controller writing status
VIAS = ("env", "envFrom", "volume", "projected")
_NAME_MAX = 63  # an annotation key's name part (after the prefix's "/")
_DIGEST = 10


def version_annotation(secret_name: str) -> str:
    """The pod-template annotation that pins a Deployment to a version of ``secret_name``.

    A Secret name may be 253 characters; an annotation key's name part only 63. A long one keeps
    its readable head and ends in a digest of the whole name, so two Secrets never share a key.
    """
    name = f"secret-{secret_name}"
    if len(name) > _NAME_MAX:
        digest = hashlib.sha256(secret_name.encode()).hexdigest()[:_DIGEST]
        name = f"{name[:_NAME_MAX - _DIGEST - 1].rstrip('.-')}-{digest}"
    return ANNOTATION + name


def _pod_vias(pod_spec: Obj, secret: str) -> set[str]:
    vias: set[str] = set()
    for container in [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            if ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret:
                vias.add("env")
        for source in container.get("envFrom") or []:
            if (source.get("secretRef") or {}).get("name") == secret:
                vias.add("envFrom")
    for volume in pod_spec.get("volumes") or []:
        if (volume.get("secret") or {}).get("secretName") == secret:
            vias.add("volume")
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("secret") or {}).get("name") == secret:
                vias.add("projected")
    return vias


def consumer_of(deploy: Obj, secret: str) -> Consumer | None:
    """How ``deploy``'s pod template reads ``secret``, or None when it does not."""
    pod_spec = ((deploy.get("spec") or {}).get("template") or {}).get("spec") or {}
    vias = _pod_vias(pod_spec, secret)
    if not vias:
        return None
    return Consumer(deployment=deploy["metadata"]["name"], via=[via for via in VIAS if via in vias])


def _template_annotations(deploy: Obj) -> dict[str, Any]:
    return ((deploy["spec"].get("template") or {}).get("metadata") or {}).get("annotations") or {}


class SecretConsumers:
    """Finds and rolls the Deployments that read a Secret, through the official client (sync)."""

    def __init__(self, *, api_client: ApiClient, request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._apps = AppsV1Api(api_client)
        self._call = KubeCaller(request_timeout)

    def find(self, ref: SecretRef) -> list[Consumer]:
        """Deployments in the Secret's namespace whose pods read it (containers and init containers)."""
        listed = self._call(self._apps.list_namespaced_deployment, ref.namespace,
                            what=f"deployments in {ref.namespace}")
        found = [consumer for deploy in listed.get("items") or [] if (consumer := consumer_of(deploy, ref.name))]
        return sorted(found, key=lambda consumer: consumer.deployment)

    def _read(self, namespace: str, name: str) -> Obj:
        return self._call(self._apps.read_namespaced_deployment, name, namespace,
                          what=f"deployment {namespace}/{name}")

    def roll(self, ref: SecretRef, deployments: list[str], version: str) -> RolledOut:
        """Roll each Deployment onto ``version`` of the Secret; one already on it is left alone."""
        try:
            names = sorted({require_object_name(name, "deployment") for name in deployments})
        except InvalidName as error:
            raise fail(str(error), errors.INVALID_TARGET) from None
        # Read them all before writing any, so a missing one stops the step before it restarted anything.
        read = {name: self._read(ref.namespace, name) for name in names}
        key = version_annotation(ref.name)
        result = RolledOut()
        for name in names:
            moved = self._pin(ref.namespace, read[name], key, version)
            (result.changed if moved else result.unchanged).append(name)
        return result

    def _pin(self, namespace: str, deploy: Obj, key: str, version: str) -> bool:
        name = deploy["metadata"]["name"]
        what = f"deployment {namespace}/{name}"
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            if attempt > 1:
                deploy = self._read(namespace, name)
            if _template_annotations(deploy).get(key) == version:
                return False
            patch = {"metadata": {"resourceVersion": deploy["metadata"]["resourceVersion"]},
                     "spec": {"template": {"metadata": {"annotations": {key: version}}}}}
            try:
                self._call(self._apps.patch_namespaced_deployment, name, namespace, patch,
                           what=what, _content_type=STRATEGIC)
            except ApplicationError as error:
                if error.type == errors.CONFLICT and attempt < CONFLICT_ATTEMPTS:
                    continue
                raise
            return True
        raise fail(f"{what}: still conflicting after {CONFLICT_ATTEMPTS} attempts", errors.CONFLICT)
