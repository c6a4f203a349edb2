"""Approval proofs without a server: SSHSIG as ssh-keygen makes it, every refusal, the policy's keys."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.security.approval_keys import ApproverKey
from zerotouch import sshsig
from zerotouch.approval_proofs import (
    ApprovalProof,
    ProofRefused,
    Wanted,
    check,
    format_time,
    message_for,
    spend,
)
from zerotouch.approval_signing import SigningError, load_signing_key, proof_from_files, sign
from zerotouch.policy import PolicyError, parse_policy

NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
WANTED = Wanted("incident-web", "req-1", "approve", "alice")
ALICE = ApproverKey.generate("alice@laptop")
MALLORY = ApproverKey.generate("mallory@elsewhere")
# .ci/run installs openssh-client: a missing ssh-keygen fails these tests, as a missing PostgreSQL does.
SSH_KEYGEN = shutil.which("ssh-keygen")


def _check(proof: ApprovalProof | None, *, wanted: Wanted = WANTED, spent: dict[str, datetime] | None = None,
           now: datetime = NOW) -> Any:
    return check(proof, wanted=wanted, keys=[ALICE.public_line], spent=spent or {}, now=now)


def _refused(kind: str, message: str, proof: ApprovalProof | None, **kwargs: Any) -> None:
    with pytest.raises(ProofRefused, match=message) as refused:
        _check(proof, **kwargs)
    assert refused.value.kind == kind


def test_a_proof_by_a_listed_key_is_accepted_once() -> None:
    proof = ALICE.prove(WANTED, now=NOW)
    accepted = _check(proof)
    assert accepted.fingerprint == sshsig.fingerprint(sshsig.parse_public_key(ALICE.public_line))
    spent: dict[str, datetime] = {}
    spend(spent, accepted, NOW)
    _refused("ReplayedProof", "already used", proof, spent=spent)
    # Even re-armored (other line breaks) or re-serialised, the same claim is the same proof.
    rewrapped = proof.model_copy(update={"signature": proof.signature.replace("\n", "\r\n")})
    _refused("ReplayedProof", "already used", rewrapped, spent=spent)


def test_spent_proofs_are_forgotten_once_they_expire() -> None:
    spent: dict[str, datetime] = {}
    spend(spent, _check(ALICE.prove(WANTED, now=NOW)), NOW)
    later = NOW + timedelta(minutes=11)
    spend(spent, _check(ALICE.prove(WANTED, now=later), now=later), later)
    assert len(spent) == 1, "the expired digest was dropped; the new one kept"


@pytest.mark.parametrize(("kind", "message", "make"), [
    ("MissingProof", "approve needs a proof signed by 'alice'", lambda: None),
    ("ForgedProof", r"key SHA256:\S+ is not listed for 'alice'", lambda: MALLORY.prove(WANTED, now=NOW)),
    ("ForgedProof", "does not match the message", lambda: ALICE.prove(WANTED, now=NOW).model_copy(
        update={"message": message_for(Wanted("incident-web", "req-2", "approve", "alice"),
                                       NOW + timedelta(minutes=5), "0123456789abcdef")})),
    ("ForgedProof", "unreadable", lambda: ApprovalProof(message="{}", signature="not a signature")),
    ("ForgedProof", "namespace 'git'", lambda: ApprovalProof(
        message=(m := message_for(WANTED, NOW + timedelta(minutes=5), "0123456789abcdef")),
        signature=sshsig.armor(sshsig.parse_public_key(ALICE.public_line), "git",
                               ALICE.private.sign(sshsig.signed_data(m.encode(), "git")), ), )),
    ("WrongRequest", "request_id 'req-0', not 'req-1'", lambda: ALICE.prove(
        Wanted("incident-web", "req-0", "approve", "alice"), now=NOW)),
    ("WrongRequest", "workflow_id 'incident-db', not 'incident-web'", lambda: ALICE.prove(
        Wanted("incident-db", "req-1", "approve", "alice"), now=NOW)),
    ("WrongRequest", "decision 'request_retry', not 'approve'", lambda: ALICE.prove(
        Wanted("incident-web", "req-1", "request_retry", "alice"), now=NOW)),
    ("WrongRequest", "approver 'bob', not 'alice'", lambda: ALICE.prove(
        Wanted("incident-web", "req-1", "approve", "bob"), now=NOW)),
    ("ExpiredProof", "expired at 2026-11-30T17:59:00Z", lambda: ALICE.prove(
        WANTED, now=NOW - timedelta(minutes=11))),
    ("ExpiredProof", "more than 60 minutes ahead", lambda: ALICE.prove(WANTED, valid_for=timedelta(hours=2),
                                                                        now=NOW)),
    ("WrongRequest", "not a zerotouch approval claim", lambda: sign('{"approve": "everything"}\n', ALICE.private)),
])
def test_refusals_say_what_is_wrong(kind: str, message: str, make: Any) -> None:
    _refused(kind, message, make())


def test_the_claim_is_canonical_json_with_utc_seconds() -> None:
    text = message_for(WANTED, datetime(2026, 11, 30, 19, 0, 0, 999, tzinfo=UTC), "0123456789abcdef")
    assert text.endswith("}\n") and "\n" not in text[:-1]
    claim = json.loads(text)
    assert claim == {"approver": "alice", "decision": "approve", "expires_at": "2026-11-30T19:00:00Z",
                     "nonce": "0123456789abcdef", "request_id": "req-1", "workflow_id": "incident-web",
                     "zerotouch_approval": 1}
    assert format_time(datetime(2026, 11, 30, 20, 0, tzinfo=UTC).astimezone()) == "2026-11-30T20:00:00Z"


def test_ssh_keygen_signatures_verify_and_ours_verify_with_ssh_keygen(tmp_path: Path) -> None:
    assert SSH_KEYGEN is not None
    key_file = tmp_path / "id_ed25519"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", str(key_file)],
                   check=True)
    public_line = (tmp_path / "id_ed25519.pub").read_text().strip()
    now = datetime.now(UTC)
    message = tmp_path / "approval.json"
    message.write_text(message_for(WANTED, now + timedelta(minutes=5), "0123456789abcdef"))

    # Signed by ssh-keygen (as with ssh-agent or a hardware key), verified by us.
    subprocess.run([SSH_KEYGEN, "-Y", "sign", "-n", "zerotouch-approval", "-f", str(key_file), str(message)],
                   check=True, capture_output=True)
    theirs = proof_from_files(tmp_path / "approval.json.sig")
    assert check(theirs, wanted=WANTED, keys=[public_line], spent={}, now=now).fingerprint.startswith("SHA256:")

    # Signed by us from the same key file: byte for byte what ssh-keygen wrote, and ssh-keygen verifies it.
    ours = sign(message.read_text(), load_signing_key(key_file))
    assert ours.signature == theirs.signature
    (tmp_path / "ours.sig").write_text(ours.signature)
    (tmp_path / "allowed_signers").write_text(f"alice {public_line}\n")
    verified = subprocess.run(
        [SSH_KEYGEN, "-Y", "verify", "-f", str(tmp_path / "allowed_signers"), "-I", "alice",
         "-n", "zerotouch-approval", "-s", str(tmp_path / "ours.sig")],
        input=message.read_bytes(), capture_output=True, check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert b'Good "zerotouch-approval" signature for alice' in verified.stdout


def test_key_files_that_cannot_sign_say_why(tmp_path: Path) -> None:
    private = ALICE.write(tmp_path)
    assert isinstance(load_signing_key(private), type(ALICE.private))
    with pytest.raises(SigningError, match=r"not an OpenSSH private key.*not the \.pub file"):
        load_signing_key(tmp_path / "id_ed25519.pub")
    with pytest.raises(SigningError, match="cannot read the key"):
        load_signing_key(tmp_path / "missing")
    assert SSH_KEYGEN is not None
    # An encrypted key: ask for the passphrase (bcrypt, a dependency, decrypts OpenSSH keys).
    encrypted = tmp_path / "locked"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "sesame", "-f", str(encrypted)], check=True)
    with pytest.raises(SigningError, match="encrypted; pass --passphrase-env"):
        load_signing_key(encrypted)
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        with pytest.raises(SigningError, match="needs the bcrypt package; sign with `ssh-keygen -Y sign`"):
            load_signing_key(encrypted, "sesame")
    else:
        assert load_signing_key(encrypted, "sesame")
    rsa_file = tmp_path / "id_rsa"
    rsa_file.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    with pytest.raises(SigningError, match=r"not an Ed25519 key \(RSA\); approvals take an Ed25519 key"):
        load_signing_key(rsa_file)
    with pytest.raises(SigningError, match="pass --message-file"):
        proof_from_files(tmp_path / "id_ed25519")


def _policy(approvals: dict[str, Any]) -> Any:
    return parse_policy({"approvers": {"names": ["alice"], "groups": {"sre": ["bob"]}}, "approvals": approvals})


def test_verified_mode_needs_a_key_for_every_approver() -> None:
    with pytest.raises(PolicyError, match=r"approver\(s\) \['bob'\] need at least one key"):
        _policy({"identity": "verified", "keys": {"alice": [ALICE.public_line]}})
    with pytest.raises(PolicyError, match=r"\['mallory'\] are not approvers"):
        _policy({"keys": {"mallory": [MALLORY.public_line]}})
    with pytest.raises(PolicyError, match="key of 'alice': not an ssh-ed25519 public key"):
        _policy({"keys": {"alice": ["ssh-rsa AAAAB3NzaC1yc2E alice"]}})
    with pytest.raises(PolicyError, match="no approvers"):
        parse_policy({"approvals": {"identity": "verified"}})
    policy = _policy({"identity": "verified", "keys": {"alice": [ALICE.public_line], "bob": [MALLORY.public_line]}})
    assert policy.approvals.verified and policy.approvals.warning() is None


def test_asserted_is_the_default_and_says_so() -> None:
    policy = parse_policy({})
    assert policy.approvals.identity == "asserted"
    assert "ASSERTED" in (policy.approvals.warning() or "")
