"""The method registry: every training or evaluation method registers itself here.

Method modules must not import torch (or any heavy stack) at module level: the web side
reads this registry for names and hyperparameter schemas, and must never load torch. The
heavy work is imported inside each method's `run`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runners.context import JobContext, MethodOutput

MethodRun = Callable[["JobContext"], "MethodOutput"]

# Modules whose import registers methods; each keeps torch out of its top level.
METHOD_MODULES: tuple[str, ...] = (
    "runners.methods.baselines",
    "runners.methods.finetuning",
    "runners.methods.decoder_eval",
)


@dataclass(frozen=True, kw_only=True)
class MethodInfo:
    key: str
    name: str
    description: str
    paper_url: str
    # JSON schema of the hyperparameters (an object schema; the seed is never one of them).
    schema: Mapping[str, Any]
    task_types: frozenset[str]
    run: MethodRun = field(repr=False)

    def defaults(self) -> dict[str, Any]:
        properties = self.schema.get("properties", {})
        return {k: v["default"] for k, v in properties.items() if "default" in v}


class UnknownMethod(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


_METHODS: dict[str, MethodInfo] = {}
_loaded = False


def register_method(
    *,
    key: str,
    name: str,
    schema: Mapping[str, Any],
    task_types: frozenset[str] | set[str],
    description: str = "",
    paper_url: str = "",
) -> Callable[[MethodRun], MethodRun]:
    def decorator(run: MethodRun) -> MethodRun:
        if key in _METHODS and _METHODS[key].run is not run:
            raise ValueError(f"method {key!r} is registered twice")
        if schema.get("type") != "object":
            raise ValueError(f"method {key!r}: its schema must describe an object")
        _METHODS[key] = MethodInfo(
            key=key,
            name=name,
            description=description or (run.__doc__ or "").strip(),
            paper_url=paper_url,
            schema=schema,
            task_types=frozenset(task_types),
            run=run,
        )
        return run

    return decorator


def _plugin_modules() -> tuple[str, ...]:
    """Extra method modules named in PODIUM_METHOD_MODULES (comma-separated), for methods
    that live outside this repository."""
    raw = os.environ.get("PODIUM_METHOD_MODULES", "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in (*METHOD_MODULES, *_plugin_modules()):
            importlib.import_module(module)
        _loaded = True


def get_method(key: str) -> MethodInfo:
    _load()
    try:
        return _METHODS[key]
    except KeyError:
        raise UnknownMethod(
            f"unknown method {key!r}; known: {', '.join(sorted(_METHODS))}"
        ) from None


def all_methods() -> tuple[MethodInfo, ...]:
    _load()
    return tuple(_METHODS[k] for k in sorted(_METHODS))
