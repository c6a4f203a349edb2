"""Before the first action, the workload must show the symptom its alert claims (`Runbook.confirm`).

An alert is a claim about a workload. A rule with a wrong selector, a stale series or a
copied threshold fires for workloads with nothing wrong, and acting on it changes something
healthy (raise the memory of a service that was never killed for memory). So a runbook with
``confirm`` looks first: at the pods (``pods``), at Prometheus (``promql``), or both. While the
symptom is absent nothing is done; the incident looks again while the alert fires (after 2 s,
then twice as long each time up to ``recheck``: an alert often arrives just as its symptom
starts), resolves when it clears, and goes to a human after ``give_up_after`` (the rule may be
wrong, which is a person's call, not an action's).

A check that cannot run at all (the API or Prometheus unreachable after the retries) does not
block: the alert is then all there is, as before confirmation existed, and the Governor's bounds
still hold. Its timeline says so.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from zerotouch.durations import format_duration
    from zerotouch.models import PromQLCheck, SymptomCheck
    from zerotouch.runbooks import SymptomConfirmation
    from zerotouch.triage import Triage, render_promql

from workflows.incident import calls
from workflows.incident.state import Incident

# Incidents that started before confirmation existed replay as they ran.
CONFIRM_SYMPTOM_PATCH = "confirm-symptom-before-acting"
FIRST_RECHECK = timedelta(seconds=2)


class SymptomVerdict(enum.Enum):
    CONFIRMED = "confirmed"  # act
    CLEARED = "cleared"  # the alert resolved while nothing was wrong: resolve without action
    STOPPED = "stopped"  # a human aborted or took over while we looked
    UNCONFIRMED = "unconfirmed"  # fired for give_up_after with no symptom: a human decides


class SymptomGate:
    def __init__(self, incident: Incident, triage: Triage, cluster: str) -> None:
        self._incident = incident
        self._triage = triage
        self._cluster = cluster
        self.detail = ""

    async def verdict(self, confirm: SymptomConfirmation) -> SymptomVerdict:
        """Look until the symptom shows, the alert clears, a human steps in, or time runs out."""
        incident = self._incident
        give_up_at = workflow.now() + confirm.give_up_after
        last_detail = ""
        wait = min(FIRST_RECHECK, confirm.recheck)
        while True:
            present, detail = await self._look(confirm)
            if present:
                incident.note("triage", f"symptom confirmed: {detail}")
                return SymptomVerdict.CONFIRMED
            self.detail = detail
            if detail != last_detail:  # one line per change, not one per look
                incident.note("triage", f"{self._triage.target} does not show what the alert claims ({detail}); "
                                        f"not acting, looking again (at least every "
                                        f"{format_duration(confirm.recheck)}) while it fires")
                last_detail = detail
            if workflow.now() >= give_up_at:
                return SymptomVerdict.UNCONFIRMED
            if not await incident.wait_while_firing(wait):
                return SymptomVerdict.STOPPED if incident.human_stepped_in else SymptomVerdict.CLEARED
            wait = min(wait * 2, confirm.recheck)

    async def _look(self, confirm: SymptomConfirmation) -> tuple[bool, str]:
        """Every configured check must see the symptom; a check that cannot run counts as seeing it."""
        triage, findings = self._triage, []
        if confirm.pods is not None and triage.namespace and triage.deployment:
            check = SymptomCheck(namespace=triage.namespace, deployment=triage.deployment, symptom=confirm.pods,
                                 window_seconds=confirm.window.total_seconds())
            try:
                report = await calls.get_workload_symptoms(check, self._cluster)
            except ActivityError as error:
                findings.append(f"the pods could not be read ({error.cause or error}): acting on the alert alone")
            else:
                if not report.present:
                    return False, f"{confirm.pods}: {report.detail}"
                findings.append(report.detail)
        if confirm.promql:
            expression = render_promql(confirm.promql, triage.namespace, triage.deployment)
            try:
                result = await calls.query_promql(PromQLCheck(expression=expression), self._cluster)
            except ActivityError as error:
                findings.append(f"Prometheus could not be asked ({error.cause or error}): acting on the alert alone")
            else:
                if not result.holds:
                    return False, f"confirm.promql: {result.detail}"
                findings.append(f"confirm.promql: {result.detail}")
        return True, "; ".join(findings) or "nothing to check"
