"""The request vault: where a data-subject request's personal data lives, so workflow history never holds it.

Layout under the vault's root (the policy's ``gdpr.storage``, else ``<state dir>/gdpr``), directories
0700 and files 0600, every write atomic (temporary file, fsync, rename):

- ``subjects/<request>.bin``: the subject's identity, written once at intake;
- ``manifests/<request>/<store>.bin``: the row keys resolved before anything is erased, write-once so a
  resumed erasure uses exactly the manifest resolved before the first destructive step;
- ``exports/<request>/<store>.json.bin`` and ``exports/<request>/manifest.json``: the subject's copy and
  its counts and hashes (the only plaintext file here, and it holds no personal data);
- ``suppression.jsonl``: one line per erased subject (pseudonym, request id, time), append-only;
- ``suppressed/<pseudonym>.bin``: that subject's identity, kept so a restore can erase them again.

Encrypted files are ``MAGIC || 96-bit random nonce || AES-256-GCM ciphertext``; the associated data names
the file's kind, request and store, so a file moved to another request or kind fails authentication.

Trade-off, on purpose: an erased subject's identity is kept (encrypted under the vault key, never in clear)
in ``suppressed/``. A backup taken before the erasure brings their rows back on restore, and to erase
someone again you must be able to find them; a pseudonym alone cannot be searched for in a store that
holds raw e-mail addresses. Losing the vault key makes these identities, like everything here, unreadable.

All keys derive from the one configured key by HMAC with a label per purpose: the pseudonym of a subject,
the keyed hash that replaces a pseudonymised field and the encryption key never coincide.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from zerotouch.gdpr_keys import (
    KEY_BYTES,
    KEY_FILE,
    MAKE_KEY,
    VaultConflict,
    VaultCorrupt,
    VaultError,
    VaultKeyMismatch,
    VaultMissing,
    VaultUnavailable,
    canonical_json,
    derive_key,
    field_pseudonym,
    pseudonym,
    vault_key,
)
from zerotouch.gdpr_models import PSEUDONYM, REQUEST_ID, Subject, VaultRef

__all__ = ["KEY_BYTES", "KEY_FILE", "MAKE_KEY", "RequestVault", "VaultConflict", "VaultCorrupt", "VaultError",
           "VaultKeyMismatch", "VaultMissing", "VaultUnavailable", "canonical_json", "field_pseudonym", "pseudonym",
           "vault_key"]

NONCE_BYTES = 12
MAGIC = b"ZTGDPR1\x00"
_AD_PREFIX = b"zerotouch-gdpr-vault/v1\x00"
_STORE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
_SUPPRESSION = "suppression.jsonl"
_KEY_CHECK = "key-check"


def _export_default(value: Any) -> Any:
    # An export is a copy for a person to read: dates and decimals as text is what they need.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class RequestVault:
    """Encrypted, write-once-where-it-matters files for data-subject requests, under one directory."""

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise VaultUnavailable(f"the vault key is {len(key)} bytes, not {KEY_BYTES}")
        self.root = Path(root)
        self._pseudonym_key = key
        self._cipher = AESGCM(derive_key(key, b"encryption"))
        self._mkdir(self.root)
        check = hmac.new(derive_key(key, b"key-check"), b"vault", hashlib.sha256).hexdigest().encode()
        # A wrong key is refused once, at open, instead of as "corrupt" on every file read later.
        if self._create_once(self.root / _KEY_CHECK, check) != check:
            raise VaultKeyMismatch(f"the request vault in {self.root} was created with a different key; "
                                   "configure the key it was created with")

    @classmethod
    def open(cls, ref: VaultRef, state_dir: Path, environ: Mapping[str, str] = os.environ) -> RequestVault:
        """The vault a policy names, with its key from the environment (or, for `zerotouch up` and the CLI
        beside it, from the state directory's `gdpr-key` file that `up` makes)."""
        root = Path(ref.storage).expanduser() if ref.storage else Path(state_dir) / "gdpr"
        key = vault_key(environ, ref.key_env, fallback=Path(state_dir) / KEY_FILE)
        try:
            return cls(root, key)
        except VaultKeyMismatch as error:
            raise VaultKeyMismatch(f"{error} (the key comes from {ref.key_env})") from None

    def field_pseudonym(self, value: str) -> str:
        """The keyed hash that replaces a pseudonymised field's value, under this vault's key."""
        return field_pseudonym(self._pseudonym_key, value)

    def record_subject(self, request_id: str, subject: Subject) -> str:
        """Keep the request's subject (once; the same subject again is a no-op); returns its pseudonym."""
        path = self._dir("subjects") / f"{_request(request_id)}.bin"
        plain = canonical_json(subject.model_dump(mode="json"))
        sealed = self._create_once(path, self._seal(plain, "subject", request_id))
        if self._open_file(path, sealed, "subject", request_id) != plain:
            raise VaultConflict(f"request {request_id} already names a different subject; a request id names "
                                "one subject, file a new request for another")
        return pseudonym(self._pseudonym_key, subject)

    def subject(self, request_id: str) -> Subject:
        """The request's subject, as recorded at intake."""
        path = self.root / "subjects" / f"{_request(request_id)}.bin"
        return self._subject(self._read(path, "subject", request_id, f"no subject recorded for {request_id}"),
                             path)

    def write_manifest(self, request_id: str, store_name: str, manifest: dict[str, list[Any]]) -> str:
        """Keep a store's resolved row keys (write-once); returns the sha256 of their canonical JSON."""
        try:
            plain = canonical_json(manifest)
        except TypeError:
            raise TypeError(f"manifest for {store_name}: row keys must be JSON values (str, int, ...)") from None
        path = self._dir("manifests", _request(request_id)) / f"{_store(store_name)}.bin"
        sealed = self._create_once(path, self._seal(plain, "manifest", request_id, store_name))
        kept = self._open_file(path, sealed, "manifest", request_id, store_name)
        if kept != plain:
            raise VaultConflict(
                f"request {request_id} already has a manifest for {store_name} (sha256 {_sha256(kept)}); refusing "
                f"to replace it with another ({_sha256(plain)}): a resumed erasure uses the first one")
        return _sha256(plain)

    def manifest(self, request_id: str, store_name: str) -> dict[str, list[Any]] | None:
        """A store's manifest for the request, or None if it was never resolved."""
        path = self.root / "manifests" / _request(request_id) / f"{_store(store_name)}.bin"
        try:
            plain = self._read(path, "manifest", request_id, "", store_name)
        except VaultMissing:
            return None
        return cast(dict[str, list[Any]], self._json(plain, path))

    def write_export(self, request_id: str, store_name: str, rows: dict[str, list[dict[str, Any]]]) -> tuple[str, str]:
        """Write a store's export, encrypted; returns (path, sha256 of its plaintext canonical JSON)."""
        plain = canonical_json(rows, _export_default)
        path = self._dir("exports", _request(request_id)) / f"{_store(store_name)}.json.bin"
        self._write(path, self._seal(plain, "export", request_id, store_name))
        return str(path), _sha256(plain)

    def read_export(self, path: str) -> dict[str, list[dict[str, Any]]]:
        """Decrypt an export written by `write_export` (its request and store come from where it lies)."""
        file = Path(path)
        store_name = file.name.removesuffix(".json.bin")
        plain = self._read(file, "export", file.parent.name, f"no export at {file}", store_name)
        return cast(dict[str, list[dict[str, Any]]], self._json(plain, file))

    def write_export_manifest(self, request_id: str, entries: dict[str, dict[str, Any]]) -> tuple[str, str]:
        """Write the exports' counts and hashes per store, in clear; returns (path, sha256 of its bytes)."""
        data = canonical_json({"request_id": request_id, "stores": entries})
        path = self._dir("exports", _request(request_id)) / "manifest.json"
        self._write(path, data)
        return str(path), _sha256(data)

    def suppress(self, subject_pseudonym: str, request_id: str, *, at: datetime | None = None) -> None:
        """Add an erased subject to the suppression list (once), keeping their identity encrypted."""
        if not re.match(PSEUDONYM, subject_pseudonym):
            raise ValueError("a subject pseudonym is 64 lowercase hex characters")
        subject = self.subject(request_id)
        if pseudonym(self._pseudonym_key, subject) != subject_pseudonym:
            raise VaultConflict(f"pseudonym {subject_pseudonym} is not the subject of request {request_id}")
        plain = canonical_json(subject.model_dump(mode="json"))
        path = self._dir("suppressed") / f"{subject_pseudonym}.bin"
        sealed = self._seal(plain, "suppressed", subject_pseudonym)
        kept = self._subject(self._open_file(path, self._create_once(path, sealed), "suppressed", subject_pseudonym),
                             path)
        if kept.user_id is None and subject.user_id is not None:
            self._write(path, sealed)  # same e-mail, now with a user id: keep the identity that finds more rows
        line = canonical_json({"pseudonym": subject_pseudonym, "request_id": request_id,
                               "at": (at or datetime.now(UTC)).isoformat()}) + b"\n"
        with self._suppression_locked() as handle:
            if subject_pseudonym not in self._suppressed_lines(handle):
                os.write(handle, line)
                os.fsync(handle)

    def suppressed(self) -> list[str]:
        """Erased subjects' pseudonyms, in the order they were erased."""
        with self._suppression_locked() as handle:
            return list(dict.fromkeys(self._suppressed_lines(handle)))

    def suppressed_subjects(self) -> list[Subject]:
        """Erased subjects' identities, to erase again after a restore brought their rows back."""
        subjects = []
        for name in self.suppressed():
            path = self.root / "suppressed" / f"{name}.bin"
            subject = self._subject(self._read(path, "suppressed", name, f"no identity kept for {name}"), path)
            if pseudonym(self._pseudonym_key, subject) != name:
                raise VaultCorrupt(f"{path} holds an identity whose pseudonym is not {name}")
            subjects.append(subject)
        return subjects

    @contextlib.contextmanager
    def _suppression_locked(self) -> Iterator[int]:
        path = self.root / _SUPPRESSION
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as error:
            raise VaultUnavailable(f"cannot open {path}: {error.strerror}") from None
        try:
            # Concurrent activities erase different requests; the lock keeps check-then-append whole.
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield handle
        finally:
            os.close(handle)

    def _suppressed_lines(self, handle: int) -> list[str]:
        data = b""
        os.lseek(handle, 0, os.SEEK_SET)
        while chunk := os.read(handle, 1 << 16):
            data += chunk
        complete, _, torn = data.rpartition(b"\n")
        if torn:
            # A line without its newline was never fsynced and acknowledged: its suppress call is retried.
            os.ftruncate(handle, len(complete) + 1 if complete else 0)
        names = []
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                names.append(str(json.loads(line)["pseudonym"]))
            except (ValueError, KeyError, TypeError):
                raise VaultCorrupt(f"{self.root / _SUPPRESSION} line {number} is not a suppression entry") from None
        return names

    def _associated(self, kind: str, request_id: str, store_name: str) -> bytes:
        return _AD_PREFIX + "\x00".join((kind, request_id, store_name)).encode()

    def _seal(self, plain: bytes, kind: str, request_id: str, store_name: str = "") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self._cipher.encrypt(nonce, plain, self._associated(kind, request_id, store_name))

    def _open_file(self, path: Path, sealed: bytes, kind: str, request_id: str, store_name: str = "") -> bytes:
        body = sealed[len(MAGIC):]
        if not sealed.startswith(MAGIC) or len(body) <= NONCE_BYTES:
            raise VaultCorrupt(f"{path} is not a request vault file (truncated or overwritten)")
        try:
            return self._cipher.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:],
                                        self._associated(kind, request_id, store_name))
        except InvalidTag:
            raise VaultCorrupt(f"{path} failed authentication: altered, moved from another request, "
                               "or encrypted under another key") from None

    def _read(self, path: Path, kind: str, request_id: str, missing: str, store_name: str = "") -> bytes:
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise VaultMissing(missing or f"nothing at {path}") from None
        except OSError as error:
            raise VaultUnavailable(f"cannot read {path}: {error.strerror}") from None
        return self._open_file(path, sealed, kind, request_id, store_name)

    def _json(self, plain: bytes, path: Path) -> Any:
        try:
            return json.loads(plain)
        except ValueError:
            raise VaultCorrupt(f"{path} does not hold JSON") from None

    def _subject(self, plain: bytes, path: Path) -> Subject:
        try:
            return Subject.model_validate_json(plain)
        except ValidationError:
            raise VaultCorrupt(f"{path} does not hold a subject") from None

    def _mkdir(self, directory: Path) -> None:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)  # an existing directory is tightened too: everything here is personal
        except OSError as error:
            raise VaultUnavailable(f"cannot use the request vault directory {directory}: {error.strerror}") from None

    def _dir(self, *parts: str) -> Path:
        directory = self.root
        for part in parts:  # one by one: parents made by mkdir(parents=True) would get the umask's mode
            directory = directory / part
            self._mkdir(directory)
        return directory

    def _temporary(self, path: Path, data: bytes) -> Path:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise VaultUnavailable(f"cannot write in {path.parent}: {error.strerror}") from None
        return temporary

    def _write(self, path: Path, data: bytes) -> None:
        temporary = self._temporary(path, data)
        os.replace(temporary, path)
        _fsync_directory(path.parent)

    def _create_once(self, path: Path, data: bytes) -> bytes:
        """Write ``data`` at ``path`` unless something is there; returns what ``path`` holds."""
        temporary = self._temporary(path, data)
        try:
            os.link(temporary, path)  # atomic and refuses to replace: concurrent writers agree on one file
        except FileExistsError:
            return path.read_bytes()
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(path.parent)
        return data


def _request(request_id: str) -> str:
    if not re.match(REQUEST_ID, request_id):
        raise ValueError(f"request id {request_id!r} is not 3-63 lowercase letters, digits and dashes")
    return request_id


def _store(store_name: str) -> str:
    if not _STORE.match(store_name):
        raise ValueError(f"store name {store_name!r} is not a policy store name")
    return store_name
