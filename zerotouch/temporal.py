"""How every zerotouch process talks to Temporal: one data converter, one connect."""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"


def data_converter() -> DataConverter:
    """Pydantic models in and out of every workflow, activity, signal and update."""
    return pydantic_data_converter


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect with the project's converter; address and namespace default from the environment."""
    return await Client.connect(
        address or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS),
        namespace=namespace or os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE),
        data_converter=data_converter(),
    )
