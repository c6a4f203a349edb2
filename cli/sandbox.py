"""The sandbox cluster (a local fake Kubernetes API server): serve it, break it, see what was done to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cli.common import PORT, Section, print_json, state_dir_option
from cli.errors import CommandError, UsageError
from embedded.statedir import StateDir

R = TypeVar("R")

# sandbox.faults.KINDS plus "clear"; the sandbox itself refuses any other kind (its import is not cheap).
KINDS_HELP = ("crashloop, oom, bad-deploy, overload, unfixable, disk-pressure, stuck-pending, stuck-rollout, "
              "volume-filling, clear")


class TargetType(click.ParamType):
    """``NAMESPACE/DEPLOYMENT`` (or ``NAMESPACE/TYPE/NAME``), as a ``(namespace, rest)`` pair."""

    name = "TARGET"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        namespace, separator, deployment = str(value).partition("/")
        if not separator or not namespace or not deployment:
            self.fail(f"target must be NAMESPACE/DEPLOYMENT or NAMESPACE/TYPE/NAME, got {value!r}", param, ctx)
        return namespace, deployment


def _url_options(command: Callable[..., R]) -> Callable[..., R]:
    decorated = state_dir_option()(command)
    return click.option("--url", metavar="URL",
                        help="sandbox URL (default: the running `zerotouch up --sandbox`)")(decorated)


def _sandbox_url(url: str | None, state_dir: str | None) -> str:
    found = url or StateDir(state_dir).endpoints().get("sandbox")
    if not found:
        raise UsageError("no sandbox URL: pass --url or start `zerotouch up --sandbox` first")
    return str(found)


def _ask(url: str, request: Callable[[str], R]) -> R:
    """``request(url)``; the sandbox client's refusals (ValueError) and HTTP errors become one line."""
    import httpx

    try:
        return request(url)
    except ValueError as error:  # sandbox.client: the sandbox refused (unknown kind or target)
        raise CommandError(str(error)) from None
    except httpx.HTTPError as error:
        raise CommandError(f"cannot reach the sandbox at {url}: {error}") from None


@click.command(short_help="inject a fault into a workload",
               help=f"Inject a fault into a workload, or clear its faults. KIND: {KINDS_HELP}. TARGET is "
                    "NAMESPACE/DEPLOYMENT, or NAMESPACE/TYPE/NAME for another owner (shop/statefulset/db, "
                    "shop/daemonset/node-agent, shop/pvc/data-db-0).")
@click.argument("kind", metavar="KIND")
@click.argument("target", type=TargetType(), metavar="TARGET")
@_url_options
def inject(kind: str, target: tuple[str, str], url: str | None, state_dir: str | None) -> None:
    from sandbox import inject_via_http

    namespace, deployment = target
    print_json(_ask(_sandbox_url(url, state_dir), lambda found: inject_via_http(found, kind, namespace, deployment)))


@click.command(short_help="list the mutating requests the sandbox received")
@_url_options
def actions(url: str | None, state_dir: str | None) -> None:
    """List the mutating requests the sandbox received (restarts, scales, rollbacks, ...), as JSON."""
    from sandbox import actions_via_http

    print_json(_ask(_sandbox_url(url, state_dir), actions_via_http))


@click.command(short_help="run a sandbox cluster in the foreground")
@click.option("--port", type=PORT, default=6443, show_default=True, help="port to listen on; 0 picks a free one")
@click.option("--state-file", type=click.Path(dir_okay=False),
              help="JSON file to load the cluster from and save it to, so a restarted sandbox keeps its state")
def serve(port: int, state_file: str | None) -> None:
    """Run a sandbox cluster in the foreground (`python -m sandbox` has more options)."""
    from sandbox.__main__ import main as serve_main

    forwarded = ["--port", str(port)] + (["--state-file", state_file] if state_file else [])
    status = int(serve_main(forwarded) or 0)
    if status:
        raise click.exceptions.Exit(status)


@click.group(short_help="the sandbox cluster: serve it, break it")
def sandbox() -> None:
    """The sandbox cluster, a local fake Kubernetes API server: serve it, break it, list what was done to it."""


sandbox.add_command(inject)
sandbox.add_command(actions)
sandbox.add_command(serve)

SECTION = Section("Sandbox", (sandbox,))
