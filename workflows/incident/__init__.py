"""The incident operation: one Alertmanager alert group becomes one durable IncidentWorkflow.

Read `workflow.py` (the lifecycle, `IncidentWorkflow.run`), then `remediation.py` (one attempt:
grant → approval → act → verify). `state.py` owns every transition of the incident's state;
`grant.py` asks the Governor, `ladder.py` pages people on timers, `calls.py` names the activities,
`metrics.py` records what happened.
"""

from workflows.incident.workflow import IncidentWorkflow

__all__ = ["IncidentWorkflow"]
