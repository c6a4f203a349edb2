"""Broken releases: a Deployment gets a new revision, as a bad `kubectl apply` would."""

from __future__ import annotations

import copy
from collections.abc import Callable

from . import templates
from .resources import get_type
from .store import Obj, Store

DEPLOYMENTS = get_type("apps", "deployments")
MISSING_TAG = "0.0.0-does-not-exist"


def roll_out_bad_image(store: Store, deploy: Obj) -> list[str]:
    """Publish a revision whose image runs but never gets ready; returns its images."""
    return _roll_out(store, deploy, lambda image: image if image.endswith("-bad") else f"{image}-bad")


def roll_out_missing_tag(store: Store, deploy: Obj) -> tuple[list[str], str]:
    """Publish a revision whose image tag does not exist; returns its images and template hash."""
    images = _roll_out(store, deploy, _with_missing_tag)
    current = store.require(DEPLOYMENTS, deploy["metadata"]["namespace"], deploy["metadata"]["name"])
    return images, templates.template_hash(current["spec"]["template"])


def _with_missing_tag(image: str) -> str:
    # A registry port ("registry:5000/app") is not a tag: only a colon in the last part is.
    repo, colon, _ = image.rpartition(":")
    base = repo if colon and "/" not in image[len(repo):] else image
    return f"{base}:{MISSING_TAG}"


def _roll_out(store: Store, deploy: Obj, rename: Callable[[str], str]) -> list[str]:
    updated = copy.deepcopy(deploy)
    images = []
    for container in templates.containers(updated["spec"]["template"]):
        container["image"] = rename(container.get("image", ""))
        images.append(container["image"])
    store.update(DEPLOYMENTS, updated, check_version=False)
    return images
