"""Validation of Kubernetes object names that arrive in untrusted alert labels."""

from __future__ import annotations

import re

# RFC 1123 label (namespaces, most names) and subdomain (deployments, jobs, pods).
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class InvalidName(ValueError):
    """A name that Kubernetes would reject, or that tries to smuggle a path or a command."""


def require_namespace(value: str) -> str:
    """Return a valid namespace name or raise InvalidName saying why."""
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise InvalidName(f"namespace {value!r} is not a DNS-1123 label (a-z, 0-9, '-', at most 63)")
    return value


def require_object_name(value: str, kind: str = "object") -> str:
    """Return a valid object name (DNS-1123 subdomain) or raise InvalidName saying why."""
    if not isinstance(value, str) or len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise InvalidName(f"{kind} name {value!r} is not a DNS-1123 subdomain (a-z, 0-9, '-', '.')")
    return value

