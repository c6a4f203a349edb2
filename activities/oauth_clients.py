"""OAuth/OIDC client secrets at a provider: issue a second one, list them, revoke the old, prove one works.

A provider that holds two active secrets per client gives a grace window: consumers move from the
old secret to the new one while both authenticate, then the old one is revoked. Okta's client-secret
API is the one spoken here; another provider is another `ClientSecretProvider`. The admin token is
read from the worker's environment at each call (the policy names only the variable), and no secret
or token ever reaches a message, a return value or a log line: only client ids and key ids do.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

import httpx
from temporalio.exceptions import ApplicationError

from zerotouch import activity_errors as errors
from zerotouch.rotations import OAuthTarget

MAX_ACTIVE_SECRETS: Final = 2
ACTIVE: Final = "ACTIVE"
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # an RFC 6749 `error` value, safe to quote
_SUMMARY_CHARS = 200
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClientSecretKey:
    """One client secret as the provider lists it: never its value."""

    id: str
    status: str
    created: datetime | None


class ClientSecretProvider(Protocol):
    """What any provider must offer: at most two active secrets per client, each with a key id."""

    def issue(self, target: OAuthTarget, secret: str) -> str:
        """Register this secret value for ``target.client_id``; return the provider's key id."""
        ...

    def keys(self, target: OAuthTarget) -> list[ClientSecretKey]:
        """The client's secrets, oldest first."""
        ...

    def revoke(self, target: OAuthTarget, key_id: str) -> str:
        """Deactivate, then delete, one secret; a key already gone is fine (a retry)."""
        ...


def _status_error(response: httpx.Response, doing: str, refused_hint: str = "") -> ApplicationError:
    """The error for a provider answer no caller handled, by status (the body may echo a credential)."""
    status = response.status_code
    if status in (401, 403):
        return errors.fail(f"{doing}: refused (HTTP {status}){refused_hint}", errors.FORBIDDEN)
    if status == 404:
        return errors.fail(f"{doing}: not found (HTTP 404); check base_url and client_id", errors.NOT_FOUND)
    if status == 429:
        return errors.fail(f"{doing}: rate limited (HTTP 429)", errors.TOO_MANY_REQUESTS)
    if status >= 500:
        return errors.fail(f"{doing}: the provider failed (HTTP {status})", errors.API_UNAVAILABLE)
    return errors.fail(f"{doing}: unexpected answer (HTTP {status})", errors.INVALID_TARGET)


def _admin_error(response: httpx.Response, target: OAuthTarget, doing: str) -> ApplicationError:
    return _status_error(response, doing, f"; check {target.token_env} holds a valid token that may manage this app")


def _unreachable(error: httpx.HTTPError, doing: str) -> ApplicationError:
    # The exception text holds only the URL and the transport's reason; the type name is enough.
    return errors.fail(f"{doing}: provider unreachable ({type(error).__name__})", errors.API_UNAVAILABLE)


def _json(response: httpx.Response, doing: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise errors.fail(f"{doing}: the answer is not JSON; is base_url the provider's admin API?",
                          errors.INVALID_TARGET) from None


def _key_of(item: Any, doing: str) -> ClientSecretKey:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise errors.fail(f"{doing}: a listed secret has no id; is base_url an Okta admin API?",
                          errors.INVALID_TARGET)
    created = item.get("created")
    try:
        when = datetime.fromisoformat(created) if isinstance(created, str) else None
    except ValueError:
        when = None  # an unreadable timestamp is no reason to stop a revoke
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # Okta answers in UTC; comparable with the others either way
    return ClientSecretKey(id=item["id"], status=str(item.get("status", "")), created=when)


def _summary(response: httpx.Response, secret: str) -> str:
    """Okta's one-line reason for a 400, cut short and without the secret should the provider echo it."""
    try:
        body = response.json()
    except ValueError:
        return "no reason given"
    summary = body.get("errorSummary") if isinstance(body, dict) else None
    if not isinstance(summary, str) or not summary:
        return "no reason given"
    return summary.replace(secret, "<secret>")[:_SUMMARY_CHARS] if secret else summary[:_SUMMARY_CHARS]


class OktaClientSecrets:
    """Client secrets over Okta's ``/api/v1/apps/{client_id}/credentials/secrets`` (SSWS admin token)."""

    def __init__(self, *, http: httpx.Client, environ: Mapping[str, str] = os.environ) -> None:
        self._http = http
        self._environ = environ

    def _headers(self, target: OAuthTarget) -> dict[str, str]:
        token = self._environ.get(target.token_env, "")
        if not token:
            raise errors.fail(f"{target.token_env} is not set on the worker: it must hold the Okta admin API "
                              f"token for {target.base_url}", errors.MISSING_SECRET)
        return {"Authorization": f"SSWS {token}", "Accept": "application/json"}

    def _url(self, target: OAuthTarget, *tail: str) -> str:
        path = "/".join(quote(part, safe="") for part in ("api", "v1", "apps", target.client_id,
                                                          "credentials", "secrets", *tail))
        return f"{target.base_url.rstrip('/')}/{path}"

    def _request(self, method: str, url: str, target: OAuthTarget, doing: str,
                 body: dict[str, str] | None = None) -> httpx.Response:
        headers = self._headers(target)
        try:
            return self._http.request(method, url, headers=headers, json=body)
        except httpx.HTTPError as error:
            raise _unreachable(error, doing) from None

    def keys(self, target: OAuthTarget) -> list[ClientSecretKey]:
        """List the client's secrets (ids and states), oldest first."""
        doing = f"listing the secrets of client {target.client_id}"
        response = self._request("GET", self._url(target), target, doing)
        if response.status_code != 200:
            raise _admin_error(response, target, doing)
        listed = _json(response, doing)
        if not isinstance(listed, list):
            raise errors.fail(f"{doing}: the answer is not a list; is base_url an Okta admin API?",
                              errors.INVALID_TARGET)
        found = [_key_of(item, doing) for item in listed]
        return sorted(found, key=lambda k: (k.created is None, k.created or _EPOCH, k.id))

    def issue(self, target: OAuthTarget, secret: str) -> str:
        """Add ``secret`` as an active secret of the client; its key id."""
        doing = f"adding a secret to client {target.client_id}"
        response = self._request("POST", self._url(target), target, doing, {"client_secret": secret})
        if response.status_code == 400:
            # Okta says 400 for the two-secret limit and for a secret it does not accept; tell them apart,
            # since the first is the rotation's state (revoke the previous one) and the second its policy.
            active = [k.id for k in self.keys(target) if k.status == ACTIVE]
            if len(active) >= MAX_ACTIVE_SECRETS:
                raise errors.fail(f"client {target.client_id} already holds {len(active)} active secrets "
                                  f"({', '.join(active)}): revoke the previous one before adding another",
                                  errors.ROTATION_STATE)
            raise errors.fail(f"{doing}: Okta refused it: {_summary(response, secret)}", errors.INVALID_TARGET)
        if not response.is_success:
            raise _admin_error(response, target, doing)
        key = _key_of(_json(response, doing), doing)
        return key.id

    def revoke(self, target: OAuthTarget, key_id: str) -> str:
        """Deactivate, then delete, the secret ``key_id``; done already is done."""
        doing = f"revoking secret {key_id} of client {target.client_id}"
        deactivated = self._request("POST", self._url(target, key_id, "lifecycle", "deactivate"), target, doing)
        if deactivated.status_code == 404:
            return f"secret {key_id} of client {target.client_id} was already gone"
        if deactivated.status_code == 400:
            # Okta keeps a client from losing its last active secret: revoking it would lock every consumer out.
            raise errors.fail(f"{doing}: Okta refused to deactivate it ({_summary(deactivated, '')}); "
                              "it is likely the client's only active secret", errors.ROTATION_STATE)
        if not deactivated.is_success:
            raise _admin_error(deactivated, target, doing)
        deleted = self._request("DELETE", self._url(target, key_id), target, doing)
        if deleted.status_code != 404 and not deleted.is_success:
            raise _admin_error(deleted, target, doing)
        return f"secret {key_id} of client {target.client_id} deactivated and deleted"


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: id and secret are form-encoded before the Basic encoding (a no-op for our alphabets).
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _token_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else ""


def check_client_credentials(http: httpx.Client, target: OAuthTarget, client_secret: str) -> str:
    """Ask the token endpoint for a client_credentials token with this secret; say whether it worked."""
    doing = f"asking {target.token_url} for a token as client {target.client_id}"
    form = {"grant_type": "client_credentials", **({"scope": target.scope} if target.scope else {})}
    try:
        response = http.post(target.token_url, data=form, headers={
            "Authorization": _basic(target.client_id, client_secret), "Accept": "application/json"})
    except httpx.HTTPError as error:
        raise _unreachable(error, doing) from None
    code = _token_error(response)
    if response.status_code == 401 or (response.status_code == 400 and code == "invalid_client"):
        raise errors.fail(f"{doing}: the secret was rejected ({code or 'HTTP 401'})", errors.CREDENTIAL_REJECTED)
    if response.status_code == 400:
        # The secret authenticated or was not looked at; what failed is the client's setup (scope, grant type).
        raise errors.fail(f"{doing}: refused ({code or 'HTTP 400'}); check the client may use client_credentials"
                          f"{' with scope ' + repr(target.scope) if target.scope else ''}", errors.INVALID_TARGET)
    if response.status_code != 200:
        raise _status_error(response, doing)
    token = _json(response, doing)
    if not isinstance(token, dict) or not isinstance(token.get("access_token"), str) or not token["access_token"]:
        raise errors.fail(f"{doing}: the answer holds no access_token; is token_url a token endpoint?",
                          errors.INVALID_TARGET)
    return f"client {target.client_id} obtained an access token from {target.token_url}"
