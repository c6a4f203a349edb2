"""How the Alertmanager relay is configured, and where its token comes from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from starters.relay.repeats import DEFAULT_WINDOW_SECONDS
from zerotouch.alert_sources import AlertSources
from zerotouch.gdpr import GdprPolicy
from zerotouch.http.serving import is_loopback, serving_problem
from zerotouch.names import WORKFLOWS_QUEUE
from zerotouch.recovery_databases import DatabaseFailoverTarget
from zerotouch.recovery_nodes import NodeRecoveryPolicy
from zerotouch.rotations import RotationsPolicy

DEFAULT_GROUP_BY = ("alertname", "namespace", "workload")
# Alertmanager posts a whole aggregation group in one webhook and drops it for good on a 4xx.
# kube-prometheus alerts measure 1.2-1.5 KB each in a webhook (labels, annotations, generatorURL;
# bench/scenarios/payload.py): 8 MiB holds a group of 5,000 of them (6.2 MiB at 1.3 KB) with room
# for longer annotations. Delivering one raises the relay's RSS by 45-100 MiB (BENCHMARKS.md, 7).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# Alertmanager gives a webhook flush at least 10 s; answering 503 before that lets it retry
# within the same flush instead of waiting a whole group_interval.
DEFAULT_TEMPORAL_TIMEOUT_SECONDS = 8.0
# Past a few minutes an identical delivery is Alertmanager's repeat_interval, not a duplicate, and the
# incident it was told to may have closed since: it must go through.
MAX_ABSORB_REPEATS_SECONDS = 300.0
TOKEN_ENV_VAR = "ZEROTOUCH_RELAY_TOKEN"  # noqa: S105 - the variable's name, not a token


class RelayConfigError(ValueError):
    """A configuration the relay refuses to start with; the message says what to change."""


@dataclass
class RelayConfig:
    """Everything the relay needs besides its Temporal client.

    Attributes:
        token: bearer token (``Authorization: Bearer <token>``); ``None`` or empty disables it.
        basic_users: user → password accepted with HTTP basic auth (Alertmanager's ``basic_auth``).
        group_by: labels that make one incident (the policy's ``group_by``); empty = per fingerprint.
        alert_sources: the policy's ``alerts:``; its heartbeats (Watchdog) are accepted and dropped.
        rotations: the policy's ``rotations:``; a leak report (POST /v1/secrets/leaked) must name one.
        gdpr: the policy's ``gdpr:``; a data-subject request (POST /v1/gdpr/requests) goes into its vault.
        node_recovery: the policy's ``recovery.nodes``: its alerts with a ``node`` label start a node recovery.
        databases: the policy's ``recovery.databases``: their alerts with a ``database`` label start its failover.
        state_dir: the workers' state directory, where the vault is unless gdpr.storage names one
            (empty: $ZEROTOUCH_STATE_DIR or .zerotouch, as the workers).
        task_queue: base queue of the incident workflows; ``cluster`` is appended as a scope.
        cluster: cluster scope, passed to the workflow and suffixed to the task queue.
        max_body_bytes: largest accepted body (default 8 MiB: an aggregation group of 5,000
            kube-prometheus alerts); larger bodies get 413 unread, which Alertmanager does not
            retry, so it must hold the largest group the receiver can get.
        host, port: where to listen (default 127.0.0.1:9095; port 0 picks a free one).
        tls_certfile, tls_keyfile: serve HTTPS with these (both or neither).
        request_timeout_seconds: how long a client may take to send its body, and the
            keep-alive idle timeout, so a slow or half-open client cannot hold a connection.
        temporal_timeout_seconds: how long one delivery may wait on Temporal before 503; a group
            too large for it is delivered over Alertmanager's retries (`deliver.CatchUp`).
        absorb_repeats_seconds: an alert identical to what its incident was told within this many
            seconds is answered without telling it again (`starters.relay.repeats`); 0 tells every delivery.
        retry_after_seconds: the ``Retry-After`` sent with 503.
        max_concurrent_requests: connections+requests beyond this get 503 from uvicorn.
    """

    # repr=False: the secrets must not end up in a log line that prints the config.
    token: str | None = field(default=None, repr=False)
    basic_users: dict[str, str] = field(default_factory=dict, repr=False)
    group_by: list[str] = field(default_factory=lambda: list(DEFAULT_GROUP_BY))
    alert_sources: AlertSources = field(default_factory=AlertSources)
    rotations: RotationsPolicy = field(default_factory=RotationsPolicy, repr=False)  # a policy section: too long to log
    gdpr: GdprPolicy = field(default_factory=GdprPolicy, repr=False)
    node_recovery: NodeRecoveryPolicy = field(default_factory=NodeRecoveryPolicy, repr=False)
    databases: dict[str, DatabaseFailoverTarget] = field(default_factory=dict, repr=False)
    state_dir: str = ""
    task_queue: str = WORKFLOWS_QUEUE
    cluster: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    host: str = "127.0.0.1"
    port: int = 9095
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    request_timeout_seconds: float = 10.0
    temporal_timeout_seconds: float = DEFAULT_TEMPORAL_TIMEOUT_SECONDS
    absorb_repeats_seconds: float = DEFAULT_WINDOW_SECONDS
    retry_after_seconds: int = 5
    max_concurrent_requests: int = 256

    @property
    def auth_required(self) -> bool:
        return bool(self.token) or bool(self.basic_users)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir or os.environ.get("ZEROTOUCH_STATE_DIR", ".zerotouch"))

    @property
    def tls(self) -> bool:
        return bool(self.tls_certfile)

    def check(self) -> None:
        """Raise `RelayConfigError` for a configuration that must not be served."""
        if not self.auth_required and not is_loopback(self.host):
            raise RelayConfigError(
                f"relay host {self.host!r} is reachable from other machines but no credentials are set: "
                f"set a token (--token-file or ${TOKEN_ENV_VAR}) or basic users, or listen on 127.0.0.1"
            )
        for user, password in self.basic_users.items():
            if not user or ":" in user or not password:
                raise RelayConfigError(f"basic user {user!r}: needs a name without ':' and a non-empty password")
        if problem := serving_problem(self.tls_certfile, self.tls_keyfile, self.max_body_bytes):
            raise RelayConfigError(problem)
        if self.request_timeout_seconds <= 0 or self.temporal_timeout_seconds <= 0:
            raise RelayConfigError("request and Temporal timeouts must be positive")
        if not 0 <= self.absorb_repeats_seconds <= MAX_ABSORB_REPEATS_SECONDS:
            raise RelayConfigError(f"absorb_repeats_seconds must be 0 (off) to {MAX_ABSORB_REPEATS_SECONDS:g}: "
                                   "a longer window could hide an alert that should open a new incident")


def load_token(token_file: str | None, env_var: str = TOKEN_ENV_VAR) -> str | None:
    """The relay token from ``token_file`` if given, else from ``$env_var``; ``None`` if neither has one.

    Whitespace is stripped because token files usually end with a newline.
    """
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except OSError as error:
            raise RelayConfigError(f"cannot read relay token file {token_file}: {error.strerror}") from None
    else:
        text = os.environ.get(env_var, "")
    return text.strip() or None
