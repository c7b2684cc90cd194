"""Error bodies of the API.

Validation errors become {"errors": {"field": ["message", ...]}}, nested fields flattened to
dotted paths ("scores.accuracy", "seeds.0"), so a client can map every message to an input.
Other errors keep DRF's {"detail": "..."}.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY
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


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, ValidationError):
        response.data = {"errors": flatten_errors(exc.detail)}
        response.status_code = status.HTTP_400_BAD_REQUEST
    return response
