"""Score tables: systems x tasks, per-task direction, CSV reading and input errors."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class RankingInputError(ValueError):
    """Bad input (names, cells, weights, options); the message says what to fix."""


@dataclass(frozen=True)
class ScoreTable:
    """Scores of ``systems`` (rows) on ``tasks`` (columns); NaN marks a missing score.

    ``higher_is_better[t]`` gives task t's direction. The matrix is copied and made
    read-only so that a table can be shared between rules and bootstrap replicates.
    """

    systems: tuple[str, ...]
    tasks: tuple[str, ...]
    scores: FloatArray
    higher_is_better: tuple[bool, ...] = field(default=())
    # Set from the matrix in __post_init__: no NaN anywhere.
    _complete: bool = field(default=True, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        systems = tuple(map(str, self.systems))
        tasks = tuple(map(str, self.tasks))
        matrix = np.array(self.scores, dtype=np.float64, copy=True)
        if matrix.ndim != 2 or matrix.shape != (len(systems), len(tasks)):
            raise RankingInputError(
                f"scores must be a {len(systems)}x{len(tasks)} matrix (systems x tasks), "
                f"got shape {matrix.shape}"
            )
        # Set sizes first: the loop that names the duplicate runs only when there is one.
        if len(set(systems)) != len(systems):
            _check_unique(systems, "system")
        if len(set(tasks)) != len(tasks):
            _check_unique(tasks, "task")
        if not systems:
            raise RankingInputError("the table has no systems")
        if not tasks:
            raise RankingInputError("the table has no tasks")
        finite = bool(np.isfinite(matrix).all())
        if not finite and np.isinf(matrix).any():
            raise RankingInputError("scores must be finite numbers or NaN (missing)")
        hib = tuple(map(bool, self.higher_is_better)) or (True,) * len(tasks)
        if len(hib) != len(tasks):
            raise RankingInputError(
                f"higher_is_better has {len(hib)} entries for {len(tasks)} tasks"
            )
        matrix.setflags(write=False)
        object.__setattr__(self, "systems", systems)
        object.__setattr__(self, "tasks", tasks)
        object.__setattr__(self, "scores", matrix)
        object.__setattr__(self, "higher_is_better", hib)
        object.__setattr__(self, "_complete", finite)

    @property
    def n_systems(self) -> int:
        return len(self.systems)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def has_missing(self) -> bool:
        return not self._complete

    def oriented(self) -> FloatArray:
        """Scores with lower-is-better tasks negated, so that higher is better everywhere.

        Read-only; when every task is higher-is-better it is the score matrix itself.
        """
        if all(self.higher_is_better):
            return self.scores
        sign = np.where(np.array(self.higher_is_better), 1.0, -1.0)
        out: FloatArray = self.scores * sign[None, :]
        out.setflags(write=False)
        return out

    def select(
        self,
        *,
        systems: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None,
    ) -> ScoreTable:
        """A sub-table with the given systems and tasks, in the given order."""
        sys_names = tuple(systems) if systems is not None else self.systems
        task_names = tuple(tasks) if tasks is not None else self.tasks
        rows = [self.system_index(s) for s in sys_names]
        cols = [self.task_index(t) for t in task_names]
        return ScoreTable(
            systems=sys_names,
            tasks=task_names,
            scores=self.scores[np.ix_(rows, cols)],
            higher_is_better=tuple(self.higher_is_better[c] for c in cols),
        )

    def with_scores(self, scores: FloatArray) -> ScoreTable:
        return ScoreTable(
            systems=self.systems,
            tasks=self.tasks,
            scores=scores,
            higher_is_better=self.higher_is_better,
        )

    def system_index(self, name: str) -> int:
        try:
            return self.systems.index(name)
        except ValueError:
            raise RankingInputError(f"unknown system {name!r}") from None

    def task_index(self, name: str) -> int:
        try:
            return self.tasks.index(name)
        except ValueError:
            known = ", ".join(self.tasks)
            raise RankingInputError(f"unknown task column {name!r} (known: {known})") from None

    @classmethod
    def from_rows(
        cls,
        rows: Mapping[str, Mapping[str, float | None]],
        *,
        tasks: Sequence[str] | None = None,
        lower_is_better: Iterable[str] = (),
    ) -> ScoreTable:
        """Build from ``{system: {task: score}}``; absent or None cells are missing."""
        task_names = tuple(tasks) if tasks is not None else _union_keys(rows.values())
        matrix = np.full((len(rows), len(task_names)), np.nan)
        for i, cells in enumerate(rows.values()):
            for j, task in enumerate(task_names):
                value = cells.get(task)
                if value is not None:
                    matrix[i, j] = float(value)
        return cls.build(
            systems=tuple(rows), tasks=task_names, scores=matrix, lower_is_better=lower_is_better
        )

    @classmethod
    def build(
        cls,
        *,
        systems: Sequence[str],
        tasks: Sequence[str],
        scores: npt.ArrayLike,
        lower_is_better: Iterable[str] = (),
    ) -> ScoreTable:
        lower = set(lower_is_better)
        if lower:
            unknown = sorted(lower - set(tasks))
            if unknown:
                raise RankingInputError(
                    f"unknown column(s) in lower-is-better: {', '.join(unknown)} "
                    f"(known: {', '.join(tasks)})"
                )
            hib = tuple(t not in lower for t in tasks)
        else:
            hib = (True,) * len(tasks)
        return cls(
            systems=tuple(systems),
            tasks=tuple(tasks),
            scores=np.asarray(scores, dtype=np.float64),
            higher_is_better=hib,
        )


def read_scores_csv(
    source: str | Path | io.TextIOBase, *, lower_is_better: Iterable[str] = ()
) -> ScoreTable:
    """Read a CSV with a ``system`` column and one column per task; an empty cell is missing."""
    if isinstance(source, str | Path):
        try:
            with open(source, newline="", encoding="utf-8") as handle:
                return _parse_csv(handle.read(), str(source), lower_is_better)
        except OSError as exc:
            raise RankingInputError(f"cannot read {source}: {exc.strerror}") from None
    return _parse_csv(source.read(), "<stream>", lower_is_better)


def _parse_csv(text: str, where: str, lower_is_better: Iterable[str]) -> ScoreTable:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise RankingInputError(f"{where}: the file is empty")
    header = [h.strip() for h in rows[0]]
    if "system" not in header:
        raise RankingInputError(f"{where}: the header needs a 'system' column")
    sys_col = header.index("system")
    tasks = [h for k, h in enumerate(header) if k != sys_col]
    if any(not t for t in tasks):
        raise RankingInputError(f"{where}: a task column has an empty header")
    systems: list[str] = []
    matrix: list[list[float]] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise RankingInputError(
                f"{where} line {line_no}: {len(row)} cells, the header has {len(header)}"
            )
        name = row[sys_col].strip()
        if not name:
            raise RankingInputError(f"{where} line {line_no}: empty system name")
        if name in systems:
            raise RankingInputError(f"{where} line {line_no}: duplicate system {name!r}")
        systems.append(name)
        values: list[float] = []
        for k, cell in enumerate(row):
            if k == sys_col:
                continue
            values.append(_parse_cell(cell, where, line_no, header[k]))
        matrix.append(values)
    if not systems:
        raise RankingInputError(f"{where}: no system rows")
    return ScoreTable.build(
        systems=systems, tasks=tasks, scores=np.array(matrix), lower_is_better=lower_is_better
    )


def _parse_cell(cell: str, where: str, line_no: int, column: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise RankingInputError(
            f"{where} line {line_no}, column {column!r}: {text!r} is not a number "
            "(leave the cell empty for a missing score)"
        ) from None
    if not math.isfinite(value):
        raise RankingInputError(
            f"{where} line {line_no}, column {column!r}: {text!r} is not a finite number "
            "(leave the cell empty for a missing score)"
        )
    return value


def _check_unique(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise RankingInputError(f"duplicate {what} {name!r}")
        seen.add(name)


def _union_keys(rows: Iterable[Mapping[str, object]]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for cells in rows:
        out.update(dict.fromkeys(cells))
    return tuple(out)
