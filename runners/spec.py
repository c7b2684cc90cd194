"""The job contract between the platform and GPU workers, defined once for both sides.

Job specs go out and results, metric batches and heartbeats come back as JSON messages
through Celery, so a GPU machine needs only the broker URL. Every message carries
`schema_version`; a receiver refuses a version it does not know rather than guessing.
What a worker sends back is signed with the worker key (see `sign_message`), so reaching the
broker is not enough to post scores. Standard library only: the web side imports this module
and must never pull in torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

SCHEMA_VERSION = 1

# Queues and task names, shared by sender and receiver; tasks are sent by name so the web
# side never imports the worker's code.
PLATFORM_QUEUE = "platform"
GPU_QUEUE = "gpu"
TASK_EXECUTE_JOB = "gpu.execute_job"
TASK_RECORD_RESULT = "platform.record_result"
TASK_RECORD_METRICS = "platform.record_metrics"
TASK_RECORD_HEARTBEAT = "platform.record_heartbeat"

# Each job has a control queue on the broker: the platform posts "go", "stop" or "cancel"
# there and the worker running the job polls it between steps. It works on every kombu
# transport (Redis, the filesystem queue) and needs no database on the GPU side.
CONTROL_GO = "go"
CONTROL_STOP = "stop"  # this attempt is stale or the job is finished: stop, report nothing
CONTROL_CANCEL = "cancel"  # a user cancelled: stop at the next step and report cancelled
CONTROL_ACTIONS = (CONTROL_GO, CONTROL_STOP, CONTROL_CANCEL)


def control_queue_name(job_id: int) -> str:
    return f"podium.control.{job_id}"


_T = TypeVar("_T")


OUTCOMES = ("succeeded", "failed", "cancelled")


class SpecError(ValueError):
    """A message that does not match its schema; the message names the field."""


def _check_value(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(value, option, where)
            except SpecError as error:
                errors.append(str(error))
        raise SpecError(errors[0] if errors else f"{where}: unexpected {value!r}")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise SpecError(f"{where}: expected an object, got {type(value).__name__}")
        return _from_mapping(hint, value, where)
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise SpecError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_check_value(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise SpecError(f"{where}: expected an object, got {type(value).__name__}")
        return {
            _check_value(k, key_hint, f"{where} key"): _check_value(v, value_hint, f"{where}.{k}")
            for k, v in value.items()
        }
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(hint, type):
        if not isinstance(value, hint):
            raise SpecError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
        return value
    raise SpecError(f"{where}: unsupported type {hint!r}")  # pragma: no cover - schema bug


def _from_mapping(cls: type[_T], data: Mapping[str, Any], where: str) -> _T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec_field in fields.items():
        path = f"{where}.{name}" if where else name
        if name not in data:
            if (
                spec_field.default is dataclasses.MISSING
                and spec_field.default_factory is dataclasses.MISSING
            ):
                raise SpecError(f"{path}: missing")
            continue
        values[name] = _check_value(data[name], hints[name], path)
    return cls(**values)


class Message:
    """JSON round-trip for the message dataclasses, with schema checks on the way in."""

    KIND: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        return typing.cast(dict[str, Any], _jsonable(data))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            raise SpecError(f"{cls.KIND}: expected an object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SpecError(
                f"{cls.KIND}.schema_version: {version!r} is not supported "
                f"(this side speaks {SCHEMA_VERSION})"
            )
        return _from_mapping(cls, data, cls.KIND)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, kw_only=True)
class BackboneRef:
    key: str
    source: str  # "hub" | "local" | "package"
    hub_id: str = ""
    revision: str = ""
    local_path: str = ""
    package: str = ""


@dataclass(frozen=True, kw_only=True)
class TaskRef:
    benchmark: str
    key: str
    version: int


@dataclass(frozen=True, kw_only=True)
class Resources:
    gpus: int = 0
    memory_gb: float = 0.0


@dataclass(frozen=True, kw_only=True)
class JobSpec(Message):
    """What a GPU worker needs to execute one run: nothing refers to the database."""

    KIND: ClassVar[str] = "job_spec"

    job_id: int
    attempt: int
    run_uuid: str
    method: str
    config: dict[str, Any]
    seed: int
    backbone: BackboneRef
    task: TaskRef
    resources: Resources = field(default_factory=Resources)
    time_limit_s: int = 6 * 3600
    # Split to evaluate on; "" means the task's official evaluation split.
    eval_split: str = ""
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, kw_only=True)
class MetricPointMessage:
    key: str
    step: int
    value: float
    time: float  # seconds since the epoch, on the worker's clock


@dataclass(frozen=True, kw_only=True)
class MetricBatch(Message):
    KIND: ClassVar[str] = "metric_batch"

    job_id: int
    attempt: int
    points: tuple[MetricPointMessage, ...]
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, kw_only=True)
class Heartbeat(Message):
    KIND: ClassVar[str] = "heartbeat"

    job_id: int
    attempt: int
    worker: str
    # The first heartbeat of an attempt claims the job; the platform answers go or stop.
    claim: bool = False
    step: int = 0
    total_steps: int = 0
    examples_per_second: float = 0.0
    log_tail: str = ""
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, kw_only=True)
class ControlMessage(Message):
    KIND: ClassVar[str] = "control"

    job_id: int
    attempt: int
    action: str
    reason: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.action not in CONTROL_ACTIONS:
            raise SpecError(f"control.action: {self.action!r} is not one of {CONTROL_ACTIONS}")


@dataclass(frozen=True, kw_only=True)
class ArtifactRef:
    name: str
    kind: str
    uri: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class InlineArtifact:
    """A small artifact (predictions, a log tail) carried inside the result message."""

    name: str
    kind: str
    content: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class Provenance:
    code_version: str
    packages: dict[str, str]
    hardware: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class JobResult(Message):
    KIND: ClassVar[str] = "job_result"

    job_id: int
    attempt: int
    outcome: str  # one of OUTCOMES
    scores: dict[str, float] = field(default_factory=dict)
    # Scores beyond the task's metrics, e.g. DyLoRA's score at each evaluated rank.
    extra_scores: dict[str, float] = field(default_factory=dict)
    system: dict[str, float] = field(default_factory=dict)
    provenance: Provenance | None = None
    artifacts: tuple[ArtifactRef, ...] = ()
    inline_artifacts: tuple[InlineArtifact, ...] = ()
    error: str = ""
    log_tail: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise SpecError(f"job_result.outcome: {self.outcome!r} is not one of {OUTCOMES}")


# --- Signed worker messages -------------------------------------------------------------
# Results, metric batches and heartbeats (claims included) go from GPU workers to the
# platform through the broker. Each travels in an envelope with an HMAC-SHA256 over a
# canonical JSON encoding of its kind and body, keyed by PODIUM_WORKER_KEY on both sides.
# There is no timestamp: attempt fencing already makes a replayed message a no-op, and a
# freshness window would drop genuine results delayed by a broker outage.

WORKER_KEY_ENV = "PODIUM_WORKER_KEY"
# Development and test default on both sides, so the embedded demo needs no setup;
# production refuses to start with it.
DEV_WORKER_KEY = "podium-development-worker-key-never-used-in-production"
ENVELOPE_FIELDS = frozenset({"kind", "key_id", "message", "signature"})

_Msg = TypeVar("_Msg", bound=Message)


class SignatureError(ValueError):
    """A worker message that is unsigned, or whose signature does not verify."""


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, ASCII only.

    Floats keep Python's shortest round-trip form, so a value decoded from the broker's
    JSON encodes to the same bytes the sender signed.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def worker_key_id(key: str) -> str:
    """A short fingerprint of a key, safe to log: it tells a key mismatch from a forgery."""
    return hashlib.sha256(b"podium-worker-key-id:" + key.encode()).hexdigest()[:12]


def _signature(*, kind: str, key_id: str, message: Mapping[str, Any], key: str) -> str:
    signed = canonical_json({"kind": kind, "key_id": key_id, "message": message})
    return hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(*, kind: str, payload: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The envelope of a message body as sent to the platform (see `sign_message`)."""
    if not key:
        raise SignatureError(f"{kind}: no worker key to sign with ({WORKER_KEY_ENV})")
    key_id = worker_key_id(key)
    message = dict(payload)
    return {
        "kind": kind,
        "key_id": key_id,
        "message": message,
        "signature": _signature(kind=kind, key_id=key_id, message=message, key=key),
    }


def sign_message(message: Message, *, key: str) -> dict[str, Any]:
    """A worker message wrapped with its kind and its HMAC-SHA256 under `key`."""
    return sign_payload(kind=message.KIND, payload=message.to_dict(), key=key)


def envelope_job_id(envelope: object) -> int | None:
    """The job a (possibly refused) message names, for logging; None when there is none."""
    if not isinstance(envelope, Mapping):
        return None
    body = envelope.get("message", envelope)
    job_id = body.get("job_id") if isinstance(body, Mapping) else None
    return job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None


def verify_message(kind: type[_Msg], envelope: object, *, key: str) -> _Msg:
    """The message inside a signed envelope, once its signature and its schema check out.

    Raises SignatureError for an unsigned, forged or altered message (or one signed with
    another key), SpecError for a signed body that does not match its schema.
    """
    if not isinstance(envelope, Mapping) or "signature" not in envelope:
        raise SignatureError(f"{kind.KIND}: unsigned message")
    if set(envelope) != ENVELOPE_FIELDS:
        extra = ", ".join(sorted(str(name) for name in set(envelope) ^ ENVELOPE_FIELDS))
        raise SignatureError(f"{kind.KIND}: malformed envelope (fields {extra})")
    sent_kind, key_id = envelope["kind"], envelope["key_id"]
    message, signature = envelope["message"], envelope["signature"]
    if sent_kind != kind.KIND:
        raise SignatureError(f"{kind.KIND}: the envelope holds a {sent_kind!r} message")
    if not (isinstance(key_id, str) and isinstance(signature, str)):
        raise SignatureError(f"{kind.KIND}: malformed envelope (key_id, signature)")
    if not isinstance(message, Mapping):
        raise SignatureError(f"{kind.KIND}: malformed envelope (message is not an object)")
    try:
        expected = _signature(kind=kind.KIND, key_id=key_id, message=message, key=key)
    except (TypeError, ValueError) as error:
        raise SignatureError(f"{kind.KIND}: the message is not plain JSON ({error})") from None
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        own = worker_key_id(key)
        if key_id != own:
            raise SignatureError(
                f"{kind.KIND}: signed with another key (key id {key_id!r}, this side has "
                f"{own!r}) or forged"
            )
        raise SignatureError(f"{kind.KIND}: the signature does not match (forged or altered)")
    return kind.from_dict(message)
