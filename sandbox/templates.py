"""Pod-template identity: the hash that names ReplicaSets, plus field readers."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .patch import prune
from .pods import SAFE_ALPHABET
from .quantity import parse_quantity

HASH_LABEL = "pod-template-hash"


def canonical(template: dict[str, Any]) -> dict[str, Any]:
    """The template without the hash label and without nulls/empties, so a
    template that went through kubectl (Go structs) is recognised as equal."""
    tpl = copy.deepcopy(template or {})
    labels = (tpl.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    result: dict[str, Any] = prune(tpl)
    return result


def template_hash(template: dict[str, Any]) -> str:
    """10 characters from the safe alphabet, like `web-7d4b9c8f6d`."""
    raw = json.dumps(canonical(template), sort_keys=True, separators=(",", ":"))
    number = int.from_bytes(hashlib.sha256(raw.encode()).digest()[:10], "big")
    chars = []
    for _ in range(10):
        number, idx = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[idx])
    return "".join(chars)


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((template or {}).get("spec") or {}).get("containers") or [])


def memory_limit(template: dict[str, Any]) -> float | None:
    """Largest container memory limit in bytes, or None if no limit is set."""
    limits = [
        parse_quantity(((c.get("resources") or {}).get("limits") or {}).get("memory"))
        for c in containers(template)
    ]
    present = [v for v in limits if v is not None]
    return max(present) if present else None


def images(template: dict[str, Any]) -> dict[str, str]:
    return {c.get("name", ""): c.get("image", "") for c in containers(template)}


# The label each owner stamps on its pods with the template they were made from:
# ReplicaSets `pod-template-hash: <hash>`, StatefulSets `controller-revision-hash:
# <name>-<hash>`, DaemonSets `controller-revision-hash: <hash>`.
REVISION_LABEL = "controller-revision-hash"


def pod_template_hash(pod: dict[str, Any]) -> str:
    """The template hash a pod was created from, whichever controller made it."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if labels.get(HASH_LABEL):
        return str(labels[HASH_LABEL])
    return str(labels.get(REVISION_LABEL, "")).rsplit("-", 1)[-1]
