"""Scenario 10's report: what the data-subject requests and the retention loops measured, and the section."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.report import Goal, Section
from bench.stats import percentile

TITLE = "10. GDPR: data-subject requests and retention at a million rows"
STORES = (("shop-db", "PostgreSQL"), ("events", "MongoDB (mongomock)"))
# (row label, request kind, activity) — each activity's span from its history, per store.
STEPS = (("resolve the manifest", "access", "resolve_subject"), ("export", "access", "export_subject"),
         ("resolve the manifest", "erasure", "resolve_subject"), ("erase", "erasure", "erase_subject"),
         ("re-query (proof)", "erasure", "requery_subject"))

FLOORS = {"access": "write_export_manifest", "erasure": "suppress_subject"}


@dataclass
class Sizes:
    customers: int
    orders: int
    events: int
    subjects: int
    retention_rows: int  # per retention table, all of them expired
    recent_rows: int  # per retention table, not expired: must survive


@dataclass
class Request:
    kind: str
    outcome: str
    seconds: float  # client: subject recorded in the vault → receipt returned
    spans: dict[tuple[str, str], float]  # (activity, store) → scheduled → completed, seconds
    queued: list[float] = field(default_factory=list)  # each store step's scheduled → started, seconds
    wrong: list[str] = field(default_factory=list)


@dataclass
class Expiry:
    batch: int
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    count: int = 0  # the dry run's count (capped)
    count_seconds: float = 0.0
    left_expired: int = -1
    left_recent: int = -1


@dataclass
class Run:
    sizes: Sizes
    server: str
    load_seconds: float
    mongo_seconds: float
    requests: list[Request] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)  # what changed that should not have
    expiries: list[Expiry] = field(default_factory=list)
    direct: dict[str, list[float]] = field(default_factory=dict)  # PostgresSubjects alone: step → seconds
    leftover: int = -1  # the subjects' rows found afterwards by the bench's own queries
    count_cap: int = 0


def _p(values: list[float], digits: int = 2) -> list[str]:
    if not values:
        return ["n/a", "n/a"]
    return [f"{percentile(values, 50):.{digits}f} s", f"{max(values):.{digits}f} s"]


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "n/a"


def section(run: Run) -> Section:
    s = run.sizes
    table = [["one subject, through the workflow", "store", f"p50 (N={s.subjects})", "max"]]
    for kind in ("access", "erasure"):
        done = [r for r in run.requests if r.kind == kind]
        table.append([f"**{kind}**: intake → receipt (client)", "both", *_p([r.seconds for r in done])])
        for label, step_kind, activity in STEPS:
            if step_kind != kind:
                continue
            for store, engine in STORES:
                spans = [r.spans[(activity, store)] for r in done if (activity, store) in r.spans]
                table.append([f"{kind}: {label}", engine, *_p(spans)])
        floor = [r.spans[(FLOORS[kind], "")] for r in done if (FLOORS[kind], "") in r.spans]
        table.append([f"{kind}: for scale, `{FLOORS[kind]}` (one small vault file)", "—", *_p(floor)])
    table += [[f"engine alone, another subject: {step}", "PostgreSQL", *_p(times, digits=3)]
              for step, times in run.direct.items()]
    retention = [["retention (PostgresSubjects.expire in a loop)", "batch 1000", "batch 10000"]]
    by = {e.batch: e for e in run.expiries}
    pair = [by.get(1000), by.get(10000)]

    def row(label: str, value: Callable[[Expiry], str]) -> list[str]:
        return [label, *(value(e) if e else "n/a" for e in pair)]

    retention += [
        row("expired rows erased", lambda e: f"{e.rows:,} in {e.batches:,} batches"),
        row("wall time", lambda e: f"{e.seconds:.1f} s"),
        row("**rows per second**", lambda e: _rate(e.rows, e.seconds)),
        row("per batch (mean)", lambda e: f"{1000 * e.seconds / max(e.batches, 1):.1f} ms"),
        row(f"dry-run count (capped at {run.count_cap:,}, as `count_expired_rows`)",
            lambda e: f"{e.count:,} in {1000 * e.count_seconds:.0f} ms"),
        row("left afterwards: expired / recent", lambda e: f"{e.left_expired} / {e.left_recent:,}"),
    ]
    complete = [r for r in run.requests if r.outcome == "complete" and not r.wrong]
    wrong = [w for r in run.requests for w in r.wrong]
    expiry_ok = bool(run.expiries) and all(e.left_expired == 0 and e.left_recent == s.recent_rows
                                           and e.rows == s.retention_rows for e in run.expiries)
    erasures = [r for r in run.requests if r.kind == "erasure"]
    goals = [
        Goal(f"every request complete; the export held exactly the subject's rows and each subject was erased "
             f"everywhere (re-query 0, the bench's own queries 0), {s.subjects} subject(s)",
             len(complete) == 2 * s.subjects and run.leftover == 0,
             f"{len(complete)}/{2 * s.subjects} requests, {run.leftover} row(s) left"
             + ("; " + "; ".join(wrong[:3]) if wrong else "")),
        Goal("other subjects' rows untouched (both stores, counts and key sums)", not run.untouched,
             "; ".join(run.untouched[:3]) or "unchanged"),
        Goal("retention: every expired row erased, recent rows untouched", expiry_ok,
             ", ".join(f"batch {e.batch}: {e.left_expired} expired / {e.left_recent} recent left"
                       for e in run.expiries)),
        Goal(f"erasure intake → receipt p50 at {s.orders:,} orders (no bar)", None,
             _p([r.seconds for r in erasures])[0]),
        Goal("retention throughput, batch 1000 / 10000 (no bar)", None,
             " / ".join(f"{_rate(e.rows, e.seconds)} rows/s" for e in run.expiries)),
    ]
    how = (f"A PostgreSQL {run.server} server of its own (initdb, default settings: fsync on, shared_buffers "
           f"128 MB), a database with `customers` ({s.customers:,} rows, index on `lower(email)`) and `orders` "
           f"({s.orders:,} rows, 10 per customer, index on `customer_id`), loaded with `generate_series` in "
           f"{run.load_seconds:.0f} s; the MongoDB store is **mongomock** (in memory, not a server: a pure-Python "
           f"scan, so its figures say nothing about a MongoDB server), an `events` collection of {s.events:,} "
           f"documents (3 per subject), filled in {run.mongo_seconds:.0f} s. The data map: `customers` by e-mail, "
           f"`orders` through `customer_id`, `events` by `user.email`; delete everywhere. The real "
           f"DataSubjectRequestWorkflow on a dev server (the embedded default's command), with zerotouch's workers "
           f"**in the bench process** as `tests/gdpr/test_dsr_end_to_end.py` runs them (`build_workers` for the "
           f"workflows and observe queues, the data queue with `GdprActivities` over `PostgresSubjects` and "
           f"`MongoSubjects`): mongomock cannot be shared with a `zerotouch worker` process, so an in-process data "
           f"worker is the honest choice; the bench's own client shares its GIL. Policy: the bench policy with a "
           f"`gdpr:` section, `grace: 1s`, the request vault and ledger on local disk. Per subject (one row in "
           f"`customers`, 10 `orders`, 3 `events`), an access request then an erasure request, each filed as a "
           f"portal would (identity into the vault, the pseudonym into the workflow) and approved by a second "
           f"approver through the `approve` update as soon as the status says `awaiting_approval` (polled every "
           f"50 ms). Intake → receipt is the client's time from the vault write to the receipt (the erasure's "
           f"includes the 1 s grace and the Governor's grant); the steps are each activity's scheduled → completed "
           f"span in the workflow's history (the two stores run side by side; a span includes the dispatch to the "
           f"worker, so the small vault write after each request is shown for scale). The last rows call "
           f"`PostgresSubjects` directly for {s.subjects} other subject(s) before the requests (no workflow, vault "
           f"or mongomock beside it): the database's own share. Retention: two tables of "
           f"{s.retention_rows:,} expired rows plus {s.recent_rows:,} recent ones each (index on `created_at`), "
           f"`PostgresSubjects.expire` called in a loop until it returns 0, batch 1000 on one and 10000 on the "
           f"other, in the same run, after a dry-run count. Reproduce: `python -m bench --only gdpr`.")
    notes = ["After the erasures the other subjects' rows were compared by count and key sum in both stores; "
             "each export file was decrypted from the vault and its rows compared with the subject's."]
    queued = [q for r in run.requests for q in r.queued]
    if queued:
        notes.append(f"Of each store step's span, scheduled → started (the history's ActivityTaskStarted) took p50 "
                     f"{percentile(queued, 50) * 1000:.0f} ms, max {max(queued) * 1000:.0f} ms, over {len(queued)} "
                     f"steps. The rest of a PostgreSQL step beyond the engine alone is mostly this process's GIL: "
                     f"the data worker's threads share it with mongomock's pure-Python scan of the other store, "
                     f"running at the same time; against a MongoDB server both would wait on sockets instead.")
    return Section(title=TITLE, how=how, table=table, goals=goals, notes=notes, more=[("Retention:", retention)],
                   data={"subjects": s.subjects, "orders": s.orders})
