"""The names of zerotouch's metrics, shared by the code that records them and the dashboard.

Kept free of client libraries so workflows can import it. Names are given as the
instrument names; the Prometheus exporter adds ``_total`` to counters, and
histograms already carry their unit (``_seconds``) in the name.
"""

from __future__ import annotations

# The relay (opentelemetry-sdk meter "zerotouch.relay").
ALERTS_RECEIVED = "zerotouch_alerts_received"  # {status: firing|resolved}
WEBHOOKS = "zerotouch_webhooks"  # {code: HTTP status answered}
DELIVERY_SECONDS = "zerotouch_relay_delivery_seconds"  # webhook arrival → Temporal has every alert
# alerts identical to what their incident was told moments ago, answered without a signal (starters/relay/repeats.py)
ALERTS_ABSORBED = "zerotouch_relay_alerts_absorbed"
ALERTS_TRUNCATED = "zerotouch_alerts_truncated"  # alerts Alertmanager left out of a webhook (max_alerts)
# unix time of the last webhook the relay accepted (its start until one arrives): the watchdog pages on silence
RELAY_LAST_DELIVERY = "zerotouch_relay_last_delivery_timestamp_seconds"

# Incident workflows (Temporal's workflow metric meter; not recorded during replay).
ALERTS_DEDUPLICATED = "zerotouch_alerts_deduplicated"  # a repeat of an alert already firing
ALERTS_SUPPRESSED = "zerotouch_alerts_suppressed"  # {reason: flap|already_resolved}
INCIDENTS_OPENED = "zerotouch_incidents_opened"  # {severity, runbook}
INCIDENTS_CLOSED = "zerotouch_incidents_closed"  # {outcome, handled_by: automation|human}
ACTIONS = "zerotouch_actions"  # {action, result: applied|already_applied|failed}
APPROVALS_REQUESTED = "zerotouch_approvals_requested"
APPROVALS_DECIDED = "zerotouch_approvals_decided"  # {decision: approved|aborted|taken_over|cleared|expired}
APPROVAL_WAIT_SECONDS = "zerotouch_approval_wait_seconds"
MTTD_SECONDS = "zerotouch_mttd_seconds"  # alert startsAt → incident opened
MTTR_SECONDS = "zerotouch_mttr_seconds"  # {handled_by} alert startsAt → verified recovery

# The Governor workflow.
GOVERNOR_DECISIONS = "zerotouch_governor_decisions"  # {code}
GOVERNOR_REFUSALS = "zerotouch_governor_refusals"  # {reason: the decision code}
GOVERNOR_SETTINGS_REFUSED = "zerotouch_governor_settings_refused"  # update_settings not from the policy

# Drills, read off the ledger at scrape (zerotouch/drill_metrics.py); gauges per fault class.
DRILL_LAST_PASSED = "zerotouch_drill_last_passed"  # {fault}: 1 the latest drill met its expectation, 0 it failed
DRILL_MTTR_MEDIAN = "zerotouch_drill_mttr_median_seconds"  # {fault}: p50 recovery of its last passed drills
DRILL_RESILIENCE_SCORE = "zerotouch_drill_resilience_score"  # severity-weighted share of drills passed, 0..1

# Seconds, for incidents that recover in seconds or take a human an hour.
DURATION_BUCKETS_SECONDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 45, 60, 90, 120, 300, 600, 1800, 3600, 14400)
SECONDS_HISTOGRAMS = (DELIVERY_SECONDS, APPROVAL_WAIT_SECONDS, MTTD_SECONDS, MTTR_SECONDS)

# Temporal's SDK latencies (exported in seconds): from a millisecond poll to a minute-long long-poll.
SDK_LATENCY_INSTRUMENTS = "temporal_*latency"
SDK_LATENCY_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
