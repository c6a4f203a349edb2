"""Security fixtures: codec keys, an encrypting dev server of its own, self-signed certificates."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.testing import WorkflowEnvironment

from zerotouch.binaries import temporal_cli
from zerotouch.codec_keys import CodecKeys, new_key_line, parse_keys
from zerotouch.names import SEARCH_ATTRIBUTES
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter

KEY_LINES = [new_key_line("k-new"), new_key_line("k-old")]


@pytest.fixture(scope="session")
def codec_keys() -> CodecKeys:
    """Two keys: ``k-new`` encrypts, both decrypt."""
    return parse_keys("\n".join(KEY_LINES), "test keys")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def encrypted_env(codec_keys: CodecKeys) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of this module's own, every client of it encrypting: its histories hold only ours."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(codec_keys),
        port=free_port(),
        ui=False,
    )
    try:
        yield env
    finally:
        await env.shutdown()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), made with `cryptography`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file
