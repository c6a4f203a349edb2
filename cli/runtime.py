"""The long-running processes: `up` (everything on this machine), `worker`, `relay`, `codec-server`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import click

from cli.common import PORT, Connection, Section, TimeoutType, connection_options, state_dir_option
from cli.errors import UsageError
from starters.relay.config import DEFAULT_MAX_BODY_BYTES, DEFAULT_TEMPORAL_TIMEOUT_SECONDS, MAX_ABSORB_REPEATS_SECONDS
from starters.relay.repeats import DEFAULT_WINDOW_SECONDS as DEFAULT_ABSORB_SECONDS
from zerotouch.names import ALL_QUEUES, OBSERVE_QUEUE

if TYPE_CHECKING:
    from zerotouch.metrics_server import MetricsServer
    from zerotouch.telemetry import Telemetry

_POLICY_HELP = "policy file (default $ZEROTOUCH_POLICY or deploy/policy/zerotouch.yaml)"


@click.command(short_help="run everything on this machine (Temporal dev server, workers, relay)")
@click.option("--sandbox", is_flag=True, help="also run a sandbox Kubernetes cluster to practise on")
@state_dir_option("where Temporal's SQLite file and the relay token live (default $ZEROTOUCH_STATE_DIR or "
                  ".zerotouch)")
@click.option("--policy", type=click.Path(dir_okay=False), help=_POLICY_HELP)
@click.option("--temporal-port", type=PORT, default=7233, show_default=True, help="the Temporal dev server's port")
@click.option("--ui-port", type=PORT, default=8233, show_default=True, help="the Temporal Web UI's port")
@click.option("--relay-port", type=PORT, default=9095, show_default=True, help="the Alertmanager relay's port")
@click.option("--sandbox-port", type=PORT, default=6443, show_default=True,
              help="the sandbox cluster's port (with --sandbox)")
@click.option("--codec-port", type=PORT, default=0,
              help="the codec endpoint's port, through which the Web UI decodes payloads (default: any free one)")
@click.option("--no-monitoring", is_flag=True,
              help="with --sandbox: do not start Prometheus and Alertmanager even if installed "
                   "(no alert rules, no PromQL verification)")
def up(sandbox: bool, state_dir: str | None, policy: str | None, temporal_port: int, ui_port: int,
       relay_port: int, sandbox_port: int, codec_port: int, no_monitoring: bool) -> None:
    """Run everything on this machine until Ctrl-C: a Temporal dev server (SQLite in the state dir),
    the workers of every task queue, the relay, and with --sandbox a sandbox cluster watched by
    Prometheus (the stock kube-prometheus rules) and Alertmanager when Debian's are installed."""
    from embedded.up import EmbeddedOptions, run_embedded

    asyncio.run(run_embedded(EmbeddedOptions(
        state_dir=state_dir, sandbox=sandbox, sandbox_port=sandbox_port,
        temporal_port=temporal_port, ui_port=ui_port, relay_port=relay_port, codec_port=codec_port,
        policy_path=policy,
        monitoring=not no_monitoring,
    )))


@contextlib.asynccontextmanager
async def _telemetry(service: str) -> AsyncIterator[Telemetry]:
    from zerotouch.telemetry import Telemetry

    telemetry = Telemetry.from_env(service)
    await telemetry.start()
    try:
        yield telemetry
    finally:
        await telemetry.stop()


def _metrics_server(telemetry: Telemetry, host: str, port: int) -> MetricsServer | None:
    from zerotouch.metrics_server import MetricsServer

    if port == 0:
        return None
    server = MetricsServer(telemetry, host, port)
    try:
        server.start()
    except OSError as error:
        raise UsageError(f"{error.strerror}; choose another --metrics-port, or 0 for none") from None
    print(f"metrics on {server.url}", file=sys.stderr, flush=True)
    return server


@click.command(short_help="run the workers of one or more task queues")
@click.option("--queue", type=click.Choice(ALL_QUEUES), multiple=True,
              help="a task queue to serve (repeatable; default: all)")
@click.option("--cluster", default="", help="cluster scope (task queue suffix)")
@click.option("--kubernetes-url", metavar="URL", help="API server without auth (a sandbox); default: kubeconfig")
@click.option("--policy", type=click.Path(dir_okay=False), help=_POLICY_HELP)
@click.option("--metrics-host", envvar="ZEROTOUCH_METRICS_HOST", default="127.0.0.1", show_default=True,
              show_envvar=True, help="where /metrics listens")
@click.option("--metrics-port", type=PORT, envvar="ZEROTOUCH_METRICS_PORT", default=0, show_envvar=True,
              help="serve Prometheus /metrics on this port, e.g. 9464 (0 or unset: off, so several workers can "
                   "share a host)")
@connection_options
def worker(queue: tuple[str, ...], cluster: str, kubernetes_url: str | None, policy: str | None,
           metrics_host: str, metrics_port: int, connection: Connection) -> None:
    """Run the workers of one or more task queues until SIGINT or SIGTERM."""
    from workers.run import run_workers
    from zerotouch.settings import WorkerSettings

    settings = WorkerSettings(kubernetes_url=kubernetes_url)
    if policy:
        settings.policy_path = policy

    async def run() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        async with _telemetry("zerotouch-worker") as telemetry:
            client = await connection.client(**telemetry.client_options())
            metrics = _metrics_server(telemetry, metrics_host, metrics_port)
            watcher = None
            if metrics is not None and OBSERVE_QUEUE in (queue or ALL_QUEUES):
                # The observe worker also watches the cluster's managed schedules (zerotouch_schedule_*).
                from starters.schedules import ScheduleMetrics

                schedule_metrics = ScheduleMetrics()
                telemetry.registry.register(schedule_metrics)
                watcher = asyncio.create_task(schedule_metrics.watch(client, stop, cluster=cluster))
                # And the drills' gauges (zerotouch_drill_*), from the ledger the observe worker writes them to.
                from zerotouch.drill_metrics import DrillMetrics

                telemetry.registry.register(DrillMetrics(settings.ledger_url))
            try:
                await run_workers(client, queue or ALL_QUEUES, settings, stop, cluster=cluster)
            finally:
                stop.set()
                if watcher is not None:
                    await watcher
                if metrics is not None:
                    metrics.stop()

    asyncio.run(run())


def _stop_on_signals(stop: asyncio.Event) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


@click.command(short_help="serve the Alertmanager webhook relay")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=PORT, default=9095, show_default=True, help="port to listen on")
@click.option("--token-file", type=click.Path(dir_okay=False), help="bearer token file (else $ZEROTOUCH_RELAY_TOKEN)")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="serve HTTPS with this certificate")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="and this key")
@click.option("--policy", type=click.Path(dir_okay=False), help=f"{_POLICY_HELP}, for group_by")
@click.option("--cluster", default="", help="cluster scope: feeds the workers started with the same --cluster")
@click.option("--temporal-timeout", type=TimeoutType(), default=DEFAULT_TEMPORAL_TIMEOUT_SECONDS,
              help="answer 503 when Temporal has not taken the alerts by then "
                   f"(default {DEFAULT_TEMPORAL_TIMEOUT_SECONDS:g}: under Alertmanager's 10 s notify "
                   "deadline, so it can retry within the same flush)")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=DEFAULT_MAX_BODY_BYTES, show_default=True,
              help="refuse larger webhook bodies with 413 (the default holds 5,000 kube-prometheus alerts; "
                   "Alertmanager sends a whole group in one body)")
@click.option("--absorb-repeats", type=click.FloatRange(min=0, max=MAX_ABSORB_REPEATS_SECONDS),
              default=DEFAULT_ABSORB_SECONDS, show_default=True, metavar="SECONDS",
              help="answer an alert identical to what its incident was told this recently without telling it "
                   "again (HA Alertmanager replicas, duplicate receivers); 0 tells every delivery")
@connection_options
def relay(host: str, port: int, token_file: str | None, tls_cert: str | None, tls_key: str | None,
          policy: str | None, cluster: str, temporal_timeout: float, max_body_bytes: int, absorb_repeats: float,
          connection: Connection) -> None:
    """Serve the Alertmanager webhook relay (POST /alertmanager) until SIGINT or SIGTERM."""
    import uvloop

    from starters.relay.config import RelayConfig, load_token
    from starters.relay.server import serve_relay
    from zerotouch.policy import load_policy
    from zerotouch.settings import default_policy_path

    loaded = load_policy(policy or default_policy_path())
    config = RelayConfig(host=host, port=port, token=load_token(token_file), group_by=loaded.group_by,
                         alert_sources=loaded.alerts, rotations=loaded.rotations, tls_certfile=tls_cert,
                         gdpr=loaded.gdpr, state_dir=connection.state_dir or "", node_recovery=loaded.recovery.nodes,
                         databases=loaded.recovery.databases,
                         tls_keyfile=tls_key, cluster=cluster,
                         temporal_timeout_seconds=temporal_timeout, max_body_bytes=max_body_bytes,
                         absorb_repeats_seconds=absorb_repeats)

    async def run() -> None:
        async with _telemetry("zerotouch-relay") as telemetry:
            await serve_relay(config, await connection.client(**telemetry.client_options()), telemetry)

    # The relay spends its CPU in the event loop itself (a transport, a timer and a task per
    # webhook): on uvloop it keeps pace with Temporal (BENCHMARKS.md, scenario 1); on the
    # stock loop it delivered ~15% fewer alerts per second than a plain client did.
    uvloop.run(run())


@click.command("codec-server", short_help="serve the payload codec endpoint for the Temporal Web UI")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=PORT, default=9096, show_default=True, help="port to listen on")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="bearer token file (else $ZEROTOUCH_CODEC_TOKEN); required")
@click.option("--keys-file", type=click.Path(dir_okay=False),
              help="codec keys (else $ZEROTOUCH_CODEC_KEYS[_FILE] or the state dir's)")
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="Web UI origin allowed to call it (repeatable; default the embedded UI on :8233)")
@click.option("--namespace", "namespaces", multiple=True,
              help="serve only these namespaces (repeatable; default any)")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="serve HTTPS with this certificate")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="and this key")
@state_dir_option()
def codec_server(host: str, port: int, token_file: str | None, keys_file: str | None, origins: tuple[str, ...],
                 namespaces: tuple[str, ...], tls_cert: str | None, tls_key: str | None,
                 state_dir: str | None) -> None:
    """Serve the payload codec endpoint, so the Temporal Web UI can show decrypted payloads."""
    from embedded.statedir import StateDir
    from zerotouch.codec import EncryptionCodec
    from zerotouch.codec_keys import STATE_DIR_KEYS_FILE, keys_from_environment, read_keys_file
    from zerotouch.codec_server import CodecServer, CodecServerConfig, load_codec_token

    state_keys = StateDir(state_dir).path / STATE_DIR_KEYS_FILE
    keys = read_keys_file(keys_file) if keys_file else keys_from_environment(state_keys)
    if keys is None:
        raise UsageError("no codec keys: pass --keys-file, set $ZEROTOUCH_CODEC_KEYS(_FILE), or run `zerotouch up`")
    config = CodecServerConfig(token=load_codec_token(token_file), host=host, port=port,
                               namespaces=list(namespaces), tls_certfile=tls_cert, tls_keyfile=tls_key)
    if origins:
        config.origins = list(origins)
    server = CodecServer(EncryptionCodec(keys), config, embedded=False)
    print(f"codec endpoint on {config.host}:{config.port} (keys {', '.join(keys.by_id)}; "
          f"origins {', '.join(config.origins) or 'none'})", file=sys.stderr, flush=True)
    asyncio.run(server.serve_until_stopped())


SECTION = Section("Running zerotouch", (up, worker, relay, codec_server))
