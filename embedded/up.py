"""`zerotouch up`: the whole loop on one machine, nothing else installed.

Temporal dev server (SQLite file with WAL in the state dir, Web UI decoding payloads
through the codec endpoint served here), the workers
of every task queue, the relay, and with `--sandbox` a sandbox cluster. Ctrl-C
stops everything it started; starting again reuses the state, so open incidents
are still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass

from embedded.demo_backups import EmbeddedBackups
from embedded.demo_rotation import prepare_demo_rotations
from embedded.devserver import DevServer
from embedded.sandbox_monitoring import INSTALL_HINT, SandboxMonitoring, monitoring_installed
from embedded.statedir import StateDir
from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from starters.schedules import ScheduleMetrics, apply_and_summarize
from workers.clients import KubernetesUnconfigured, kubernetes_api_client
from workers.doctor_probes import run_checks
from workers.run import run_workers
from zerotouch.codec import EncryptionCodec
from zerotouch.codec_keys import (
    KEYS_ENV,
    KEYS_FILE_ENV,
    STATE_DIR_KEYS_FILE,
    CodecKeyError,
    ensure_keys_file,
    keys_from_environment,
)
from zerotouch.codec_server import CodecServer, CodecServerConfig, ensure_path_token
from zerotouch.doctor import render
from zerotouch.drill_metrics import DrillMetrics
from zerotouch.gdpr_keys import KEY_FILE, ensure_key_file
from zerotouch.ledger_report import default_ledger_url
from zerotouch.names import ALL_QUEUES, KUBERNETES_QUEUE
from zerotouch.policy import load_policy
from zerotouch.settings import WorkerSettings, default_policy_path
from zerotouch.telemetry import Telemetry
from zerotouch.temporal import connect


@dataclass
class EmbeddedOptions:
    state_dir: str | None = None
    sandbox: bool = False
    sandbox_port: int = 6443
    temporal_port: int = 7233
    ui_port: int = 8233
    relay_port: int = 9095
    codec_port: int = 0  # any free port: only the Web UI calls it, and it is told the URL at each start
    policy_path: str | None = None
    monitoring: bool = True  # with --sandbox: Prometheus and Alertmanager too, when installed


CODEC_TOKEN_FILE = "codec-endpoint-token"  # noqa: S105 - a file name, not a token


def _banner(options: EmbeddedOptions, state: StateDir, server: DevServer, sandbox_url: str | None,
            relay_url: str, token: str, codec_keys: str = "", codec_url: str = "", schedules: str = "",
            monitoring: list[str] | None = None, backups: str = "", workers: str = "",
            checks: list[str] | None = None, rotation: str = "") -> str:
    lines = [
        "zerotouch is up",
        f"  Temporal        {server.address} (SQLite with WAL: {state.temporal_db})",
        f"  Web UI          {server.ui_url}",
        f"  relay           {relay_url}/alertmanager   (API docs {relay_url}/docs, metrics {relay_url}/metrics)",
        f"  relay token     {token}   (also in {state.token_file})",
        f"  payload codec   AES-GCM, keys from {codec_keys}",
        # The URL without its token: the banner is printed, and the token must reach no log.
        f"  codec endpoint  {codec_url}/<token in {state.path / CODEC_TOKEN_FILE}>   (the Web UI decodes with it)",
        f"  workers         {workers or ', '.join(ALL_QUEUES)}",
        f"  policy          {options.policy_path or default_policy_path()}",
    ]
    if schedules:
        lines.append(f"  schedules       {schedules}   (zerotouch schedules list)")
    if backups:
        lines.append(f"  backups         {backups}")
    if rotation:
        lines.append(f"  rotation demo   {rotation}")
    lines += monitoring or []
    if checks:  # what works and what each missing piece disables, so the first incident holds no surprise
        lines += ["", "What works here (`zerotouch doctor` checks again):", *checks]
    if sandbox_url:
        lines += [
            f"  sandbox cluster {sandbox_url}   (kubectl --server={sandbox_url} get deployments,pods -n shop)",
            "",
            "Try it:",
            "  zerotouch sandbox inject crashloop shop/web",
            "  zerotouch fire KubePodCrashLooping --label namespace=shop --label deployment=web",
            "  zerotouch incidents",
        ]
    lines += [
        "",
        "Alertmanager receiver:",
        "  receivers:",
        "    - name: zerotouch",
        "      webhook_configs:",
        f"        - url: {relay_url}/alertmanager",
        "          send_resolved: true",
        "          http_config:",
        "            authorization:",
        f"              credentials_file: {state.token_file.resolve()}",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _codec_keys(state: StateDir) -> str:
    """Where the payload codec's keys come from, so that the embedded default always encrypts.

    Without keys in the environment, a key file is made once (0600) in the state dir and
    exported to this process, whose every client (dev server, workers, relay) then uses it.
    """
    if not (os.environ.get(KEYS_ENV) or os.environ.get(KEYS_FILE_ENV)):
        keys_file = state.path / STATE_DIR_KEYS_FILE
        ensure_keys_file(keys_file)
        os.environ[KEYS_FILE_ENV] = str(keys_file.resolve())
    keys_from_environment()  # fail before starting anything if the keys are bad
    return os.environ.get(KEYS_FILE_ENV) or f"${KEYS_ENV}"


def _codec_endpoint(state: StateDir, options: EmbeddedOptions) -> CodecServer:
    """The codec endpoint the Web UI decodes through: loopback, the UI's origin only, a capability URL.

    The dev server's UI has no login and so no token to send; the secret is the URL's first
    path segment instead, kept 0600 in the state dir (SECURITY.md, "The codec endpoint and the Web UI").
    """
    keys = keys_from_environment()
    if keys is None:  # `_codec_keys` has made sure there are keys
        raise CodecKeyError(f"no codec keys: set ${KEYS_FILE_ENV} or ${KEYS_ENV}")
    # One UI, two names: the banner shows 127.0.0.1, the dev server's own log says localhost.
    origins = [f"http://{host}:{options.ui_port}" for host in ("127.0.0.1", "localhost")]
    config = CodecServerConfig(token=ensure_path_token(state.path / CODEC_TOKEN_FILE), token_in_path=True,
                               host="127.0.0.1", port=options.codec_port, origins=origins)
    return CodecServer(EncryptionCodec(keys), config)


def _worker_queues(settings: WorkerSettings) -> tuple[list[str], str]:
    """Every queue; without Kubernetes credentials every other one, and the banner says why.

    One worker that cannot build its client must not take the others down with it: backups,
    schedules and incidents do not need Kubernetes.
    """
    try:
        kubernetes_api_client(settings).close()
    except KubernetesUnconfigured as error:
        queues = [queue for queue in ALL_QUEUES if queue != KUBERNETES_QUEUE]
        return queues, f"{', '.join(queues)}   ({KUBERNETES_QUEUE} off: {error})"
    return list(ALL_QUEUES), ""


def _monitoring_off(options: EmbeddedOptions) -> list[str]:
    """The banner's line when `up` runs no Prometheus (so no PromQL verification), and why."""
    if not options.sandbox:
        return []  # without the sandbox there is nothing to scrape
    if not options.monitoring:
        return ["  monitoring      off (--no-monitoring): PromQL verification is off"]
    return [f"  monitoring      PromQL verification is off: `{INSTALL_HINT}` turns the full loop on"]


async def run_embedded(options: EmbeddedOptions) -> None:
    policy_path = options.policy_path or default_policy_path()
    policy = load_policy(policy_path)  # fail before starting anything if the policy is bad
    state = StateDir(options.state_dir).create()
    ensure_key_file(state.path / KEY_FILE)  # the GDPR request vault's key, for the workers and the CLI beside them
    token = state.relay_token()
    codec_keys = _codec_keys(state)
    codec = _codec_endpoint(state, options)
    server: DevServer | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sandbox = None
    monitoring: SandboxMonitoring | None = None
    relay: RelayServer | None = None
    workers: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    backups: EmbeddedBackups | None = None
    # Spans go to a file in the state dir so the console stays readable (OTEL_TRACES_EXPORTER picks another).
    traces = (state.path / "traces.log").open("a", encoding="utf-8")
    try:
        telemetry = Telemetry.from_env("zerotouch", console_out=traces)
    except ValueError:
        traces.close()
        raise
    await telemetry.start()
    try:
        await codec.start()  # first: the dev server is told its URL
        server = DevServer(db_file=state.temporal_db, port=options.temporal_port, ui_port=options.ui_port,
                           log_file=state.path / "temporal.log", ui_codec_endpoint=codec.endpoint)
        await server.start()
        client = await connect(server.address, **telemetry.client_options())
        if options.sandbox:
            from sandbox import SandboxCluster

            sandbox = SandboxCluster(host="127.0.0.1", port=options.sandbox_port,
                                     state_file=str(state.path / "sandbox.json"))
            sandbox.start()
        # The shipped schedules: created or brought back in line with the policy, every start.
        schedules = await apply_and_summarize(client, policy.schedules)
        schedule_metrics = ScheduleMetrics()
        telemetry.registry.register(schedule_metrics)  # zerotouch_schedule_* on the relay's /metrics
        watcher = asyncio.create_task(schedule_metrics.watch(client, stop, names=[d.name for d in policy.schedules]))
        relay = RelayServer(RelayConfig(host="127.0.0.1", port=options.relay_port, token=token,
                                        group_by=policy.group_by, alert_sources=policy.alerts,
                                        rotations=policy.rotations, gdpr=policy.gdpr, state_dir=str(state.path),
                                        node_recovery=policy.recovery.nodes, databases=policy.recovery.databases),
                             client,
                             telemetry=telemetry)
        await relay.start()
        relay_url = f"http://127.0.0.1:{relay.port}"
        banner_monitoring = _monitoring_off(options)
        if sandbox is not None and options.monitoring and monitoring_installed():
            monitoring = SandboxMonitoring(state.path, sandbox_url=sandbox.url, relay_url=relay_url,
                                           token_file=state.token_file.resolve())
            await asyncio.to_thread(monitoring.start)  # the relay keeps serving meanwhile
            banner_monitoring = monitoring.banner()
        backups = EmbeddedBackups(state.path, policy)
        telemetry.registry.register(backups.metrics)  # zerotouch_backup_* on the relay's /metrics
        telemetry.registry.register(DrillMetrics(default_ledger_url(state.path)))  # zerotouch_drill_*, from the ledger
        await backups.start(client)  # the demo database, before the workers that back it up
        # Its login in the sandbox's Secret, before the workers that rotate it (none is started here).
        rotation = await asyncio.to_thread(prepare_demo_rotations, policy, database=backups.database,
                                           sandbox_url=sandbox.url if sandbox else None)
        # PromQL verification needs a Prometheus: this one, else $PROMETHEUS_URL as WorkerSettings reads it.
        settings = WorkerSettings(policy_path=policy_path, kubernetes_url=sandbox.url if sandbox else None,
                                  ledger_url=default_ledger_url(state.path), **backups.paths)
        if monitoring is not None:
            settings = settings.model_copy(update={"prometheus_url": monitoring.prometheus_url})
        queues, banner_workers = _worker_queues(settings)
        # After the demo database (its reference resolves from then on) and with the settings the workers get.
        checks = await asyncio.to_thread(run_checks, settings, policy=policy)
        workers = asyncio.create_task(run_workers(client, queues, settings, stop))
        state.write_endpoints({"temporal": server.address, "ui": server.ui_url, "relay": relay_url,
                               "codec": codec.url,  # without its token: this file is not secret
                               "sandbox": sandbox.url if sandbox else None,
                               "prometheus": monitoring.prometheus_url if monitoring else None,
                               "alertmanager": monitoring.alertmanager_url if monitoring else None})
        print(_banner(options, state, server, sandbox.url if sandbox else None, relay_url, token, codec_keys,
                      codec.url, schedules, banner_monitoring, backups.banner, banner_workers,
                      render(checks, indent="  "), rotation), flush=True)
        await stop.wait()
    finally:
        print("stopping ...", file=sys.stderr, flush=True)
        stop.set()
        if monitoring is not None:
            await asyncio.to_thread(monitoring.stop)
        if relay is not None:
            await relay.stop()
        if watcher is not None:
            with contextlib.suppress(Exception):
                await watcher
        if workers is not None:
            with contextlib.suppress(Exception):
                await workers
        if backups is not None:  # after the workers: no backup or test restore is using it any more
            await asyncio.to_thread(backups.stop)
        if sandbox is not None:
            sandbox.stop()
        if server is not None:
            server.stop()
        await codec.stop()
        await telemetry.stop()
        traces.close()
        state.clear_endpoints()
