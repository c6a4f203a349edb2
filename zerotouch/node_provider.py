"""What zerotouch needs from the infrastructure to bring a drained node back: the provider interface.

The sandbox implements it (`activities/node_provider.py`, the sandbox's provider route); a cloud
provider is future work. A real implementation must:

- map the Kubernetes node name to its machine (the node's ``spec.providerID``: ``aws:///eu-west-1a/i-0abc``,
  ``gce://project/zone/name``, ...) and refuse, non-retryably, a node it does not manage;
- be idempotent by ``key``: the activity may be retried after the call went through, and a retry must
  not reboot the node a second time (remember the key, or read the machine's state before acting);
- return once the request is accepted, not when the node is back: the workflow waits for the node's
  Ready condition itself, bounded by the policy's ``ready_timeout``;
- ``reboot`` keeps the node (same name, same machine); ``replace`` may bring a new machine under the same
  name (a node group replacing an instance); a new name is not followed yet;
- take its credentials from the worker's environment (IAM role, workload identity), never from the
  workflow's input or history;
- raise `ProviderRefused` for what retrying cannot fix (unknown node, no permission) and any other error
  for what may pass (rate limits, the cloud API down).
"""

from __future__ import annotations

from typing import Protocol

from zerotouch.node_recovery_models import ProviderAck, ProviderCall


class ProviderRefused(Exception):
    """The provider will not act on this node (unknown to it, no permission): escalate, do not retry."""


class NodeProvider(Protocol):
    """Reboots or replaces the machine behind a Kubernetes node."""

    def restart(self, call: ProviderCall) -> ProviderAck:
        """Ask for ``call.action`` on ``call.node``, once per ``call.key``; return when it is accepted."""
        ...
