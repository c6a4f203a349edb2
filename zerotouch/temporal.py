"""How every zerotouch process talks to Temporal: one data converter, one connect."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from zerotouch.codec import EncryptionCodec
from zerotouch.codec_keys import CodecKeys, keys_from_environment

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"


def data_converter(keys: CodecKeys | None = None, *, keys_file: str | Path | None = None) -> DataConverter:
    """Pydantic models in and out of every workflow, activity, signal and update.

    With codec keys — ``keys``, else ``$ZEROTOUCH_CODEC_KEYS`` / ``$ZEROTOUCH_CODEC_KEYS_FILE``,
    else ``keys_file`` if it exists — every payload is AES-GCM encrypted and failure
    messages and stack traces move into an (encrypted) payload too. Without keys,
    payloads are plain JSON, as before the codec existed.
    """
    keys = keys or keys_from_environment(keys_file)
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(address: str | None = None, namespace: str | None = None, *,
                  keys_file: str | Path | None = None, **options: Any) -> Client:
    """Connect with the project's converter; address and namespace default from the environment.

    ``keys_file`` is the codec keys file to fall back on when the environment names none;
    ``options`` go to `Client.connect` (`zerotouch.telemetry.Telemetry.client_options`).
    """
    return await Client.connect(
        address or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS),
        namespace=namespace or os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE),
        data_converter=data_converter(keys_file=keys_file),
        **options,
    )
