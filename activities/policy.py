"""The policy activity: workflows read the policy file through it, so replay stays deterministic."""

from __future__ import annotations

import os

from temporalio import activity
from temporalio.exceptions import ApplicationError

from zerotouch.models import PolicyRequest
from zerotouch.policy import Policy, PolicyError, load_policy


class PolicyActivities:
    """Loads and validates the policy file."""

    def __init__(self, *, default_path: str | None) -> None:
        self._default_path = default_path

    @activity.defn(name="load_policy")
    def load_policy(self, request: PolicyRequest) -> Policy:
        """The policy from the request's path, else $ZEROTOUCH_POLICY, else the worker's default."""
        path = request.path or os.environ.get("ZEROTOUCH_POLICY") or self._default_path
        if not path:
            raise ApplicationError("no policy file: set ZEROTOUCH_POLICY or pass a path", type="InvalidPolicy",
                                   non_retryable=True)
        try:
            return load_policy(path)
        except PolicyError as error:
            raise ApplicationError(str(error), type="InvalidPolicy", non_retryable=True) from None
