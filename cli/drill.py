"""`zerotouch drill`: run a declared chaos or false-positive drill; report the drills' history and score."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import click

from cli.common import (
    Connection,
    Section,
    connection_options,
    json_option,
    policy_from,
    print_json,
    run_with_client,
    state_dir_option,
)
from embedded.statedir import StateDir

if TYPE_CHECKING:
    from temporalio.client import Client

    from zerotouch.drill_models import DrillResult


@click.command(short_help="inject a declared fault and measure what zerotouch did")
@click.argument("name")
@click.option("--wait", is_flag=True, help="wait for the verdict and print it")
@click.option("--policy", "policy_path", metavar="FILE", help="policy file (default $ZEROTOUCH_POLICY or shipped)")
@click.option("--cluster", default="", help="the cluster scope of the workers (default: none)")
@json_option("the result")
@connection_options
def run(name: str, wait: bool, policy_path: str | None, cluster: str, as_json: bool, connection: Connection) -> None:
    """Run the policy's drill NAME (its `drills:` section): inject its fault, watch detection, action and
    recovery, always remove the fault; the result goes to the ledger for `zerotouch drill report`."""
    from starters.drill import DrillError, start_drill

    policy = policy_from(policy_path)

    async def work(client: Client) -> tuple[str, DrillResult | None]:
        return await start_drill(client, policy, name, cluster=cluster, requested_by=getpass.getuser(), wait=wait)

    workflow_id, result = run_with_client(connection, work, (DrillError,))
    if result is None:
        print(f"started {workflow_id}; read it with `zerotouch drill report` once it is over")
    elif as_json:
        print(result.model_dump_json(indent=2))
    else:
        from zerotouch.drill_report import seconds

        print(f"{workflow_id}: {'passed' if result.passed else 'FAILED'} (expected {result.expect}, "
              f"got {result.outcome}); detect {seconds(result.detect_seconds)}, first action "
              f"{seconds(result.first_action_seconds)}, recovered {seconds(result.recover_seconds)}")
    if result is not None and not result.passed:
        raise click.exceptions.Exit(1)


@click.command(short_help="per fault class: last results, MTTR p50/p95, resilience score")
@click.option("--last", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="results per fault class that count")
@click.option("--ledger", metavar="URL", envvar="ZEROTOUCH_LEDGER_URL", help="default: ledger.db in the state dir")
@json_option("the report")
@state_dir_option()
def report(last: int, ledger: str | None, as_json: bool, state_dir: str | None) -> None:
    """The drills' history from the ledger: per fault class its last results, MTTR p50/p95 and whether
    it is safe for zero-touch (its latest drill passed), and the severity-weighted resilience score."""
    from zerotouch import drill_report
    from zerotouch.ledger_report import default_ledger_url

    summary = drill_report.summarize(
        drill_report.drill_results(ledger or default_ledger_url(StateDir(state_dir).path)), last=last)
    if as_json:
        print_json({**summary.model_dump(mode="json"), "unsafe": summary.unsafe})
    else:
        print(drill_report.render(summary))


@click.group(short_help="chaos and false-positive drills")
def drill() -> None:
    """Chaos and false-positive drills: what cannot be safely tested cannot be automated."""


drill.add_command(run)
drill.add_command(report)

SECTION = Section("Drills", (drill,))
