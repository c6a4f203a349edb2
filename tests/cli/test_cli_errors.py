"""The CLI's shape and its error contract, without servers: known errors are one line, bugs are tracebacks."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from cli.errors import REPORTED_ERRORS
from cli.main import CommandLineParser, main, zerotouch


def _command_lines(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _command_lines(command, (*prefix, name))


def test_every_reported_error_names_an_exception_class() -> None:
    for dotted in REPORTED_ERRORS:
        module_name, _, class_name = dotted.rpartition(".")
        error_class = getattr(importlib.import_module(module_name), class_name)
        assert isinstance(error_class, type) and issubclass(error_class, Exception), dotted


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    lines = list(_command_lines(zerotouch))
    assert {("ledger", "verify"), ("ledger", "postmortem"), ("postmortem",), ("report",), ("sandbox", "inject"),
            ("policy", "check"), ("codec-server",), ("take-over",), ("close-breaker",)} <= set(lines)
    for line in [(), *lines]:
        assert main([*line, "--help"]) == 0, line
        assert "Usage: zerotouch" in capsys.readouterr().out


def test_a_known_error_is_one_line_with_its_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["policy", "check", str(missing)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"zerotouch policy: {missing}: cannot read policy") and error.count("\n") == 1
    assert main(["postmortem", "nope", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("zerotouch postmortem: incident 'nope' is not in the ledger")


def test_any_other_error_is_a_bug_with_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import zerotouch.policy

    def broken(path: str) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(zerotouch.policy, "load_policy", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["policy", "check", "any.yaml"])


def test_parse_only_view_of_a_command_line() -> None:
    args = CommandLineParser().parse_args(["worker", "--queue", "zerotouch-data", "--address", "temporal:7233"])
    assert args.command == "worker" and args.queue == ("zerotouch-data",)
    assert args.address == "temporal:7233"
    assert CommandLineParser().parse_args(["ledger", "verify"]).command == "ledger"
    with pytest.raises(SystemExit) as refused:
        CommandLineParser().parse_args(["worker", "--queue", "nope"])
    assert refused.value.code == 2


def test_constants_copied_to_keep_help_fast_match_their_sources() -> None:
    from cli.ledger import LEDGER_URL_ENV
    from cli.sandbox import KINDS_HELP
    from sandbox.faults import KINDS
    from zerotouch.ledger_report import LEDGER_URL_ENV as SOURCE

    assert LEDGER_URL_ENV == SOURCE
    assert KINDS_HELP.split(", ") == [*KINDS, "clear"]
