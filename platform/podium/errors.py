"""What the client raises: one message a person can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PodiumError(Exception):
    """Anything the client cannot do; the message says why and what to do."""


class Unreachable(PodiumError):
    """The server could not be reached, timed out, or answered 5xx or 429: worth retrying."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did


class ApiError(PodiumError):
    """The server refused the request (4xx): retrying the same request will not help."""

    def __init__(self, *, status: int, body: Any, method: str, path: str) -> None:
        self.status = status
        self.body = body
        self.errors: dict[str, list[str]] = {}
        detail = ""
        if isinstance(body, Mapping):
            raw = body.get("errors")
            if isinstance(raw, Mapping):
                self.errors = {str(k): [str(m) for m in v] for k, v in raw.items()}
            detail = str(body.get("detail", ""))
        self.detail = detail
        super().__init__(f"{method} {path}: HTTP {status}: {self.summary()}")

    def summary(self) -> str:
        if self.errors:
            return "; ".join(
                f"{field}: {' '.join(messages)}"
                if field != "non_field_errors"
                else " ".join(messages)
                for field, messages in self.errors.items()
            )
        if self.detail:
            return self.detail
        text = self.body if isinstance(self.body, str) else repr(self.body)
        return " ".join(text.split())[:300]
