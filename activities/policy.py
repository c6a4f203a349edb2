"""The policy activity: workflows read the policy file through it, so replay stays deterministic."""

from __future__ import annotations

import os
import threading

from temporalio import activity

from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.governor_models import GovernorSettings
from zerotouch.governor_policy import governor_settings
from zerotouch.models import PolicyRequest
from zerotouch.policy import Policy, PolicyError, load_policy


class PolicyActivities:
    """Loads and validates the policy file.

    Every new incident loads the policy; parsing and validating the YAML each time was an eighth
    of a worker's CPU (BENCHMARKS.md, scenario 2), so the parsed policy is kept until the file's
    modification time or size changes.
    """

    def __init__(self, *, default_path: str | None) -> None:
        self._default_path = default_path
        self._lock = threading.Lock()
        self._cached: tuple[tuple[str, int, int], Policy] | None = None

    @activity.defn(name=names.LOAD_POLICY)
    def load_policy(self, request: PolicyRequest) -> Policy:
        """The policy from the request's path, else $ZEROTOUCH_POLICY, else the worker's default."""
        path = request.path or os.environ.get("ZEROTOUCH_POLICY") or self._default_path
        if not path:
            raise errors.fail("no policy file: set ZEROTOUCH_POLICY or pass a path", errors.INVALID_POLICY)
        try:
            return self._load(path)
        except PolicyError as error:
            raise errors.fail(str(error), errors.INVALID_POLICY) from None

    @activity.defn(name=names.GOVERNOR_SETTINGS)
    def governor_settings(self, request: PolicyRequest) -> GovernorSettings:
        """The Governor's limits as this worker's policy file says: the only settings it accepts.

        The request's path is ignored on purpose: whoever starts a workflow must not be able to
        point the Governor at a file of their choosing.
        """
        return governor_settings(self.load_policy(PolicyRequest()))

    def _load(self, path: str) -> Policy:
        try:
            stat = os.stat(path)
            version: tuple[str, int, int] | None = (path, stat.st_mtime_ns, stat.st_size)
        except OSError:
            version = None  # load_policy says what is wrong with the path
        with self._lock:
            if version is not None and self._cached is not None and self._cached[0] == version:
                return self._cached[1]
        policy = load_policy(path)
        if version is not None:
            with self._lock:
                self._cached = (version, policy)
        return policy
