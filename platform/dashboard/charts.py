"""Chart data for the dashboard: plain JSON figures that plotly.js (served by Podium) draws."""

from __future__ import annotations

from typing import Any

from tracking.models import MetricPoint, Run

# Curves longer than this are downsampled for display only; storage keeps every point.
MAX_POINTS_PER_CURVE = 2000


def run_curves_figure(*, run: Run) -> dict[str, Any]:
    """One line per metric key, steps on x; a plotly figure as a JSON-ready dict."""
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for key, step, value in (
        MetricPoint.objects.filter(run=run)
        .order_by("key", "step")
        .values_list("key", "step", "value")
    ):
        steps, values = curves.setdefault(key, ([], []))
        steps.append(step)
        values.append(value)
    traces = []
    for key, (steps, values) in curves.items():
        stride = max(1, len(steps) // MAX_POINTS_PER_CURVE)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(steps) < 50 else "lines",
                "name": key,
                "x": steps[::stride],
                "y": values[::stride],
                # Loss-like curves share the left axis; everything else its own scale on the right.
                "yaxis": "y" if "loss" in key else "y2",
            }
        )
    return {
        "data": traces,
        "layout": {
            "margin": {"t": 10, "r": 60, "b": 40, "l": 60},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": "loss"}},
            "yaxis2": {"overlaying": "y", "side": "right", "showgrid": False},
            "legend": {"orientation": "h"},
        },
    }
