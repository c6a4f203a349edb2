"""Approvers' SSH keys for tests: Ed25519 key pairs as OpenSSH files and public-key lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zerotouch.approval_proofs import ApprovalProof, Wanted
from zerotouch.approval_signing import new_message, sign


@dataclass(frozen=True)
class ApproverKey:
    private: Ed25519PrivateKey
    public_line: str

    @classmethod
    def generate(cls, comment: str) -> ApproverKey:
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        return cls(private, f"{public.decode()} {comment}")

    def write(self, directory: Path, name: str = "id_ed25519") -> Path:
        path = directory / name
        path.write_bytes(self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                    serialization.NoEncryption()))
        path.chmod(0o600)
        (directory / f"{name}.pub").write_text(self.public_line + "\n")
        return path

    def prove(self, wanted: Wanted, *, valid_for: timedelta = timedelta(minutes=10),
              now: datetime | None = None) -> ApprovalProof:
        return sign(new_message(wanted, valid_for=valid_for, now=now or datetime.now(UTC)), self.private)
