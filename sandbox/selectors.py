"""Label and field selectors in the query-string syntax the API server accepts."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import bad_request

Predicate = Callable[[Mapping[str, str]], bool]

_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside a `(...)` value set."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def _term(term: str) -> Predicate:
    m = _SET_RE.match(term)
    if m and not m.group(1):
        key, op = m.group(2), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    m = _EQ_RE.match(term)
    if m:
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    m = _EXISTS_RE.match(term)
    if m:
        negate, key = m.group(1) == "!", m.group(2)
        return lambda labels: (key in labels) != negate
    raise bad_request(f"unable to parse requirement: {term.strip()!r}")


def parse_label_selector(selector: str | None) -> Predicate:
    """Compile `app=web,tier in (a,b),!canary` into a predicate over labels."""
    if not selector:
        return lambda labels: True
    preds = [_term(t) for t in _split_terms(selector)]
    return lambda labels: all(p(labels) for p in preds)


def match_label_selector(spec: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Evaluate a structured LabelSelector (matchLabels/matchExpressions)."""
    if not spec:
        return False  # an empty selector selects nothing for controllers
    for key, value in (spec.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in spec.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_string(spec: Mapping[str, Any] | None) -> str:
    """Render a structured selector as the string form (Scale.status.selector)."""
    parts = [f"{k}={v}" for k, v in sorted((spec or {}).get("matchLabels", {}).items())]
    for expr in (spec or {}).get("matchExpressions") or []:
        op = expr.get("operator")
        if op in ("In", "NotIn"):
            parts.append(f"{expr['key']} {op.lower()} ({','.join(expr.get('values') or [])})")
        elif op == "Exists":
            parts.append(expr["key"])
        elif op == "DoesNotExist":
            parts.append("!" + expr["key"])
    return ",".join(parts)


def _field(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def parse_field_selector(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """Field selectors: `metadata.name=x,status.phase!=Running` (dotted paths)."""
    if not selector:
        return lambda obj: True
    checks: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector):
        m = _EQ_RE.match(term)
        if not m:
            raise bad_request(f"invalid field selector: {term.strip()!r}")
        path, op, value = m.groups()
        checks.append((path, op == "!=", value))
    return lambda obj: all((_field(obj, p) == v) != neg for p, neg, v in checks)
