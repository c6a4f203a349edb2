"""The watchdog: WatchdogWorkflow pulls the checks no alert may cover, and notices Alertmanager's silence."""

from workflows.watchdog.workflow import WatchdogWorkflow

__all__ = ["WatchdogWorkflow"]
