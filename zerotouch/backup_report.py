"""Backups as people read them: the list (`zerotouch backups list`) and one backup with its evidence (`show`)."""

from __future__ import annotations

from typing import Any

from zerotouch.backup_models import BackupRecord, VerificationReport


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def verification_state(record: BackupRecord) -> str:
    last = record.last_verification
    if last is None:
        return "unverified"
    return "verified" if last.ok else "FAILED"


def render_list(records: list[BackupRecord]) -> str:
    if not records:
        return "no backups"
    rows = [("TARGET", "BACKUP", "METHOD", "SIZE", "TAKEN", "VERIFICATION", "RTO", "RPO", "HOLD")]
    for record in records:
        manifest, last = record.manifest, record.last_verification
        rows.append((manifest.target, manifest.id, manifest.method, _size(manifest.size_bytes),
                     manifest.started_at.strftime("%Y-%m-%d %H:%M:%SZ"), verification_state(record),
                     _seconds(last.rto_seconds if last else None), _seconds(last.rpo_seconds if last else None),
                     "held" if record.hold else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def render_report(report: VerificationReport) -> str:
    lines = [f"verification {report.id}: {'ok' if report.ok else 'FAILED'}",
             f"  backup {report.backup_id} ({report.target}, {report.engine})",
             f"  recovery target {report.recovery_target or '-'}",
             f"  RTO {_seconds(report.rto_seconds)}   RPO {_seconds(report.rpo_seconds)}"
             + (f"   newest canary {report.newest_canary_at.isoformat()}" if report.newest_canary_at else ""),
             f"  {report.started_at.isoformat()} .. {report.finished_at.isoformat()}"]
    if report.durations:
        lines.append("  phases " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in report.durations.items()))
    for check in report.checks:
        output = check.output.strip().splitlines()
        lines.append(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}" + (f": {output[0]}" if output else ""))
        lines.extend(f"         {line}" for line in output[1:8])
    if report.tool_versions:
        lines.append("  tools " + "; ".join(report.tool_versions.values()))
    return "\n".join(lines)


def render_record(record: BackupRecord) -> str:
    manifest = record.manifest
    lines = [f"backup {manifest.id}: {verification_state(record)}",
             f"  target {manifest.target} ({manifest.engine} {manifest.method}), {_size(manifest.size_bytes)} "
             f"in {len(manifest.files)} files",
             f"  taken {manifest.started_at.isoformat()} .. {manifest.finished_at.isoformat()}"]
    if manifest.lsn_start or manifest.lsn_end:
        lines.append(f"  WAL {manifest.lsn_start} .. {manifest.lsn_end} (timeline {manifest.timeline})")
    if manifest.restore_point:
        lines.append(f"  restore point {manifest.restore_point} at {manifest.consistent_at}")
    if manifest.source:
        lines.append("  source " + ", ".join(f"{k} {v}" for k, v in manifest.source.items()))
    for name, stat in manifest.tables.items():
        lines.append(f"  {name}: {stat.rows} rows, hash {stat.hash}")
    if record.hold:
        lines.append(f"  legal hold by {record.hold.by} at {record.hold.at.isoformat()}: {record.hold.reason}")
    for report in record.verifications:
        lines.append("")
        lines.append(render_report(report))
    if not record.verifications:
        lines.append("  never verified: `zerotouch backups verify " + manifest.target + f" --backup {manifest.id}`")
    return "\n".join(lines)


def record_json(record: BackupRecord, *, files: bool = False) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    if not files:
        data["manifest"].pop("files", None)
    data["state"] = verification_state(record)
    return data
