"""A rotation's Kubernetes Secret, read and written the way two writers never lose an update.

`update` is read-modify-write: it reads the Secret, hands the decoded content to a pure
transition (`zerotouch.rotation_secret`), and replaces the Secret with the read resourceVersion.
A 409 (someone wrote in between, or created the Secret first) re-reads and re-applies the
transition, which is idempotent, a bounded number of times. No value read or written here ever
reaches a message: errors name the Secret, never its data.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable

from kubernetes.client import ApiClient, CoreV1Api
from temporalio.exceptions import ApplicationError

from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller, Timeout
from activities.kubernetes_actions import Obj
from zerotouch import activity_errors as errors
from zerotouch.activity_errors import fail
from zerotouch.rotation_secret import ANNOTATION, RotationStateError, SecretContent
from zerotouch.rotations import SecretRef

# More than the deployment actions' 3: a rotation step and an operator's edit (or a second
# rotation's refused step) may contend on one Secret, and each retry is a cheap re-read.
CONFLICT_ATTEMPTS = 5

_SECRET_FIELDS = ("apiVersion", "kind", "metadata", "type", "immutable")

Change = Callable[[SecretContent], SecretContent | None]


def _decode(data: dict[str, str]) -> dict[str, str]:
    # surrogateescape keeps a binary value (a keystore beside the credential) byte-exact through
    # decode and encode, so rewriting the Secret never corrupts keys the rotation does not own.
    return {key: base64.b64decode(value).decode("utf-8", "surrogateescape") for key, value in data.items()}


def _encode(data: dict[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")
            for key, value in data.items()}


def _content(secret: Obj) -> SecretContent:
    meta = secret.get("metadata") or {}
    return SecretContent(data=_decode(secret.get("data") or {}), annotations=dict(meta.get("annotations") or {}),
                         resource_version=str(meta.get("resourceVersion", "")), exists=True)


def _merged_annotations(theirs: dict[str, str], ours: dict[str, str]) -> dict[str, str]:
    """Others' annotations as the server has them; ours (the rotation's prefix) exactly as the change says."""
    kept = {key: value for key, value in theirs.items() if not key.startswith(ANNOTATION)}
    return {**kept, **{key: value for key, value in ours.items() if key.startswith(ANNOTATION)}}


class SecretStore:
    """Reads and guarded writes of one namespace's Secrets through the official client (sync)."""

    def __init__(self, *, api_client: ApiClient, request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._core = CoreV1Api(api_client)
        self._call = KubeCaller(request_timeout)

    def _get(self, ref: SecretRef) -> Obj | None:
        try:
            return self._call(self._core.read_namespaced_secret, ref.name, ref.namespace,
                              what=f"secret {ref.describe()}")
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return None
            raise

    def read(self, ref: SecretRef) -> SecretContent:
        """The Secret's decoded data and annotations; ``exists=False`` when there is none."""
        secret = self._get(ref)
        return _content(secret) if secret is not None else SecretContent(exists=False)

    def update(self, ref: SecretRef, change: Change) -> tuple[SecretContent, bool]:
        """Apply ``change`` to the Secret as it is now; (content, False) when it had nothing to write."""
        what = f"secret {ref.describe()}"
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            secret = self._get(ref)
            current = _content(secret) if secret is not None else SecretContent(exists=False)
            try:
                wanted = change(current)
            except RotationStateError as error:
                raise fail(f"{what}: {error}", errors.ROTATION_STATE) from None
            if wanted is None:
                return current, False
            try:
                written = self._write(ref, secret, wanted)
            except ApplicationError as error:
                # A Conflict is a stale resourceVersion on replace or AlreadyExists on create:
                # either way someone else wrote first, and the transition must see their write.
                if error.type == errors.CONFLICT and attempt < CONFLICT_ATTEMPTS:
                    continue
                raise
            return _content(written), True
        raise fail(f"{what}: still conflicting after {CONFLICT_ATTEMPTS} attempts", errors.CONFLICT)

    def _write(self, ref: SecretRef, secret: Obj | None, wanted: SecretContent) -> Obj:
        what = f"secret {ref.describe()}"
        if secret is None:
            body: Obj = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": ref.name, "namespace": ref.namespace,
                                      "annotations": _merged_annotations({}, wanted.annotations)},
                         "data": _encode(wanted.data)}
            return self._call(self._core.create_namespaced_secret, ref.namespace, body, what=what)
        # Replace the object as read (type, labels, owners stay) with the read resourceVersion,
        # so a write that happened after our read answers 409 instead of being overwritten.
        # Only a Secret's own fields: the client refuses others (a status some servers add).
        body = {key: copy.deepcopy(secret[key]) for key in _SECRET_FIELDS if key in secret}
        meta = body.setdefault("metadata", {})
        meta["annotations"] = _merged_annotations(meta.get("annotations") or {}, wanted.annotations)
        body["data"] = _encode(wanted.data)
        return self._call(self._core.replace_namespaced_secret, ref.name, ref.namespace, body, what=what)
