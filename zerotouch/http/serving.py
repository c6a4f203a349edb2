"""Checks every HTTP endpoint of zerotouch (relay, codec) makes before it listens."""

from __future__ import annotations

import ipaddress
from pathlib import Path


def serving_problem(tls_certfile: str | None, tls_keyfile: str | None, max_body_bytes: int) -> str | None:
    """What is wrong with the TLS files or body limit of an HTTP endpoint (relay, codec), if anything."""
    if bool(tls_certfile) != bool(tls_keyfile):
        return "TLS needs both a certificate and a key file (--tls-cert and --tls-key)"
    for path in (tls_certfile, tls_keyfile):
        if path and not Path(path).is_file():
            return f"TLS file {path} does not exist"
    if max_body_bytes <= 0:
        return f"max_body_bytes must be positive, got {max_body_bytes}"
    return None


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``; any name but localhost counts as reachable."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
