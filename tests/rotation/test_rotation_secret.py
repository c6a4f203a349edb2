"""The Secret's rotation layout and its pure transitions: each one idempotent, each refusal saying why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerotouch import rotation_secret as rs
from zerotouch.rotation_secret import RotationStateError, SecretContent
from zerotouch.rotations import KubernetesTarget, MongoTarget, OAuthTarget, PostgresTarget, SecretRef

REF = SecretRef(namespace="shop", name="checkout-db")
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LATER = AT + timedelta(hours=1)
T1, T2 = "r000000000001", "r000000000002"
PG = PostgresTarget(connection="main", roles=["app_a", "app_b"])
PG_SINGLE = PostgresTarget(connection="main", strategy="single", roles=["app"])
MONGO = MongoTarget(connection="main", users=["svc_a", "svc_b"])
OAUTH = OAuthTarget(base_url="https://idp.example", token_env="OKTA_TOKEN", client_id="shop-web",
                    token_url="https://idp.example/oauth2/v1/token")
KUBE = KubernetesTarget(keys=["token", "signing-key"])
INITIAL = SecretContent(data={"username": "app_a", "password": "old-pw", "host": "db"},
                        annotations={"owner.example/team": "payments"}, resource_version="7")
NEW = {"username": "app_b", "password": "new-pw"}


def pending(content: SecretContent = INITIAL, token: str = T1) -> SecretContent:
    added = rs.add_pending(content, PG, "checkout-db", token, NEW, AT)
    assert added is not None
    return added


def promoted(token: str = T1) -> SecretContent:
    done = rs.promote(pending(token=token), PG, token, LATER)
    assert done is not None
    return done


def test_value_keys_secret_key_and_logins_per_target() -> None:
    assert rs.value_keys(PG) == rs.value_keys(MONGO) == ["username", "password"]
    assert rs.value_keys(OAUTH) == ["client_id", "client_secret"]
    assert rs.value_keys(KUBE) == ["token", "signing-key"]
    assert rs.secret_key(PG) == "password" and rs.secret_key(OAUTH) == "client_secret"
    with pytest.raises(ValueError, match="several generated keys"):
        rs.secret_key(KUBE)
    assert rs.logins(PG) == ["app_a", "app_b"] and rs.logins(MONGO) == ["svc_a", "svc_b"]
    assert rs.logins(OAUTH) == ["shop-web"] and rs.logins(KUBE) == []


@pytest.mark.parametrize(("current", "expected"), [("app_a", "app_b"), ("app_b", "app_a"), ("shop", "app_a")])
def test_alternating_puts_the_new_credential_on_the_login_not_in_use(current: str, expected: str) -> None:
    assert rs.next_login(PG, SecretContent(data={"username": current})) == expected


def test_single_and_generated_targets_have_one_or_no_login() -> None:
    assert rs.next_login(PG_SINGLE, INITIAL) == "app"
    assert rs.next_login(KUBE, INITIAL) == ""


def test_a_credential_found_in_place_is_the_initial_version() -> None:
    shown = rs.view(REF, INITIAL, PG)
    assert shown.stage == "idle" and shown.pending is None and shown.previous is None
    assert shown.current is not None and shown.current.version == rs.INITIAL and shown.current.login == "app_a"
    assert rs.view(REF, SecretContent(data={"host": "db"}), PG).current is None
    assert rs.view(REF, SecretContent(exists=False)).exists is False


def test_add_pending_stores_the_new_credential_beside_the_current_one() -> None:
    content = pending()
    assert content.data == {**INITIAL.data, "pending.username": "app_b", "pending.password": "new-pw"}
    assert content.annotations["owner.example/team"] == "payments"
    shown = rs.view(REF, content, PG)
    assert shown.stage == "pending" and shown.pending is not None
    assert (shown.pending.version, shown.pending.login, shown.pending.since) == (T1, "app_b", AT)
    assert rs.pending_values(content, PG, T1) == NEW
    assert rs.current_values(content, PG) == {"username": "app_a", "password": "old-pw"}


def test_add_pending_again_with_the_same_token_keeps_the_first_credential() -> None:
    assert rs.add_pending(pending(), PG, "checkout-db", T1, {"username": "app_b", "password": "other"}, AT) is None
    assert rs.add_pending(promoted(), PG, "checkout-db", T1, NEW, AT) is None


def test_add_pending_refuses_while_another_rotation_is_pending() -> None:
    with pytest.raises(RotationStateError, match=f"rotation {T1} left a pending credential"):
        rs.add_pending(pending(), PG, "checkout-db", T2, NEW, AT)


def test_add_pending_requires_every_value_key() -> None:
    with pytest.raises(ValueError, match="lacks"):
        rs.add_pending(INITIAL, PG, "checkout-db", T1, {"username": "app_b"}, AT)


def test_key_id_is_remembered_once_and_only_for_the_pending_rotation() -> None:
    content = rs.add_pending(SecretContent(), OAUTH, "idp", T1, {"client_id": "shop-web", "client_secret": "s"}, AT)
    assert content is not None
    with_id = rs.with_key_id(content, T1, "sec-42")
    assert with_id is not None and rs.with_key_id(with_id, T1, "sec-42") is None
    assert rs.view(REF, with_id, OAUTH).pending.key_id == "sec-42"  # type: ignore[union-attr]
    with pytest.raises(RotationStateError, match="no pending credential"):
        rs.with_key_id(with_id, T2, "sec-43")


def test_promote_makes_pending_current_and_current_previous() -> None:
    content = promoted()
    assert content.data == {"username": "app_b", "password": "new-pw", "host": "db",
                            "previous.username": "app_a", "previous.password": "old-pw"}
    shown = rs.view(REF, content, PG)
    assert shown.stage == "finished" and shown.pending is None
    assert shown.current is not None and (shown.current.version, shown.current.since) == (T1, LATER)
    assert shown.previous is not None and (shown.previous.version, shown.previous.login) == (rs.INITIAL, "app_a")
    assert rs.previous_values(content, PG) == {"username": "app_a", "password": "old-pw"}
    assert rs.promote(content, PG, T1, LATER) is None


def test_promote_without_a_current_credential_leaves_no_previous() -> None:
    added = rs.add_pending(SecretContent(), KUBE, "api", T1, {"token": "t", "signing-key": "k"}, AT)
    assert added is not None
    content = rs.promote(added, KUBE, T1, LATER)
    assert content is not None and content.data == {"token": "t", "signing-key": "k"}
    assert rs.view(REF, content, KUBE).previous is None


def test_a_second_rotation_drops_the_oldest_credential() -> None:
    second = rs.add_pending(promoted(), PG, "checkout-db", T2, {"username": "app_a", "password": "newer"}, LATER)
    assert second is not None
    content = rs.promote(second, PG, T2, LATER)
    assert content is not None
    assert rs.previous_values(content, PG) == NEW and rs.current_values(content, PG)["password"] == "newer"
    shown = rs.view(REF, content, PG)
    assert (shown.current.version, shown.previous.version) == (T2, T1)  # type: ignore[union-attr]
    assert "old-pw" not in content.data.values()


def test_drop_pending_forgets_only_the_pending_credential() -> None:
    content = rs.drop_pending(pending(), PG, T1)
    assert content is not None and content.data == INITIAL.data
    assert rs.view(REF, content, PG).stage == "rolled_back" and rs.view(REF, content, PG).pending is None
    assert rs.drop_pending(content, PG, T1) is None


def test_swap_back_restores_the_previous_credential_once() -> None:
    content = rs.swap_back(promoted(), PG, T1)
    assert content is not None
    assert rs.current_values(content, PG) == {"username": "app_a", "password": "old-pw"}
    assert rs.previous_values(content, PG) == NEW
    shown = rs.view(REF, content, PG)
    assert (shown.stage, shown.current.version, shown.previous.version) == (  # type: ignore[union-attr]
        "rolled_back", rs.INITIAL, T1)
    assert rs.swap_back(content, PG, T1) is None


def test_swap_back_refuses_what_it_cannot_undo() -> None:
    with pytest.raises(RotationStateError, match="is not the current credential"):
        rs.swap_back(promoted(), PG, T2)
    revoked = rs.mark(promoted(), T1, "revoked", LATER, verified=False)
    assert revoked is not None
    with pytest.raises(RotationStateError, match="revoked"):
        rs.swap_back(revoked, PG, T1)
    added = rs.add_pending(SecretContent(), KUBE, "api", T1, {"token": "t", "signing-key": "k"}, AT)
    first = rs.promote(added, KUBE, T1, LATER)  # type: ignore[arg-type]
    with pytest.raises(RotationStateError, match="no previous credential"):
        rs.swap_back(first, KUBE, T1)  # type: ignore[arg-type]


def test_mark_records_stages_only_for_the_owning_rotation() -> None:
    content = rs.mark(pending(), T1, "set", AT, verified=False)
    assert content is not None and rs.view(REF, content).stage == "set"
    assert rs.mark(content, T1, "set", AT, verified=False) is None
    verified = rs.mark(promoted(), T1, "revoked", LATER, verified=True)
    assert verified is not None
    shown = rs.view(REF, verified, PG)
    assert shown.previous_revoked and shown.last_verified == LATER
    with pytest.raises(RotationStateError, match=f"rotation {T2} no longer owns"):
        rs.mark(verified, T2, "moved", LATER, verified=False)


def test_a_new_rotation_clears_the_revoked_flag_on_promote() -> None:
    revoked = rs.mark(promoted(), T1, "revoked", LATER, verified=False)
    again = rs.add_pending(revoked, PG, "checkout-db", T2, {"username": "app_a", "password": "x"}, LATER)  # type: ignore[arg-type]
    content = rs.promote(again, PG, T2, LATER)  # type: ignore[arg-type]
    assert content is not None and not rs.view(REF, content, PG).previous_revoked


Step = Callable[[SecretContent], SecretContent | None]
STEPS: list[tuple[str, Step]] = [
    ("add_pending", lambda c: rs.add_pending(c, PG, "checkout-db", T1, NEW, AT)),
    ("set", lambda c: rs.mark(c, T1, "set", AT, verified=False)),
    ("tested", lambda c: rs.mark(c, T1, "tested", AT, verified=True)),
    ("promote", lambda c: rs.promote(c, PG, T1, LATER)),
    ("moved", lambda c: rs.mark(c, T1, "moved", LATER, verified=True)),
    ("revoked", lambda c: rs.mark(c, T1, "revoked", LATER, verified=False)),
]


@given(retried=st.lists(st.booleans(), min_size=len(STEPS), max_size=len(STEPS)))
def test_retrying_any_step_after_it_landed_changes_nothing(retried: list[bool]) -> None:
    """A worker crash after the write: the step runs again on the Secret it already changed."""
    content = INITIAL
    for (_, step), retry in zip(STEPS, retried, strict=True):
        after = step(content)
        assert after is not None
        content = after
        if retry:
            assert step(content) is None
    assert rs.view(REF, content, PG).stage == "revoked"
    assert rs.current_values(content, PG) == NEW


def test_the_view_never_carries_a_credential() -> None:
    content = pending(promoted(), T2)  # a current, a previous and a pending credential at once
    shown = rs.view(REF, content, PG).model_dump_json()
    assert "new-pw" not in shown and "old-pw" not in shown
    assert "app_a" in shown and "app_b" in shown  # login names are references, shown on purpose
