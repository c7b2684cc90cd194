"""Where a result came from: code version, package versions, hardware."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from runners.spec import Provenance

TRACKED_PACKAGES = (
    "podium",
    "numpy",
    "scipy",
    "torch",
    "transformers",
    "peft",
    "lm_eval",
    "datasets",
    "accelerate",
    "pytorch_optimizer",
    "celery",
)
REPO_ROOT = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """PODIUM_CODE_VERSION (set in images), else the git commit of this checkout."""
    if version := os.environ.get("PODIUM_CODE_VERSION"):
        return version
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"podium {_version('podium') or 'unknown'}"
    return f"{commit}{'+dirty' if dirty else ''}"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str]:
    return {name: v for name in TRACKED_PACKAGES if (v := _version(name)) is not None}


def hardware(*, distributed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """This machine; with `distributed` (world size, backend), or inside an initialised
    process group of several ranks, also how the job was spread over processes."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count() or 0,
    }
    with contextlib.suppress(ValueError, OSError, AttributeError):
        info["memory_gb"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        )
    # Only describe the GPU if the method already loaded torch: never import it here.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
        info["cuda"] = torch.version.cuda
    if distributed is None and torch is not None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            distributed = {"world_size": dist.get_world_size(), "backend": dist.get_backend()}
    if distributed is not None:
        info["distributed"] = {
            "world_size": int(distributed["world_size"]),
            "backend": str(distributed["backend"]),
        }
    return info


def collect(*, distributed: Mapping[str, Any] | None = None) -> Provenance:
    return Provenance(
        code_version=code_version(),
        packages=package_versions(),
        hardware=hardware(distributed=distributed),
    )
