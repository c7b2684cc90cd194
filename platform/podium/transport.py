"""The tracked-run endpoints as functions, shared by live runs and `podium sync`."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.errors import ApiError, PodiumError
from podium.http import Api
from podium.spool import Point, RunSpool

logger = logging.getLogger("podium")

TRACK_PATH = "/api/v1/runs/track/"
# The server takes at most 10,000 points a request; smaller requests keep each one short.
BATCH_MAX = 5_000
# The server's rule for metric keys (tracking.tracked.METRIC_KEY), checked before sending so
# one bad key never costs a whole batch; a test keeps the two identical.
METRIC_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/: ]*")
METRIC_KEY_MAX = 100


def check_metric_key(key: str) -> None:
    if not isinstance(key, str) or len(key) > METRIC_KEY_MAX or not METRIC_KEY.fullmatch(key):
        raise ValueError(
            f"{key!r} is not a metric key: at most {METRIC_KEY_MAX} letters, digits, spaces "
            "and _ . - / :, not starting with a space or punctuation."
        )


def metrics_path(uuid: str) -> str:
    return f"/api/v1/runs/{uuid}/metrics/"


def finish_path(uuid: str) -> str:
    return f"/api/v1/runs/{uuid}/finish/"


def create_run(api: Api, body: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    """One attempt to create the run; a retry with the same key returns the same run."""
    answer = api.request(
        "POST", TRACK_PATH, json_body=body, headers={"Idempotency-Key": idempotency_key}
    ).body
    if not isinstance(answer, dict) or "uuid" not in answer:
        raise PodiumError(f"{api.url} did not answer like a Podium server when creating a run.")
    return answer


@dataclass
class UploadResult:
    accepted: int = 0
    duplicates: int = 0
    # Points refused because their step already holds another value on the server.
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def _payload(points: Sequence[Point]) -> dict[str, Any]:
    return {
        "points": [
            {"key": key, "step": step, "value": value, "timestamp": at}
            for key, step, value, at in points
        ]
    }


def upload_points(api: Api, uuid: str, points: Sequence[Point]) -> UploadResult:
    """Send points in batches, one attempt each (Unreachable propagates: the caller retries
    the whole call, and points already stored come back as duplicates, never twice).

    Points whose step holds another value on the server are refused by it with their
    batch; they are left out, reported with a warning, and the rest is sent again.
    """
    result = UploadResult()
    for start in range(0, len(points), BATCH_MAX):
        batch = list(points[start : start + BATCH_MAX])
        while batch:
            try:
                answer = api.request("POST", metrics_path(uuid), json_body=_payload(batch)).body
            except ApiError as error:
                conflicts = error.body.get("conflicts") if isinstance(error.body, dict) else None
                if error.status != 409 or not conflicts:
                    raise
                # The server lists at most 100 conflicts per answer; the loop gets the rest.
                refused = {(c["key"], int(c["step"])) for c in conflicts}
                logger.warning(
                    "podium: run %s: %d point(s) not stored: their step already holds another "
                    "value (%s)",
                    uuid,
                    len(refused),
                    ", ".join(f"{k}@{s}" for k, s in sorted(refused)[:5]),
                )
                result.conflicts.extend(conflicts)
                batch = [p for p in batch if (p[0], p[1]) not in refused]
                continue
            result.accepted += int(answer.get("accepted", 0))
            result.duplicates += int(answer.get("duplicates", 0))
            break
    return result


def finish_body(*, status: str, scores: dict[str, float] | None, error: str = "") -> dict[str, Any]:
    if status not in ("succeeded", "failed"):
        raise ValueError(f"status must be 'succeeded' or 'failed', not {status!r}")
    clean: dict[str, float] = {}
    for key, value in (scores or {}).items():
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"score {key} is {number}, not a finite number")
        clean[str(key)] = number
    return {"status": status, "scores": clean, "error": error}


def finish_run(api: Api, uuid: str, body: dict[str, Any]) -> dict[str, Any]:
    """One attempt; repeating the same finish is harmless (the server answers 200 again)."""
    answer = api.request("POST", finish_path(uuid), json_body=body).body
    return answer if isinstance(answer, dict) else {}


@dataclass(frozen=True, kw_only=True)
class SyncReport:
    uuid: str
    points: int  # points read from the spool
    accepted: int
    duplicates: int
    conflicts: int
    finished: bool  # a spooled finish was delivered


def sync_spool(api: Api, spool: RunSpool) -> SyncReport:
    """Deliver a spooled run: create it if it never was, send its points, then its finish;
    remove the folder once all is delivered. Unreachable and ApiError propagate, with
    whatever was not delivered still on disk."""
    meta = spool.meta()
    uuid = meta.get("uuid")
    if not uuid:
        created = create_run(api, meta["create"], idempotency_key=meta["idempotency_key"])
        uuid = str(created["uuid"])
        spool.set_uuid(uuid)
    total = UploadResult()
    points = 0
    for chunk in spool.chunks():
        batch = spool.read_chunk(chunk)
        result = upload_points(api, uuid, batch)
        points += len(batch)
        total.accepted += result.accepted
        total.duplicates += result.duplicates
        total.conflicts.extend(result.conflicts)
        chunk.unlink()
    body = spool.finish()
    if body is not None:
        finish_run(api, uuid, body)
        spool.clear_finish()
    spool.remove()
    return SyncReport(
        uuid=uuid,
        points=points,
        accepted=total.accepted,
        duplicates=total.duplicates,
        conflicts=len(total.conflicts),
        finished=body is not None,
    )
