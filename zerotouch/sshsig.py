"""SSH signatures as `ssh-keygen -Y sign` and git make them (OpenSSH's PROTOCOL.sshsig), Ed25519 only.

Pure functions over bytes: parse and armor the ``-----BEGIN SSH SIGNATURE-----`` blob, build the
data a signature covers, verify it. No file, no clock, no network, so a workflow validator may
call them; signing with a private key file is `zerotouch.approval_signing`'s job.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAGIC = b"SSHSIG"
VERSION = 1
KEY_TYPE = "ssh-ed25519"
HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"


class SignatureFormatError(ValueError):
    """Bytes that are not an SSHSIG Ed25519 signature (or an ssh-ed25519 public key)."""


@dataclass(frozen=True)
class SshSignature:
    """The fields of one SSHSIG blob; ``public_key`` is the raw 32-byte Ed25519 key."""

    public_key: bytes
    namespace: str
    hash_algorithm: str
    signature: bytes


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self._at + size > len(self._data):
            raise SignatureFormatError("truncated")
        chunk = self._data[self._at:self._at + size]
        self._at += size
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        try:
            return self.string().decode("ascii")
        except UnicodeDecodeError:
            raise SignatureFormatError("a name that is not ASCII") from None

    def end(self) -> None:
        if self._at != len(self._data):
            raise SignatureFormatError("trailing bytes")


def _ed25519_key(blob: bytes) -> bytes:
    reader = _Reader(blob)
    kind = reader.text()
    if kind != KEY_TYPE:
        raise SignatureFormatError(f"a {kind} key; only {KEY_TYPE} keys are accepted")
    key = reader.string()
    reader.end()
    if len(key) != 32:
        raise SignatureFormatError("an ssh-ed25519 key that is not 32 bytes")
    return key


def public_key_blob(raw: bytes) -> bytes:
    """The SSH wire form of a raw Ed25519 public key."""
    return _string(KEY_TYPE.encode()) + _string(raw)


def parse_public_key(line: str) -> bytes:
    """The raw key of an ``ssh-ed25519 AAAA... comment`` line (as in authorized_keys or a .pub file)."""
    parts = line.split()
    if len(parts) < 2 or parts[0] != KEY_TYPE:
        raise SignatureFormatError(f"not an {KEY_TYPE} public key (expected `{KEY_TYPE} AAAA... comment`)")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise SignatureFormatError("the key's base64 does not decode") from None
    return _ed25519_key(blob)


def fingerprint(raw: bytes) -> str:
    """``SHA256:...`` as `ssh-keygen -l` prints it."""
    digest = base64.b64encode(hashlib.sha256(public_key_blob(raw)).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def parse(armored: str) -> SshSignature:
    """The fields of an armored SSHSIG signature; SignatureFormatError says what is wrong."""
    text = armored.strip()
    if not (text.startswith(BEGIN) and text.endswith(END)):
        raise SignatureFormatError(f"not an armored SSH signature (expected {BEGIN} ... {END})")
    body = "".join(text[len(BEGIN):-len(END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise SignatureFormatError("the signature's base64 does not decode") from None
    reader = _Reader(blob)
    if reader.take(len(MAGIC)) != MAGIC:
        raise SignatureFormatError("no SSHSIG magic")
    if reader.uint32() != VERSION:
        raise SignatureFormatError(f"an SSHSIG version other than {VERSION}")
    key = _ed25519_key(reader.string())
    namespace = reader.text()
    reader.string()  # reserved
    hash_algorithm = reader.text()
    if hash_algorithm not in HASHES:
        raise SignatureFormatError(f"hash {hash_algorithm!r}; expected sha512 or sha256")
    signature_reader = _Reader(reader.string())
    reader.end()
    if signature_reader.text() != KEY_TYPE:
        raise SignatureFormatError(f"a signature that is not {KEY_TYPE}")
    signature = signature_reader.string()
    signature_reader.end()
    if len(signature) != 64:
        raise SignatureFormatError("an Ed25519 signature that is not 64 bytes")
    return SshSignature(public_key=key, namespace=namespace, hash_algorithm=hash_algorithm, signature=signature)


def signed_data(message: bytes, namespace: str, hash_algorithm: str = "sha512") -> bytes:
    """What the key actually signs: the SSHSIG preamble over the message's hash."""
    digest = HASHES[hash_algorithm](message).digest()
    return (MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_algorithm.encode())
            + _string(digest))


def verifies(signature: SshSignature, message: bytes) -> bool:
    """Whether the signature's own key signed `message` in the signature's namespace."""
    data = signed_data(message, signature.namespace, signature.hash_algorithm)
    try:
        Ed25519PublicKey.from_public_bytes(signature.public_key).verify(signature.signature, data)
    except InvalidSignature:
        return False
    return True


def _load_the_failure_type() -> None:
    # cryptography's Rust core imports `cryptography.exceptions` the first time a verification fails.
    # Inside a workflow sandbox that import would be a second, sandboxed copy and abort the process;
    # failing once here, at import (outside any sandbox), makes validators only ever reuse it.
    with contextlib.suppress(InvalidSignature, ValueError):
        Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key().verify(bytes(64), b"")


_load_the_failure_type()


def armor(public_key: bytes, namespace: str, signature: bytes, hash_algorithm: str = "sha512") -> str:
    """The armored SSHSIG text `ssh-keygen -Y sign` writes, for a raw Ed25519 key and signature."""
    blob = (MAGIC + struct.pack(">I", VERSION) + _string(public_key_blob(public_key))
            + _string(namespace.encode()) + _string(b"") + _string(hash_algorithm.encode())
            + _string(_string(KEY_TYPE.encode()) + _string(signature)))
    body = base64.b64encode(blob).decode()
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    return "\n".join([BEGIN, *lines, END]) + "\n"
