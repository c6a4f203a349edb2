"""Signing approval proofs on the approver's machine: from an OpenSSH key file, or a signature file.

The same bytes `ssh-keygen -Y sign -n zerotouch-approval -f KEY message` produces, so an approver
can sign with ssh-agent or a hardware key through ssh-keygen and pass the ``.sig`` file instead.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zerotouch import sshsig
from zerotouch.approval_proofs import NAMESPACE, ApprovalProof, Wanted, message_for

DEFAULT_VALIDITY = timedelta(minutes=15)


class SigningError(ValueError):
    """A key or signature file that cannot sign or prove; the message says what to do."""


def new_message(wanted: Wanted, *, valid_for: timedelta = DEFAULT_VALIDITY, now: datetime | None = None) -> str:
    """The claim to sign for `wanted`, expiring `valid_for` from now, with a fresh nonce."""
    return message_for(wanted, (now or datetime.now(UTC)) + valid_for, secrets.token_hex(8))


def load_signing_key(path: str | Path, passphrase: str | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from an OpenSSH key file (``~/.ssh/id_ed25519``)."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as error:
        raise SigningError(f"{file}: cannot read the key: {error.strerror}") from None
    try:
        key = serialization.load_ssh_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        raise SigningError(f"{file}: the key is encrypted; pass --passphrase-env, or sign with "
                           "`ssh-keygen -Y sign` (ssh-agent) and --signature-file") from None
    except UnsupportedAlgorithm:  # OpenSSH's bcrypt KDF: `cryptography` needs the optional bcrypt package
        raise SigningError(f"{file}: reading an encrypted OpenSSH key needs the bcrypt package; sign with "
                           "`ssh-keygen -Y sign` (ssh-agent) and --signature-file instead") from None
    except ValueError as error:
        raise SigningError(f"{file}: not an OpenSSH private key ({error}); use ~/.ssh/id_ed25519, "
                           "not the .pub file") from None
    if not isinstance(key, Ed25519PrivateKey):
        kind = type(key).__name__.removesuffix("PrivateKey").removeprefix("_")
        raise SigningError(f"{file}: not an Ed25519 key ({kind}); approvals take an Ed25519 key "
                           "(ssh-keygen -t ed25519)")
    return key


def sign(message: str, key: Ed25519PrivateKey) -> ApprovalProof:
    """Sign `message` exactly as `ssh-keygen -Y sign -n zerotouch-approval` would."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    data = message.encode()
    signature = key.sign(sshsig.signed_data(data, NAMESPACE))
    return ApprovalProof(message=message, signature=sshsig.armor(raw, NAMESPACE, signature))


def proof_from_files(signature_file: str | Path, message_file: str | Path | None = None) -> ApprovalProof:
    """A proof from ssh-keygen's output: ``msg.sig`` and the ``msg`` it signed (default: the name minus .sig)."""
    signature_path = Path(signature_file).expanduser()
    message_path = Path(message_file).expanduser() if message_file else signature_path.with_suffix("")
    if message_file is None and signature_path.suffix != ".sig":
        raise SigningError(f"{signature_path}: pass --message-file (the file ssh-keygen signed)")
    try:
        signature, message = signature_path.read_text(), message_path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise SigningError(f"cannot read the signature or message: {error}") from None
    try:
        sshsig.parse(signature)
    except sshsig.SignatureFormatError as error:
        raise SigningError(f"{signature_path}: {error}") from None
    return ApprovalProof(message=message, signature=signature)
