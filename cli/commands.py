"""What each `zerotouch` subcommand does; errors become one line and exit code 1 or 2."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import uvloop
from temporalio.client import Client

from embedded.statedir import StateDir
from starters import steer
from workers.clients import KubernetesUnconfigured
from zerotouch.codec_keys import STATE_DIR_KEYS_FILE
from zerotouch.governor_client import GovernorError
from zerotouch.metrics_server import MetricsServer
from zerotouch.policy import PolicyError, load_policy, policy_schema
from zerotouch.telemetry import Telemetry, TelemetryError
from zerotouch.temporal import connect


class UsageError(Exception):
    """Bad input on the command line: exit code 2."""


async def _client(args: argparse.Namespace, **options: Any) -> Client:
    state = StateDir(args.state_dir)
    embedded = state.endpoints().get("temporal")
    address = args.address or os.environ.get("TEMPORAL_ADDRESS") or embedded
    # `zerotouch up` encrypts with a key of its own: use it for that server only.
    keys_file = state.path / STATE_DIR_KEYS_FILE if embedded and address == embedded else None
    try:
        return await connect(address, args.namespace, keys_file=keys_file, **options)
    except RuntimeError as error:
        raise UsageError(f"cannot reach Temporal at {address or 'the default address'}: {error}; "
                         "is `zerotouch up` running?") from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


async def _incidents(args: argparse.Namespace) -> int:
    rows = await steer.list_incidents(await _client(args), args.state)
    if args.json:
        _print_json([row.model_dump() for row in rows])
    else:
        print(steer.render_rows(rows))
    return 0


async def _show(args: argparse.Namespace) -> int:
    status = await steer.show_incident(await _client(args), args.incident_id)
    print(status.model_dump_json(indent=2) if args.json else steer.render_status(status))
    return 0


Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _human(action: Callable[..., Coroutine[Any, Any, Any]], *extra: str) -> Command:
    async def run(args: argparse.Namespace) -> int:
        extras = (getattr(args, name) for name in extra)
        decision = await action(await _client(args), args.incident_id, args.by, *extras)
        print(f"{decision.incident_id}: {decision.message} (state {decision.state})")
        return 0

    return run


async def _worker(args: argparse.Namespace) -> int:
    from workers.run import run_workers
    from zerotouch.names import ALL_QUEUES
    from zerotouch.settings import WorkerSettings

    settings = WorkerSettings(kubernetes_url=args.kubernetes_url)
    if args.policy:
        settings.policy_path = args.policy
    stop = asyncio.Event()
    _stop_on_signals(stop)
    async with _telemetry("zerotouch-worker") as telemetry:
        client = await _client(args, **telemetry.client_options())
        metrics = _metrics_server(telemetry, args.metrics_host, args.metrics_port)
        try:
            await run_workers(client, args.queue or ALL_QUEUES, settings, stop, cluster=args.cluster)
        finally:
            if metrics is not None:
                metrics.stop()
    return 0


@contextlib.asynccontextmanager
async def _telemetry(service: str) -> AsyncIterator[Telemetry]:
    try:
        telemetry = Telemetry.from_env(service)
    except TelemetryError as error:
        raise UsageError(str(error)) from None
    await telemetry.start()
    try:
        yield telemetry
    finally:
        await telemetry.stop()


def _metrics_server(telemetry: Telemetry, host: str, port: int) -> MetricsServer | None:
    if port == 0:
        return None
    server = MetricsServer(telemetry, host, port)
    try:
        server.start()
    except OSError as error:
        raise UsageError(f"{error.strerror}; choose another --metrics-port, or 0 for none") from None
    print(f"metrics on {server.url}", file=sys.stderr, flush=True)
    return server


async def _relay(args: argparse.Namespace) -> int:
    from starters.relay.config import RelayConfig, load_token
    from starters.relay.server import serve_relay
    from zerotouch.settings import default_policy_path

    policy = load_policy(args.policy or default_policy_path())
    config = RelayConfig(host=args.host, port=args.port, token=load_token(args.token_file),
                         group_by=policy.group_by, tls_certfile=args.tls_cert, tls_keyfile=args.tls_key,
                         cluster=args.cluster, temporal_timeout_seconds=args.temporal_timeout)
    async with _telemetry("zerotouch-relay") as telemetry:
        await serve_relay(config, await _client(args, **telemetry.client_options()), telemetry)
    return 0


async def _codec_server(args: argparse.Namespace) -> int:
    from zerotouch.codec import EncryptionCodec
    from zerotouch.codec_keys import keys_from_environment, read_keys_file
    from zerotouch.codec_server import CodecServer, CodecServerConfig, load_codec_token

    state_keys = StateDir(args.state_dir).path / STATE_DIR_KEYS_FILE
    keys = read_keys_file(args.keys_file) if args.keys_file else keys_from_environment(state_keys)
    if keys is None:
        raise UsageError("no codec keys: pass --keys-file, set $ZEROTOUCH_CODEC_KEYS(_FILE), or run `zerotouch up`")
    config = CodecServerConfig(token=load_codec_token(args.token_file), host=args.host, port=args.port,
                               namespaces=args.namespace or [], tls_certfile=args.tls_cert, tls_keyfile=args.tls_key)
    if args.origin:
        config.origins = args.origin
    server = CodecServer(EncryptionCodec(keys), config, embedded=False)
    print(f"codec endpoint on {config.host}:{config.port} (keys {', '.join(keys.by_id)}; "
          f"origins {', '.join(config.origins) or 'none'})", file=sys.stderr, flush=True)
    await server.serve_until_stopped()
    return 0


async def _up(args: argparse.Namespace) -> int:
    from embedded.up import EmbeddedOptions, run_embedded

    await run_embedded(EmbeddedOptions(
        state_dir=args.state_dir, sandbox=args.sandbox, sandbox_port=args.sandbox_port,
        temporal_port=args.temporal_port, ui_port=args.ui_port, relay_port=args.relay_port, policy_path=args.policy,
    ))
    return 0


async def _governor_command(args: argparse.Namespace) -> int:
    from zerotouch import governor_client as governor
    from zerotouch.durations import parse_duration
    from zerotouch.governor_policy import governor_settings
    from zerotouch.settings import default_policy_path

    client = await _client(args)
    # Pausing must work before the first incident ever started the Governor.
    settings = governor_settings(load_policy(args.policy or default_policy_path()))
    await governor.ensure_governor(client, args.cluster, settings)
    if args.command == "trust":
        rows = await governor.trust_table(client, args.cluster)
        if args.json:
            _print_json([row.model_dump(mode="json") for row in rows])
        else:
            print(governor.render_trust(rows))
        return 0
    if args.command == "governor":
        state = await governor.governor_status(client, args.cluster)
        print(state.model_dump_json(indent=2) if args.json else governor.render_status(state))
        return 0
    if args.command == "pause":
        ack = await governor.pause(client, args.cluster, args.by, args.reason, parse_duration(args.duration))
    elif args.command == "resume":
        ack = await governor.resume(client, args.cluster, args.by, args.note)
    elif args.command == "mode":
        ack = await governor.set_mode(client, args.cluster, args.mode, args.by, args.reason)
    else:
        ack = await governor.close_breaker(client, args.cluster, args.runbook, args.by, args.note)
    print(ack.message)
    return 0


def _stop_on_signals(stop: asyncio.Event) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


def _fire(args: argparse.Namespace) -> int:
    from starters.fire import fire_alert
    from starters.relay.config import load_token

    state = StateDir(args.state_dir)
    relay = args.relay or state.endpoints().get("relay")
    if not relay:
        raise UsageError("no relay URL: pass --relay or start `zerotouch up` first")
    token_file = args.token_file or (str(state.token_file) if state.token_file.exists() else None)
    result = fire_alert(relay, load_token(token_file), args.alertname, dict(args.label), dict(args.annotation),
                        args.resolved)
    _print_json(result)
    return 0


def _sandbox_url(args: argparse.Namespace) -> str:
    url = args.url or StateDir(args.state_dir).endpoints().get("sandbox")
    if not url:
        raise UsageError("no sandbox URL: pass --url or start `zerotouch up --sandbox` first")
    return str(url)


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox import actions_via_http, inject_via_http

    if args.sandbox_command == "serve":
        from sandbox.__main__ import main as serve_main

        forwarded = ["--port", str(args.port)] + (["--state-file", args.state_file] if args.state_file else [])
        return int(serve_main(forwarded) or 0)
    if args.sandbox_command == "actions":
        _print_json(actions_via_http(_sandbox_url(args)))
        return 0
    namespace, separator, deployment = args.target.partition("/")
    if not separator or not namespace or not deployment:
        raise UsageError(f"target must be NAMESPACE/DEPLOYMENT, got {args.target!r}")
    _print_json(inject_via_http(_sandbox_url(args), args.kind, namespace, deployment))
    return 0


def _ledger(args: argparse.Namespace) -> int:
    from zerotouch import ledger_report as ledger
    from zerotouch.durations import parse_duration

    url = args.ledger or ledger.default_ledger_url(StateDir(args.state_dir).path)
    if args.command == "ledger":
        result = ledger.verify_ledger(url)
        print(ledger.render_verify(result))
        return 0 if result.ok else 1
    if args.command == "postmortem":
        try:
            print(ledger.postmortem_for(url, args.incident_id))
        except LookupError as error:
            raise UsageError(str(error)) from None
        return 0
    summary = ledger.report(url, parse_duration(args.since))
    print(summary.model_dump_json(indent=2) if args.json else ledger.render_report(summary))
    return 0


def _policy(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        _print_json(policy_schema())
        return 0
    policy = load_policy(args.file)
    print(f"{args.file}: ok — mode {policy.mode}, {len(policy.runbooks)} runbooks, "
          f"{len(policy.approvers.names)} approvers")
    return 0


_ASYNC: dict[str, Command] = {
    "incidents": _incidents,
    "show": _show,
    "approve": _human(steer.approve, "note"),
    "abort": _human(steer.abort, "reason"),
    "take-over": _human(steer.take_over, "note"),
    "retry": _human(steer.request_retry, "note"),
    "worker": _worker,
    "relay": _relay,
    "codec-server": _codec_server,
    "up": _up,
    **dict.fromkeys(("pause", "resume", "mode", "close-breaker", "trust", "governor"), _governor_command),
}
_SYNC: dict[str, Callable[[argparse.Namespace], int]] = {
    "fire": _fire, "sandbox": _sandbox, "policy": _policy, "ledger": _ledger, "postmortem": _ledger, "report": _ledger,
}


# The relay spends its CPU in the event loop itself (a transport, a timer and a task per
# webhook): on uvloop it keeps pace with Temporal (BENCHMARKS.md, scenario 1); on the
# stock loop it delivered ~15% fewer alerts per second than a plain client did.
_UVLOOP_COMMANDS = frozenset({"relay"})


def _run_loop(command: str) -> Callable[[Coroutine[Any, Any, int]], int]:
    if command in _UVLOOP_COMMANDS:
        return uvloop.run
    return asyncio.run


def dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command in _SYNC:
            return _SYNC[args.command](args)
        return _run_loop(args.command)(_ASYNC[args.command](args))
    except (PolicyError, steer.SteerError, UsageError, ValueError, KubernetesUnconfigured, GovernorError) as error:
        print(f"zerotouch {args.command}: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError | PolicyError) else 1
    except KeyboardInterrupt:
        return 130
