"""Workflows that read an equal policy share one object (zerotouch.policy_share)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from activities.policy import PolicyActivities
from zerotouch.models import PolicyRequest
from zerotouch.policy import Policy
from zerotouch.policy_share import RECENT_VERSIONS, shared_policy

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "policy" / "zerotouch.yaml"


def _fresh_copy(policy: Policy) -> Policy:
    """What a workflow gets from the data converter: an equal, separate object."""
    return Policy.model_validate_json(policy.model_dump_json())


def test_equal_policies_come_back_as_one_object() -> None:
    shipped = PolicyActivities(default_path=str(SHIPPED)).load_policy(PolicyRequest())
    first, second = _fresh_copy(shipped), _fresh_copy(shipped)
    assert first is not second
    held = shared_policy(first)
    assert shared_policy(second) is held
    assert held == second  # a workflow sees the same values either way


def test_a_different_policy_is_not_replaced_by_an_old_one() -> None:
    old = Policy(resolution_cooldown=timedelta(seconds=60))
    new = Policy(resolution_cooldown=timedelta(seconds=120))
    assert shared_policy(old) is old
    assert shared_policy(new) is new
    # both versions are held while they roll out
    assert shared_policy(Policy(resolution_cooldown=timedelta(seconds=60))) is old


def test_only_a_few_versions_are_held() -> None:
    versions = [Policy(resolution_cooldown=timedelta(seconds=1000 + n)) for n in range(RECENT_VERSIONS + 1)]
    for version in versions:
        shared_policy(version)
    oldest_again = Policy(resolution_cooldown=timedelta(seconds=1000))
    assert shared_policy(oldest_again) is oldest_again  # forgotten: memory stays bounded
