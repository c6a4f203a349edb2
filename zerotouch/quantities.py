"""Kubernetes resource quantities (``256Mi``, ``1G``, ``500m``, ``1e3``): the one parser.

The full grammar of Kubernetes' ``resource.Quantity``::

    <quantity>        ::= <signedNumber><suffix>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>   (an integer exponent)
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>

``1E`` is an exa, ``1E3`` a thousand. Spaces around the quantity are ignored (as the API
server does when it decodes JSON), spaces inside it are not. The sandbox cluster uses this
module too (its only import from zerotouch; see the import contracts in pyproject.toml), so
what the sandbox accepts is what zerotouch accepts. Keep it free of other zerotouch imports.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "P": Decimal(10**15), "E": Decimal(10**18),
}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exponent>[+-]?\d+))?"
)
_MAX_EXPONENT = 64  # far beyond any resource; keeps Decimal arithmetic small


def parse_quantity(text: str | int | float) -> Decimal:
    """The exact value of a quantity in base units (bytes, cores, ...); ValueError if it is not one."""
    if isinstance(text, bool):
        raise ValueError(f"bad quantity {text!r}")
    if isinstance(text, int | float):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError(f"bad quantity {text!r}")
        return Decimal(str(text))
    match = _QUANTITY.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"bad quantity {text!r}; use e.g. 256Mi, 1Gi, 500m or 1e3")
    number = Decimal(match.group("number"))
    if match.group("exponent") is not None:
        exponent = int(match.group("exponent"))
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(f"bad quantity {text!r}: exponent out of range")
        return number.scaleb(exponent)
    suffix = match.group("suffix") or ""
    if suffix in BINARY_SUFFIXES:
        return number * BINARY_SUFFIXES[suffix]
    return number * DECIMAL_SUFFIXES[suffix]


def parse_memory(text: str | int) -> int:
    """Bytes in a memory quantity, rounded up to a whole byte as Kubernetes does; ValueError otherwise."""
    try:
        value = parse_quantity(text)
    except ValueError:
        raise ValueError(f"bad memory quantity {text!r}; use e.g. 256Mi or 1Gi") from None
    if value < 0:
        raise ValueError(f"bad memory quantity {text!r}: negative")
    return math.ceil(value)


def format_memory(value: int) -> str:
    """The Mi/Gi spelling Kubernetes users read, exact when possible."""
    for suffix in ("Gi", "Mi", "Ki"):
        if value % BINARY_SUFFIXES[suffix] == 0:
            return f"{value // BINARY_SUFFIXES[suffix]}{suffix}"
    return f"{-(-value // BINARY_SUFFIXES['Mi'])}Mi"
