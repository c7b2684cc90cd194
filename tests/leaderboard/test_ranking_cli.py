"""The ``python -m leaderboard rank`` command, run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSV = "system,a,b,c\nA,3,1,2\nB,2,3,1\nC,1,2,3\nD,0,0,0\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "leaderboard", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def scores(tmp_path: Path) -> Path:
    path = tmp_path / "scores.csv"
    path.write_text(CSV)
    return path


def test_json_output_shape(scores: Path) -> None:
    out = run("rank", str(scores), "--rule", "borda")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["rule"] == "borda"
    assert data["winners"] == ["A", "B", "C"]  # a three-way Condorcet cycle
    assert [e["system"] for e in data["ranking"]][-1] == "D"
    assert [e["rank"] for e in data["ranking"]] == [1, 1, 1, 4]
    assert data["ranking"][0]["score"] == 6.0
    assert isinstance(data["details"], dict)


def test_lower_is_better_and_weights(scores: Path, tmp_path: Path) -> None:
    w = tmp_path / "w.json"
    w.write_text(json.dumps({"b": 0, "c": 0}))
    out = run("rank", str(scores), "--rule", "plurality", "--weights", str(w))
    assert json.loads(out.stdout)["winners"] == ["A"]
    out = run(
        "rank", str(scores), "--rule", "plurality", "--weights", str(w), "--lower-is-better", "a"
    )
    assert json.loads(out.stdout)["winners"] == ["D"]


def test_all_rules_and_table_format(scores: Path) -> None:
    out = run("rank", str(scores), "--rule", "all")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = {r["rule"] for r in data["results"]} | set(data["skipped"])
    assert {"kemeny", "borda", "copeland", "schulze", "mean"} <= names
    assert "normalized_mean" in data["skipped"]  # needs baselines
    table = run("rank", str(scores), "--rule", "copeland", "--format", "table")
    assert table.returncode == 0
    assert "[copeland] winners: A, B, C" in table.stdout


def test_missing_policy(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("system,a,b\nA,3,\nB,2,1\nC,1,0\n")
    out = run("rank", str(path), "--rule", "copeland")
    assert out.returncode == 2
    assert "missing" in out.stderr
    out = run("rank", str(path), "--rule", "copeland", "--missing", "pairwise")
    assert out.returncode == 0
    assert json.loads(out.stdout)["winners"] == ["A"]


@pytest.mark.parametrize(
    ("csv_text", "extra", "needle"),
    [
        (CSV, ["--rule", "no_such_rule"], "unknown rule"),
        ("system,a\nA,1\nB,x\n", ["--rule", "borda"], "not a number"),
        ("system,a\nA,1\nA,2\n", ["--rule", "borda"], "duplicate system"),
        (CSV, ["--rule", "borda", "--lower-is-better", "zz"], "lower-is-better"),
        (CSV, ["--rule", "borda", "--weights", "WEIGHTS"], "unknown column"),
        (CSV, ["--rule", "borda", "--missing", "guess"], "invalid choice"),
        (CSV, ["--rule", "geometric_mean"], "scores > 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, csv_text: str, extra: list[str], needle: str
) -> None:
    path = tmp_path / "s.csv"
    path.write_text(csv_text)
    wpath = tmp_path / "w.json"
    wpath.write_text(json.dumps({"nope": 1.0}))
    args = [str(wpath) if a == "WEIGHTS" else a for a in extra]
    out = run("rank", str(path), *args)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert needle in lines[0]
    assert "Traceback" not in out.stderr


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    out = run("rank", str(tmp_path / "absent.csv"), "--rule", "borda")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
