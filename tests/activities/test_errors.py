"""The error types activities raise are defined once: the activities and the incident's retry policy agree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from workflows.incident import calls
from zerotouch import activity_errors as errors

ACTIVITIES = sorted((Path(__file__).resolve().parents[2] / "activities").glob("*.py"))


def test_the_incident_retries_exactly_what_activities_mark_retryable() -> None:
    assert calls.ACTION_RETRY.non_retryable_error_types == list(errors.NON_RETRYABLE)
    assert not set(errors.NON_RETRYABLE) & set(errors.RETRYABLE)
    for kind in errors.NON_RETRYABLE:
        assert errors.fail("x", kind).non_retryable, kind
    for kind in errors.RETRYABLE:
        assert not errors.fail("x", kind).non_retryable, kind


def test_an_unknown_error_type_is_refused() -> None:
    with pytest.raises(ValueError, match="activity_errors"):
        errors.fail("x", "NotAnErrorType")


@pytest.mark.parametrize("path", ACTIVITIES, ids=[p.stem for p in ACTIVITIES])
def test_activities_raise_only_the_defined_error_types(path: Path) -> None:
    """No ``ApplicationError(..., type="Literal")`` or ``fail(..., "Literal")`` bypasses the definitions."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name | ast.Attribute):
            continue
        called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        literals = [kw.value for kw in node.keywords if kw.arg == "type"] if called == "ApplicationError" else \
            node.args[1:2] if called in ("fail", "_reject") else []
        for value in literals:
            assert not isinstance(value, ast.Constant), f"{path.name}:{node.lineno}: a literal error type"
