"""The registry lists every runner method with a usable schema and never loads torch."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from runners.registry import all_methods, get_method

RUNNER_METHODS = (
    "full_finetuning",
    "bitfit",
    "lora",
    "ia3",
    "prompt_tuning",
    "dylora",
    "mezo",
    "galore",
    "lm_eval",
)


def test_registry_import_does_not_load_heavy_stacks() -> None:
    code = (
        "import sys, json\n"
        "from runners.registry import all_methods\n"
        "methods = [m.key for m in all_methods()]\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'lm_eval', 'pytorch_optimizer')"
        " if m in sys.modules]\n"
        "print(json.dumps({'methods': methods, 'heavy': heavy}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert set(RUNNER_METHODS) <= set(report["methods"])


@pytest.mark.parametrize("key", RUNNER_METHODS)
def test_schema_is_valid_and_defaults_validate(key: str) -> None:
    method = get_method(key)
    jsonschema.Draft202012Validator.check_schema(method.schema)
    jsonschema.validate(method.defaults(), method.schema)
    assert method.paper_url.startswith("https://")
    assert method.task_types
    # Every property carries a default, so an empty config is a complete one.
    assert set(method.defaults()) == set(method.schema["properties"])


def test_gradient_methods_offer_the_optimizers() -> None:
    for key in ("full_finetuning", "bitfit", "lora", "ia3", "prompt_tuning", "dylora"):
        enum = get_method(key).schema["properties"]["optimizer"]["enum"]
        assert enum == ["adamw", "sophia", "soap"]


def test_all_methods_sorted_and_unique() -> None:
    keys = [m.key for m in all_methods()]
    assert keys == sorted(set(keys))
