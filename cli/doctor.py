"""`zerotouch doctor`: what works on this machine, and what each missing piece disables."""

from __future__ import annotations

import click

from cli.common import Section, TimeoutType, json_option, print_json, state_dir_option
from embedded.statedir import StateDir


@click.command(short_help="check what works: Kubernetes, Prometheus, databases, channels, policy")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="policy file (default $ZEROTOUCH_POLICY or deploy/policy/zerotouch.yaml)")
@click.option("--kubernetes-url", metavar="URL",
              help="API server without auth (a sandbox); default: the running `up --sandbox`, else in-cluster "
                   "credentials, else the kubeconfig")
@click.option("--prometheus-url", metavar="URL",
              help="Prometheus (default $PROMETHEUS_URL, else the running `up`'s)")
@click.option("--timeout", type=TimeoutType(), default=3.0, show_default=True,
              help="seconds each probe may take")
@state_dir_option()
@json_option("the checks")
def doctor(policy_path: str | None, kubernetes_url: str | None, prometheus_url: str | None, timeout: float,
           state_dir: str | None, as_json: bool) -> None:
    """Check, as the workers would, whether a Kubernetes API answers, Prometheus answers, each
    PostgreSQL and MongoDB connection the policy references resolves and connects, each notification
    channel is configured with a usable URL (nothing is sent), and the policy loads.

    Each piece is ok, missing (not configured: optional, and the line says what that disables) or
    failing (configured but not working). Exit status 1 when anything is failing, else 0.
    """
    from workers.doctor_probes import run_checks
    from zerotouch.doctor import render, summary
    from zerotouch.settings import WorkerSettings

    running = StateDir(state_dir).endpoints()  # what a running `zerotouch up` serves, if one is
    settings = WorkerSettings(kubernetes_url=kubernetes_url or running.get("sandbox"))
    if prometheus_url or (not settings.prometheus_url and running.get("prometheus")):
        settings.prometheus_url = prometheus_url or running.get("prometheus")
    if policy_path:
        settings.policy_path = policy_path
    report = run_checks(settings, timeout=timeout)
    if as_json:
        print_json(report.as_json())
    else:
        print("\n".join([*render(report), "", summary(report)]))
    if not report.ok:
        raise click.exceptions.Exit(1)


SECTION = Section("Diagnostics", (doctor,))
