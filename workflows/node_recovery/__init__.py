"""NodeRecoveryWorkflow: cordon, drain by eviction, reboot or replace through the provider, uncordon."""

from workflows.node_recovery.workflow import NodeRecoveryWorkflow

__all__ = ["NodeRecoveryWorkflow"]
