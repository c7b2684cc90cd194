"""The API over urllib: JSON in and out, token authentication, retries with backoff.

A request that cannot reach the server, times out, or is answered 5xx or 429 raises
Unreachable (retryable; Retry-After is kept); any other 4xx raises ApiError.
`Api.call` retries Unreachable with exponential backoff and jitter until a deadline.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from podium.config import Credentials
from podium.errors import ApiError, PodiumError, Unreachable

USER_AGENT = "podium-client/0.1"


@dataclass(frozen=True, kw_only=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or the text of another content type
    raw: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), tz=UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff with jitter (a random wait between half and all of
    base * 2**attempt, capped), so clients that lost the server together do not return
    together; never shorter than what the server asked for with Retry-After."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(attempt, 30))
        wait = random.uniform(ceiling / 2, ceiling)
        return max(wait, retry_after or 0.0)


def _parse_body(raw: bytes, content_type: str) -> Any:
    if "json" in content_type:
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            pass
    return raw.decode("utf-8", errors="replace")


class Api:
    """One Podium server, authenticated by an API token."""

    def __init__(self, credentials: Credentials, *, timeout: float = 30.0) -> None:
        self.url = credentials.url
        self._token = credentials.token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One attempt."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None
        sent = {
            "Authorization": f"Token {self._token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":"), allow_nan=False).encode("utf-8")
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        where = f"{method} {path}"
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                raw = answer.read()
                answer_headers = dict(answer.headers.items())
                status = answer.status
        except urllib.error.HTTPError as error:
            raw = error.read()
            answer_headers = dict(error.headers.items()) if error.headers else {}
            status = error.code
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", error)
            raise Unreachable(f"{where}: cannot reach {self.url} ({reason})") from None
        content_type = answer_headers.get("Content-Type", "")
        body = _parse_body(raw, content_type)
        response = Response(status=status, headers=answer_headers, body=body, raw=raw)
        if status == 429 or status >= 500:
            wait = retry_after_seconds(answer_headers.get("Retry-After"))
            detail = body.get("detail", "") if isinstance(body, dict) else ""
            raise Unreachable(
                f"{where}: {self.url} answered HTTP {status}{': ' + str(detail) if detail else ''}",
                retry_after=wait,
            )
        if status >= 400:
            raise ApiError(status=status, body=body, method=method, path=path)
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        backoff: Backoff | None = None,
        stop: threading.Event | None = None,
    ) -> Response:
        """`request`, retried while the server is unreachable until `deadline` (a
        time.monotonic() value; None: 60 s from now) or until `stop` is set."""
        backoff = backoff or Backoff()
        deadline = deadline if deadline is not None else time.monotonic() + 60.0
        attempt = 0
        while True:
            try:
                return self.request(
                    method, path, json_body=json_body, params=params, headers=headers
                )
            except Unreachable as error:
                wait = backoff.delay(attempt, retry_after=error.retry_after)
                attempt += 1
                if time.monotonic() + wait > deadline or (stop is not None and stop.is_set()):
                    raise
                if stop is not None:
                    if stop.wait(wait):
                        raise
                else:
                    time.sleep(wait)

    def get(self, path: str, **params: str) -> Any:
        return self.call("GET", path, params=params or None).body

    def post(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        """POST, retried while unreachable: only for requests safe to repeat (idempotent by
        their nature or by an Idempotency-Key)."""
        return self.call("POST", path, json_body=body, headers=headers).body


def check_json(response_body: Any, *, what: str) -> dict[str, Any]:
    if not isinstance(response_body, dict):
        raise PodiumError(f"{what}: the server's answer is not a JSON object; is this Podium?")
    return response_body
