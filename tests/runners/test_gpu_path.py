"""The runners' GPU path: batch shapes, attention kernels, and (on a CUDA device) a real run.

The first tests need no GPU: they check what the runner asks of torch on one. The tests
marked `gpu` run only where CUDA is present (skipped elsewhere, see tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from leaderboard.catalog import get_task  # noqa: E402
from runners.execute import execute  # noqa: E402
from runners.reporting import CollectingReporter  # noqa: E402
from runners.spec import BackboneRef, JobSpec, TaskRef  # noqa: E402
from runners.testing import build_tiny_encoder  # noqa: E402
from runners.training.encoding import PAD_MULTIPLE, batch_width  # noqa: E402
from runners.training.modeling import attention_kernels  # noqa: E402

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def _enabled_kernels() -> dict[str, bool]:
    backends = torch.backends.cuda
    return {
        "flash": backends.flash_sdp_enabled(),
        "efficient": backends.mem_efficient_sdp_enabled(),
        "math": backends.math_sdp_enabled(),
        "cudnn": backends.cudnn_sdp_enabled(),
    }


def test_gpu_batches_pad_to_a_step_of_eight_and_cpu_batches_not_at_all() -> None:
    assert PAD_MULTIPLE == 8
    assert [batch_width(n, device=CUDA) for n in (1, 8, 9, 13, 16, 127)] == [8, 8, 16, 16, 16, 128]
    assert [batch_width(n, device=CPU) for n in (1, 9, 13, 127)] == [1, 9, 13, 127]


def test_gpu_forward_passes_avoid_cudnn_attention_which_plans_per_shape() -> None:
    before = _enabled_kernels()
    with attention_kernels(CUDA):
        assert _enabled_kernels() == {
            "flash": True,
            "efficient": True,
            "math": True,
            "cudnn": False,
        }
    assert _enabled_kernels() == before


def test_double_backward_steps_use_the_twice_differentiable_math_kernel() -> None:
    with attention_kernels(CUDA, double_backward=True):
        assert _enabled_kernels() == {
            "flash": False,
            "efficient": False,
            "math": True,
            "cudnn": False,
        }


def test_cpu_leaves_torchs_kernel_choice_alone() -> None:
    before = _enabled_kernels()
    with attention_kernels(CPU, double_backward=True):
        assert _enabled_kernels() == before


def _run_on_gpu(tiny: Path, data_dir: Path, tmp_path: Path, **config: object) -> dict[str, float]:
    spec = JobSpec(
        job_id=1,
        attempt=1,
        run_uuid="gpu",
        method="full_finetuning",
        config={"epochs": 1, "max_train_examples": 64, "batch_size": 16, **config},
        seed=1,
        backbone=BackboneRef(key="tiny", source="local", local_path=str(tiny)),
        task=TaskRef(
            benchmark="glue", key="sst2", version=get_task(benchmark="glue", key="sst2").version
        ),
        eval_split="",
    )
    result = execute(spec, reporter=CollectingReporter(), workdir=tmp_path, data_dir=data_dir)
    assert result.outcome == "succeeded", result.error + result.log_tail
    assert 0.0 <= result.scores["accuracy"] <= 1.0
    return result.system


@pytest.mark.gpu
@pytest.mark.parametrize("optimizer", ["adamw", "sophia", "soap"])
def test_fine_tuning_runs_on_the_gpu(data_dir: Path, tmp_path: Path, optimizer: str) -> None:
    # Sophia's Hessian estimate is a double backward through attention, which cuDNN's
    # attention kernel (torch's choice on an H100) cannot differentiate.
    tiny = build_tiny_encoder(tmp_path / "tiny", texts=["a tiny corpus", "on a gpu"])
    system = _run_on_gpu(tiny, data_dir, tmp_path / "work", optimizer=optimizer)
    assert system["peak_train_accelerator_memory_mb"] > 0
