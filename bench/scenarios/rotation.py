"""Scenario 9: secret rotation on the real stack (dev server, `zerotouch worker`, sandbox).

First one PostgreSQL credential (alternating roles, the sandbox's `shop/checkout` reading
`shop/checkout-db`) rotated several times in a row on the demo database of `zerotouch up`, each
from workflow start to "rotated", split by the rotation's own timeline. Then a wave of
Kubernetes-only secrets, each with its own consumer Deployment, all started at once: how long the
wave takes to drain and whether the Governor's global rate and blast radius held, measured from
each rotation's history (grant → outcome report) and from the Governor's status while it ran.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from temporalio.client import Client, WorkflowHandle

from activities.secret_consumers import version_annotation
from bench.policy import bench_policy
from bench.report import Section
from bench.scenarios.rotation_report import RATE, Round, Wave, section
from bench.scenarios.rotation_watch import grant_span, watch_governor, worker_ready
from bench.stack import Stack, deployment, zerotouch_stack
from embedded.demo_database import DATABASE, DemoDatabase
from zerotouch.names import QUERY_STATUS, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import load_policy
from zerotouch.rotation_models import RotationResult, RotationStatus
from zerotouch.rotation_secret import ANNOTATION, STAGE
from zerotouch.rotations import ROTATION_WORKFLOW, RotationInput, SecretRef, rotation_workflow_id

BLAST_RADIUS = 3  # below a namespace's share of the wave at both sizes, so the bound is seen to bind
CONNECTION = "bench-rotation"
PG = SecretRef(namespace="shop", name="checkout-db")
PG_ROTATION, GROUP, ROLES = "checkout-db", "checkout", ["checkout_a", "checkout_b"]
VERIFY = {"poll": "500ms", "rollout_timeout": "60s", "unused_timeout": "60s"}
CURRENT = f"{ANNOTATION}current-version"


def sizes(quick: bool) -> tuple[int, int, int]:
    """(PostgreSQL rounds, wave size, wave namespaces)."""
    return (2, 10, 2) if quick else (5, 100, 4)


def wave_secrets(count: int, namespaces: int) -> list[SecretRef]:
    return [SecretRef(namespace=f"rotation-wave-{i % namespaces}", name=f"token-{i:03d}") for i in range(count)]


def consumer_of(ref: SecretRef) -> str:
    """The wave's Deployment that reads ``ref`` (token-007 → app-007)."""
    return ref.name.replace("token", "app")


def rotation_policy(target: Path, wave: list[SecretRef]) -> Path:
    """The bench policy (1 s target cooldown: one Secret is rotated round after round) with credential
    rotation pre-approved and automatic, the wave's guardrails, and every rotation of the scenario."""
    document: dict[str, Any] = yaml.safe_load(bench_policy(target, target_cooldown="1s").read_text())
    document["guardrails"].update(global_rate_per_minute=RATE, max_in_flight_per_namespace=BLAST_RADIUS)
    document["preapproved_classes"] = [*document.get("preapproved_classes", []), "credential_rotation"]
    document["risk"]["credential_rotation"] = "auto"
    rotations: dict[str, Any] = {PG_ROTATION: {
        "secret": PG.model_dump(), "verify": VERIFY,
        "target": {"kind": "postgres", "connection": CONNECTION, "database": DATABASE, "roles": ROLES,
                   "member_of": [GROUP]}}}
    for ref in wave:
        rotations[f"wave-{ref.name}"] = {"secret": ref.model_dump(), "target": {"kind": "kubernetes"}, "verify": VERIFY}
    document["rotations"] = {"secrets": rotations}
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(target)
    return target


def prepare_database(demo: DemoDatabase) -> str:
    """checkout_a logs in with a password and holds its privileges through the group; its password."""
    password = secrets.token_urlsafe(24)
    with psycopg.connect(demo.dsn(), autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(GROUP)))
        admin.execute(sql.SQL("GRANT SELECT, INSERT ON orders TO {}").format(sql.Identifier(GROUP)))
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(ROLES[0]), sql.Literal(password), sql.Identifier(GROUP)))
    return password


def _encoded(values: dict[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


def _created(response: httpx.Response, what: str) -> None:
    if response.status_code not in (200, 201, 409):
        raise RuntimeError(f"creating {what}: {response.status_code} {response.text[:300]}")


async def seed(stack: Stack, username: str, password: str, wave: list[SecretRef]) -> None:
    """The PostgreSQL Secret as the application had it before zerotouch; the wave's Secrets and consumers."""
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30.0) as http:
        await http.delete(f"/api/v1/namespaces/{PG.namespace}/secrets/{PG.name}")
        _created(await http.post(f"/api/v1/namespaces/{PG.namespace}/secrets", json={
            "metadata": {"name": PG.name, "namespace": PG.namespace}, "type": "Opaque",
            "data": _encoded({"username": username, "password": password})}), PG.describe())
        for namespace in sorted({ref.namespace for ref in wave}):
            _created(await http.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}), namespace)
        limit = asyncio.Semaphore(8)

        async def one(ref: SecretRef) -> None:
            consumer = deployment(ref.namespace, consumer_of(ref))
            consumer["spec"]["template"]["spec"]["containers"][0]["env"] = [
                {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": "token"}}}]
            async with limit:
                _created(await http.post(f"/api/v1/namespaces/{ref.namespace}/secrets", json={
                    "metadata": {"name": ref.name, "namespace": ref.namespace}, "type": "Opaque",
                    "data": _encoded({"token": secrets.token_hex(16)})}), ref.describe())
                _created(await http.post(f"/apis/apps/v1/namespaces/{ref.namespace}/deployments",
                                               json=consumer), f"deployment for {ref.describe()}")

        await asyncio.gather(*(one(ref) for ref in wave))


async def start(client: Client, rotation: str, ref: SecretRef) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        ROTATION_WORKFLOW, RotationInput(rotation=rotation, requested_by="bench", reason="benchmark"),
        id=rotation_workflow_id(ref), task_queue=queue_for(WORKFLOWS_QUEUE, ""))


async def moved(stack: Stack, ref: SecretRef, token: str, consumer: str) -> tuple[dict[str, str], list[str]]:
    """The Secret's decoded data, and what is wrong with it and its consumer after rotation ``token``."""
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30.0) as http:
        secret = (await http.get(f"/api/v1/namespaces/{ref.namespace}/secrets/{ref.name}")).json()
        deploy = (await http.get(f"/apis/apps/v1/namespaces/{ref.namespace}/deployments/{consumer}")).json()
    annotations = secret["metadata"].get("annotations") or {}
    wrong = []
    if annotations.get(CURRENT) != token or annotations.get(STAGE) != "revoked":
        wrong.append(f"{ref.describe()}: version {annotations.get(CURRENT)}, stage {annotations.get(STAGE)}")
    pinned = ((deploy["spec"]["template"].get("metadata") or {}).get("annotations") or {})
    if pinned.get(version_annotation(ref.name)) != token:
        wrong.append(f"{ref.namespace}/{consumer} not rolled onto {token}")
    data = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
    return data, wrong


def logins(demo: DemoDatabase, username: str, password: str) -> dict[str, bool]:
    """Whether the Secret's login works over TCP with its password, and which roles may log in at all."""
    params = conninfo_to_dict(demo.dsn())
    with psycopg.connect(host="127.0.0.1", port=params["port"], user=username, password=password, dbname=DATABASE,
                         connect_timeout=5) as connection:
        connection.execute("SELECT count(*) FROM orders").fetchone()
    with psycopg.connect(demo.dsn(), autocommit=True, connect_timeout=10) as admin:
        rows = admin.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)", (ROLES,)).fetchall()
    return {str(name): bool(can) for name, can in rows}


async def postgres_round(stack: Stack, demo: DemoDatabase, number: int) -> Round:
    began = time.monotonic()
    handle = await start(stack.client, PG_ROTATION, PG)
    result = RotationResult.model_validate(await handle.result())
    seconds = time.monotonic() - began
    status = RotationStatus.model_validate(await handle.query(QUERY_STATUS))
    done = Round(number=number, seconds=seconds, outcome=result.outcome,
                 marks={entry.kind: entry.at for entry in reversed(status.timeline)})
    data, done.wrong = await moved(stack, PG, result.token, "checkout")
    expected = ROLES[number % 2]  # checkout_a held it before the first round
    can = await asyncio.to_thread(logins, demo, data["username"], data["password"])
    if data["username"] != expected or not can.get(expected) or can.get(ROLES[(number + 1) % 2]):
        done.wrong.append(f"login {data['username']} (expected {expected}); may log in: {can}")
    return done


async def run_wave(stack: Stack, refs: list[SecretRef]) -> Wave:
    wave = Wave(size=len(refs), namespaces=len({ref.namespace for ref in refs}), blast_radius=BLAST_RADIUS)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_governor(stack.client, wave, stop))
    try:
        began = time.monotonic()
        handles = await asyncio.gather(*(start(stack.client, f"wave-{ref.name}", ref) for ref in refs))
        results = [RotationResult.model_validate(r) for r in await asyncio.gather(*(h.result() for h in handles))]
        wave.drain_seconds = time.monotonic() - began
    finally:
        stop.set()
        await watcher
    spans = await asyncio.gather(*(grant_span(h) for h in handles))
    for ref, result, span in zip(refs, results, spans, strict=True):
        wave.outcomes[result.outcome] = wave.outcomes.get(result.outcome, 0) + 1
        if span is None:
            wave.wrong.append(f"{ref.describe()}: never granted ({result.outcome})")
            continue
        started, granted, reported, closed, refusals = span
        wave.flights.setdefault(ref.namespace, []).append((granted, reported))
        wave.grants.append(granted)
        wave.durations.append((closed - started).total_seconds())
        wave.governor_waits.append((granted - started).total_seconds())
        wave.refusals += refusals
        wave.wrong += (await moved(stack, ref, result.token, consumer_of(ref)))[1]
    return wave


def _start_database() -> tuple[DemoDatabase, Path]:
    # Outside the bench's root-only directory: the server runs as `nobody` and must reach its files.
    state = Path(tempfile.mkdtemp(prefix="zt-bench-rotation-"))
    state.chmod(0o711)
    demo = DemoDatabase(state)
    try:
        demo.start()
    except BaseException:
        shutil.rmtree(state, ignore_errors=True)
        raise
    return demo, state


async def run(workdir: Path, *, quick: bool) -> Section:
    rounds, size, namespaces = sizes(quick)
    workdir.mkdir(parents=True, exist_ok=True)
    refs = wave_secrets(size, namespaces)
    policy_path = rotation_policy(workdir / "policy-rotation.yaml", refs)
    began = time.monotonic()
    demo, state = await asyncio.to_thread(_start_database)
    variable = f"ZEROTOUCH_PG_{CONNECTION.upper().replace('-', '_')}_DSN"
    os.environ[variable] = demo.dsn()  # the worker inherits it: the connection reference resolves to it
    try:
        password = await asyncio.to_thread(prepare_database, demo)
        async with zerotouch_stack(workdir, policy_path=policy_path, relay=False, warm_up=False,
                                   sandbox_tick=0.2) as stack:
            await asyncio.gather(seed(stack, ROLES[0], password, refs), worker_ready(stack.client))
            ready = time.monotonic() - began
            done = [await postgres_round(stack, demo, number) for number in range(1, rounds + 1)]
            wave = await run_wave(stack, refs)
        result = section(done, wave, server=str(await asyncio.to_thread(_server_version, demo)))
        result.notes.append(f"Set-up before the first rotation (PostgreSQL, dev server, sandbox, worker polling, "
                            f"Secrets and Deployments created): {ready:.0f} s.")
        return result
    finally:
        os.environ.pop(variable, None)
        await asyncio.to_thread(demo.stop)
        with contextlib.suppress(OSError):
            shutil.copy(demo.log, workdir / "postgres-server.log")
        shutil.rmtree(state, ignore_errors=True)


def _server_version(demo: DemoDatabase) -> str:
    with psycopg.connect(demo.dsn(), autocommit=True, connect_timeout=10) as admin:
        row = admin.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "unknown"

