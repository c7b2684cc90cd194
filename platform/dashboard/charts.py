"""Chart figures for the dashboard: plain JSON-ready dicts that plotly.js (served by Podium)
draws. Pages embed them with `json_script`, so no figure is ever written into a script raw.

plotly renders a subset of HTML inside labels (<b>, <br>, <a href>, entities), so every
user-provided string that becomes a label goes through `plot_text` and shows literally.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Curves longer than this are downsampled for display only; storage keeps every point.
MAX_POINTS_PER_CURVE = 2000

Curve = tuple[list[int], list[float]]

PALETTE = (
    "#2f5bd3",
    "#d9730d",
    "#2e8540",
    "#c0392b",
    "#7d4cdb",
    "#8c564b",
    "#d6409f",
    "#5b6475",
    "#b5a300",
    "#1a9ba8",
)


def plot_text(text: str) -> str:
    """A user string as plotly shows it literally (its label markup is HTML-like)."""
    return html.escape(text, quote=False)


def _line_mode(points: int) -> str:
    return "lines+markers" if points < 50 else "lines"


def curves_figure(*, curves: Mapping[str, Curve]) -> dict[str, Any]:
    """One small chart per metric key, stacked on a shared step axis: a learning rate and a
    loss never squash each other."""
    keys = sorted(curves, key=lambda k: ("loss" not in k, k))
    rows = max(1, len(keys))
    traces = []
    layout: dict[str, Any] = {
        "margin": {"t": 10, "r": 20, "b": 40, "l": 70},
        "showlegend": False,
        "height": 60 + 190 * rows,
        "grid": {"rows": rows, "columns": 1, "pattern": "independent", "ygap": 0.12},
    }
    for index, key in enumerate(keys, start=1):
        steps, values = curves[key]
        suffix = "" if index == 1 else str(index)
        traces.append(
            {
                "type": "scatter",
                "mode": _line_mode(len(steps)),
                "name": plot_text(key),
                "x": steps,
                "y": values,
                "xaxis": f"x{suffix}",
                "yaxis": f"y{suffix}",
                "line": {"color": PALETTE[(index - 1) % len(PALETTE)]},
                "hovertemplate": "step %{x}: %{y:.4~g}<extra>%{fullData.name}</extra>",
            }
        )
        layout[f"xaxis{suffix}"] = {
            "showticklabels": index == rows,
            "title": {"text": "step" if index == rows else ""},
            **({"matches": "x"} if index > 1 else {}),
        }
        layout[f"yaxis{suffix}"] = {"title": {"text": plot_text(key)}, "automargin": True}
    return {"data": traces, "layout": layout}


def compare_curves_figures(
    *, labels: Mapping[int, str], curves: Mapping[int, Mapping[str, Curve]]
) -> list[tuple[str, dict[str, Any]]]:
    """One figure per metric key, each run an overlaid line; (key, figure) pairs by key."""
    keys = sorted({key for per_run in curves.values() for key in per_run})
    figures = []
    for key in keys:
        traces = []
        for index, (run_id, label) in enumerate(labels.items()):
            curve = curves.get(run_id, {}).get(key)
            if curve is None:
                continue
            steps, values = curve
            traces.append(
                {
                    "type": "scatter",
                    "mode": _line_mode(len(steps)),
                    "name": plot_text(label),
                    "x": steps,
                    "y": values,
                    "line": {"color": PALETTE[index % len(PALETTE)]},
                }
            )
        figures.append(
            (
                key,
                {
                    "data": traces,
                    "layout": {
                        "margin": {"t": 10, "r": 20, "b": 40, "l": 60},
                        "xaxis": {"title": {"text": "step"}},
                        "yaxis": {"title": {"text": plot_text(key)}, "automargin": True},
                        "legend": {"orientation": "h", "y": -0.25},
                        "height": 340 + 20 * len(traces),
                    },
                },
            )
        )
    return figures


def bump_chart(
    *, rules: Sequence[str], systems: Sequence[str], ranks: Mapping[str, Mapping[str, int]]
) -> dict[str, Any]:
    """How each system's rank moves across rules: rules on x, rank on a reversed y."""
    traces = []
    for index, system in enumerate(systems):
        xs = [rule for rule in rules if system in ranks.get(rule, {})]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": plot_text(system),
                "x": xs,
                "y": [ranks[rule][system] for rule in xs],
                "line": {"color": PALETTE[index % len(PALETTE)], "width": 2},
                "marker": {"size": 9},
                "hovertemplate": "%{x}: rank %{y}<extra>%{fullData.name}</extra>",
            }
        )
    top = max((r for per_rule in ranks.values() for r in per_rule.values()), default=1)
    return {
        "data": traces,
        "layout": {
            "margin": {"t": 10, "r": 20, "b": 90, "l": 50},
            "xaxis": {"type": "category", "tickangle": -35},
            "yaxis": {
                "title": {"text": "rank"},
                "autorange": "reversed",
                "dtick": 1,
                "range": [top + 0.5, 0.5],
            },
            "legend": {"orientation": "h", "y": -0.45},
            "height": max(380, 260 + 22 * math.ceil(len(systems) / 2)),
        },
    }


def agreement_heatmap(
    *, rules: Sequence[str], tau: Sequence[Sequence[float | None]]
) -> dict[str, Any]:
    """Kendall tau-b between every pair of rules' rankings (1 = same order)."""
    text = [["—" if v is None else f"{v:.2f}" for v in row] for row in tau]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": list(rules),
                "y": list(rules),
                "z": [list(row) for row in tau],
                "text": text,
                "texttemplate": "%{text}",
                "zmin": -1,
                "zmax": 1,
                "colorscale": "RdBu",
                "reversescale": True,
                "colorbar": {"title": {"text": "τ-b"}},
                "hovertemplate": "%{y} vs %{x}: τ-b %{text}<extra></extra>",
            }
        ],
        "layout": {
            "margin": {"t": 10, "r": 10, "b": 110, "l": 110},
            "xaxis": {"tickangle": -45},
            "yaxis": {"autorange": "reversed"},
            "height": max(380, 140 + 26 * len(rules)),
        },
    }


@dataclass(frozen=True, kw_only=True)
class ScatterPoint:
    label: str
    cost: float
    score: float
    on_front: bool


def short_label(label: str) -> str:
    """A system label without its config hash, for labels drawn next to points."""
    return label.rsplit(" · ", 1)[0] if label.count(" · ") >= 2 else label


def efficiency_figure(
    *, points: Sequence[ScatterPoint], cost_label: str, log_x: bool
) -> dict[str, Any]:
    """Score against a cost, with the Pareto front (cheapest for its score) drawn as a step."""
    front = sorted((p for p in points if p.on_front), key=lambda p: p.cost)
    others = [p for p in points if not p.on_front]
    # Labels of the costlier half point left so that they stay inside the chart.
    by_cost = sorted(points, key=lambda p: p.cost)
    costly = {id(p) for p in by_cost[(len(by_cost) + 1) // 2 :]}

    def trace(group: Sequence[ScatterPoint], name: str, color: str) -> dict[str, Any]:
        return {
            "type": "scatter",
            "mode": "markers+text",
            "name": name,
            "x": [p.cost for p in group],
            "y": [p.score for p in group],
            "text": [plot_text(short_label(p.label)) for p in group],
            "textposition": ["top left" if id(p) in costly else "top right" for p in group],
            "textfont": {"size": 11, "color": "#5b6475"},
            "cliponaxis": False,
            "customdata": [plot_text(p.label) for p in group],
            "marker": {"size": 11, "color": color},
            "hovertemplate": "%{customdata}<br>%{x:.3~s}, score %{y:.2f}<extra></extra>",
        }

    data = [trace(others, "dominated", "#9aa3b2"), trace(front, "Pareto front", "#2f5bd3")]
    if len(front) > 1:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "front",
                "x": [p.cost for p in front],
                "y": [p.score for p in front],
                "line": {"shape": "hv", "color": "#2f5bd3", "dash": "dot"},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    return {
        "data": data,
        "layout": {
            "margin": {"t": 30, "r": 20, "b": 50, "l": 60},
            "xaxis": {"title": {"text": cost_label}, "type": "log" if log_x else "linear"},
            "yaxis": {"title": {"text": "score"}, "automargin": True},
            "legend": {"orientation": "h", "y": -0.25},
            "height": 360,
        },
    }
