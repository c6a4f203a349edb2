"""Namespace restore: one NamespaceRestoreWorkflow per destination namespace, started by `zerotouch recovery`."""

from workflows.namespace_restore.workflow import NamespaceRestoreWorkflow

__all__ = ["NamespaceRestoreWorkflow"]
