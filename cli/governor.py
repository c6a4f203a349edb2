"""The Governor of one cluster scope: kill switch, mode, trust, state, circuit breakers.

Every command first starts the scope's Governor (from the policy's guardrails) if it is not
running yet, so that pausing works before the first incident ever started it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar, get_args

import click

from cli.approvals import ProofOptions, proof_options, prove
from cli.common import Connection, DurationType, Section, connection_options, json_option, print_json
from zerotouch.policy import Mode

if TYPE_CHECKING:
    from temporalio.client import Client

    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.governor_models import GovernorAck

R = TypeVar("R")


def _scope_options(command: Callable[..., R]) -> Callable[..., R]:
    """``--cluster``, ``--policy`` and the connection options, in this order."""
    command = connection_options(command)
    command = click.option("--policy", type=click.Path(dir_okay=False),
                           help="policy whose guardrails start the Governor if it is not running "
                                "(default $ZEROTOUCH_POLICY or deploy/policy/zerotouch.yaml)")(command)
    return click.option("--cluster", default="", help="cluster scope (default: the default scope)")(command)


def _with_governor(connection: Connection, cluster: str, policy: str | None,
                   then: Callable[[Client], Awaitable[None]]) -> None:
    async def run() -> None:
        from zerotouch import governor_client as governor
        from zerotouch.governor_policy import governor_settings
        from zerotouch.policy import load_policy
        from zerotouch.settings import default_policy_path

        client = await connection.client()
        settings = governor_settings(load_policy(policy or default_policy_path()))
        await governor.ensure_governor(client, cluster, settings)
        await then(client)

    asyncio.run(run())


def _acknowledge(connection: Connection, cluster: str, policy: str | None,
                 update: Callable[[Client], Awaitable[GovernorAck]]) -> None:
    async def then(client: Client) -> None:
        print((await update(client)).message)

    _with_governor(connection, cluster, policy, then)


@click.command(short_help="kill switch: stop all automated actions for a while")
@click.option("--for", "duration", type=DurationType(), required=True,
              help="how long, e.g. 30m (expires by itself)")
@click.option("--reason", required=True, help="why, for the Governor's record")
@click.option("--by", required=True, help="your name")
@_scope_options
def pause(duration: timedelta, reason: str, by: str, cluster: str, policy: str | None,
          connection: Connection) -> None:
    """Kill switch: no automated action anywhere in the scope until it expires (or `resume`)."""
    from zerotouch import governor_client as governor

    _acknowledge(connection, cluster, policy, lambda client: governor.pause(client, cluster, by, reason, duration))


async def _proof(client: Client, cluster: str, options: ProofOptions, decision: str, by: str,
                 runbook: str = "") -> ApprovalProof | None:
    """The proof a loosening decision carries when the signing options ask for one (verified approvers)."""
    from zerotouch import governor_client as governor

    if not options.requested:
        return None
    return prove(options, await governor.wanted_proof(client, cluster, decision, by, runbook))


@click.command(short_help="lift the kill switch before it expires")
@click.option("--by", required=True, help="your name")
@click.option("--note", default="", help="why, for the Governor's record")
@proof_options
@_scope_options
def resume(by: str, note: str, proof: ProofOptions, cluster: str, policy: str | None, connection: Connection) -> None:
    """Lift the kill switch before it expires (signed with --key when the policy verifies approvers)."""
    from zerotouch import approval_proofs
    from zerotouch import governor_client as governor

    async def update(client: Client) -> GovernorAck:
        signed = await _proof(client, cluster, proof, approval_proofs.RESUME, by)
        return await governor.resume(client, cluster, by, note, proof=signed)

    _acknowledge(connection, cluster, policy, update)


@click.command(short_help="observe (record only), approve-all, or auto")
@click.argument("mode", type=click.Choice(get_args(Mode)))
@click.option("--by", required=True, help="your name")
@click.option("--reason", default="", help="why, for the Governor's record")
@proof_options
@_scope_options
def mode(mode: Mode, by: str, reason: str, proof: ProofOptions, cluster: str, policy: str | None,
         connection: Connection) -> None:
    """Set the mode: observe (plan and record only), approve-all (every action needs a human), or auto.

    auto loosens: when the policy verifies approvers, sign it with --key (or --print-message/--signature-file).
    """
    from zerotouch import approval_proofs
    from zerotouch import governor_client as governor

    async def update(client: Client) -> GovernorAck:
        signed = await _proof(client, cluster, proof, approval_proofs.MODE_AUTO, by) if mode == "auto" else None
        return await governor.set_mode(client, cluster, mode, by, reason, proof=signed)

    _acknowledge(connection, cluster, policy, update)


@click.command("close-breaker", short_help="close a runbook's circuit breaker")
@click.argument("runbook")
@click.option("--by", required=True, help="your name")
@click.option("--note", default="", help="what you looked at, for the Governor's record")
@proof_options
@_scope_options
def close_breaker(runbook: str, by: str, note: str, proof: ProofOptions, cluster: str, policy: str | None,
                  connection: Connection) -> None:
    """Close a runbook's circuit breaker after a human looked (signed with --key when approvers are verified)."""
    from zerotouch import approval_proofs
    from zerotouch import governor_client as governor

    async def update(client: Client) -> GovernorAck:
        signed = await _proof(client, cluster, proof, approval_proofs.CLOSE_BREAKER, by, runbook)
        return await governor.close_breaker(client, cluster, runbook, by, note, proof=signed)

    _acknowledge(connection, cluster, policy, update)


@click.command(short_help="each runbook's record and trust level")
@json_option("the table")
@_scope_options
def trust(as_json: bool, cluster: str, policy: str | None, connection: Connection) -> None:
    """Each runbook's measured record (successes, failed verifications) and whether it runs alone."""

    async def then(client: Client) -> None:
        from zerotouch import governor_client as governor

        rows = await governor.trust_table(client, cluster)
        if as_json:
            print_json([row.model_dump(mode="json") for row in rows])
        else:
            print(governor.render_trust(rows))

    _with_governor(connection, cluster, policy, then)


@click.command("governor", short_help="the Governor's state: pause, mode, limits, breakers, budget")
@json_option("the state")
@_scope_options
def governor_state(as_json: bool, cluster: str, policy: str | None, connection: Connection) -> None:
    """The Governor's state: pause, mode, cooldowns, rate, in-flight actions, breakers, budget."""

    async def then(client: Client) -> None:
        from zerotouch import governor_client as governor

        state = await governor.governor_status(client, cluster)
        print(state.model_dump_json(indent=2) if as_json else governor.render_status(state))

    _with_governor(connection, cluster, policy, then)


SECTION = Section("Governor", (pause, resume, mode, close_breaker, trust, governor_state))
