"""Read-modify-write against a Kubernetes API, as real clients must do it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


def retry_on_conflict(read_modify_write: Callable[[], T], attempts: int = 10) -> T:
    """Run `read_modify_write` again from its read while the write answers 409 Conflict.

    A controller may write the object (status, generation) between our read and our write; the API
    then refuses the stale resourceVersion, and the only correct answer is to read again.
    """
    for attempt in range(1, attempts + 1):
        try:
            return read_modify_write()
        except ApiException as error:
            if error.status != 409 or attempt == attempts:
                raise
    raise AssertionError("unreachable")
