"""A local, Kubernetes-API-compatible sandbox cluster with fault injection.

`SandboxCluster` serves enough of the Kubernetes REST API for kubectl and
the official Python client, runs a small controller loop, and can break
workloads on purpose (crashloop, oom, bad-deploy, ...) so remediation can be
exercised without a real cluster.
"""

from .client import (
    actions_via_http,
    clock_via_http,
    fail_node_via_http,
    fail_requests_via_http,
    finish_job_via_http,
    inject_via_http,
    node_provider_via_http,
    node_state_via_http,
    reset_via_http,
)
from .clock import Clock
from .faults import KINDS as FAULT_KINDS
from .server import SandboxCluster

__all__ = [
    "FAULT_KINDS",
    "Clock",
    "SandboxCluster",
    "actions_via_http",
    "clock_via_http",
    "fail_node_via_http",
    "fail_requests_via_http",
    "finish_job_via_http",
    "inject_via_http",
    "node_provider_via_http",
    "node_state_via_http",
    "reset_via_http",
]
