"""New credentials, made inside the activity that stores them and never returned from it."""

from __future__ import annotations

import secrets
import string

from zerotouch.rotations import Generated

_ALPHABETS = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "urlsafe": string.ascii_letters + string.digits + "-_",
}


def generate(spec: Generated) -> str:
    """``spec.length`` characters drawn by the OS's CSPRNG from the declared alphabet."""
    alphabet = _ALPHABETS[spec.alphabet]
    return "".join(secrets.choice(alphabet) for _ in range(spec.length))
