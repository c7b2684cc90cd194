"""The layout rules of DEVELOPERS.md, checked on the source tree itself."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = [ROOT, ROOT / "platform"]
SKIP_DIRS = {".venv", ".git", "node_modules", "var", "staticfiles", "__pycache__", ".ci"}


def top_level_import_names() -> set[str]:
    """Names importable from the source roots: packages and loose modules."""
    names: set[str] = set()
    for root in SOURCE_ROOTS:
        for entry in root.iterdir():
            if entry.name.startswith(".") or entry.name in SKIP_DIRS or entry.name == "platform":
                continue
            if entry.is_dir() and (entry / "__init__.py").exists():
                names.add(entry.name)
            elif entry.suffix == ".py":
                names.add(entry.stem)
    return names


def test_no_top_level_import_name_shadows_the_standard_library() -> None:
    names = top_level_import_names()
    assert {"config", "leaderboard", "runners", "gpu_worker"} <= names
    shadowing = sorted(names & sys.stdlib_module_names)
    assert not shadowing, f"these shadow standard-library modules: {shadowing}"


def test_platform_is_a_source_root_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert not list((ROOT / "platform").glob("*.py")), "platform/ holds packages only"
    import platform

    assert platform.__file__ is not None
    assert Path(platform.__file__).parent != ROOT / "platform"
    assert callable(platform.python_version)


def python_files(*parts: str) -> Iterator[Path]:
    for part in parts:
        base = ROOT / part
        for path in base.rglob("*.py"):
            if not SKIP_DIRS & set(path.relative_to(ROOT).parts):
                yield path


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


WEB_PACKAGES = ("config", "catalog", "tracking", "dashboard", "api", "accounts")


@pytest.mark.parametrize(
    ("parts", "forbidden"),
    [
        (("leaderboard",), {"django", "rest_framework", "torch", "transformers", "peft"}),
        (("runners", "gpu_worker"), {"django", "rest_framework", *WEB_PACKAGES}),
        (
            tuple(f"platform/{p}" for p in WEB_PACKAGES),
            {"torch", "transformers", "peft", "lm_eval"},
        ),
        # The client is the bare install: no Django, no platform code, no training stack
        # (its Trainer callback imports transformers lazily, by design).
        (
            ("platform/podium",),
            {"django", "rest_framework", "runners", "torch", "peft", "lm_eval", *WEB_PACKAGES},
        ),
    ],
)
def test_package_boundaries(parts: tuple[str, ...], forbidden: set[str]) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & forbidden)
        for path in python_files(*parts)
        if imported_roots(path) & forbidden
    }
    assert not offenders, f"forbidden imports: {offenders}"


def test_job_contract_is_standard_library_only() -> None:
    roots = imported_roots(ROOT / "runners" / "spec.py")
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots
