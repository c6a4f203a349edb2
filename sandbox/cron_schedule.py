"""Cron schedules as Kubernetes accepts them for CronJobs (robfig/cron's ParseStandard).

The standard five-field syntax: names, ranges, steps, `?`, the @hourly..@yearly descriptors and
`@every <duration>`; not seconds, years, L, W or #. Errors use robfig/cron's words, as the API
server's validation does. Time zones are IANA names (`spec.timeZone`); none means UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (field name, lowest, highest, names)
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 6, _DAYS))
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule in its time zone (UTC when the CronJob names none)."""

    expression: str  # five fields, or "" for @every
    zone: tzinfo
    every: timedelta | None = None

    def latest(self, after: datetime, now: datetime) -> datetime | None:
        """The most recent fire time t with after < t <= now, or None."""
        if now <= after:
            return None
        if self.every is not None:
            steps = int((now - after) / self.every)
            return after + steps * self.every if steps >= 1 else None
        start = now.astimezone(self.zone) + timedelta(microseconds=1)
        found: datetime = croniter(self.expression, start).get_prev(datetime)
        return found.astimezone(UTC) if found > after else None

    def next_after(self, when: datetime) -> datetime:
        if self.every is not None:
            return when + self.every
        found: datetime = croniter(self.expression, when.astimezone(self.zone)).get_next(datetime)
        return found.astimezone(UTC)


def _duration(text: str) -> timedelta:
    text = text.strip()
    if not text or _DURATION.sub("", text):
        raise ValueError(f"failed to parse duration @every {text}")
    seconds = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION.findall(text))
    return timedelta(seconds=max(1, int(seconds)))  # robfig rounds down to whole seconds, min 1s


def _atom(value: str, low: int, high: int, names: tuple[str, ...], field: str) -> int:
    if value.upper() in names:
        return names.index(value.upper()) + low
    if not value.isdigit():
        raise ValueError(f"failed to parse int from {value}: invalid {field}")
    number = int(value)
    if number < low:
        raise ValueError(f"beginning of range ({number}) below minimum ({low}): {value}")
    if number > high:
        raise ValueError(f"end of range ({number}) above maximum ({high}): {value}")
    return number


def _check_field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> None:
    for part in text.split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"invalid step in {field}: {part}")
        if span in ("*", "?"):
            continue
        first, dash, last = span.partition("-")
        begin = _atom(first, low, high, names, field)
        if dash and _atom(last, low, high, names, field) < begin:
            raise ValueError(f"beginning of range ({begin}) beyond end of range: {span}")


def time_zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC  # the sandbox's controller manager runs in UTC
    if not name or name != name.strip() or name.lower() == "local":
        raise ValueError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name}") from exc


def parse_schedule(schedule: str, zone_name: str | None = None) -> Schedule:
    """A Schedule, or ValueError saying what is wrong with it (in robfig/cron's words)."""
    zone = time_zone(zone_name)
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        raise ValueError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if text.startswith("@every"):
        return Schedule("", zone, _duration(text[len("@every"):]))
    if text.startswith("@"):
        if text not in _DESCRIPTORS:
            raise ValueError(f"unrecognized descriptor: {text}")
        text = _DESCRIPTORS[text]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {schedule}")
    for value, (field, low, high, names) in zip(fields, _FIELDS, strict=True):
        _check_field(value, field, low, high, names)
    expression = " ".join(f.replace("?", "*") for f in fields)
    if not croniter.is_valid(expression):
        raise ValueError(f"unparseable schedule: {schedule}")
    return Schedule(expression, zone)
