"""`zerotouch up`: the whole loop on one machine, nothing else installed.

Temporal dev server (SQLite file with WAL in the state dir, Web UI), the workers
of every task queue, the relay, and with `--sandbox` a sandbox cluster. Ctrl-C
stops everything it started; starting again reuses the state, so open incidents
are still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass

from starters.devserver import DevServer
from starters.ledger import default_ledger_url
from starters.relay import RelayConfig
from starters.relay_server import RelayServer
from starters.statedir import StateDir
from workers.run import run_workers
from zerotouch.names import ALL_QUEUES
from zerotouch.policy import load_policy
from zerotouch.settings import WorkerSettings, default_policy_path


@dataclass
class EmbeddedOptions:
    state_dir: str | None = None
    sandbox: bool = False
    sandbox_port: int = 6443
    temporal_port: int = 7233
    ui_port: int = 8233
    relay_port: int = 9095
    policy_path: str | None = None


def _banner(options: EmbeddedOptions, state: StateDir, server: DevServer, sandbox_url: str | None,
            relay_url: str, token: str) -> str:
    lines = [
        "zerotouch is up",
        f"  Temporal        {server.address} (SQLite with WAL: {state.temporal_db})",
        f"  Web UI          {server.ui_url}",
        f"  relay           {relay_url}/alertmanager   (API docs {relay_url}/docs)",
        f"  relay token     {token}   (also in {state.token_file})",
        f"  workers         {', '.join(ALL_QUEUES)}",
        f"  policy          {options.policy_path or default_policy_path()}",
    ]
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


async def run_embedded(options: EmbeddedOptions) -> None:
    policy_path = options.policy_path or default_policy_path()
    policy = load_policy(policy_path)  # fail before starting anything if the policy is bad
    state = StateDir(options.state_dir).create()
    token = state.relay_token()
    server = DevServer(db_file=state.temporal_db, port=options.temporal_port, ui_port=options.ui_port,
                       log_file=state.path / "temporal.log")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sandbox = None
    relay: RelayServer | None = None
    workers: asyncio.Task[None] | None = None
    try:
        client = await server.start()
        if options.sandbox:
            from zerotouch.sandbox import SandboxCluster

            sandbox = SandboxCluster(host="127.0.0.1", port=options.sandbox_port,
                                     state_file=str(state.path / "sandbox.json"))
            sandbox.start()
        settings = WorkerSettings(policy_path=policy_path, kubernetes_url=sandbox.url if sandbox else None,
                                  ledger_url=default_ledger_url(state.path))
        workers = asyncio.create_task(run_workers(client, ALL_QUEUES, settings, stop))
        relay = RelayServer(RelayConfig(host="127.0.0.1", port=options.relay_port, token=token,
                                        group_by=policy.group_by), client)
        await relay.start()
        relay_url = f"http://127.0.0.1:{relay.port}"
        state.write_endpoints({"temporal": server.address, "ui": server.ui_url, "relay": relay_url,
                               "sandbox": sandbox.url if sandbox else None})
        print(_banner(options, state, server, sandbox.url if sandbox else None, relay_url, token), flush=True)
        await stop.wait()
    finally:
        print("stopping ...", file=sys.stderr, flush=True)
        stop.set()
        if relay is not None:
            await relay.stop()
        if workers is not None:
            with contextlib.suppress(Exception):
                await workers
        if sandbox is not None:
            sandbox.stop()
        server.stop()
        state.clear_endpoints()
