"""The endpoints Intercom calls (not the agent API): the webhook and the inbox app, all verified by signature."""

import json
import time

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.integrations import canvas, services
from project.api import error_body
from project.metrics import metric_emit


def _refuse_early(request) -> JsonResponse | None:
    """Wrong method or a body over the limit: answered before the body is read."""
    if request.method != "POST":
        response = JsonResponse(error_body("method_not_allowed", "Only POST is accepted here."), status=405)
        response["Allow"] = "POST"
        return response
    limit = settings.INTERCOM_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit or len(request.body) > limit:
        return JsonResponse(error_body("too_large", f"The body is over {limit} bytes."), status=413)
    return None


def _signed_endpoint(request, receive, signature_header: str) -> JsonResponse:
    """The shape all three share: refuse early, then hand the raw body and its signature to the service."""
    refusal = _refuse_early(request)
    if refusal:
        return refusal
    answer: services.Answer = receive(body=request.body, signature=request.headers.get(signature_header))
    return JsonResponse(answer.body, status=answer.status)


@csrf_exempt
def intercom_webhook(request):
    """POST /webhooks/intercom: verify, store, dispatch, answer; nothing slow happens here.

    Metrics (project/metrics.py): WebhookAck (count, by Outcome: `accepted` or the refusal's error
    code), WebhookAckLatency (ms), WebhookServerError when it raises (answered 500 by Django).
    """
    started = time.perf_counter()
    try:
        response = _signed_endpoint(request, services.webhook_receive, "X-Hub-Signature")
    except Exception:
        metric_emit(name="WebhookServerError")
        raise
    elapsed_ms = (time.perf_counter() - started) * 1000
    outcome = "accepted"
    if response.status_code >= 400:
        outcome = _error_code(response)
    if response.status_code >= 500:
        metric_emit(name="WebhookServerError")
    metric_emit(name="WebhookAck", dimensions={"Outcome": outcome})
    metric_emit(name="WebhookAckLatency", value=round(elapsed_ms, 3), unit="Milliseconds")
    return response


def _error_code(response: JsonResponse) -> str:
    try:
        return str(json.loads(response.content)["error"]["code"])[:64]
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


@csrf_exempt
def canvas_initialize(request):
    """POST /intercom/canvas/initialize: the sidebar for a conversation."""
    return _signed_endpoint(request, canvas.canvas_initialize, "X-Body-Signature")


@csrf_exempt
def canvas_submit(request):
    """POST /intercom/canvas/submit: an agent's click in the sidebar."""
    return _signed_endpoint(request, canvas.canvas_submit, "X-Body-Signature")
