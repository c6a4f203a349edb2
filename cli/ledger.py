"""The audit ledger of closed incidents: verify its hash chain, print a post-mortem, the zero-ops report.

`postmortem` and `report` are also top-level commands (their first spelling), as aliases of
`ledger postmortem` and `ledger report`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import click

from cli.common import DurationType, Section, json_option, state_dir_option
from cli.errors import UsageError
from embedded.statedir import StateDir

R = TypeVar("R")

LEDGER_URL_ENV = "ZEROTOUCH_LEDGER_URL"  # zerotouch.ledger_report.LEDGER_URL_ENV, without importing it


class LedgerUrlType(click.ParamType):
    """The URLs `zerotouch.ledger_store.open_ledger` accepts."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        url = str(value)
        if url.startswith(("postgresql://", "postgres://")):
            return url
        if url.startswith("sqlite:"):
            if url.removeprefix("sqlite:").removeprefix("//"):
                return url
            self.fail(f"ledger URL {url!r} names no file; use sqlite:///abs/path.db or sqlite:relative.db", param, ctx)
        self.fail(f"unsupported ledger URL {url!r}; use sqlite:///path/ledger.db or postgresql://...", param, ctx)


def _ledger_options(command: Callable[..., R]) -> Callable[..., R]:
    """``--ledger`` and ``--state-dir``, passed to the command as one ``url``."""

    @functools.wraps(command)
    def with_url(*args: Any, ledger: str | None, state_dir: str | None, **kwargs: Any) -> R:
        from zerotouch.ledger_report import default_ledger_url

        return command(*args, url=ledger or default_ledger_url(StateDir(state_dir).path), **kwargs)

    decorated = state_dir_option()(with_url)
    return click.option("--ledger", type=LedgerUrlType(), envvar=LEDGER_URL_ENV, show_envvar=True,
                        help="sqlite:///path or postgresql://... (default: ledger.db in the state dir)")(decorated)


@click.command(short_help="check the hash chain: detects edited or deleted records")
@_ledger_options
def verify(url: str) -> None:
    """Check the ledger's hash chain; names an edited or deleted record (exit status 1 if any)."""
    from zerotouch import ledger_report

    result = ledger_report.verify_ledger(url)
    print(ledger_report.render_verify(result))
    if not result.ok:
        raise click.exceptions.Exit(1)


@click.command(short_help="print the post-mortem of a closed incident")
@click.argument("incident_id")
@_ledger_options
def postmortem(incident_id: str, url: str) -> None:
    """Print the generated post-mortem of a closed incident (secrets and e-mail addresses redacted)."""
    from zerotouch import ledger_report

    try:
        text = ledger_report.postmortem_for(url, incident_id)
    except LookupError as error:  # postmortem_for: the incident was never recorded
        raise UsageError(str(error)) from None
    print(text)


@click.command(short_help="zero-ops dashboard from the ledger: automation rate, MTTD, MTTR")
@click.option("--since", type=DurationType(), default="7d", show_default=True, help="window, e.g. 24h or 7d")
@json_option("the report")
@_ledger_options
def report(since: timedelta, as_json: bool, url: str) -> None:
    """Zero-ops dashboard from the ledger: automation rate, human intervention, MTTD/MTTR p50/p95,
    actions, escalations, Governor refusals, per-runbook success."""
    from zerotouch import ledger_report

    summary = ledger_report.report(url, since)
    print(summary.model_dump_json(indent=2) if as_json else ledger_report.render_report(summary))


@click.group(short_help="the audit ledger of closed incidents")
def ledger() -> None:
    """The audit ledger of closed incidents: verify it, read a post-mortem, report on it."""


ledger.add_command(verify)
ledger.add_command(postmortem)
ledger.add_command(report)


def _alias(command: click.Command, of: str) -> click.Command:
    """``command`` under its own name at the top level, saying what it is an alias of."""
    return click.Command(command.name, callback=command.callback, params=command.params, help=command.help,
                         short_help=f"{command.short_help} (alias of `{of}`)")


SECTION = Section("Audit ledger", (ledger, _alias(postmortem, "ledger postmortem"), _alias(report, "ledger report")))
