"""The Governor's decision logic: the single place where an automated action is granted.

Pure (no Temporal, no clock, no I/O): the GovernorWorkflow keeps a `GovernorBook` and calls
these functions with `workflow.now()`; property tests call them with generated times. Every
function that changes the book does so completely or not at all, so a grant's cooldown, rate
slot and in-flight entry can never be recorded apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from zerotouch.approval_proofs import spend
from zerotouch.durations import format_duration
from zerotouch.governor_models import (
    BreakerCloseInput,
    BreakerState,
    DecisionCode,
    DrillOutcomeReport,
    GovernorBook,
    GovernorSettings,
    GrantDecision,
    GrantRecord,
    GrantRequest,
    JournalEntry,
    ModeInput,
    OutcomeReport,
    PauseInput,
    PauseState,
    Refusal,
    ResumeInput,
    TrustRecord,
)
from zerotouch.grant_approval import proven_approval
from zerotouch.policy import EXCLUDED_CLASSES
from zerotouch.scaling import EPSILON, replica_window  # EPSILON: 3 nodes at €4.50 are exactly 90% of €15

RATE_WINDOW = timedelta(seconds=60)
JOURNAL_SIZE = 200
DRILLS_REMEMBERED = 200


def cooldown_key(request: GrantRequest) -> str:
    return f"{request.action}:{request.namespace}/{request.target}"


def trust_key(runbook: str, alert_class: str) -> str:
    return f"{runbook}|{alert_class}"


def paused(book: GovernorBook, now: datetime) -> PauseState | None:
    """The pause in force, if any: it expires by itself at `until`."""
    return book.pause if book.pause is not None and now < book.pause.until else None


def confidence(book: GovernorBook, settings: GovernorSettings, runbook: str, alert_class: str) -> float:
    """Posterior mean of a Beta prior updated with verified successes and failures."""
    record = book.trust.get(trust_key(runbook, alert_class))
    wins, losses = (record.successes, record.failures) if record else (0, 0)
    alpha, beta = settings.trust_prior_successes + wins, settings.trust_prior_failures + losses
    return alpha / (alpha + beta)


def projected_monthly_cost(settings: GovernorSettings, nodes: int, replicas: int) -> float:
    return nodes * settings.cost_per_node + replicas * settings.cost_per_replica


def in_flight(book: GovernorBook, settings: GovernorSettings, now: datetime, namespace: str) -> int:
    horizon = now - settings.in_flight_timeout
    return sum(1 for g in book.in_flight.values() if g.namespace == namespace and g.granted_at > horizon)


def decide(book: GovernorBook, settings: GovernorSettings, request: GrantRequest, now: datetime) -> GrantDecision:
    """Grant or refuse one request, recording a grant's cooldown, rate slot and in-flight entry together.

    A request_id that was granted before returns that same grant (a retried update never takes a
    second one); refusals consume nothing, so asking again with the same id re-decides.
    """
    _forget(book, settings, now)
    earlier = book.granted.get(request.request_id)
    if earlier is not None:
        return earlier
    book.requests_handled += 1
    trust = confidence(book, settings, request.runbook, request.alert_class)
    refusal, proof = proven_approval(book, settings, request, now)
    refusal = refusal or _approval_checks(book, settings, request, now, trust) \
        or _limit_checks(book, settings, request, now)
    replicas, scale_refusal = (None, None) if refusal else _scale(settings, request)
    refusal = refusal or scale_refusal
    notes: list[str] = []
    if refusal is None:
        refusal = _budget(book, settings, request, replicas, now, notes)
    if refusal is not None:
        code, reason, needs_approval, retry = refusal
        return GrantDecision(
            request_id=request.request_id, granted=False, code=code, reason=reason,
            needs_approval=needs_approval, confidence=trust, retry_after_seconds=retry,
            notifications=notes, approved_by=request.approved_by, decided_at=now,
        )
    grant_id = f"grant-{book.next_grant}"
    book.next_grant += 1
    what = f"{request.action} on {request.namespace}/{request.target or '-'}"
    if replicas is not None:
        what += f" to {replicas} replicas" + (f" (asked {request.desired_replicas})"
                                              if replicas != request.desired_replicas else "")
    decision = GrantDecision(
        request_id=request.request_id, granted=True, code="granted", grant_id=grant_id,
        reason=f"granted {what}" + (f", approved by {request.approved_by}" if request.approved_by else ""),
        confidence=trust, granted_replicas=replicas, notifications=notes,
        approved_by=request.approved_by, decided_at=now,
    )
    book.cooldowns[cooldown_key(request)] = now
    book.recent_grants.append(now)
    book.in_flight[grant_id] = GrantRecord(
        grant_id=grant_id, request_id=request.request_id, incident_id=request.incident_id,
        runbook=request.runbook, alert_class=request.alert_class, namespace=request.namespace, granted_at=now,
    )
    book.granted[request.request_id] = decision
    if proof is not None:
        spend(book.spent_proofs, proof, now)
    if request.approved_by:
        _journal(book, now, request.approved_by, "approved action", f"{what} ({request.approval_note or 'no note'})")
    return decision


def _approval_checks(
    book: GovernorBook, settings: GovernorSettings, request: GrantRequest, now: datetime, trust: float
) -> Refusal | None:
    """Checks a human approval satisfies: the approval travels in `approved_by`."""
    approved = request.approved_by is not None
    pause = paused(book, now)
    if pause is not None and not approved:
        left = (pause.until - now).total_seconds()
        return "paused", f"automation paused by {pause.by} for {format_duration(timedelta(seconds=left))} " \
                         f"more: {pause.reason}", False, left
    if book.mode == "observe":
        return "observe", f"observe mode: would run {request.action} on {request.namespace}/{request.target}; " \
                          "nothing executed", False, None
    if approved:
        return None
    if book.mode == "approve-all":
        return "approve_all", "approve-all mode: every action needs a human approval", True, None
    if request.risk_class in EXCLUDED_CLASSES and request.risk_class not in settings.preapproved_classes:
        return "excluded_class", f"{request.risk_class} is excluded from zero-touch; a human must approve", True, None
    if request.risk != "auto":
        return "policy_approval", f"the policy requires approval for {request.action}", True, None
    breaker = book.breakers.get(request.runbook)
    if breaker is not None and breaker.open:
        return "circuit_open", f"breaker for runbook {request.runbook} open after {settings.breaker_failures} " \
            f"failed verifications in {format_duration(settings.breaker_window)}; a human must close it", True, None
    if trust < settings.confidence_threshold - EPSILON:
        return "low_confidence", f"confidence {trust:.2f} in {request.runbook} for {request.alert_class or '-'} " \
                                 f"is below {settings.confidence_threshold:.2f}; a human must approve", True, None
    return None


def _limit_checks(
    book: GovernorBook, settings: GovernorSettings, request: GrantRequest, now: datetime
) -> Refusal | None:
    """Hard limits: no approval lifts them."""
    if request.risk == "never":
        return "forbidden", f"the policy never allows {request.action} ({request.risk_class or 'no class'})", \
            False, None
    last = book.cooldowns.get(cooldown_key(request))
    if last is not None and now < last + settings.target_cooldown:
        left = (last + settings.target_cooldown - now).total_seconds()
        return "cooldown", f"{request.action} ran on {request.namespace}/{request.target} " \
            f"{format_duration(now - last)} ago; the cooldown is {format_duration(settings.target_cooldown)}", \
            False, left
    window = [t for t in book.recent_grants if t > now - RATE_WINDOW]
    if len(window) >= settings.global_rate_per_minute:
        left = (window[-settings.global_rate_per_minute] + RATE_WINDOW - now).total_seconds()
        return "rate_limit", f"{len(window)} actions granted in the last minute; the limit is " \
                             f"{settings.global_rate_per_minute}", False, left
    running = in_flight(book, settings, now, request.namespace)
    if running >= settings.max_in_flight_per_namespace:
        return "blast_radius", f"{running} actions already in flight in namespace {request.namespace}; " \
                               f"the limit is {settings.max_in_flight_per_namespace}", False, None
    return None


def _scale(settings: GovernorSettings, request: GrantRequest) -> tuple[int | None, Refusal | None]:
    """Clamp a replica change into the bounds and one step; refuse only when no move is possible."""
    want, current = request.desired_replicas, request.current_replicas
    low_bound, high_bound = settings.min_replicas, settings.max_replicas
    if want is None:
        return None, None
    if current is None:
        if not low_bound <= want <= high_bound:
            return None, ("replica_bounds", f"{want} replicas is outside {low_bound}..{high_bound}", False, None)
        return want, None
    low, high = replica_window(current, settings)  # from zero, a step is measured from one replica
    if low > high:
        return None, ("replica_bounds", f"at {current} replicas one allowed step reaches {low}..{high}, outside "
                                        f"{low_bound}..{high_bound}; a human must scale", False, None)
    if want == current:
        return None, ("scale_step", f"already at {current} replicas; nothing to scale", False, None)
    got = min(max(want, low), high)
    if (want > current) != (got > current) or got == current:
        code: DecisionCode = "replica_bounds" if not low_bound <= want <= high_bound else "scale_step"
        return None, (code, f"cannot scale from {current} toward {want}: allowed {low}..{high} from here", False, None)
    return got, None


def _budget(
    book: GovernorBook, settings: GovernorSettings, request: GrantRequest, replicas: int | None,
    now: datetime, notes: list[str],
) -> Refusal | None:
    """Scale-ups only: block at the budget, notify each threshold once per month."""
    budget = settings.monthly_budget
    more_replicas = replicas is not None and replicas > (request.current_replicas or 0)
    more_nodes = request.projected_nodes is not None and request.projected_nodes > (request.current_nodes or 0)
    knows_nodes = request.projected_nodes is not None or request.current_nodes is not None
    if budget is None or not (more_replicas or more_nodes) or not (knows_nodes or settings.cost_per_replica):
        return None  # no budget, not a scale-up, or nothing to price it with
    nodes = request.projected_nodes if request.projected_nodes is not None else request.current_nodes or 0
    cost = projected_monthly_cost(settings, nodes, replicas or 0)
    book.last_projected_cost = cost
    share = cost / budget
    month = now.strftime("%Y-%m")
    if book.budget_month != month:
        book.budget_month, book.budget_notified = month, []
    crossed = [t for t in [*sorted(settings.budget_notify_at), settings.budget_block_at] if share + EPSILON >= t]
    for threshold in crossed:
        if threshold not in book.budget_notified:
            book.budget_notified.append(threshold)
            notes.append(f"budget at {threshold:.0%}: projected €{cost:.2f} of €{budget:.2f} this month")
    if share + EPSILON >= settings.budget_block_at:
        return "budget", f"projected monthly cost €{cost:.2f} reaches {share:.0%} of the €{budget:.2f} budget; " \
                         "scale-up blocked", False, None
    return None


def release(book: GovernorBook, settings: GovernorSettings, report: OutcomeReport, now: datetime) -> str:
    """End a grant's flight; a verified outcome earns trust, a failed one costs trust and feeds the breaker."""
    record = book.in_flight.pop(report.grant_id, None)
    if record is None:
        return f"{report.grant_id} is unknown or already released"
    if not report.executed:
        return f"{report.grant_id} released without running"
    key = trust_key(record.runbook, record.alert_class)
    trust = book.trust.setdefault(key, TrustRecord(runbook=record.runbook, alert_class=record.alert_class))
    if report.verified:
        trust.successes += 1
        return f"{report.grant_id} verified"
    trust.failures += 1
    breaker = book.breakers.setdefault(record.runbook, BreakerState())
    breaker.failures = [t for t in breaker.failures if t > now - settings.breaker_window] + [now]
    if not breaker.open and len(breaker.failures) >= settings.breaker_failures:
        breaker.open, breaker.opened_at, breaker.closed_by, breaker.closed_at = True, now, None, None
        _journal(book, now, "zerotouch", "breaker opened", f"runbook {record.runbook}: {report.detail}")
        return f"{report.grant_id} failed; breaker for {record.runbook} opened"
    return f"{report.grant_id} failed verification"


def record_drill(book: GovernorBook, report: DrillOutcomeReport, now: datetime) -> str:
    """A failed drill costs its runbook one failure of trust (phase-66: what cannot be safely tested
    cannot be automated); a passed one adds nothing, its grants earned their trust already."""
    key = trust_key(report.runbook, report.alert_class)
    seen = f"{report.drill_id}|{key}"
    if seen in book.drills_recorded:
        return f"drill {report.drill_id} already recorded for {key}"
    book.drills_recorded = [*book.drills_recorded, seen][-DRILLS_REMEMBERED:]
    if report.passed:
        return f"drill {report.drill_id} passed; trust in {key} unchanged"
    trust = book.trust.setdefault(key, TrustRecord(runbook=report.runbook, alert_class=report.alert_class))
    trust.failures += 1
    _journal(book, now, "zerotouch", "drill failed", f"runbook {report.runbook} for {report.alert_class or '-'}: "
             f"{report.detail or report.drill_id}")
    return f"drill {report.drill_id} failed; trust in {key} lowered"


def pause(book: GovernorBook, request: PauseInput, now: datetime) -> str:
    until = now + timedelta(seconds=request.duration_seconds)
    book.pause = PauseState(until=until, by=request.by, reason=request.reason, since=now)
    _journal(book, now, request.by, "paused", f"until {until.isoformat(timespec='seconds')}: {request.reason}")
    return f"automation paused by {request.by} until {until.isoformat(timespec='seconds')}"


def why_not_resume(book: GovernorBook, now: datetime) -> str | None:
    return None if paused(book, now) else "automation is not paused; nothing to resume"


def resume(book: GovernorBook, request: ResumeInput, now: datetime) -> str:
    book.pause = None
    _journal(book, now, request.by, "resumed", request.note)
    return f"automation resumed by {request.by}"


def expire_pause(book: GovernorBook, now: datetime) -> None:
    if book.pause is not None and now >= book.pause.until:
        _journal(book, now, "zerotouch", "pause expired", f"set by {book.pause.by}: {book.pause.reason}")
        book.pause = None


def set_mode(book: GovernorBook, request: ModeInput, now: datetime) -> str:
    before, book.mode = book.mode, request.mode
    _journal(book, now, request.by, "mode", f"{before} → {request.mode}" + (f": {request.reason}"
                                                                           if request.reason else ""))
    return f"mode {request.mode} (was {before}), set by {request.by}"


def why_not_close(book: GovernorBook, runbook: str) -> str | None:
    breaker = book.breakers.get(runbook)
    return None if breaker is not None and breaker.open else f"the breaker for runbook {runbook!r} is not open"


def close_breaker(book: GovernorBook, request: BreakerCloseInput, now: datetime) -> str:
    breaker = book.breakers[request.runbook]
    breaker.open, breaker.failures, breaker.closed_by, breaker.closed_at = False, [], request.by, now
    _journal(book, now, request.by, "breaker closed", f"runbook {request.runbook}" + (
        f": {request.note}" if request.note else ""))
    return f"breaker for runbook {request.runbook} closed by {request.by}"


def _journal(book: GovernorBook, now: datetime, by: str, what: str, detail: str) -> None:
    book.journal.append(JournalEntry(at=now, by=by, what=what, detail=detail))
    del book.journal[:-JOURNAL_SIZE]


def _forget(book: GovernorBook, settings: GovernorSettings, now: datetime) -> None:
    """Drop what can no longer matter, oldest first, so the book stays small across continue-as-new."""
    while book.recent_grants and book.recent_grants[0] <= now - RATE_WINDOW:
        book.recent_grants.pop(0)
    for key in [k for k, at in book.cooldowns.items() if at + settings.target_cooldown <= now]:
        del book.cooldowns[key]
    horizon = now - settings.idempotency_window
    while book.granted:
        first = next(iter(book.granted))
        if book.granted[first].decided_at > horizon:
            break
        del book.granted[first]
    for grant_id in [g for g, r in book.in_flight.items() if r.granted_at <= horizon]:
        del book.in_flight[grant_id]

