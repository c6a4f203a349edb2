"""Scenario 9's report: what one PostgreSQL round and the wave measured, and the section BENCHMARKS.md shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bench.report import Goal, Section
from bench.stats import percentile

TITLE = "9. Secret rotation"
RATE = 600  # global_rate_per_minute: far above what the wave asks, so the blast radius is the bound that binds
# The rotation's timeline marks that bound each part of a PostgreSQL round, in order.
SPLITS = (("up to finish (Governor, create, set, test, finish)", "started", "finished"),
          ("consumer rollout wait (rolled, healthy 5 s)", "finished", "moved"),
          ("unused wait (no session of the old role)", "moved", "unused"),
          ("revoke (NOLOGIN, marked revoked)", "unused", "revoked"))


@dataclass
class Round:
    number: int
    seconds: float  # client: start_workflow called → result returned
    outcome: str
    marks: dict[str, datetime]  # the first timeline entry of each kind
    wrong: list[str] = field(default_factory=list)

    def split(self, begin: str, end: str) -> float:
        return (self.marks[end] - self.marks[begin]).total_seconds()


@dataclass
class Wave:
    size: int
    namespaces: int
    blast_radius: int
    drain_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    flights: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)  # (granted, outcome reported)
    grants: list[datetime] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    governor_waits: list[float] = field(default_factory=list)
    refusals: int = 0
    wrong: list[str] = field(default_factory=list)
    samples: int = 0
    governor_rate: int = 0
    governor_in_flight: dict[str, int] = field(default_factory=dict)

    def concurrent(self) -> dict[str, int]:
        """Per namespace, the most rotations between their grant and their outcome report at one instant."""
        found = {}
        for namespace, spans in self.flights.items():
            # an end sorts before a start at the same instant: a slot freed and taken is not two at once
            edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
            running = peak = 0
            for _, step in edges:
                running += step
                peak = max(peak, running)
            found[namespace] = peak
        return found

    def flight_seconds(self) -> list[float]:
        return [(b - a).total_seconds() for spans in self.flights.values() for a, b in spans]

    def slot_use(self) -> float:
        """The share of the blast radius's slots (bound * namespaces * drain time) that rotations used."""
        return sum(self.flight_seconds()) / max(self.blast_radius * self.namespaces * self.drain_seconds, 0.001)

    def busiest_minute(self) -> int:
        """The most grants inside any 60 s window."""
        times = sorted(self.grants)
        return max((sum(1 for t in times[i:] if t < start + timedelta(minutes=1)) for i, start in enumerate(times)),
                   default=0)


def _p(values: list[float]) -> tuple[str, str]:
    if not values:
        return "n/a", "n/a"
    return f"{percentile(values, 50):.1f} s", f"{max(values):.1f} s"


def section(rounds: list[Round], wave: Wave, server: str) -> Section:
    rotated = [r for r in rounds if r.outcome == "rotated"]
    table = [["PostgreSQL rotation (alternating roles)", "p50", "max"],
             ["start → result `rotated` (client)", *_p([r.seconds for r in rotated])]]
    table += [[name, *_p([r.split(a, b) for r in rotated])] for name, a, b in SPLITS]
    concurrent, minute = wave.concurrent(), wave.busiest_minute()
    held = max(concurrent.values(), default=0) <= wave.blast_radius \
        and max(wave.governor_in_flight.values(), default=0) <= wave.blast_radius
    ok = wave.outcomes.get("rotated", 0)
    per_ns = ", ".join(f"{n} {c}" for n, c in sorted(concurrent.items()))
    seen = ", ".join(f"{n} {c}" for n, c in sorted(wave.governor_in_flight.items()))
    waves = [["wave", "measured"],
             ["secrets (Kubernetes-only, one consumer Deployment each)", f"{wave.size} in {wave.namespaces} "
                                                                         f"namespaces, all started at once"],
             ["drain: first start → last result", f"{wave.drain_seconds:.1f} s "
                                                  f"({60 * ok / max(wave.drain_seconds, 0.001):.0f} rotated/min)"],
             ["outcomes", ", ".join(f"{k} {v}" for k, v in sorted(wave.outcomes.items()))],
             ["one rotation, start → close", "p50 {} / max {}".format(*_p(wave.durations))],
             ["of which waiting for the Governor's grant", "p50 {} / max {}".format(*_p(wave.governor_waits))],
             ["of which in flight: grant → outcome report", "p50 {} / max {}".format(*_p(wave.flight_seconds()))],
             ["Governor refusals waited out (blast radius or rate; asked again after 5 s)", str(wave.refusals)],
             [f"blast-radius slots in use ({wave.blast_radius} per namespace * {wave.namespaces} * drain)",
              f"{wave.slot_use():.0%}"],
             [f"most in flight per namespace at once, histories (bound {wave.blast_radius})", per_ns],
             [f"most in flight per namespace, Governor's status ({wave.samples} samples, 5/s)", seen or "none seen"],
             [f"most grants in any 60 s window (bound {RATE}/min)",
              f"{minute} (histories); Governor's window at most {wave.governor_rate}"]]
    pg_ok = len(rotated) == len(rounds) and not any(r.wrong for r in rounds)
    goals = [
        Goal("PostgreSQL: every rotation ended rotated, consumer moved, old login revoked", pg_ok,
             f"{len(rotated)}/{len(rounds)}" + ("" if pg_ok else "; " + "; ".join(w for r in rounds for w in r.wrong))),
        Goal(f"wave: all {wave.size} ended rotated, every consumer moved", ok == wave.size and not wave.wrong,
             f"{ok}/{wave.size}" + ("; " + "; ".join(wave.wrong[:3]) if wave.wrong else "")),
        Goal(f"wave: in flight per namespace never above the blast radius ({wave.blast_radius})", held,
             f"max {max(concurrent.values(), default=0)} (histories), "
             f"{max(wave.governor_in_flight.values(), default=0)} (Governor)"),
        Goal(f"wave: grants never above the global rate ({RATE}/min)", minute <= RATE and wave.governor_rate <= RATE,
             f"at most {minute} in 60 s"),
        Goal("PostgreSQL rotation start → rotated p50 (no bar)", None,
             f"{_p([r.seconds for r in rotated])[0]} over {len(rounds)} rounds"),
        Goal(f"wave of {wave.size}: drain time (no bar)", None, f"{wave.drain_seconds:.1f} s"),
    ]
    how = (f"One `zerotouch worker` process, the dev server and the sandbox (controller tick 0.2 s), as the other "
           f"scenarios start them; no relay. The policy is the bench policy with credential rotation pre-approved "
           f"and automatic (`preapproved_classes` + `credential_rotation`, `risk.credential_rotation: auto`), "
           f"target cooldown 1 s (one Secret is rotated round after round), and for the wave "
           f"`guardrails.max_in_flight_per_namespace: {wave.blast_radius}` (fewer than each namespace's share of "
           f"the wave, so the bound binds) and `global_rate_per_minute: {RATE}`; every rotation has "
           f"`verify: poll 500ms, rollout_timeout 60s, unused_timeout 60s`. "
           f"**PostgreSQL:** the demo database of `zerotouch up` (`embedded/demo_database.py`, PostgreSQL {server}, "
           f"password logins over TCP), roles `checkout_a`/`checkout_b` (alternating) in group `checkout`; the "
           f"sandbox's `shop/checkout` (2 replicas) reads `shop/checkout-db`. {len(rounds)} rotations one after "
           f"another, each from `start_workflow` to its result; the split is the rotation's own timeline (status "
           f"query: started → finished → moved → unused → revoked). After each round the Secret holds the other "
           f"role, a login with it works, the old role cannot log in and `shop/checkout` is pinned to the new "
           f"version. **Wave:** {wave.size} `target.kind: kubernetes` rotations, each its own Secret and consumer "
           f"Deployment, in {wave.namespaces} namespaces, started at once. In flight = from the completion of the "
           f"granting `request_grant` to the outcome signal to the Governor, from each rotation's history (inside "
           f"the Governor's own grant → release span); the Governor's status query is sampled alongside. "
           f"Reproduce: `python -m bench --only rotation`.")
    notes = []
    if wave.flights:
        share = -(-wave.size // wave.namespaces)
        flight = percentile(wave.flight_seconds(), 50)
        notes.append(
            f"The wave's drain is bound by the blast radius: {share} rotations per namespace through "
            f"{wave.blast_radius} slots of {flight:.1f} s (p50 in flight) is about "
            f"{-(-share // wave.blast_radius) * flight:.0f} s; {wave.slot_use():.0%} of the slots were in use because "
            f"a rotation refused for the blast radius asks again after a fixed 5 s "
            f"(`workflows/secret_rotation/governor.py` `_DEFAULT_WAIT`: the Governor gives no `retry_after_seconds` "
            f"for `blast_radius`), so a freed slot waits up to 5 s for its next taker.")
    return Section(title=TITLE, how=how, table=table, goals=goals, notes=notes, more=[("The wave:", waves)],
                   data={"rounds": len(rounds), "wave": wave.size})
