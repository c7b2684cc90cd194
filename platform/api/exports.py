"""Leaderboards as files: CSV for spreadsheets and scripts, LaTeX (booktabs) for papers.

Both are built from an ExportTable, which the suite board, the task board and a frozen
snapshot each convert to, so every export of every board has the same layout.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


@dataclass(frozen=True, kw_only=True)
class ExportCell:
    mean: float
    std: float | None
    count: int


@dataclass(frozen=True, kw_only=True)
class ExportColumn:
    task: str  # "benchmark/key"
    label: str  # the LaTeX header: the task's name, or the metric's on a task board
    metric: str
    higher_is_better: bool


@dataclass(frozen=True, kw_only=True)
class ExportRow:
    rank: int | None
    system: str
    method: str
    backbone: str
    config_hash: str
    score: float | None  # the official (suite) or task score, 0-100
    rule_score: float | None
    cells: tuple[ExportCell | None, ...]


@dataclass(frozen=True, kw_only=True)
class ExportTable:
    title: str
    rule: str
    score_name: str  # "" where the board has no official or task score
    columns: tuple[ExportColumn, ...]
    rows: tuple[ExportRow, ...]

    @property
    def ranked_by_rule(self) -> bool:
        return self.rule != "official"


def competition_ranks(values: Sequence[float | None]) -> list[int | None]:
    """Ranks "1224" for scores where higher is better; None for a missing score."""
    present = sorted((v for v in values if v is not None and not math.isnan(v)), reverse=True)
    return [
        None if v is None or math.isnan(v) else 1 + sum(1 for other in present if other > v)
        for v in values
    ]


def _cell(value: Any) -> ExportCell | None:
    if not value:
        return None
    return ExportCell(mean=float(value["mean"]), std=value.get("std"), count=int(value["count"]))


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def table_from_board(
    data: dict[str, Any], *, title: str, score_name: str, columns_are_metrics: bool = False
) -> ExportTable:
    """A suite or task board in the API's JSON shape (LeaderboardSerializer and
    TaskLeaderboardSerializer) as an ExportTable; a task board's columns are its metrics."""
    return ExportTable(
        title=title,
        rule=data["rule"],
        score_name=score_name,
        columns=tuple(
            ExportColumn(
                task=c["task"],
                label=c["metric_name"] if columns_are_metrics else c["task_name"],
                metric=c["metric"],
                higher_is_better=bool(c["higher_is_better"]),
            )
            for c in data["columns"]
        ),
        rows=tuple(
            ExportRow(
                rank=row["rank"],
                system=row["system"],
                method=row["method"],
                backbone=row["backbone"],
                config_hash=row["config_hash"],
                score=_number(
                    (row.get("official") or {}).get("value")
                    if "official" in row
                    else row.get("task_score")
                ),
                rule_score=_number(row["rule_score"]),
                cells=tuple(_cell(cell) for cell in row["cells"]),
            )
            for row in data["rows"]
        ),
    )


def table_from_snapshot(content: dict[str, Any], *, title: str) -> ExportTable:
    """A frozen snapshot's stored content as an ExportTable. Under the official rule the
    stored rows carry no rank; they are ranked by their official score, as the API does."""
    officials = [_number(row.get("official")) for row in content["rows"]]
    has_official = any(value is not None for value in officials)
    ranks = (
        competition_ranks(officials)
        if content["rule"] == "official"
        else [row.get("rank") for row in content["rows"]]
    )
    return ExportTable(
        title=title,
        rule=content["rule"],
        score_name="Official score" if has_official else "",
        columns=tuple(
            ExportColumn(
                task=c["task"],
                label=c.get("task_name") or c["task"],
                metric=c["metric"],
                higher_is_better=bool(c["higher_is_better"]),
            )
            for c in content["columns"]
        ),
        rows=tuple(
            ExportRow(
                rank=rank,
                system=row["system"],
                method=row["method"],
                backbone=row["backbone"],
                config_hash="",
                score=official,
                rule_score=_number(row.get("rule_score")),
                cells=tuple(_cell(cell) for cell in row["cells"]),
            )
            for row, official, rank in zip(content["rows"], officials, ranks, strict=True)
        ),
    )


# --- CSV -----------------------------------------------------------------------------------


def csv_safe(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, quoted with a leading apostrophe;
    numbers are written by Podium itself and stay numbers."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def _plain(value: float | None) -> str | float:
    return "" if value is None else value


def to_csv(table: ExportTable) -> str:
    """One row per system: rank, who it is, its scores, then mean and std per column."""
    header: list[str] = ["rank", "system", "method", "backbone", "config_hash"]
    if table.score_name:
        header.append(table.score_name)
    if table.ranked_by_rule:
        header.append(f"{table.rule} score")
    for column in table.columns:
        name = f"{column.task} {column.metric}"
        header += [name, f"{name} std", f"{name} seeds"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(h) for h in header])
    for row in table.rows:
        line: list[object] = [
            "" if row.rank is None else row.rank,
            row.system,
            row.method,
            row.backbone,
            row.config_hash,
        ]
        if table.score_name:
            line.append(_plain(row.score))
        if table.ranked_by_rule:
            line.append(_plain(row.rule_score))
        for cell in row.cells:
            line += ["", "", ""] if cell is None else [cell.mean, _plain(cell.std), cell.count]
        writer.writerow([csv_safe(value) for value in line])
    return out.getvalue()


# --- LaTeX ---------------------------------------------------------------------------------


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in text)


def _best(values: Sequence[str | None], *, higher_is_better: bool) -> set[int]:
    """Indexes of the best value as printed (ties at the printed precision all count)."""
    present = [(float(v), i) for i, v in enumerate(values) if v is not None]
    if not present:
        return set()
    target = max(v for v, _ in present) if higher_is_better else min(v for v, _ in present)
    return {i for v, i in present if v == target}


def _column_cells(
    values: Sequence[float | None], *, digits: int, higher_is_better: bool
) -> list[str]:
    printed = [None if v is None else f"{v:.{digits}f}" for v in values]
    best = _best(printed, higher_is_better=higher_is_better)
    return [
        "--" if text is None else (rf"\textbf{{{text}}}" if i in best else text)
        for i, text in enumerate(printed)
    ]


def to_latex(table: ExportTable) -> str:
    """A booktabs table: rank, system, the board's score, then each column's seed mean;
    the best value of each numeric column in bold."""
    headers = ["Rank", "System"]
    columns: list[list[str]] = []
    if table.score_name:
        headers.append(latex_escape(table.score_name))
        columns.append(
            _column_cells([r.score for r in table.rows], digits=1, higher_is_better=True)
        )
    if table.ranked_by_rule:
        headers.append(latex_escape(f"{table.rule} score"))
        columns.append(
            _column_cells([r.rule_score for r in table.rows], digits=3, higher_is_better=True)
        )
    for index, column in enumerate(table.columns):
        arrow = r"$\uparrow$" if column.higher_is_better else r"$\downarrow$"
        headers.append(f"{latex_escape(column.label)} {arrow}")
        means = [None if r.cells[index] is None else r.cells[index].mean for r in table.rows]  # type: ignore[union-attr]
        columns.append(_column_cells(means, digits=3, higher_is_better=column.higher_is_better))
    spec = "rl" + "r" * len(columns)
    lines = [
        "% Generated by Podium. Needs \\usepackage{booktabs}.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(headers) + r" \\",
        r"\midrule",
    ]
    for position, row in enumerate(table.rows):
        cells = ["--" if row.rank is None else str(row.rank), latex_escape(row.system)]
        cells += [column[position] for column in columns]
        lines.append(" & ".join(cells) + r" \\")
    rule = "official score" if not table.ranked_by_rule else f"rule {table.rule}"
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{latex_escape(table.title)}; ranked by {latex_escape(rule)}. "
        r"Task columns: mean over seeds.}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
