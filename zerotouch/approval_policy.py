"""The policy's ``approvals`` section: how an approver's identity is established, and their keys."""

from __future__ import annotations

import logging
from datetime import timedelta

from pydantic import Field, field_validator

from zerotouch import sshsig
from zerotouch.approval_proofs import IdentityMode
from zerotouch.durations import Duration
from zerotouch.runbooks import PolicyModel, Severity

logger = logging.getLogger(__name__)
_WARNED: set[str] = set()

ASSERTED_WARNING = (
    "approvals: identity is ASSERTED — anyone with access to the Temporal namespace can approve as any "
    "approver; set approvals.identity: verified with the approvers' SSH keys (SECURITY.md)"
)


# How long a request for approval stands. An approval given later would run an action planned for
# an older situation; the more urgent the incident, the faster that situation moves (and the more
# people are paged to answer). An expired request is recorded and nothing acts; a retry asks again.
DEFAULT_EXPIRY: dict[Severity, timedelta] = {
    "P0": timedelta(minutes=15), "P1": timedelta(minutes=30), "P2": timedelta(hours=2),
    "P3": timedelta(hours=8), "P4": timedelta(hours=24),
}


class Approvals(PolicyModel):
    """``identity: asserted | verified`` and, for verified, each approver's SSH keys.

    asserted (the default): ``--by alice`` is taken on trust. verified: approve, request a retry,
    resume, mode auto and close-breaker carry a signature by a key listed here for that approver.
    """

    identity: IdentityMode = Field(
        default="asserted",
        description="asserted: `--by` is taken on trust; verified: loosening decisions need an SSH signature "
                    "(ssh-keygen -Y sign -n zerotouch-approval) by a key listed in `keys`",
    )
    keys: dict[str, list[str]] = Field(
        default_factory=dict, description="approver → OpenSSH ssh-ed25519 public keys (lines of a .pub file)",
    )
    expire_after: dict[Severity, Duration] = Field(
        default_factory=dict,
        description="how long a request for approval stands, by severity (defaults: P0 15m, P1 30m, P2 2h, "
                    "P3 8h, P4 24h); an expired request is recorded, nothing acts, and a retry asks again",
    )

    @field_validator("keys")
    @classmethod
    def _readable(cls, keys: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, lines in keys.items():
            for line in lines:
                try:
                    sshsig.parse_public_key(line)
                except sshsig.SignatureFormatError as error:
                    raise ValueError(f"key of {name!r}: {error}") from None
        return keys

    @field_validator("expire_after")
    @classmethod
    def _positive(cls, expiry: dict[Severity, timedelta]) -> dict[Severity, timedelta]:
        for severity, duration in expiry.items():
            if duration <= timedelta(0):
                raise ValueError(f"expire_after.{severity} must be longer than zero")
        return expiry

    def expiry_for(self, severity: str | None) -> timedelta:
        """How long a request for approval stands for an incident of `severity` (P3 when unknown)."""
        merged: dict[str, timedelta] = {**{str(k): v for k, v in DEFAULT_EXPIRY.items()},
                                        **{str(k): v for k, v in self.expire_after.items()}}
        return merged.get(severity or "P3", merged["P3"])

    @property
    def verified(self) -> bool:
        return self.identity == "verified"

    def keys_of(self, approver: str) -> list[str]:
        return list(self.keys.get(approver, []))

    def check_against(self, approvers: list[str]) -> None:
        """Keys only for approvers; in verified mode, at least one key for every approver."""
        unknown = sorted(set(self.keys) - set(approvers))
        if unknown:
            raise ValueError(f"approvals.keys: {unknown} are not approvers; add them to approvers or drop their keys")
        if not self.verified:
            return
        if not approvers:
            raise ValueError("approvals.identity is verified but the policy lists no approvers")
        keyless = [name for name in approvers if not self.keys.get(name)]
        if keyless:
            raise ValueError(f"approvals.identity is verified: approver(s) {keyless} need at least one key in "
                             "approvals.keys")

    def warning(self) -> str | None:
        """A loud line for banners and logs while identities are only asserted."""
        return None if self.verified else ASSERTED_WARNING

    def warn_once(self, source: str) -> None:
        """Log the asserted-identity warning once per policy file and process (activities reload it often)."""
        warning = self.warning()
        if warning is not None and source not in _WARNED:
            _WARNED.add(source)
            logger.warning("%s: %s", source, warning)
