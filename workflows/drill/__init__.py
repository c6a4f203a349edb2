"""DrillWorkflow: inject a declared fault, measure what zerotouch did, always take the fault out again."""

from workflows.drill.workflow import DrillWorkflow

__all__ = ["DrillWorkflow"]
