"""A real OAuth 2.0 authorization server for tests: authlib's token endpoint plus Okta's client-secret API.

The token endpoint is authlib's framework-agnostic server core (`AuthorizationServer` with
`ClientCredentialsGrant`, client_secret_basic), so what the tests prove against is a maintained
RFC 6749 implementation rather than a hand-written imitation. The admin API follows Okta's shape and
rules: ``SSWS`` token, at most two active secrets per client (the grace window), only an inactive
secret may be deleted, the last active one may not be deactivated; an inactive secret no longer
authenticates. Secrets are kept as SHA-256 digests, so not even this server holds them in the clear.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator

TOKEN_PATH = "/oauth2/v1/token"  # Okta's org authorization server
MAX_ACTIVE = 2
_SECRETS = re.compile(r"^/api/v1/apps/(?P<client>[^/]+)/credentials/secrets(?:/(?P<key>[^/]+)(?P<op>/lifecycle/"
                      r"deactivate)?)?$")
_JSON = {"Content-Type": "application/json"}


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass
class _Secret:
    id: str
    digest: bytes
    status: str = "ACTIVE"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def view(self) -> dict[str, str]:
        """As Okta lists it: never the secret itself."""
        stamp = self.created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"id": self.id, "status": self.status, "created": stamp, "lastUpdated": stamp,
                "secret_hash": base64.urlsafe_b64encode(self.digest).decode().rstrip("=")}


class _Refused(Exception):
    """An Okta-style error answer."""

    def __init__(self, status: int, summary: str) -> None:
        super().__init__(summary)
        self.status, self.summary = status, summary


class _Clients:
    """Every registered client's secrets, behind one lock (the HTTP server is threaded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, list[_Secret]] = {}

    def _of(self, client_id: str) -> list[_Secret]:
        if client_id not in self._secrets:
            raise _Refused(404, f"Not found: Resource not found: {client_id} (AppInstance)")
        return self._secrets[client_id]

    def register(self, client_id: str, secret: str) -> str:
        with self._lock:
            if client_id in self._secrets:
                raise ValueError(f"client {client_id} is already registered")
            self._secrets[client_id] = []
        return self.add(client_id, secret)

    def exists(self, client_id: str) -> bool:
        with self._lock:
            return client_id in self._secrets

    def list(self, client_id: str) -> list[dict[str, str]]:
        with self._lock:
            return [s.view() for s in self._of(client_id)]

    def add(self, client_id: str, secret: str) -> str:
        if not 14 <= len(secret) <= 100:  # Okta's bounds for a client secret it is given
            raise _Refused(400, "Api validation failed: client_secret must be 14 to 100 characters")
        with self._lock:
            held = self._of(client_id)
            if sum(s.status == "ACTIVE" for s in held) >= MAX_ACTIVE:
                raise _Refused(400, "Api validation failed: an app can have at most two active client secrets")
            created = _Secret(id="ocs" + secrets.token_hex(8), digest=_digest(secret))
            held.append(created)
            return created.id

    def view(self, client_id: str, key_id: str) -> dict[str, str]:
        with self._lock:
            return self._find(client_id, key_id).view()

    def _find(self, client_id: str, key_id: str) -> _Secret:
        for held in self._of(client_id):
            if held.id == key_id:
                return held
        raise _Refused(404, f"Not found: Resource not found: {key_id} (ClientSecret)")

    def deactivate(self, client_id: str, key_id: str) -> dict[str, str]:
        with self._lock:
            held = self._find(client_id, key_id)
            active = [s for s in self._of(client_id) if s.status == "ACTIVE"]
            if active == [held]:
                raise _Refused(400, "Api validation failed: cannot deactivate the only active client secret")
            held.status = "INACTIVE"
            return held.view()

    def delete(self, client_id: str, key_id: str) -> None:
        with self._lock:
            held = self._find(client_id, key_id)
            if held.status == "ACTIVE":
                raise _Refused(400, "Api validation failed: deactivate a client secret before deleting it")
            self._secrets[client_id].remove(held)

    def authenticates(self, client_id: str, secret: str) -> bool:
        """Any active secret of the client: the grace window is exactly this."""
        offered = _digest(secret)
        with self._lock:
            active = [s.digest for s in self._secrets.get(client_id, []) if s.status == "ACTIVE"]
        # compare against every one, so the time taken does not tell which matched
        return sum(hmac.compare_digest(offered, d) for d in active) > 0


class _Client(ClientMixin):
    def __init__(self, client_id: str, clients: _Clients) -> None:
        self.client_id, self._clients = client_id, clients

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_client_secret(self, client_secret: str) -> bool:
        return self._clients.authenticates(self.client_id, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic" and endpoint == "token"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == ClientCredentialsGrant.GRANT_TYPE


class _TokenServer(AuthorizationServer):
    """authlib's server core wired to `_Clients`; requests come as (uri, headers, form) from the handler."""

    def __init__(self, clients: _Clients) -> None:
        super().__init__()
        self._clients = clients
        self.issued = 0
        self.register_grant(ClientCredentialsGrant)
        self.register_token_generator("default", BearerTokenGenerator(lambda **_: secrets.token_urlsafe(32)))

    def query_client(self, client_id: str) -> _Client | None:
        return _Client(client_id, self._clients) if self._clients.exists(client_id) else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.issued += 1

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: tuple[str, Any, dict[str, str]]) -> OAuth2Request:
        uri, headers, form = request
        made = OAuth2Request("POST", uri, headers=headers)
        made.payload = BasicOAuth2Payload(form)
        return made

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers)


@dataclass
class OAuthServer:
    """The running server: its URLs, its admin token, and a way to register clients."""

    base_url: str
    admin_token: str
    _clients: _Clients
    _tokens: _TokenServer

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def tokens_issued(self) -> int:
        return int(self._tokens.issued)

    def register_client(self, client_id: str, secret: str) -> str:
        """A confidential client allowed client_credentials, with one active secret; that secret's key id."""
        return self._clients.register(client_id, secret)

    def secrets_of(self, client_id: str) -> list[dict[str, str]]:
        """The client's secrets as the admin API lists them (ids, states; no values)."""
        return self._clients.list(client_id)


def _handler(server: OAuthServer, failures: list[BaseException]) -> type[BaseHTTPRequestHandler]:
    clients, tokens = server._clients, server._tokens

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not traffic
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or (_JSON if data else {})).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))

        def _admin(self, method: str) -> None:
            match = _SECRETS.match(self.path)
            if not match:
                return self._send(404, {"errorCode": "E0000022", "errorSummary": "The endpoint does not exist."})
            offered = self.headers.get("Authorization", "")
            if not hmac.compare_digest(offered.encode(), f"SSWS {server.admin_token}".encode()):
                return self._send(401, {"errorCode": "E0000011", "errorSummary": "Invalid token provided"})
            client, key, op = match["client"], match["key"], match["op"]
            if method == "GET" and not key:
                return self._send(200, clients.list(client))
            if method == "GET":
                return self._send(200, clients.view(client, key))
            if method == "POST" and not key:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    raise _Refused(400, "Api validation failed: the body is not JSON") from None
                secret = body.get("client_secret") or secrets.token_urlsafe(40)  # Okta makes one if none given
                return self._send(200, clients.view(client, clients.add(client, secret)))
            if method == "POST" and op:
                return self._send(200, clients.deactivate(client, key))
            if method == "DELETE" and key and not op:
                clients.delete(client, key)
                return self._send(204, None)
            return self._send(405, {"errorCode": "E0000022", "errorSummary": "The endpoint does not support "
                                                                             "the provided HTTP method"})

        def _serve(self, method: str) -> None:
            try:
                if method == "POST" and self.path == TOKEN_PATH:
                    request = (server.base_url + self.path, self.headers, self._form())
                    status, body, headers = tokens.create_token_response(request)
                    return self._send(status, body, headers)
                return self._admin(method)
            except _Refused as refused:
                code = "E0000007" if refused.status == 404 else "E0000001"
                return self._send(refused.status, {"errorCode": code, "errorSummary": refused.summary})
            except Exception as error:  # a bug here: answer, and let the test see it at the end
                failures.append(error)
                return self._send(500, {"errorCode": "E0000009", "errorSummary": "Internal Server Error"})

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


@contextlib.contextmanager
def running_oauth_server(admin_token: str) -> Iterator[OAuthServer]:
    """Serve on 127.0.0.1 (a port the OS picks as it binds: nothing can take it in between) until exit.

    The listening socket exists before this yields, so the first request cannot race the start.
    A failure inside a handler answers 500 and is raised here at exit, unless the body failed first.
    """
    clients = _Clients()
    failures: list[BaseException] = []
    http = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    http.daemon_threads = True
    server = OAuthServer(base_url=f"http://127.0.0.1:{http.server_address[1]}", admin_token=admin_token,
                         _clients=clients, _tokens=_TokenServer(clients))
    http.RequestHandlerClass = _handler(server, failures)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                              name="oauth-server", daemon=True)
    try:
        thread.start()
        yield server
    finally:
        if thread.is_alive():  # shutdown() waits for serve_forever, so only ask a loop that runs
            http.shutdown()
            thread.join(timeout=10)
        http.server_close()
    if thread.is_alive():
        raise RuntimeError("the OAuth test server's thread did not stop within 10s")
    if failures:
        raise RuntimeError(f"the OAuth test server failed {len(failures)} request(s)") from failures[0]
