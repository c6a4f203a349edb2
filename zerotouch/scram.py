"""SCRAM-SHA-256 password verifiers, computed client side as libpq's ``PQencryptPasswordConn`` does.

Setting a role's password to a verifier instead of the password itself keeps the password out of
the server's statement log, `pg_stat_statements` and `pg_stat_activity`: the server stores exactly
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (RFC 5802, RFC 7677) and checks a
login against it. Pure functions; the salt is random unless a test gives one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from base64 import b64encode
from typing import Final

ITERATIONS: Final = 4096  # PostgreSQL's default scram_iterations
SALT_BYTES: Final = 16  # the length libpq generates

# RFC 4013 (SASLprep) prohibited output, plus unassigned code points as for stored strings.
_PROHIBITED: Final = (
    stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22, stringprep.in_table_c3,
    stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
    stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_a1,
)


def saslprep(password: str) -> str:
    """The password as PostgreSQL hashes it: SASLprep-normalised, or unchanged where SASLprep refuses it.

    PostgreSQL (``pg_saslprep``) passes pure ASCII through untouched and, for a password SASLprep
    prohibits, falls back to the raw bytes instead of refusing it; both are mirrored here.
    """
    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    normalized = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not normalized or any(check(c) for c in normalized for check in _PROHIBITED):
        return password
    # RFC 3454 section 6: a string with right-to-left characters must start and end with one and hold no L.
    if any(stringprep.in_table_d1(c) for c in normalized) and (
        any(stringprep.in_table_d2(c) for c in normalized)
        or not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1]))
    ):
        return password
    return normalized


def scram_sha256_verifier(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The ``SCRAM-SHA-256$...`` string PostgreSQL stores for ``password`` (a fresh random salt by default)."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return (f"SCRAM-SHA-256${iterations}:{_b64(salt)}"
            f"${_b64(stored_key)}:{_b64(server_key)}")


def _b64(raw: bytes) -> str:
    return b64encode(raw).decode("ascii")
