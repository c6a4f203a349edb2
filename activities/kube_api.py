"""One Kubernetes API call as the activities make it: raw JSON, a timeout, errors mapped for Temporal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from activities.kubernetes_actions import Obj, api_error

Timeout = tuple[float, float]  # (connect, read) seconds
DEFAULT_REQUEST_TIMEOUT: Timeout = (5.0, 30.0)


class KubeCaller:
    """Calls a client method unparsed (the models would drop fields they do not know) and maps its errors."""

    def __init__(self, request_timeout: Timeout = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._timeout = request_timeout

    def __call__(self, method: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Obj:
        """One API call, answered as plain JSON; API errors mapped to retryable or not (`api_error`)."""
        try:
            response = method(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
        except ApiException as error:
            raise api_error(error, what) from None
        data = response.data
        return json.loads(data) if data else {}
