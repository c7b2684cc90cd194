"""The dashboard's forms: submitting scores of a run made elsewhere."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.validators import validate_slug

from catalog.models import Backbone, Method, Task
from tracking.models import Visibility

BIGINT = 2**63 - 1
MAX_TAGS = 50


class TaskChoiceForm(forms.Form):
    """Step one: the task, whose metrics decide the score fields of step two."""

    task = forms.ModelChoiceField(
        queryset=Task.objects.filter(is_current=True)
        .select_related("benchmark")
        .order_by("benchmark__key", "key"),
        empty_label="Choose a task",
    )


class ExternalRunForm(forms.Form):
    """Scores of one run (one seed) on one task, recorded as self-reported."""

    method = forms.ModelChoiceField(queryset=Method.objects.order_by("name"))
    backbone = forms.ModelChoiceField(queryset=Backbone.objects.order_by("name"))
    seed = forms.IntegerField(min_value=-BIGINT - 1, max_value=BIGINT, initial=0)
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        initial="{}",
        help_text='Hyperparameters as a JSON object, seed excluded, e.g. {"learning_rate": 2e-5}.',
    )
    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PUBLIC)
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. lora, ablation.")
    description = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, task: Task, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task = task
        self.metric_fields: list[tuple[str, str]] = []  # (metric key, field name)
        for metric in sorted(task.metrics.all(), key=lambda m: m.position):
            name = f"score_{metric.key}"
            direction = "higher" if metric.higher_is_better else "lower"
            self.fields[name] = forms.FloatField(
                label=f"{metric.name} ({metric.key})",
                help_text=f"On the 0-1 scale; {direction} is better.",
            )
            self.metric_fields.append((metric.key, name))

    def clean_config(self) -> dict[str, Any]:
        try:
            config = json.loads(self.cleaned_data["config"] or "{}")
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"Not valid JSON: {error.msg} (line {error.lineno})."
            ) from None
        if not isinstance(config, dict):
            raise forms.ValidationError('Give a JSON object, e.g. {} or {"lr": 0.001}.')
        return config

    def clean_tags(self) -> list[str]:
        tags = [t.strip().lower() for t in self.cleaned_data["tags"].split(",") if t.strip()]
        if len(tags) > MAX_TAGS:
            raise forms.ValidationError(f"At most {MAX_TAGS} tags.")
        for tag in tags:
            if len(tag) > 64:
                raise forms.ValidationError(f"{tag[:20]}...: a tag has at most 64 characters.")
            validate_slug(tag)
        return tags

    def scores(self) -> dict[str, float]:
        return {key: self.cleaned_data[name] for key, name in self.metric_fields}

    def field_for(self, message: str) -> str | None:
        """The form field a service error message is about ("scores.f1: ..." -> score_f1)."""
        head = message.split(":", 1)[0].strip()
        if head.startswith("scores."):
            name = f"score_{head.removeprefix('scores.')}"
            return name if name in self.fields else None
        return head if head in self.fields else None
