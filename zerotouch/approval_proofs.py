"""Proof of who approved: an approver's SSH signature over one decision, checked without I/O.

In `verified` mode (the policy's ``approvals.identity``) a decision that loosens something —
approve, request a retry, resume, switch to auto, close a breaker — carries an `ApprovalProof`:
a small JSON claim (which workflow, which request, which decision, who, until when, a nonce)
signed with ``ssh-keygen -Y sign -n zerotouch-approval``. `check` is a pure function of the
proof, the claim the workflow expects, the keys the policy lists for that approver, the
digests already spent and workflow time, so validators call it and replay agrees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zerotouch import sshsig

IdentityMode = Literal["asserted", "verified"]
NAMESPACE = "zerotouch-approval"
MAX_VALIDITY = timedelta(hours=1)
GRANT_GRACE = timedelta(hours=1)  # see check_approved_grant
ASSERTED = "identity asserted, not verified"

# The decisions that loosen something; tightening ones (abort, take over, pause, observe) need no proof.
APPROVE = "approve"
REQUEST_RETRY = "request_retry"
RESUME = "resume"
MODE_AUTO = "mode_auto"
CLOSE_BREAKER = "close_breaker"


class ApprovalProof(BaseModel):
    """The signed claim as sent: `message` exactly as signed, `signature` as `ssh-keygen -Y sign` wrote it."""

    message: str = Field(min_length=1, max_length=4096, description="the claim's JSON, byte for byte as signed")
    signature: str = Field(min_length=1, max_length=8192, description="-----BEGIN SSH SIGNATURE----- ...")


class ApprovalClaim(BaseModel):
    """What an approver signs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zerotouch_approval: Literal[1] = 1
    workflow_id: str
    request_id: str
    decision: str
    approver: str
    expires_at: str = Field(description="UTC, whole seconds: 2026-11-30T19:00:00Z")
    nonce: str = Field(min_length=8, max_length=64)

    def canonical(self) -> bytes:
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class Wanted:
    """The claim a workflow expects for the decision in front of it."""

    workflow_id: str
    request_id: str
    decision: str
    approver: str


@dataclass(frozen=True)
class Accepted:
    """A proof that passed: what to spend, and who signed (for the audit trail)."""

    digest: str
    fingerprint: str
    expires_at: datetime

    def describe(self) -> str:
        return f"identity verified by SSH key {self.fingerprint}"


class ProofRefused(ValueError):
    """A proof that does not prove the decision; ``kind`` is the error type the validator raises."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def claim_for(wanted: Wanted, expires_at: datetime, nonce: str) -> ApprovalClaim:
    return ApprovalClaim(workflow_id=wanted.workflow_id, request_id=wanted.request_id, decision=wanted.decision,
                         approver=wanted.approver, expires_at=format_time(expires_at), nonce=nonce)


def message_for(wanted: Wanted, expires_at: datetime, nonce: str) -> str:
    """The text to sign (one line of canonical JSON and a newline, as a file `ssh-keygen -Y sign` reads)."""
    return claim_for(wanted, expires_at, nonce).canonical().decode() + "\n"


# --- the request each decision is bound to (the CLI computes the same from the status query) ----------


def incident_request(pending_request_id: str | None, attempts: int) -> str:
    """The pending approval's id; a retry asked while nothing is pending binds to the attempt count."""
    return pending_request_id or f"attempt-{attempts}"


def resume_request(paused_until: datetime) -> str:
    return f"pause-until-{format_time(paused_until)}"


def mode_request(current_mode: str) -> str:
    return f"mode-{current_mode}-to-auto"


def breaker_request(runbook: str, opened_at: datetime | None) -> str:
    return f"breaker-{runbook}-opened-{format_time(opened_at) if opened_at else 'unknown'}"


# --- checking ---------------------------------------------------------------------------------------


def check(proof: ApprovalProof | None, *, wanted: Wanted, keys: Sequence[str], spent: Mapping[str, datetime],
          now: datetime) -> Accepted:
    """Accept a proof that the holder of one of `keys` signed exactly `wanted`, unexpired and unused."""
    claim, expires_at, fingerprint = _signed_claim(proof, wanted.approver, wanted.decision, keys)
    for field in ("workflow_id", "request_id", "decision", "approver"):
        signed, expected = getattr(claim, field), getattr(wanted, field)
        if signed != expected:
            raise ProofRefused("WrongRequest", f"the proof is for {field} {signed!r}, not {expected!r}; sign this one")
    if expires_at <= now:
        raise ProofRefused("ExpiredProof", f"the proof expired at {claim.expires_at} (now {format_time(now)}); "
                                      "sign a new one")
    if expires_at - now > MAX_VALIDITY:
        raise ProofRefused("ExpiredProof", f"the proof is valid until {claim.expires_at}, more than "
                                      f"{int(MAX_VALIDITY.total_seconds() // 60)} minutes ahead; sign one that "
                                      "expires sooner")
    return _unspent(claim, fingerprint, expires_at, spent)


def check_approved_grant(proof: ApprovalProof | None, *, incident_id: str, approver: str, keys: Sequence[str],
                         spent: Mapping[str, datetime], now: datetime) -> Accepted:
    """The Governor's own check of an approved grant, against the keys of the workers' policy.

    The incident checked the proof when it accepted the approval, but an incident may run a policy
    pinned by whoever started it; the Governor's keys are the workers' own. It cannot know which
    pending request the proof was for, so it binds the proof to the incident, the decision and the
    approver, spends it on the grant (a refusal spends nothing: the incident asks again after a
    cooldown), and accepts it for GRANT_GRACE after its expiry, the longest wait an approved grant
    may sit in (cooldown, rate limit, blast radius) before it is granted.
    """
    claim, expires_at, fingerprint = _signed_claim(proof, approver, APPROVE, keys)
    if (claim.workflow_id, claim.decision, claim.approver) != (incident_id, APPROVE, approver):
        raise ProofRefused("WrongRequest", f"the proof is for {claim.decision} of {claim.workflow_id!r} by "
                                           f"{claim.approver!r}, not approve of {incident_id!r} by {approver!r}")
    if expires_at + GRANT_GRACE <= now:
        raise ProofRefused("ExpiredProof", f"the approval expired at {claim.expires_at}; approve again")
    return _unspent(claim, fingerprint, expires_at + GRANT_GRACE, spent)


def _signed_claim(proof: ApprovalProof | None, approver: str, decision: str,
                  keys: Sequence[str]) -> tuple[ApprovalClaim, datetime, str]:
    """The claim in `proof`, if one of `keys` signed it; its expiry; the signing key's fingerprint."""
    if proof is None:
        raise ProofRefused("MissingProof", f"{decision} needs a proof signed by {approver!r} (the policy "
                                      "verifies approvers); sign it with --key ~/.ssh/id_ed25519")
    try:
        signature = sshsig.parse(proof.signature)
    except sshsig.SignatureFormatError as error:
        raise ProofRefused("ForgedProof", f"the proof's signature is unreadable: {error}") from None
    if signature.namespace != NAMESPACE:
        raise ProofRefused("ForgedProof", f"the signature is for namespace {signature.namespace!r}, not {NAMESPACE!r}")
    listed = {sshsig.parse_public_key(line) for line in keys}
    if signature.public_key not in listed:
        raise ProofRefused("ForgedProof", f"key {sshsig.fingerprint(signature.public_key)} is not listed for "
                                     f"{approver!r} in the policy's approvals.keys")
    if not sshsig.verifies(signature, proof.message.encode()):
        raise ProofRefused("ForgedProof", "the signature does not match the message: forged or altered")
    try:
        claim = ApprovalClaim.model_validate(json.loads(proof.message))
        expires_at = datetime.fromisoformat(claim.expires_at)
    except (ValueError, ValidationError):
        raise ProofRefused("WrongRequest", "the signed message is not a zerotouch approval claim") from None
    if expires_at.tzinfo is None:
        raise ProofRefused("WrongRequest", "the proof's expires_at has no time zone")
    return claim, expires_at, sshsig.fingerprint(signature.public_key)


def _unspent(claim: ApprovalClaim, fingerprint: str, keep_until: datetime,
             spent: Mapping[str, datetime]) -> Accepted:
    digest = hashlib.sha256(claim.canonical()).hexdigest()
    if digest in spent:
        raise ProofRefused("ReplayedProof", "this proof was already used; a proof approves one decision once")
    return Accepted(digest=digest, fingerprint=fingerprint, expires_at=keep_until)


def spend(spent: dict[str, datetime], accepted: Accepted, now: datetime) -> None:
    """Remember a used proof until it expires (after that `check` refuses it as expired anyway)."""
    if accepted.digest in spent:
        raise ProofRefused("ReplayedProof", "this proof was already used; a proof approves one decision once")
    for digest in [d for d, expires_at in spent.items() if expires_at <= now]:
        del spent[digest]
    spent[accepted.digest] = accepted.expires_at
