"""What the command modules share: the Temporal connection, option types, JSON output, help sections.

Only light imports at module level: every command module imports this one for `zerotouch --help`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.errors import UsageError
from embedded.statedir import StateDir

if TYPE_CHECKING:
    from temporalio.client import Client

    from zerotouch.policy import Policy

R = TypeVar("R")



class PortType(click.IntRange):
    """A TCP port, or 0 (whose meaning the option says: none, or any free one)."""

    name = "port"

    def __init__(self) -> None:
        super().__init__(0, 65535)


PORT = PortType()


@dataclass(frozen=True)
class Section:
    """Top-level commands listed under one heading of `zerotouch --help`."""

    title: str
    commands: tuple[click.Command, ...]


class LabelType(click.ParamType):
    """``NAME=VALUE``, as a ``(name, value)`` pair."""

    name = "NAME=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        name, separator, text = str(value).partition("=")
        if not separator or not name:
            self.fail(f"expected NAME=VALUE, got {value!r}", param, ctx)
        return name, text


class DurationType(click.ParamType):
    """``30s``, ``5m``, ``1h30m``, ``2d`` (`zerotouch.durations.parse_duration`), as a timedelta."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        from zerotouch.durations import parse_duration

        try:
            return parse_duration(str(value))
        except ValueError as error:  # parse_duration's only error: the text is not a duration
            self.fail(str(error), param, ctx)


class TimeoutType(click.ParamType):
    """Seconds in (0, 300]."""

    name = "SECONDS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except ValueError:
            self.fail(f"expected seconds, got {value!r}", param, ctx)
        if not 0 < seconds <= 300:
            self.fail(f"{seconds:g} s is outside (0, 300]", param, ctx)
        return seconds


def state_dir_option(help_text: str = "state directory of `zerotouch up` (default $ZEROTOUCH_STATE_DIR or "
                                      ".zerotouch)") -> Callable[[Callable[..., R]], Callable[..., R]]:
    return click.option("--state-dir", metavar="DIR", help=help_text)


@dataclass(frozen=True)
class Connection:
    """Where the Temporal frontend is: ``--address``, ``--namespace``, ``--state-dir``."""

    address: str | None = None
    namespace: str | None = None
    state_dir: str | None = None

    async def client(self, **options: Any) -> Client:
        """Connect; ``options`` go to `Client.connect` (e.g. the telemetry's interceptors)."""
        from zerotouch.codec_keys import STATE_DIR_KEYS_FILE
        from zerotouch.temporal import connect

        state = StateDir(self.state_dir)
        embedded = state.endpoints().get("temporal")
        address = self.address or os.environ.get("TEMPORAL_ADDRESS") or embedded
        # `zerotouch up` encrypts with a key of its own: use it for that server only.
        keys_file = state.path / STATE_DIR_KEYS_FILE if embedded and address == embedded else None
        try:
            return await connect(address, self.namespace, keys_file=keys_file, **options)
        except RuntimeError as error:  # the Temporal client's "cannot connect"
            raise UsageError(f"cannot reach Temporal at {address or 'the default address'}: {error}; "
                             "is `zerotouch up` running?") from None


_CONNECTION_OPTIONS = (
    click.option("--address", metavar="HOST:PORT",
                 help="Temporal frontend (default $TEMPORAL_ADDRESS or the running `up`)"),
    click.option("--namespace", help="Temporal namespace (default $TEMPORAL_NAMESPACE or default)"),
    state_dir_option(),
)


def connection_options(command: Callable[..., R]) -> Callable[..., R]:
    """Add ``--address``, ``--namespace`` and ``--state-dir``; the command receives them as ``connection``."""

    @functools.wraps(command)
    def with_connection(*args: Any, address: str | None, namespace: str | None, state_dir: str | None,
                        **kwargs: Any) -> R:
        return command(*args, connection=Connection(address, namespace, state_dir), **kwargs)

    decorated: Callable[..., R] = with_connection
    for option in reversed(_CONNECTION_OPTIONS):
        decorated = option(decorated)
    return decorated


def json_option(what: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """``--json``, passed as ``as_json``: print ``what`` as JSON (a stable format for scripts)."""
    return click.option("--json", "as_json", is_flag=True, help=f"print {what} as JSON, for scripts")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def parse_time(value: str) -> datetime:
    """An ISO 8601 time from the command line (UTC unless it says otherwise); a UsageError otherwise."""
    from datetime import UTC

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{value!r} is not an ISO 8601 time such as 2026-01-05T03:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def policy_from(policy_path: str | None) -> Policy:
    """The policy file given, else $ZEROTOUCH_POLICY, else the shipped one; loaded and validated."""
    from zerotouch.policy import load_policy
    from zerotouch.settings import default_policy_path

    return load_policy(policy_path or default_policy_path())


def run_with_client(connection: Connection, work: Callable[[Client], Awaitable[R]],
                    refusals: tuple[type[Exception], ...]) -> R:
    """Run ``work`` with a Temporal client; a refusal the user can act on becomes one line (exit status 1)."""
    from cli.errors import CommandError

    async def run() -> R:
        client = await connection.client()
        try:
            return await work(client)
        except refusals as error:
            raise CommandError(str(error)) from None

    return asyncio.run(run())
