"""The one place that decides how a failed `zerotouch` command ends.

A known refusal from the project's own code is printed as one line on stderr,
``zerotouch COMMAND: message``, and ends the process with exit status

- 2 (`USAGE`) when the command line or the local setup has to change: a policy that does not
  validate, no running `zerotouch up`, a busy port, an unsupported OpenTelemetry setting;
- 1 (`FAILURE`) when the command was refused or could not be carried out: an unknown incident,
  a Governor refusal, an unreadable token or key file, a relay that answered with an error.

Every other exception is a bug and surfaces as a traceback. Command-line syntax errors
(unknown options, bad values) are Click's own and also end with status 2.

The classes are listed by name and matched against the modules already loaded: they live in
heavy modules (the Temporal client, kubernetes, FastAPI) that `zerotouch --help` must not
import, and a module that was never loaded cannot have raised its error.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import click

USAGE = 2
FAILURE = 1


class UsageError(Exception):
    """The command line or the local setup has to change (exit status 2)."""


class CommandError(Exception):
    """The command was refused or could not be carried out (exit status 1)."""


# "module.Class" → exit status. Add a project error here when a command may raise it.
REPORTED_ERRORS: dict[str, int] = {
    "cli.errors.UsageError": USAGE,
    "zerotouch.policy.PolicyError": USAGE,
    "zerotouch.telemetry.TelemetryError": USAGE,
    "cli.errors.CommandError": FAILURE,
    "starters.steer.SteerError": FAILURE,
    "starters.fire.FireError": FAILURE,
    "starters.relay.config.RelayConfigError": FAILURE,
    "zerotouch.governor_client.GovernorError": FAILURE,
    "zerotouch.codec.CodecError": FAILURE,
    "zerotouch.codec_keys.CodecKeyError": FAILURE,
    "zerotouch.codec_server.CodecServerConfigError": FAILURE,
    "workers.clients.KubernetesUnconfigured": FAILURE,
}


def exit_status(error: BaseException) -> int | None:
    """The exit status for a reported error, or None when ``error`` is a bug."""
    for dotted, status in REPORTED_ERRORS.items():
        module_name, _, class_name = dotted.rpartition(".")
        error_class = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(error_class, type) and isinstance(error, error_class):
            return status
    return None


class Reported(click.ClickException):
    """A reported error on its way out: one line on stderr, then its exit status."""

    def __init__(self, command: str, error: BaseException, status: int) -> None:
        super().__init__(str(error))
        self.command = command
        self.exit_code = status

    def show(self, file: IO[Any] | None = None) -> None:
        print(f"zerotouch {self.command}: {self.message}", file=file or sys.stderr)
