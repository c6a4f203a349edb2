"""The root of the `zerotouch` command: its group, the console entry point, and a parse-only view."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import click

from cli import backups, doctor, gdpr, governor, incidents, ledger, policy, runtime, sandbox, schedules, secrets
from cli.common import Section
from cli.drill import SECTION as DRILL_SECTION
from cli.errors import Reported, exit_status
from cli.recovery import SECTION as RECOVERY_SECTION

# The order of `zerotouch --help`; a new command group adds its module's SECTION here.
SECTIONS: tuple[Section, ...] = (
    runtime.SECTION,
    incidents.SECTION,
    governor.SECTION,
    ledger.SECTION,
    policy.SECTION,
    schedules.SECTION,
    backups.SECTION,
    RECOVERY_SECTION,
    DRILL_SECTION,
    secrets.SECTION,
    gdpr.SECTION,
    sandbox.SECTION,
    doctor.SECTION,
)


class RootGroup(click.Group):
    """Lists its commands by section, and turns the project's known errors into one line (`cli.errors`)."""

    def __init__(self, sections: Sequence[Section], **options: Any) -> None:
        super().__init__(**options)
        self.sections = tuple(sections)
        for section in self.sections:
            for command in section.commands:
                self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order the sections list them

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        width = max(len(name) for name in self.commands)  # one column for all sections
        limit = formatter.width - 6 - width
        for section in self.sections:
            rows = [((command.name or "").ljust(width), command.get_short_help_str(limit))
                    for command in section.commands if not command.hidden]
            if rows:
                with formatter.section(section.title):
                    formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as error:
            status = exit_status(error)
            if status is None:
                raise  # a bug: let it show its traceback
            raise Reported(ctx.invoked_subcommand or "", error, status) from None


zerotouch = RootGroup(
    SECTIONS,
    name="zerotouch",
    help="Operations without a human on call.\n\nEvery command has its own --help.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line (default: ``sys.argv[1:]``); return its exit status."""
    try:
        zerotouch.main(args=None if argv is None else list(argv), prog_name="zerotouch")
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    return 0


def run() -> None:
    """Console entry point.

    The Temporal client's Rust runtime keeps threads that can abort the interpreter while
    it finalizes ("PyGILState_Release ... must be current", temporalio/sdk-python#300),
    turning a successful command into a crash. Once the command is done and its output
    flushed there is nothing left to clean up, so leave without finalizing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class CommandLineParser:
    """Parses a `zerotouch` command line as `zerotouch` would, without running it.

    For checks of the deploy files (docker-compose.yml, deploy/kubernetes/): ``parse_args(argv)``
    answers a namespace whose ``command`` is the top-level command and whose other attributes are
    the parameters of the command that would run (``ledger verify``'s, not ``ledger``'s). A command
    line `zerotouch` would refuse prints the same error and raises SystemExit with status 2.
    """

    def parse_args(self, argv: Sequence[str]) -> SimpleNamespace:
        try:
            return self._parse(list(argv))
        except click.ClickException as error:
            error.show()
            raise SystemExit(error.exit_code) from None

    @staticmethod
    def _parse(args: list[str]) -> SimpleNamespace:
        ctx = click.Context(zerotouch, info_name="zerotouch")
        command: click.Command = zerotouch
        path: list[str] = []
        while isinstance(command, click.Group):
            if not args:
                raise click.UsageError("missing command", ctx)
            name, found, args = command.resolve_command(ctx, args)
            if name is None or found is None:
                raise click.UsageError(f"no such command {args[0]!r}", ctx)
            path.append(name)
            command = found
            if isinstance(command, click.Group):
                ctx = click.Context(command, parent=ctx, info_name=name)
        with command.make_context(path[-1], args, parent=ctx) as leaf:
            return SimpleNamespace(command=path[0], **leaf.params)

