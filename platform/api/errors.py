"""Error bodies of the API.

Every 4xx has {"errors": {"field": ["message", ...]}}: validation errors with nested fields
flattened to dotted paths ("scores.accuracy", "seeds.0"), so a client can map every message
to an input; other errors under the field they are about ("Idempotency-Key", "quota") or
"non_field_errors", and with DRF's {"detail": "..."} beside it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Any

from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from api.services import IdempotencyConflict
from tracking.services import QuotaExceeded, RunConflict, RunPermissionDenied
from tracking.status import InvalidTransition

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY
IDEMPOTENCY_HEADER = "Idempotency-Key"
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w]+)*)(?::\s|\s)")


def flatten_errors(detail: Any, path: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            child = str(key) if not path else f"{path}.{key}"
            if not path and key == NON_FIELD:
                child = NON_FIELD
            for field, messages in flatten_errors(value, child).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, value in enumerate(detail):
            for field, messages in flatten_errors(
                value, f"{path}.{index}" if path else str(index)
            ).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        flat[path or NON_FIELD] = [str(item) for item in detail]
    else:
        flat[path or NON_FIELD] = [str(detail)]
    return flat


def field_error(message: str, *, fields: Collection[str]) -> ValidationError:
    """A service's message ("scores: ...", "config.lr: ...") as an error on the field it
    names, or a non-field error where it names none of `fields`."""
    match = _FIELD_PREFIX.match(message)
    if match and match.group(1).split(".")[0] in fields:
        return ValidationError({match.group(1): [message]})
    return ValidationError({NON_FIELD: [message]})


class ApiError(APIException):
    """A refusal other than invalid input (conflict, quota, permission), with the field it
    is about and any structured details a client can act on.

    `wait` (seconds) becomes a Retry-After header, as for DRF's throttling.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        field: str = NON_FIELD,
        extra: dict[str, Any] | None = None,
        wait: int | None = None,
    ) -> None:
        super().__init__(detail=message)
        self.status_code = status_code
        self.field = field
        self.extra = dict(extra or {})
        self.wait = wait


def quota_error(error: QuotaExceeded) -> ApiError:
    """429 with Retry-After for a daily quota, which resets; 403 for a total one, which
    does not."""
    wait = None
    if error.resets_at is not None:
        wait = max(1, math.ceil((error.resets_at - timezone.now()).total_seconds()))
    return ApiError(
        str(error),
        status_code=status.HTTP_429_TOO_MANY_REQUESTS
        if error.period == "day"
        else status.HTTP_403_FORBIDDEN,
        field="quota",
        extra={
            "quota": {
                "suite": error.suite,
                "period": error.period,
                "limit": error.limit,
                "used": error.used,
                "requested": error.requested,
                "resets_at": error.resets_at.isoformat() if error.resets_at else None,
            }
        },
        wait=wait,
    )


def domain_error(exc: Exception) -> Exception:
    """The API error for a service's refusal, wherever in a view it was raised."""
    if isinstance(exc, QuotaExceeded):
        return quota_error(exc)
    if isinstance(exc, IdempotencyConflict):
        return ApiError(str(exc), status_code=status.HTTP_409_CONFLICT, field=IDEMPOTENCY_HEADER)
    if isinstance(exc, RunConflict | InvalidTransition):
        return ApiError(str(exc), status_code=status.HTTP_409_CONFLICT)
    if isinstance(exc, RunPermissionDenied):
        return ApiError(str(exc), status_code=status.HTTP_403_FORBIDDEN)
    return exc


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = domain_error(exc)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        response.data = {"errors": flatten_errors(exc.detail)}
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    data = response.data if isinstance(response.data, dict) else {}
    message = str(data.get("detail", response.status_text))
    field = exc.field if isinstance(exc, ApiError) else NON_FIELD
    extra = exc.extra if isinstance(exc, ApiError) else {}
    response.data = {"detail": message, "errors": {field: [message]}, **extra}
    return response
