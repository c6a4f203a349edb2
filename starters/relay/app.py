"""The Alertmanager webhook relay: authenticate, validate, signal-with-start, then answer.

Only a 200 says Temporal has every alert; 503 (with Retry-After) says "try again",
which Alertmanager does; 4xx says the request itself is wrong, which it does not retry:
Alertmanager drops that notification, so a 4xx is kept for what no retry can fix.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from starters.gdpr import GdprError, GdprMisconfigured, Intake, file_request, subject_from
from starters.relay.auth import require_credentials
from starters.relay.config import RelayConfig, RelayConfigError, load_token
from starters.relay.deliver import TRANSIENT_STATUSES, CatchUp, TemporalRejected, TemporalUnavailable, deliver
from starters.relay.metrics import WEBHOOK_PATH, RelayMetrics, RelayMetricsMiddleware
from starters.relay.payload import parse_payload
from starters.relay.repeats import RepeatFilter
from starters.rotations import LeakReport, RotationError, start
from zerotouch.alerts import WebhookPayload
from zerotouch.http.limits import check_content_type, receive_body
from zerotouch.telemetry import METRICS_CONTENT_TYPE, Telemetry

__all__ = ["RelayConfig", "RelayConfigError", "create_app", "load_token"]

log = logging.getLogger("zerotouch.relay")

HEALTH_TIMEOUT_SECONDS = 2.0
M = TypeVar("M", bound=BaseModel)


class Accepted(BaseModel):
    """Every alert of the payload is with its incident."""

    accepted: int = Field(description="alerts in the payload, all handed to Temporal")
    incidents: list[str] = Field(description="incident (workflow) IDs that received an alert")
    heartbeats: int = Field(default=0, description="always-firing alerts (Watchdog) accepted without an incident")


class Rotating(BaseModel):
    """The leaked credential's rotation: started now, or already under way."""

    rotation: str
    workflow_id: str
    status: Literal["started", "already rotating"]


LEAKED_PATH = "/v1/secrets/leaked"
LEAK_MAX_BODY_BYTES = 16 * 1024  # a name, a Secret reference, 500 characters of reason


class Filed(BaseModel):
    """The data-subject request's workflow: started now, or the one already filed under that request id."""

    request_id: str
    workflow_id: str
    status: Literal["started", "already filed"]


GDPR_PATH = "/v1/gdpr/requests"
GDPR_MAX_BODY_BYTES = 16 * 1024  # an identity, 500 characters of verification, a name and an id


class Problem(BaseModel):
    """Why the request was refused, in one line."""

    detail: str


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    temporal: Literal["reachable", "unreachable"]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("body is not JSON (or nested deeper than 200 levels), or Content-Length is broken"),
    401: _problem("missing or invalid bearer token / basic credentials (see WWW-Authenticate)"),
    408: _problem("the body did not arrive within request_timeout_seconds"),
    413: _problem("body larger than max_body_bytes (default 8 MiB, a group of 5,000 kube-prometheus alerts)"),
    415: _problem("content type is not application/json"),
    422: _problem("not a valid Alertmanager v4 payload; names the field, e.g. `alerts.0.labels: ...`"),
    502: _problem("Temporal refused the alerts for a reason a retry will not fix"),
    503: {
        **_problem("Temporal is unreachable, or has not taken every alert yet; Alertmanager retries and the "
                   "relay continues where it stopped"),
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}

_SECURITY_SCHEMES = {
    "bearerToken": {"type": "http", "scheme": "bearer", "description": "the relay token"},
    "basicAuth": {"type": "http", "scheme": "basic", "description": "a configured basic user"},
}


def create_app(*, client: Client, config: RelayConfig, telemetry: Telemetry | None = None) -> FastAPI:
    """The relay as an ASGI app; raises `RelayConfigError` for a configuration it must not serve.

    With ``telemetry``, the relay counts what it receives, serves ``/metrics``, and opens a
    span per webhook that the client's tracing interceptor carries into the workflows
    (connect the client with ``telemetry.client_options()``).
    """
    config.check()
    metrics = RelayMetrics(telemetry) if telemetry is not None else None
    catch_up = CatchUp()
    repeats = RepeatFilter(window_seconds=config.absorb_repeats_seconds,
                           on_absorbed=metrics.absorbed if metrics is not None else None)
    app = FastAPI(
        title="zerotouch relay",
        version="1",
        description=(
            "Receives Alertmanager webhooks (payload version 4) and hands each alert to its incident "
            "workflow in Temporal. Answers 200 only once Temporal has every alert; 503 asks Alertmanager "
            "to retry. POST needs a bearer token or basic credentials unless the relay listens on loopback "
            "without any configured."
        ),
    )

    if metrics is not None:
        app.add_middleware(RelayMetricsMiddleware, metrics=metrics)

    @app.post(
        WEBHOOK_PATH,
        response_model=Accepted,
        responses=_RESPONSES,
        summary="Deliver an Alertmanager webhook",
        openapi_extra={
            "security": [{"bearerToken": []}, {"basicAuth": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookPayload"}}},
            },
        },
    )
    async def alertmanager(request: Request) -> Response:
        # The order matters: nothing is read before credentials and size are settled.
        require_credentials(request.headers.get("authorization"), config)
        check_content_type(request)
        body = await receive_body(request, limit=config.max_body_bytes, timeout=config.request_timeout_seconds)
        payload = parse_payload(body)
        del body  # the parsed payload is all that is needed from here on
        if metrics is not None:
            metrics.accepted(payload)
        if payload.truncated_alerts:
            log.warning("Alertmanager withheld %d alerts of group %s from this webhook (truncatedAlerts): they "
                        "will never reach the relay; remove max_alerts from the zerotouch receiver",
                        payload.truncated_alerts, payload.group_key[:200])
        try:
            if telemetry is None:
                delivery = await deliver(client, payload, config, catch_up, repeats)
            else:
                with telemetry.tracer.start_as_current_span(
                    "relay.alertmanager", attributes={"zerotouch.alerts": len(payload.alerts)}
                ):
                    delivery = await deliver(client, payload, config, catch_up, repeats)
        except TemporalUnavailable as error:
            log.warning("answering 503: %s", error)
            return JSONResponse(
                {"detail": f"{error}; retry later"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(config.retry_after_seconds)},
            )
        except TemporalRejected as error:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(error)) from None
        log.info("accepted %d alerts for %d incidents: %s", delivery.accepted, len(delivery.incidents),
                 ", ".join(delivery.incidents[:20]))
        # Serialised here rather than by FastAPI's response_model pass, which would validate the
        # model again and walk it through jsonable_encoder on every webhook.
        accepted = Accepted(accepted=delivery.accepted, incidents=delivery.incidents, heartbeats=delivery.heartbeats)
        return Response(accepted.model_dump_json(), media_type="application/json")

    @app.post(
        LEAKED_PATH,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Rotating,
        responses={**{code: _RESPONSES[code] for code in (400, 401, 408, 413, 415, 503)},
                   404: _problem("the policy's rotations.secrets has no such rotation (or none for that Secret)"),
                   422: _problem("not a leak report; names the field, e.g. `reason: String should have at most "
                                 "500 characters`")},
        summary="Report a leaked credential: rotate it now (emergency; the approval rules still apply)",
        openapi_extra={"security": [{"bearerToken": []}, {"basicAuth": []}]},
    )
    async def secret_leaked(request: Request) -> Response:
        # As for the webhook: credentials and size are settled before anything is read.
        require_credentials(request.headers.get("authorization"), config)
        check_content_type(request)
        body = await receive_body(request, limit=LEAK_MAX_BODY_BYTES, timeout=config.request_timeout_seconds)
        report = _leak_report(body)
        try:
            name = report.rotation_name(config.rotations)
        except RotationError as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
        try:
            async with asyncio.timeout(config.temporal_timeout_seconds):
                started = await start(client, config.rotations, name, config.cluster, requested_by=report.source,
                                      reason=report.reason, emergency=True, task_queue=config.task_queue)
        except (TimeoutError, RPCError) as error:
            if isinstance(error, RPCError) and error.status not in TRANSIENT_STATUSES:
                raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=f"Temporal refused: {error}") from None
            log.warning("answering 503 to a leak report of %s: %s", name, error or "timeout")
            return JSONResponse({"detail": "Temporal is unreachable; retry later"},
                                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                                headers={"Retry-After": str(config.retry_after_seconds)})
        log.warning("credential of rotation %s reported leaked by %s: %s (%s)", name, report.source,
                    started.workflow_id, "started" if started.started else "already rotating")
        answer = Rotating(rotation=name, workflow_id=started.workflow_id,
                          status="started" if started.started else "already rotating")
        return Response(answer.model_dump_json(), status_code=status.HTTP_202_ACCEPTED,
                        media_type="application/json")

    @app.post(
        GDPR_PATH,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Filed,
        responses={**{code: _RESPONSES[code] for code in (400, 401, 408, 413, 415, 503)},
                   409: _problem("that request id already names another subject"),
                   422: _problem("not a data-subject request, or a malformed e-mail or user id; names the field, "
                                 "never its value"),
                   500: _problem("the relay cannot use the request vault (its key variable is not set or wrong)")},
        summary="File a data-subject request (access or erasure); an approver decides on it",
        openapi_extra={"security": [{"bearerToken": []}, {"basicAuth": []}]},
    )
    async def gdpr_request(request: Request) -> Response:
        # As for the webhook: credentials and size are settled before anything is read.
        require_credentials(request.headers.get("authorization"), config)
        check_content_type(request)
        body = await receive_body(request, limit=GDPR_MAX_BODY_BYTES, timeout=config.request_timeout_seconds)
        intake = _parsed(Intake, body)
        del body  # it holds the subject's identity; from here on only the validated Subject does
        try:
            subject = subject_from(email=intake.email, user_id=intake.user_id)
        except GdprError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error)) from None
        try:
            async with asyncio.timeout(config.temporal_timeout_seconds):
                filed = await file_request(
                    client, config.gdpr, kind=intake.kind, subject=subject, requested_by=intake.requested_by,
                    verification=intake.verification, request_id=intake.request_id, cluster=config.cluster,
                    state_dir=config.state_path, task_queue=config.task_queue)
        except GdprMisconfigured as error:
            log.error("cannot file a data-subject request: %s", error)
            raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR,
                                detail=f"the relay is misconfigured: {error}") from None
        except GdprError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
        except (TimeoutError, RPCError) as error:
            if isinstance(error, RPCError) and error.status not in TRANSIENT_STATUSES:
                raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=f"Temporal refused: {error}") from None
            log.warning("answering 503 to a data-subject request: %s", error or "timeout")
            return JSONResponse({"detail": "Temporal is unreachable; retry later"},
                                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                                headers={"Retry-After": str(config.retry_after_seconds)})
        log.info("data-subject request %s (%s) filed by %s: %s", filed.request_id, intake.kind, intake.requested_by,
                 "started" if filed.started else "already filed")
        answer = Filed(request_id=filed.request_id, workflow_id=filed.workflow_id,
                       status="started" if filed.started else "already filed")
        return Response(answer.model_dump_json(), status_code=status.HTTP_202_ACCEPTED, media_type="application/json")

    @app.get(
        "/healthz",
        response_model=Health,
        responses={503: {"model": Health, "description": "the relay runs but Temporal does not answer"}},
        summary="Liveness, and whether Temporal answers",
        openapi_extra={"security": []},
    )
    async def healthz() -> Health | JSONResponse:
        if await _temporal_reachable(client):
            return Health(temporal="reachable")
        return JSONResponse(Health(temporal="unreachable").model_dump(), status_code=503)

    if telemetry is not None:
        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            # Counts only, no alert contents: served without credentials, like /healthz.
            return Response(telemetry.metrics_text(), media_type=METRICS_CONTENT_TYPE)

    def openapi() -> dict[str, Any]:
        # The payload is parsed by hand (to bound its size and word its errors), so
        # FastAPI cannot see it; publish its schema and the auth schemes ourselves.
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            payload = WebhookPayload.model_json_schema(by_alias=True,
                                                       ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            schemas.update(payload.pop("$defs", {}))
            schemas["WebhookPayload"] = payload
            components["securitySchemes"] = _SECURITY_SCHEMES
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _leak_report(body: bytes | bytearray) -> LeakReport:
    return _parsed(LeakReport, body)


def _parsed(model: type[M], body: bytes | bytearray) -> M:
    """400 for broken JSON, 422 naming the first bad field otherwise (never echoing what was sent)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False, include_context=False)
        if any(item["type"] == "json_invalid" for item in details):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"body is not valid JSON: {details[0]['msg']}") \
                from None
        first = details[0]
        where = ".".join(str(part)[:64] for part in first["loc"]) or "body"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


async def _temporal_reachable(client: Client) -> bool:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS + 1):
            return await client.service_client.check_health(timeout=timedelta(seconds=HEALTH_TIMEOUT_SECONDS))
    except Exception:
        return False
