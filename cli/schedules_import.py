"""`zerotouch schedules import-cronjobs`: CronJobs → schedule declarations; `--apply` hands over; `--undo`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from cli.common import Connection, DurationType, connection_options, json_option, print_json
from cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

    from starters.cronjob_import import Handover
    from zerotouch.schedules import ScheduleDeclaration

R = TypeVar("R")


@click.command("import-cronjobs", short_help="turn the cluster's CronJobs into schedule declarations")
@click.option("-n", "--kube-namespace", "k8s_namespace", metavar="NS",
              help="only the CronJobs of this Kubernetes namespace (default: all; --namespace is Temporal's)")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="write the YAML here instead of stdout")
@click.option("--apply", "do_apply", is_flag=True,
              help="create the schedules and suspend each CronJob once its schedule's first run succeeded")
@click.option("--undo", is_flag=True, help="delete the imported schedules and restore their CronJobs")
@click.option("--kubernetes-url", metavar="URL", help="API server without auth (a sandbox); default: kubeconfig")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="with --apply: the policy whose schedules stay as they are (default $ZEROTOUCH_POLICY or shipped)")
@click.option("--cluster", default="", help="cluster scope (as the workers' --cluster)")
@click.option("--wait", "wait", type=DurationType(), default="10m", show_default=True,
              help="with --apply: how long to wait for the first runs (the handover goes on regardless)")
@json_option("the handover outcomes")
@connection_options
def import_cronjobs(k8s_namespace: str | None, out: str | None, do_apply: bool, undo: bool,
                    kubernetes_url: str | None, policy_path: str | None, cluster: str, wait: timedelta,
                    as_json: bool, connection: Connection) -> None:
    """Read the CronJobs and print them as schedule declarations (YAML for the policy's `schedules:`).

    Each runs its CronJob's jobTemplate as a Job through CronJobRunWorkflow. With --apply the
    schedules are created paused, each runs once now, and only once that run succeeded is the
    CronJob suspended and the schedule unpaused; a failed first run leaves the CronJob active.
    Add the printed declarations to your policy: `zerotouch schedules apply` deletes managed
    schedules the policy does not declare. --undo deletes the imported schedules and gives each
    CronJob back the `suspend` it had before the import.
    """
    from kubernetes.client.exceptions import ApiException

    from starters import cronjob_import
    from workers.clients import kubernetes_api_client
    from zerotouch.settings import WorkerSettings

    if do_apply and undo:
        raise UsageError("--apply and --undo exclude each other")
    api_client = kubernetes_api_client(WorkerSettings(kubernetes_url=kubernetes_url))
    try:
        if undo:
            restored = asyncio.run(_with_client(connection, lambda client: cronjob_import.undo(
                client, api_client, k8s_namespace, cluster)))
            _report(restored, as_json)
            return
        try:
            imported = cronjob_import.import_cronjobs(api_client, k8s_namespace)
        except ValueError as error:
            raise CommandError(str(error)) from None
        for item in imported:
            for warning in item.warnings:
                click.echo(f"warning: {warning}", err=True)
        text = cronjob_import.render_yaml(imported)
        if out:
            Path(out).write_text(text)
            click.echo(f"wrote {len(imported)} declaration(s) to {out}", err=True)
        elif not (do_apply and as_json):
            click.echo(text, nl=False)
        if do_apply:
            declarations = _policy_schedules(policy_path)
            outcomes = asyncio.run(_with_client(connection, lambda client: cronjob_import.handover(
                client, api_client, imported, declarations, cluster, wait)))
            click.echo("add the declarations above to your policy's `schedules:` (`zerotouch schedules apply` "
                       "deletes managed schedules it does not declare)", err=True)
            _report(outcomes, as_json)
    except ApiException as error:
        raise CommandError(f"Kubernetes API: HTTP {error.status} {error.reason}") from None
    finally:
        api_client.close()


def _policy_schedules(policy_path: str | None) -> list[ScheduleDeclaration]:
    from zerotouch.policy import load_policy
    from zerotouch.settings import default_policy_path

    return list(load_policy(policy_path or default_policy_path()).schedules)


async def _with_client(connection: Connection, work: Callable[[Client], Awaitable[R]]) -> R:
    client = await connection.client()
    return await work(client)


def _report(outcomes: Sequence[Handover], as_json: bool) -> None:
    from starters.cronjob_import import render_outcomes

    if as_json:
        print_json([o.as_json() for o in outcomes])
    else:
        click.echo(render_outcomes(outcomes), err=True)
