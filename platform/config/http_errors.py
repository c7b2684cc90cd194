"""Error answers given outside the views.

An answer is in the caller's language: `{"detail": "..."}` for the API (and any client that
asks for JSON), one line of plain HTML for the dashboard. None touches the database or the
templates, so they work while the database is down. Here: bodies too large (413, before
anything reads them), and JSON in place of the HTML pages Django itself renders under /api/
(404 for an unknown address, 500).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

API_PREFIX = "/api/"


def wants_json(request: HttpRequest) -> bool:
    if request.path.startswith(API_PREFIX):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def api_error_body(message: str) -> dict[str, Any]:
    """The API's error shape (see api.errors): DRF's detail, and the same message as a
    request-wide error."""
    return {"detail": message, "errors": {"non_field_errors": [message]}}


def refusal_response(
    request: HttpRequest, *, status: int, title: str, message: str, retry_after_s: int | None = None
) -> HttpResponse:
    """A short error answer; `Retry-After` says when to try again, where that is known."""
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse(api_error_body(message), status=status)
    else:
        response = HttpResponse(
            f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<h1>{escape(title)}</h1><p>{escape(message)}</p></html>\n",
            status=status,
            content_type="text/html; charset=utf-8",
        )
    if retry_after_s is not None:
        response["Retry-After"] = str(retry_after_s)
    response["Cache-Control"] = "no-store"
    return response


# Room for the multipart framing and the form fields around an uploaded file.
MULTIPART_SLACK_BYTES = 1024 * 1024


def request_body_limit(request: HttpRequest) -> tuple[int | None, str]:
    """The largest body this request may have, and the setting that says so. A file upload
    may be as large as the largest file an endpoint takes (an artifact); its endpoint then
    applies its own, smaller limit while reading."""
    limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if request.content_type == "multipart/form-data" and limit is not None:
        largest_file = getattr(settings, "PODIUM_MAX_ARTIFACT_BYTES", 0) + MULTIPART_SLACK_BYTES
        if largest_file > limit:
            return largest_file, "PODIUM_MAX_ARTIFACT_BYTES"
    return limit, "DATA_UPLOAD_MAX_MEMORY_SIZE"


class RequestSizeLimitMiddleware:
    """413 for a body over its limit, judged by its Content-Length before anything reads it.
    Django applies DATA_UPLOAD_MAX_MEMORY_SIZE only to form bodies; DRF's JSON parser reads
    the stream itself, so without this a JSON body of any size would be read whole."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit, setting = request_body_limit(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads no body without a valid length
        if limit is not None and length > limit:
            return refusal_response(
                request,
                status=413,
                title="Request too large",
                message=(
                    f"The request body is {length} bytes; this server accepts at most {limit} "
                    f"bytes ({setting}). A predictions file may be at most "
                    f"{settings.PODIUM_MAX_UPLOAD_BYTES} bytes (PODIUM_MAX_UPLOAD_BYTES)."
                ),
            )
        return self.get_response(request)


class ApiErrorBodyMiddleware:
    """Under /api/, an error page Django rendered as HTML (the resolver's 404 for an address
    no route matches, the 500 page) becomes `{"detail": "..."}`, as the API's schema says.
    What a DRF view rendered is left alone: it chose its format (the HTML docs page)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not hasattr(response, "accepted_renderer")
            and response.get("Content-Type", "").startswith("text/html")
        ):
            phrase = HTTPStatus(response.status_code).phrase
            replaced = JsonResponse(api_error_body(f"{phrase}."), status=response.status_code)
            for header in ("Retry-After", "Allow", "WWW-Authenticate"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response


# --- OpenAPI: the errors any operation may give ----------------------------------------

_ERROR_BODY = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["detail"],
}
_EVERY_OPERATION = {
    "401": "The Authorization header names an invalid or revoked token.",
    "429": "Too many requests: throttled; Retry-After says when to retry.",
    "503": "The database is unavailable; nothing was done. Retry-After says when to retry.",
}
_WITH_PATH_PARAMETERS = {"404": "Not found (or not visible to you)."}
_WITH_REQUEST_BODY = {
    "413": "The request body is over the size limit.",
    "415": "The request body's media type is not accepted.",
}


def document_common_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document on every operation the errors that come
    from outside its view (authentication, throttling, the middlewares here), where the
    operation does not document them itself."""
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = dict(_EVERY_OPERATION)
            if "{" in path:
                errors.update(_WITH_PATH_PARAMETERS)
            if "requestBody" in operation:
                errors.update(_WITH_REQUEST_BODY)
            for code, description in errors.items():
                operation["responses"].setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": _ERROR_BODY}},
                    },
                )
    return result
