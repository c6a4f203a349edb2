"""The Governor's memory survives a worker restart and a dev-server restart on the same SQLite file."""

from __future__ import annotations

from pathlib import Path

from embedded.devserver import DevServer
from tests.governor.support import ask, governor_worker, new_cluster
from zerotouch.governor_client import ensure_governor, governor_status
from zerotouch.governor_models import GovernorSettings, GrantRequest
from zerotouch.ports import free_port


def restart(target: str, request_id: str) -> GrantRequest:
    return GrantRequest(request_id=request_id, runbook="restart-crashlooping", alert_class="KubePodCrashLooping",
                        action="restart_deployment", namespace="shop", target=target)


async def test_cooldown_survives_worker_and_server_restarts(tmp_path: Path) -> None:
    db_file, port, cluster = tmp_path / "t.db", free_port(), new_cluster()
    server = DevServer(db_file=db_file, port=port, headless=True, log_file=tmp_path / "server.log")
    client = await server.start()
    try:
        async with governor_worker(client, cluster):
            handle = await ensure_governor(client, cluster, GovernorSettings())
            first = await ask(handle, restart("web", "incident-1/attempt-1"))
            assert first.granted
        async with governor_worker(client, cluster):  # a new worker replays the history
            assert (await ask(handle, restart("web", "incident-2/attempt-1"))).code == "cooldown"
        server.stop()

        server = DevServer(db_file=db_file, port=port, headless=True, log_file=tmp_path / "server.log")
        client = await server.start()
        async with governor_worker(client, cluster):
            handle = await ensure_governor(client, cluster, GovernorSettings())
            refused = await ask(handle, restart("web", "incident-3/attempt-1"))
            assert refused.code == "cooldown" and refused.retry_after_seconds, refused.reason
            assert await ask(handle, restart("web", "incident-1/attempt-1")) == first, "the retry finds its grant"
            assert (await ask(handle, restart("api", "incident-4/attempt-1"))).granted
            status = await governor_status(client, cluster)
            assert status.in_flight == {"shop": 2}
            await handle.terminate("test over")
    finally:
        server.stop()
