"""The `zerotouch` command line: argument parsing only; the work lives in `starters/`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from starters.relay.config import DEFAULT_TEMPORAL_TIMEOUT_SECONDS
from zerotouch.models import INCIDENT_STATES
from zerotouch.names import ALL_QUEUES


def _label(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _port(text: str) -> int:
    """A TCP port, or 0 (meaning: none / any, as the option says)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0..65535")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < seconds <= 300:
        raise argparse.ArgumentTypeError(f"{seconds:g} s is outside (0, 300]")
    return seconds


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="Temporal frontend (default $TEMPORAL_ADDRESS or the running `up`)")
    parser.add_argument("--namespace", help="Temporal namespace (default $TEMPORAL_NAMESPACE or default)")
    parser.add_argument("--state-dir", help="state directory of `zerotouch up` (default .zerotouch)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zerotouch", description="Operations without a human on call.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run everything on this machine (Temporal dev server, workers, relay)")
    up.add_argument("--sandbox", action="store_true", help="also run a sandbox Kubernetes cluster to practise on")
    up.add_argument("--state-dir", help="where Temporal's SQLite file and the relay token live (.zerotouch)")
    up.add_argument("--policy", help="policy file (default $ZEROTOUCH_POLICY or deploy/policy/zerotouch.yaml)")
    up.add_argument("--temporal-port", type=int, default=7233)
    up.add_argument("--ui-port", type=int, default=8233)
    up.add_argument("--relay-port", type=int, default=9095)
    up.add_argument("--sandbox-port", type=int, default=6443)

    worker = commands.add_parser("worker", help="run the workers of one or more task queues")
    worker.add_argument("--queue", action="append", choices=ALL_QUEUES, help="repeatable; default: all")
    worker.add_argument("--cluster", default="", help="cluster scope (task queue suffix)")
    worker.add_argument("--kubernetes-url", help="API server without auth (a sandbox); default: kubeconfig")
    worker.add_argument("--policy", help="policy file")
    worker.add_argument("--metrics-host", default=os.environ.get("ZEROTOUCH_METRICS_HOST", "127.0.0.1"),
                        help="where /metrics listens (default $ZEROTOUCH_METRICS_HOST or 127.0.0.1)")
    worker.add_argument("--metrics-port", type=_port, default=os.environ.get("ZEROTOUCH_METRICS_PORT", "0"),
                        help="serve Prometheus /metrics on this port, e.g. 9464 (default $ZEROTOUCH_METRICS_PORT; "
                             "0 or unset: off, so several workers can share a host)")
    _connection(worker)

    relay = commands.add_parser("relay", help="serve the Alertmanager webhook relay")
    relay.add_argument("--host", default="127.0.0.1")
    relay.add_argument("--port", type=int, default=9095)
    relay.add_argument("--token-file", help="bearer token file (else $ZEROTOUCH_RELAY_TOKEN)")
    relay.add_argument("--tls-cert", help="serve HTTPS with this certificate")
    relay.add_argument("--tls-key", help="and this key")
    relay.add_argument("--policy", help="policy file (for group_by)")
    relay.add_argument("--cluster", default="", help="cluster scope: feeds the workers started with the same --cluster")
    relay.add_argument("--temporal-timeout", type=_seconds, default=DEFAULT_TEMPORAL_TIMEOUT_SECONDS, metavar="SECONDS",
                       help="answer 503 when Temporal has not taken the alerts by then "
                            f"(default {DEFAULT_TEMPORAL_TIMEOUT_SECONDS:g}: under Alertmanager's 10 s notify "
                            "deadline, so it can retry within the same flush)")
    _connection(relay)

    codec = commands.add_parser("codec-server", help="serve the payload codec endpoint for the Temporal Web UI")
    codec.add_argument("--host", default="127.0.0.1")
    codec.add_argument("--port", type=int, default=9096)
    codec.add_argument("--token-file", help="bearer token file (else $ZEROTOUCH_CODEC_TOKEN); required")
    codec.add_argument("--keys-file", help="codec keys (else $ZEROTOUCH_CODEC_KEYS[_FILE] or the state dir's)")
    codec.add_argument("--origin", action="append", metavar="URL",
                       help="Web UI origin allowed to call it (repeatable; default the embedded UI on :8233)")
    codec.add_argument("--namespace", action="append", help="serve only these namespaces (repeatable; default any)")
    codec.add_argument("--tls-cert", help="serve HTTPS with this certificate")
    codec.add_argument("--tls-key", help="and this key")
    codec.add_argument("--state-dir", help="state directory of `zerotouch up` (default .zerotouch)")

    fire = commands.add_parser("fire", help="send an alert to the relay as Alertmanager would")
    fire.add_argument("alertname")
    fire.add_argument("--label", action="append", type=_label, default=[], metavar="NAME=VALUE")
    fire.add_argument("--annotation", action="append", type=_label, default=[], metavar="NAME=VALUE")
    fire.add_argument("--resolved", action="store_true", help="send it as resolved")
    fire.add_argument("--relay", help="relay URL (default: the running `zerotouch up`)")
    fire.add_argument("--token-file", help="relay token file (default: the state dir's)")
    fire.add_argument("--state-dir")

    incidents = commands.add_parser("incidents", help="list incidents")
    incidents.add_argument("--state", choices=INCIDENT_STATES)
    incidents.add_argument("--json", action="store_true")
    _connection(incidents)

    show = commands.add_parser("show", help="show one incident: state, timeline, pending approval")
    show.add_argument("incident_id")
    show.add_argument("--json", action="store_true")
    _connection(show)

    for name, help_text in (("approve", "approve the pending request"),
                            ("take-over", "take the incident over; automation stops"),
                            ("retry", "ask for one more automated attempt (another approver approves)")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("incident_id")
        command.add_argument("--by", required=True, help="your name, as listed in the policy's approvers")
        command.add_argument("--note", default="")
        _connection(command)
    abort = commands.add_parser("abort", help="abort the incident; automation stops for good")
    abort.add_argument("incident_id")
    abort.add_argument("--by", required=True)
    abort.add_argument("--reason", required=True)
    _connection(abort)

    pause = commands.add_parser("pause", help="kill switch: stop all automated actions for a while")
    pause.add_argument("--for", dest="duration", required=True, help="how long, e.g. 30m (expires by itself)")
    pause.add_argument("--reason", required=True)
    pause.add_argument("--by", required=True)
    resume = commands.add_parser("resume", help="lift the kill switch before it expires")
    resume.add_argument("--by", required=True)
    resume.add_argument("--note", default="")
    mode = commands.add_parser("mode", help="observe (record only), approve-all, or auto")
    mode.add_argument("mode", choices=("observe", "approve-all", "auto"))
    mode.add_argument("--by", required=True)
    mode.add_argument("--reason", default="")
    breaker = commands.add_parser("close-breaker", help="close a runbook's circuit breaker")
    breaker.add_argument("runbook")
    breaker.add_argument("--by", required=True)
    breaker.add_argument("--note", default="")
    trust = commands.add_parser("trust", help="each runbook's record and trust level")
    trust.add_argument("--json", action="store_true")
    governor = commands.add_parser("governor", help="the Governor's state: pause, mode, limits, breakers, budget")
    governor.add_argument("--json", action="store_true")
    for command in (pause, resume, mode, breaker, trust, governor):
        command.add_argument("--cluster", default="", help="cluster scope (default: the default scope)")
        command.add_argument("--policy", help="policy whose guardrails start the Governor if it is not running")
        _connection(command)

    ledger = commands.add_parser("ledger", help="the audit ledger of closed incidents")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    verify = ledger_commands.add_parser("verify", help="check the hash chain: detects edited or deleted records")
    postmortem = commands.add_parser("postmortem", help="print the post-mortem of a closed incident")
    postmortem.add_argument("incident_id")
    report = commands.add_parser("report", help="zero-ops dashboard from the ledger: automation rate, MTTD, MTTR")
    report.add_argument("--since", default="7d", help="window, e.g. 24h or 7d")
    report.add_argument("--json", action="store_true")
    for command in (verify, postmortem, report):
        command.add_argument("--ledger", help="sqlite:///path or postgresql://... (default: $ZEROTOUCH_LEDGER_URL "
                                              "or ledger.db in the state dir)")
        command.add_argument("--state-dir")

    policy = commands.add_parser("policy", help="check a policy file or print its JSON schema")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file")
    policy_commands.add_parser("schema", help="print the policy's JSON schema")

    sandbox = commands.add_parser("sandbox", help="the sandbox cluster: serve it, break it")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    inject = sandbox_commands.add_parser("inject", help="inject a fault into a deployment")
    inject.add_argument("kind", help="crashloop, oom, bad-deploy, overload, unfixable, disk-pressure, clear")
    inject.add_argument("target", help="NAMESPACE/DEPLOYMENT")
    inject.add_argument("--url", help="sandbox URL (default: the running `zerotouch up --sandbox`)")
    inject.add_argument("--state-dir")
    actions = sandbox_commands.add_parser("actions", help="list the mutating requests the sandbox received")
    actions.add_argument("--url")
    actions.add_argument("--state-dir")
    serve = sandbox_commands.add_parser("serve", help="run a sandbox cluster in the foreground")
    serve.add_argument("--port", type=int, default=6443)
    serve.add_argument("--state-file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cli.commands import dispatch

    return dispatch(args)


def run() -> None:
    """Console entry point.

    The Temporal client's Rust runtime keeps threads that can abort the interpreter while
    it finalizes ("PyGILState_Release ... must be current", temporalio/sdk-python#300),
    turning a successful command into a crash. Once the command is done and its output
    flushed there is nothing left to clean up, so leave without finalizing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
