"""The `zerotouch` command line, built on Click; the work itself lives in `starters/`, `embedded/`, `zerotouch/`.

Layout:

- `cli.main`: the root group ``zerotouch`` (the console script `cli.main:run`; also ``python -m cli``),
  which lists the top-level commands by section and turns known errors into one line.
- `cli.errors`: the one place that says which errors are reported as ``zerotouch COMMAND: message``
  with exit status 2 (usage, setup) or 1 (refused); anything else is a bug and shows a traceback.
- `cli.common`: what the command modules share: the Temporal connection options (``--address``,
  ``--namespace``, ``--state-dir``), option types (ports, durations, ``NAME=VALUE``), ``--json``.
- One module per command group: `cli.runtime` (up, worker, relay, codec-server), `cli.incidents`
  (incidents, show, approve, take-over, retry, abort, fire), `cli.governor` (pause, resume, mode,
  close-breaker, trust, governor), `cli.ledger` (ledger verify/postmortem/report; postmortem and
  report also at the top level), `cli.policy` (policy check/schema), `cli.sandbox` (sandbox
  inject/actions/serve).

Adding a command group (say ``zerotouch schedules list/show/pause``):

1. Write ``cli/schedules.py`` with a ``@click.group()`` named ``schedules`` and its commands, each
   with ``short_help`` (the line in ``zerotouch --help``), a docstring (its own ``--help``) and
   ``help=`` on every option; `cli.common.connection_options` for commands that talk to Temporal,
   `cli.common.json_option` for output that scripts read. End the module with
   ``SECTION = Section("Schedules", (schedules,))``.
2. Add ``schedules.SECTION`` to `cli.main.SECTIONS`.
3. Import heavy modules (temporalio, kubernetes, FastAPI, the sandbox, ...) inside the command
   functions, not at the top: every module here is imported for ``zerotouch --help``.
4. Let the project's own error types propagate; if a command raises a new one the user can act
   on, add it to `cli.errors.REPORTED_ERRORS`. Do not catch broad built-in errors (ValueError,
   LookupError) except right around the one call that documents them, re-raised as
   `cli.errors.UsageError` or `cli.errors.CommandError`.
"""
