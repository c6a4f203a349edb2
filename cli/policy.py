"""The policy file: validate one, print its JSON schema."""

from __future__ import annotations

import click

from cli.common import Section, print_json


@click.command(short_help="validate a policy file")
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate a policy file; print its mode and how many runbooks and approvers it has."""
    from zerotouch.policy import load_policy

    policy = load_policy(file)
    print(f"{file}: ok — mode {policy.mode}, {len(policy.runbooks)} runbooks, "
          f"{len(policy.approvers.names)} approvers")


@click.command(short_help="print the policy's JSON schema")
def schema() -> None:
    """Print the policy's JSON schema (for editors and CI checks)."""
    from zerotouch.policy import policy_schema

    print_json(policy_schema())


@click.group(short_help="check a policy file or print its JSON schema")
def policy() -> None:
    """Check a policy file or print its JSON schema."""


policy.add_command(check)
policy.add_command(schema)

SECTION = Section("Policy", (policy,))
