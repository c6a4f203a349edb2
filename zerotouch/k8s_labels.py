"""Validation of Kubernetes label selectors that a policy (or a pinned drill) hands to the API server."""

from __future__ import annotations

import re

from zerotouch.k8s_names import InvalidName

# Kubernetes' own rules (apimachinery validation): a name part of at most 63 characters, an optional
# DNS-subdomain prefix before '/', and values that are empty or shaped like a name part.
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def require_label_key(key: str) -> str:
    """A valid label key (`app`, `app.kubernetes.io/name`) or InvalidName saying why."""
    prefix, _, name = key.rpartition("/")
    if (not isinstance(key, str) or len(name) > 63 or not _NAME_PART.match(name)
            or ("/" in key and (len(prefix) > 253 or not _PREFIX.match(prefix)))):
        raise InvalidName(f"label key {key!r} is not valid (name: a-z, A-Z, 0-9, '-', '_', '.', at most 63; "
                          "optional DNS prefix before '/')")
    return key


def require_label_value(value: str) -> str:
    """A valid label value (empty allowed) or InvalidName saying why."""
    if not isinstance(value, str) or len(value) > 63 or (value and not _NAME_PART.match(value)):
        raise InvalidName(f"label value {value!r} is not valid (a-z, A-Z, 0-9, '-', '_', '.', at most 63)")
    return value


def require_selector(selector: dict[str, str]) -> dict[str, str]:
    """Equality labels only: nothing in them can widen the query (no `,`, `!`, `in (...)`)."""
    for key, value in selector.items():
        require_label_key(key)
        require_label_value(value)
    return selector


def selector_query(selector: dict[str, str]) -> str:
    """The `labelSelector` query of validated equality labels, in a stable order."""
    return ",".join(f"{key}={value}" for key, value in sorted(require_selector(selector).items()))
