"""`python -m bench.floor_worker --address A --kubernetes-url U [--knobs JSON]`: the floor's worker process.

Built as `workers.run.build_workers` builds zerotouch's: the same client (converter, telemetry
interceptors), a workflow worker and an activity worker on queues of their own, the activity's
sync code on a thread pool sized to `WorkerSettings.max_concurrent_activities`, the stock event loop.
With ``--same-queue`` the restart activity is also served on the workflow's own queue, where eager
activity execution can pick it up (zerotouch's actions go to another queue, so never eagerly).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from temporalio.worker import Worker

from activities.kubernetes import KubernetesActivities
from bench.floor_workflow import FLOOR_ACTIVITY_QUEUE, FLOOR_WORKFLOW_QUEUE, FloorWorkflow
from bench.worker_knobs import Knobs
from workers.clients import kubernetes_api_client
from workers.run import workflow_runner
from zerotouch.settings import WorkerSettings
from zerotouch.telemetry import Telemetry
from zerotouch.temporal import connect


async def serve(address: str, kubernetes_url: str, knobs: Knobs, *, same_queue: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    settings = WorkerSettings(temporal_address=address, kubernetes_url=kubernetes_url)
    telemetry = Telemetry.from_env("bench-floor-worker")
    await telemetry.start()
    try:
        client = await connect(address, **telemetry.client_options())
        restart = KubernetesActivities(api_client=kubernetes_api_client(settings)).restart_deployment
        kwargs = knobs.worker_kwargs()
        eager: dict[str, Any] = {}
        with knobs.executor(settings.max_concurrent_activities) as executor:
            if same_queue:
                eager = {"activities": [restart], "activity_executor": executor,
                         "max_concurrent_activities": settings.max_concurrent_activities}
            workers = [
                Worker(client, task_queue=FLOOR_WORKFLOW_QUEUE, workflows=[FloorWorkflow],
                       workflow_runner=workflow_runner(), **kwargs, **eager),
                Worker(client, task_queue=FLOOR_ACTIVITY_QUEUE, activities=[restart], activity_executor=executor,
                       max_concurrent_activities=settings.max_concurrent_activities, **kwargs),
            ]
            tasks = [asyncio.create_task(worker.run()) for worker in workers]
            print("floor worker running", flush=True)
            try:
                await stop.wait()
            finally:
                await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await telemetry.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_worker", description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--kubernetes-url", required=True)
    parser.add_argument("--knobs", default="{}", help="JSON of bench.worker_knobs.Knobs")
    parser.add_argument("--same-queue", action="store_true", help="also serve the activity on the workflow's queue")
    args = parser.parse_args()
    knobs = Knobs.parse(args.knobs)
    knobs.run(serve(args.address, args.kubernetes_url, knobs, same_queue=args.same_queue))


if __name__ == "__main__":
    main()
