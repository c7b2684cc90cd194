"""A tiny BERT trained with transformers.Trainer + PodiumCallback against a live Podium: its
loss curve and eval scores are read back through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EvalPrediction,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)

from podium.config import Credentials
from podium.http import Api
from podium.integrations.transformers import PodiumCallback
from tests.client.conftest import Server
from tracking.models import Run, Score
from tracking.status import RunStatus

pytestmark = pytest.mark.django_db(transaction=True)

VOCABULARY = 40
LENGTH = 12
MARKER = 7  # a sentence is positive when it starts with this token


class Sentences(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, count: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(MARKER + 1, VOCABULARY, (count, LENGTH), generator=generator)
        self.labels = torch.arange(count) % 2
        for row in range(count):
            if self.labels[row]:
                self.ids[row, 0] = MARKER

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[index],
            "attention_mask": torch.ones(LENGTH, dtype=torch.long),
            "labels": self.labels[index],
        }


def accuracy(prediction: EvalPrediction) -> dict[str, float]:
    logits = torch.as_tensor(prediction.predictions)
    labels = torch.as_tensor(prediction.label_ids)
    return {"accuracy": float((logits.argmax(-1) == labels).float().mean())}


def test_a_trainer_run_is_tracked_with_its_loss_curve_and_scores(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script configures Podium through the environment, as on a training machine.
    monkeypatch.setenv("PODIUM_URL", server.url)
    monkeypatch.setenv("PODIUM_TOKEN", server.token)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCABULARY,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=LENGTH,
    )
    config.num_labels = 2
    model = BertForSequenceClassification(config)
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        num_train_epochs=3,
        learning_rate=5e-3,
        logging_steps=1,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=11,
        disable_tqdm=True,
    )
    callback = PodiumCallback(
        task="bench/sst", method="lora", backbone="minilm", flush_interval=0.2
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=Sentences(48, seed=1),
        eval_dataset=Sentences(16, seed=2),
        compute_metrics=accuracy,
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # keeps the test quiet
    trainer.train()

    assert callback.run is not None
    assert callback.run.finished
    uuid = callback.run.uuid
    assert uuid is not None
    logged = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == trainer.state.global_step == 18  # 48 examples / 8, three epochs

    api = Api(Credentials(url=server.url, token=server.token))
    page: dict[str, Any] = api.get(f"/api/v1/runs/{uuid}/metrics/", key="loss", limit="100")
    assert [(p["step"], p["value"]) for p in page["results"]] == logged
    assert page["next"] is None
    evaluated = [h for h in trainer.state.log_history if "eval_accuracy" in h]
    display = api.get(f"/api/v1/runs/{uuid}/metrics/", key="eval_accuracy", max_points="10")
    assert display["series"]["eval_accuracy"]["steps"] == [h["step"] for h in evaluated]

    run = Run.objects.get(uuid=uuid)
    assert run.status == RunStatus.SUCCEEDED
    assert run.seed == 11
    assert run.config["learning_rate"] == 5e-3
    scores = dict(Score.objects.filter(run=run).values_list("metric__key", "value"))
    assert scores == {
        "accuracy": evaluated[-1]["eval_accuracy"],
        "loss": evaluated[-1]["eval_loss"],
    }
    # The model learned the marker: the curve went down and the scores say so.
    assert logged[-1][1] < logged[0][1]
    assert scores["accuracy"] > 0.9
