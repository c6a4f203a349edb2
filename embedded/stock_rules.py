"""kube-prometheus's stock alerting rules (deploy/prometheus/kube-prometheus/) as a plain Prometheus rule file.

The manifests there are PrometheusRule objects for the Prometheus Operator; a Prometheus run
without the operator needs their `spec.groups` as a rule file. Shortening `for:` and range
windows makes the same rules fire within seconds in tests and within a minute in the demo.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

KUBE_PROMETHEUS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "kube-prometheus"

# Range selectors (`[5m]`, `[6h]`); subqueries (`[5m:1m]`) have a colon and are left alone.
_RANGE = re.compile(r"\[(\d+)([smhdwy])\]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# Label lists of grouping and matching modifiers name labels, not series.
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
             "offset", "bool", "inf", "nan", "atan2", "start", "end"}
# Series Prometheus makes itself: no exporter serves them.
_SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def stock_groups(directory: Path = KUBE_PROMETHEUS) -> list[dict[str, Any]]:
    """The rule groups of every PrometheusRule manifest in ``directory``, files in name order."""
    groups: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*-prometheusRule.yaml")):
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or manifest.get("kind") != "PrometheusRule":
            raise ValueError(f"{path}: not a PrometheusRule manifest (kind {manifest.get('kind')!r}); "
                             "remove it or copy the upstream file again")
        groups += manifest["spec"]["groups"]
    return groups


def shortened(groups: list[dict[str, Any]], *, hold: str | None = None, window: str | None = None,
              interval: str | None = None) -> list[dict[str, Any]]:
    """Copies of ``groups`` with every `for:` set to ``hold``, every range window to ``window`` and every
    group's `interval` to ``interval``; what is None stays as upstream has it."""
    result = []
    for group in groups:
        copy = {**group, "rules": [dict(rule) for rule in group["rules"]]}
        if interval is not None:
            copy["interval"] = interval
        for rule in copy["rules"]:
            if hold is not None and "for" in rule:
                rule["for"] = hold
            if window is not None:
                rule["expr"] = _RANGE.sub(f"[{window}]", str(rule["expr"]))
        result.append(copy)
    return result


def write_rule_file(target: Path, *, directory: Path = KUBE_PROMETHEUS, hold: str | None = None,
                    window: str | None = None, interval: str | None = None) -> Path:
    """Write the stock groups (shortened as `shortened` says) as a rule file Prometheus loads."""
    groups = shortened(stock_groups(directory), hold=hold, window=window, interval=interval)
    target.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=1000), encoding="utf-8")
    return target


def series_read(expr: str) -> set[str]:
    """Names of the series (or recorded rules) a PromQL expression selects."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = _LABEL_LIST.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS}


def metric_names(groups: list[dict[str, Any]], alerts: Iterable[str]) -> list[str]:
    """Every series the rules of ``alerts`` read, through the recording rules they use, sorted;
    series Prometheus makes itself (`up`, `ALERTS`) left out."""
    recorded: dict[str, set[str]] = {}
    wanted: set[str] = set()
    names = set(alerts)
    for group in groups:
        for rule in group["rules"]:
            read = series_read(str(rule["expr"]))
            if "record" in rule:
                recorded.setdefault(rule["record"], set()).update(read)
            elif rule.get("alert") in names:
                wanted |= read
    found: set[str] = set()
    seen: set[str] = set()
    pending = list(wanted)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in recorded:
            pending += recorded[name]
        else:
            found.add(name)
    return sorted(found - _SYNTHETIC)
