"""Scenario 8's report: what one size and round measured, and the section BENCHMARKS.md shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.report import Goal, Section
from bench.stats import median, spread
from zerotouch.backups import PostgresMethod, SqlAssertion

TITLE = "8. Backups proven by test restores (PostgreSQL)"
FULL_SCALES = (10, 30, 70)
QUICK_SCALES = (1,)
FULL_ROUNDS = 3
ARCHIVE_TIMEOUT = 10  # seconds: the source's archive_timeout
WRITER_TPS = 5  # the light TPC-B writer's rate while backups are taken
CANARY = "zerotouch_canary"
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
# TPC-B adds the same delta to an account, its teller and its branch, and logs it in history.
ASSERTIONS = [
    SqlAssertion(name="balances add up",
                 sql="SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM "
                     "pgbench_branches) AND (SELECT sum(bbalance) FROM pgbench_branches) = "
                     "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)"),
]
METHODS: tuple[PostgresMethod, ...] = ("physical", "logical")


@dataclass
class Verification:
    seconds: float
    ok: bool
    rto: float | None
    rpo: float | None
    newest_canary_at: datetime | None
    durations: dict[str, float]
    failed: list[str]
    checks: int


@dataclass
class Round:
    backup_seconds: dict[str, float] = field(default_factory=dict)
    backup_bytes: dict[str, int] = field(default_factory=dict)
    writer_longest: dict[str, float] = field(default_factory=dict)  # its longest transaction during each backup
    writer_transactions: int = 0
    verification: dict[str, Verification] = field(default_factory=dict)

    def dump_rpo_at_archiving_instant(self) -> float | None:
        """What restoring the dump would have lost at the instant the physical RPO was measured for: that
        instant (the physical restore's start = its newest canary row + its RPO) minus the dump's newest row."""
        physical, logical = self.verification["physical"], self.verification["logical"]
        if physical.newest_canary_at is None or physical.rpo is None or logical.newest_canary_at is None:
            return None
        return physical.newest_canary_at.timestamp() + physical.rpo - logical.newest_canary_at.timestamp()


@dataclass
class Size:
    scale: int
    server_version: str = ""
    generate_seconds: float = 0.0
    archive_catch_up_seconds: float = 0.0
    archive_growth_bytes: int = 0
    database_bytes: int = 0
    accounts: int = 0
    rounds: list[Round] = field(default_factory=list)

    def backups(self, method: str) -> list[float]:
        return [r.backup_seconds[method] for r in self.rounds]

    def verifications(self, method: str) -> list[Verification]:
        return [r.verification[method] for r in self.rounds]

    def values(self, method: str, what: str) -> list[float]:
        """``seconds``, ``rto`` or ``rpo`` of each round's verification (missing ones left out)."""
        found = [getattr(v, what) for v in self.verifications(method)]
        return [float(value) for value in found if value is not None]

    def size_of(self, method: str) -> float:
        return median([r.backup_bytes[method] for r in self.rounds])


def _mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB" if value >= 10e6 else f"{value / 1e6:.1f} MB"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.1f}x"


def _spread(values: list[float], unit: str = " s") -> str:
    """One round: the value; more: median (min-max)."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.1f}{unit}"
    return spread(values, 1, unit)


def _per_round(size: Size, value: Callable[[Round], float | None]) -> list[float]:
    found = [value(r) for r in size.rounds]
    return [v for v in found if v is not None]


def _quotient(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def section(sizes: list[Size], rounds: int) -> Section:
    rows = [["pgbench scale", "`shop` size", "method", "backup", "backup size", "verification", "RTO",
             "RPO", "checks"]]
    phases: list[str] = []
    for size in sizes:
        for method in METHODS:
            found = size.verifications(method)
            for verification in found:
                phases += [name for name in verification.durations if name not in phases]
            checks, failing = sum(v.checks for v in found), sum(len(v.failed) for v in found)
            rows.append([str(size.scale), _mb(size.database_bytes), method, _spread(size.backups(method)),
                         _mb(size.size_of(method)), _spread(size.values(method, "seconds")),
                         _spread(size.values(method, "rto")), _spread(size.values(method, "rpo")),
                         f"{checks - failing}/{checks} pass"])
    side = [["pgbench scale", "backup logical / physical", "verification logical / physical",
             "RTO logical / physical", "size logical / physical"]]
    for size in sizes:
        side.append([
            str(size.scale),
            _spread(_per_round(size, lambda r: _quotient(r.backup_seconds["logical"], r.backup_seconds["physical"])),
                    "x"),
            _spread(_per_round(size, lambda r: _quotient(r.verification["logical"].seconds,
                                                         r.verification["physical"].seconds)), "x"),
            _spread(_per_round(size, lambda r: _quotient(r.verification["logical"].rto,
                                                         r.verification["physical"].rto)), "x"),
            f"{size.size_of('logical') / size.size_of('physical'):.3f}"])
    more = [(f"Physical vs logical at each size (per-round ratios, {rounds} round(s)):", side)]
    small, large = sizes[0], sizes[-1]
    if len(sizes) > 1:
        growth = [["measure (medians)", f"scale {small.scale}", f"scale {large.scale}",
                   f"ratio {large.scale}/{small.scale}"],
                  ["`shop` size", _mb(small.database_bytes), _mb(large.database_bytes),
                   _ratio(large.database_bytes, small.database_bytes)]]
        for method in METHODS:
            for label, get in (("backup", lambda z, m: median(z.backups(m))),
                               ("backup size", lambda z, m: z.size_of(m)),
                               ("verification", lambda z, m: median(z.values(m, "seconds"))),
                               ("RTO", lambda z, m: median(z.values(m, "rto")))):
                a, b = get(small, method), get(large, method)
                shown = (_mb(a), _mb(b)) if label == "backup size" else (_s(a), _s(b))
                growth.append([f"{method} {label}", *shown, _ratio(b, a)])
        more.append((f"Growth, scale {large.scale} vs scale {small.scale}:", growth))
    phase_rows = [["pgbench scale", "method", *phases]]
    for size in sizes:
        for method in METHODS:
            found = size.verifications(method)
            phase_rows.append([str(size.scale), method, *[
                _s(median([v.durations[name] for v in found if name in v.durations]))
                if any(name in v.durations for v in found) else "—" for name in phases]])
    more.append(("Where each verification's time went (medians; `files_sha256` is the repository's check of the "
                 "files against the manifest, the rest `EngineVerification.durations`):", phase_rows))
    source_rows = [["pgbench scale", "accounts rows", "`pgbench -i`", "WAL archived by it", "archive catch-up",
                    "writer's longest transaction during the physical backup",
                    "… during the logical backup", "writer transactions per round"]]
    for size in sizes:
        source_rows.append([
            str(size.scale), f"{size.accounts:,}", _s(size.generate_seconds), _mb(size.archive_growth_bytes),
            _s(size.archive_catch_up_seconds),
            _spread([r.writer_longest["physical"] * 1000 for r in size.rounds], " ms"),
            _spread([r.writer_longest["logical"] * 1000 for r in size.rounds], " ms"),
            ", ".join(str(r.writer_transactions) for r in size.rounds)])
    more.append(("The source at each size:", source_rows))
    rpo_rows = [["pgbench scale", "continuous archiving (physical, through all archived WAL)",
                 "dumps only, at the same instant", "ratio dumps / archiving (same instant)",
                 "dumps only, verified right after the dump"]]
    for size in sizes:
        rpo_rows.append([
            str(size.scale), _spread(size.values("physical", "rpo")),
            _spread(_per_round(size, Round.dump_rpo_at_archiving_instant)),
            _spread(_per_round(size, lambda r: _quotient(r.dump_rpo_at_archiving_instant(),
                                                         r.verification["physical"].rpo)), "x"),
            _spread(size.values("logical", "rpo"))])
    more.append(("RPO, continuous archiving vs dumps only (the canary row, the same rounds):", rpo_rows))
    physical_rpos = [v for z in sizes for v in z.values("physical", "rpo")]
    same_instant = [v for z in sizes for v in _per_round(z, Round.dump_rpo_at_archiving_instant)]
    right_after = [v for z in sizes for v in z.values("logical", "rpo")]
    notes = [
        f"RPO: with continuous archiving a restore loses what the archive had not received yet: the source "
        f"closes a WAL segment at least every archive_timeout = {ARCHIVE_TIMEOUT} s when anything was written "
        f"(the canary writes every second), so the physical RPO stays between 0 and about {ARCHIVE_TIMEOUT} s "
        f"plus the archiver's copy whenever the source dies, however old the base backup is (measured over all "
        f"sizes: {_spread(physical_rpos)}). A dump loses everything after its snapshot, so its RPO is the dump's "
        f"age: at the instant each physical restore started (the same reference for both) "
        f"{_spread(same_instant)}; verified right after it was taken (the engine's own figure, the best case a "
        f"dump can reach) {_spread(right_after)}, about the dump's own duration. Those dumps were at most "
        f"{max(same_instant, default=0.0):.0f} s old; on a daily dump schedule the same loss is anything up to "
        "24 h plus the dump's duration, while with archiving it stays at seconds: the measured ratio is the "
        "smallest it will ever be.",
        "Backup: physical = `pg_basebackup -X stream --checkpoint=fast` of the whole cluster, then the checked "
        "tables' counts and content hashes in a snapshot exported while they were briefly locked (SHARE, only "
        "while the snapshot is handed over and a named restore point written), a WAL "
        "switch and the wait until that segment is archived; logical = counts and hashes in an exported snapshot "
        "(writes go on), then `pg_dump -Fc` of that snapshot. Both include the repository's sha256 of every file "
        "before the manifest is written. Verification includes the files' sha256 against the manifest, the "
        "restore into a scratch cluster on a free port (as `nobody`), pg_verifybackup / `pg_restore --list`, the "
        "table checks and the assertion. RTO (the engine's `rto_seconds`) is restore start → database answering "
        "the checks, without pg_verifybackup and the table hashes (a real restore does neither); the physical "
        "restore copies the base backup from the local repository, just written and likely still in the page "
        "cache, so its RTO is mostly recovery and server starts; from remote storage the copy would weigh more.",
        "Dump sizes are small because pgbench's generated rows compress extremely well (`filler` is blank "
        "padding); real data compresses far less, so read the logical size column as a lower bound.",
    ]
    longest = max((r.writer_longest["physical"] for z in sizes for r in z.rounds), default=0.0)
    logical_longest = max((r.writer_longest["logical"] for z in sizes for r in z.rounds), default=0.0)
    notes.append(
        f"Writes during a backup: the writer's longest transaction was {longest * 1000:.0f} ms during the physical "
        f"backups and {logical_longest * 1000:.0f} ms during the logical ones. The physical backup locks the "
        "checked tables only while it exports a snapshot and writes its restore point; the hashing runs in that "
        "snapshot afterwards, unlocked, so the pause does not grow with the tables.")
    tied = [z.scale for z in sizes for r in z.rounds
            if (q := _quotient(r.dump_rpo_at_archiving_instant(), r.verification["physical"].rpo)) is not None
            and abs(q - 1.0) < 0.02]
    if tied:
        notes.append(
            f"Where the ratio is 1.0 (scale {', '.join(str(t) for t in sorted(set(tied)))}), the physical restore "
            f"started less than archive_timeout after the physical backup's own WAL switch, so no newer segment had "
            "reached the archive yet and both restores ended at the same canary row, the one just before the dump.")
    all_ok = all(v.ok for z in sizes for m in METHODS for v in z.verifications(m))
    failed = [f"scale {z.scale} {m}: {f}" for z in sizes for m in METHODS for v in z.verifications(m)
              for f in v.failed]
    count = sum(v.checks for z in sizes for m in METHODS for v in z.verifications(m))
    verifications = sum(len(z.verifications(m)) for z in sizes for m in METHODS)
    goals = [
        Goal("every test restore's checks pass", all_ok,
             f"{count} checks in {verifications} verifications" + ("" if all_ok else "; failed: "
                                                                  + "; ".join(failed)[:400])),
        Goal("RPO measured for both methods",
             all(v.rpo is not None for z in sizes for m in METHODS for v in z.verifications(m)),
             f"archiving {_spread(physical_rpos)}; dumps at the same instant {_spread(same_instant)}"),
        Goal(f"scale {large.scale} ({_mb(large.database_bytes)}): backup, verification, RTO medians (no bar)", None,
             "; ".join(f"{m} {_s(median(large.backups(m)))}, {_s(median(large.values(m, 'seconds')))}, "
                       f"RTO {_s(median(large.values(m, 'rto')))}" for m in METHODS)),
    ]
    if failed:
        notes.insert(0, "Failed checks: " + "; ".join(failed))
    scales = ", ".join(str(z.scale) for z in sizes)
    return Section(
        title=TITLE,
        how=(f"The demo database of `zerotouch up` (`embedded/demo_database.py`; PostgreSQL "
             f"{sizes[0].server_version}, 1 MB WAL segments archived continuously by basic_archive, archive_timeout "
             f"{ARCHIVE_TIMEOUT} s, a canary row every second, an order every 3 s), started in the scenario's own "
             f"directory. At each pgbench scale ({scales}) `pgbench -i -s N` regenerates the `shop` database's "
             f"pgbench tables and the archiver catches up. Then {rounds} round(s), each: while a light writer runs "
             f"(pgbench's TPC-B transaction at {WRITER_TPS}/s, one connection), a physical backup and then a logical "
             "dump are taken into a directory repository; the writer stops; each backup is verified by a restore "
             "into a throwaway cluster — the dump first, then the base backup recovered through all archived WAL — "
             "with the activities' flow (`activities/backups.py`) without Temporal: row counts and content hashes "
             f"of {', '.join(f'`{t}`' for t in TABLES)} as recorded at backup time, the assertion "
             f"\"{ASSERTIONS[0].name}\" (account, branch and history balances agree) and the canary (RPO); the "
             "round's backups are deleted. Figures are medians (min-max) over the rounds; ratios are per round."),
        table=rows, goals=goals, notes=notes, more=more,
        data={"sizes": [_size_data(z) for z in sizes], "archive_timeout": ARCHIVE_TIMEOUT},
    )


def _size_data(size: Size) -> dict[str, Any]:
    return {"scale": size.scale, "database_bytes": size.database_bytes, "generate_seconds": size.generate_seconds,
            "rounds": [{"backup_seconds": r.backup_seconds, "backup_bytes": r.backup_bytes,
                        "writer_longest": r.writer_longest,
                        "verification": {m: v.__dict__ for m, v in r.verification.items()}} for r in size.rounds]}
