"""OAuth client-secret rotation against a real authorization server (authlib's token endpoint, Okta's admin API).

What a user cares about: during the grace window both the old and the new secret get tokens; after
the revoke only the new one does; nothing the activities say ever contains a secret or the admin token.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.oauth_clients import ACTIVE, OktaClientSecrets, check_client_credentials
from tests.support.oauth_server import OAuthServer, running_oauth_server
from zerotouch import activity_errors as errors
from zerotouch.ports import free_port
from zerotouch.rotations import OAuthTarget

TOKEN_ENV = "ZT_TEST_OKTA_TOKEN"
ADMIN_TOKEN = secrets.token_urlsafe(30)


def _secret() -> str:
    return secrets.token_urlsafe(36)  # 48 characters, as OAuthTarget generates by default


@pytest.fixture
def server() -> Iterator[OAuthServer]:
    with running_oauth_server(ADMIN_TOKEN) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def okta(http: httpx.Client) -> OktaClientSecrets:
    return OktaClientSecrets(http=http, environ={TOKEN_ENV: ADMIN_TOKEN})


def _target(server: OAuthServer, client_id: str = "payments-api", scope: str = "") -> OAuthTarget:
    return OAuthTarget(base_url=server.base_url, token_env=TOKEN_ENV, client_id=client_id,
                       token_url=server.token_url, scope=scope)


def _works(http: httpx.Client, target: OAuthTarget, secret: str) -> bool:
    try:
        check_client_credentials(http, target, secret)
    except ApplicationError as error:
        assert error.type == errors.CREDENTIAL_REJECTED, error
        return False
    return True


def _raised(call: object, *args: object) -> ApplicationError:
    assert callable(call)
    with pytest.raises(ApplicationError) as caught:
        call(*args)
    return caught.value


def _assert_no_leak(error: ApplicationError, *values: str) -> None:
    said = f"{error} {error.message} {error.details!r} {error.__cause__!r} {error.__context__!r}"
    for value in values:
        assert value not in said


def test_both_secrets_work_inside_the_grace_window(server: OAuthServer, okta: OktaClientSecrets,
                                                   http: httpx.Client) -> None:
    old, new = _secret(), _secret()
    old_id = server.register_client("payments-api", old)
    target = _target(server, scope="payments.read")

    new_id = okta.issue(target, new)

    assert new_id != old_id
    assert _works(http, target, old) and _works(http, target, new)
    keys = okta.keys(target)
    assert [k.id for k in keys] == [old_id, new_id]
    assert all(k.status == ACTIVE and k.created is not None for k in keys)
    detail = check_client_credentials(http, target, new)
    assert "payments-api" in detail and new not in detail


def test_after_the_revoke_only_the_new_secret_works(server: OAuthServer, okta: OktaClientSecrets,
                                                    http: httpx.Client) -> None:
    old, new = _secret(), _secret()
    old_id = server.register_client("payments-api", old)
    target = _target(server)
    new_id = okta.issue(target, new)

    detail = okta.revoke(target, old_id)

    assert old_id in detail and old not in detail
    assert not _works(http, target, old)
    assert _works(http, target, new)
    assert [k.id for k in okta.keys(target)] == [new_id]


def test_revoke_is_idempotent(server: OAuthServer, okta: OktaClientSecrets, http: httpx.Client) -> None:
    old, new = _secret(), _secret()
    old_id = server.register_client("payments-api", old)
    target = _target(server)
    new_id = okta.issue(target, new)
    okta.revoke(target, old_id)

    again = okta.revoke(target, old_id)  # a retry after the first answer was lost

    assert "already gone" in again
    assert [k.id for k in okta.keys(target)] == [new_id]
    assert _works(http, target, new)


def test_a_third_active_secret_is_refused_and_changes_nothing(server: OAuthServer, okta: OktaClientSecrets,
                                                              http: httpx.Client) -> None:
    first, second, third = _secret(), _secret(), _secret()
    first_id = server.register_client("payments-api", first)
    target = _target(server)
    second_id = okta.issue(target, second)

    error = _raised(okta.issue, target, third)

    assert error.type == errors.ROTATION_STATE and error.non_retryable
    assert "already holds 2 active secrets" in error.message and "revoke the previous one" in error.message
    assert first_id in error.message and second_id in error.message
    _assert_no_leak(error, first, second, third, ADMIN_TOKEN)
    assert [k.id for k in okta.keys(target)] == [first_id, second_id]
    assert not _works(http, target, third)


def test_the_only_active_secret_cannot_be_revoked(server: OAuthServer, okta: OktaClientSecrets,
                                                  http: httpx.Client) -> None:
    only = _secret()
    only_id = server.register_client("payments-api", only)
    target = _target(server)

    error = _raised(okta.revoke, target, only_id)

    assert error.type == errors.ROTATION_STATE and "only active secret" in error.message
    assert _works(http, target, only)


def test_a_wrong_secret_is_rejected_without_being_repeated(server: OAuthServer, http: httpx.Client) -> None:
    right, wrong = _secret(), _secret()
    server.register_client("payments-api", right)
    target = _target(server)

    error = _raised(check_client_credentials, http, target, wrong)

    assert error.type == errors.CREDENTIAL_REJECTED and error.non_retryable
    assert "payments-api" in error.message
    _assert_no_leak(error, wrong, right)
    assert server.tokens_issued == 0


def test_an_unknown_client_is_rejected_at_the_token_endpoint(server: OAuthServer, http: httpx.Client) -> None:
    error = _raised(check_client_credentials, http, _target(server, client_id="nobody"), _secret())
    assert error.type == errors.CREDENTIAL_REJECTED


@pytest.mark.parametrize("operation", ["keys", "issue", "revoke"])
def test_a_missing_admin_token_says_which_variable(server: OAuthServer, http: httpx.Client, operation: str) -> None:
    server.register_client("payments-api", _secret())
    okta = OktaClientSecrets(http=http, environ={})
    target = _target(server)
    new = _secret()
    call, args = {"keys": (okta.keys, (target,)), "issue": (okta.issue, (target, new)),
                  "revoke": (okta.revoke, (target, "ocs0"))}[operation]

    error = _raised(call, *args)

    assert error.type == errors.MISSING_SECRET and error.non_retryable
    assert TOKEN_ENV in error.message
    _assert_no_leak(error, new)
    assert len(server.secrets_of("payments-api")) == 1


def test_a_wrong_admin_token_is_forbidden(server: OAuthServer, http: httpx.Client) -> None:
    server.register_client("payments-api", _secret())
    wrong = secrets.token_urlsafe(30)
    okta = OktaClientSecrets(http=http, environ={TOKEN_ENV: wrong})

    error = _raised(okta.keys, _target(server))

    assert error.type == errors.FORBIDDEN
    _assert_no_leak(error, wrong, ADMIN_TOKEN)


def test_an_unknown_app_is_not_found(server: OAuthServer, okta: OktaClientSecrets) -> None:
    error = _raised(okta.issue, _target(server, client_id="nobody"), _secret())
    assert error.type == errors.NOT_FOUND and "nobody" in error.message


def test_an_unreachable_provider_is_worth_retrying(http: httpx.Client, okta: OktaClientSecrets) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    target = OAuthTarget(base_url=closed, token_env=TOKEN_ENV, client_id="payments-api",
                         token_url=closed + "/oauth2/v1/token")
    secret = _secret()

    for error in (_raised(check_client_credentials, http, target, secret), _raised(okta.issue, target, secret)):
        assert error.type == errors.API_UNAVAILABLE and not error.non_retryable
        _assert_no_leak(error, secret, ADMIN_TOKEN)
