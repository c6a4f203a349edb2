"""The error types activities raise (``ApplicationError.type``), and which of them retrying cannot fix.

Activities raise them through `fail`, which marks exactly the `NON_RETRYABLE` ones
non-retryable; the incident's retry policy lists the same tuple, so the two cannot drift.
"""

from __future__ import annotations

from typing import Final

from temporalio.exceptions import ApplicationError

# --- non-retryable: the incident escalates ------------------------------------------------
INVALID_TARGET: Final = "InvalidTarget"
NOT_FOUND: Final = "NotFound"
BOUND_EXCEEDED: Final = "BoundExceeded"
NO_PREVIOUS_REVISION: Final = "NoPreviousRevision"
FORBIDDEN: Final = "Forbidden"
INVALID_POLICY: Final = "InvalidPolicy"
NOTIFICATION_REJECTED: Final = "NotificationRejected"
INVALID_PARAMS: Final = "InvalidParams"
INVALID: Final = "Invalid"
INVALID_QUERY: Final = "InvalidQuery"
MISSING_SECRET: Final = "MissingSecret"  # noqa: S105 (an error type, not a secret)
UNKNOWN_CHANNEL: Final = "UnknownChannel"
JOB_TIMEOUT: Final = "JobTimeout"  # a scheduled Job did not finish in time: waiting longer is the schedule's call
# a rotation's pending credential was refused by its target: roll back, do not try the same one again
CREDENTIAL_REJECTED: Final = "CredentialRejected"
# the rotation's state in its Secret does not allow the step (another rotation's pending, a revoked previous)
ROTATION_STATE: Final = "RotationState"

NON_RETRYABLE: Final[tuple[str, ...]] = (
    INVALID_TARGET,
    NOT_FOUND,
    BOUND_EXCEEDED,
    NO_PREVIOUS_REVISION,
    FORBIDDEN,
    INVALID_POLICY,
    NOTIFICATION_REJECTED,
    INVALID_PARAMS,
    INVALID,
    INVALID_QUERY,
    MISSING_SECRET,
    UNKNOWN_CHANNEL,
    JOB_TIMEOUT,
    CREDENTIAL_REJECTED,
    ROTATION_STATE,
)

# --- retryable: the next attempt may succeed ----------------------------------------------
CONFLICT: Final = "Conflict"
TOO_MANY_REQUESTS: Final = "TooManyRequests"
API_UNAVAILABLE: Final = "ApiUnavailable"
NOT_RECONCILED: Final = "NotReconciled"
PDB_VIOLATION: Final = "PdbViolation"
DATABASE_UNAVAILABLE: Final = "DatabaseUnavailable"
PROMETHEUS_UNAVAILABLE: Final = "PrometheusUnavailable"
NOTIFICATION_UNAVAILABLE: Final = "NotificationUnavailable"

RETRYABLE: Final[tuple[str, ...]] = (
    CONFLICT,
    TOO_MANY_REQUESTS,
    API_UNAVAILABLE,
    NOT_RECONCILED,
    PDB_VIOLATION,
    DATABASE_UNAVAILABLE,
    PROMETHEUS_UNAVAILABLE,
    NOTIFICATION_UNAVAILABLE,
)


def fail(message: str, kind: str) -> ApplicationError:
    """The error an activity raises: non-retryable exactly when ``kind`` is in `NON_RETRYABLE`."""
    if kind not in NON_RETRYABLE and kind not in RETRYABLE:
        raise ValueError(f"unknown activity error type {kind!r}: add it to zerotouch.activity_errors")
    return ApplicationError(message, type=kind, non_retryable=kind in NON_RETRYABLE)
