"""Run every benchmark of issue 10 and print each one's ratios (what `make bench` runs).

    python tests/bench/run_all.py [--only ranking,training,eval,ingest,leaderboard]
                                  [--baseline-python .venv-bench/bin/python]

Each benchmark is its own script (see README.md next to this file), run here one after
the other in a child process, so that none of them shares a warm process or memory with
another. Each writes its JSON under `bench-results/`; this script then reads them back
and prints one summary, also written to `bench-results/summary.json`. A target that is
missed is reported as missed; the exit status is non-zero only when a benchmark could
not run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "bench-results"
ORDER = ("ranking", "training", "eval", "ingest", "leaderboard")


def _ranking(data: dict[str, Any]) -> list[str]:
    rows = data["shared_rules"]
    ratios = [r["ratio"] for r in rows]
    lines = [
        f"shared rules: {sum(r >= 10 for r in ratios)}/{len(rows)} comparisons >= 10x end to "
        f"end (min {min(ratios):.1f}x, median {sorted(ratios)[len(ratios) // 2]:.1f}x)"
    ]
    below = data["summary"]["below_target_e2e"]
    lines.append(f"below 10x: {', '.join(below) if below else 'none'}")
    # The summary's own lines after its first two (those repeat the ratios above).
    return lines + list(data["summary"]["lines"][2:])


def _training(data: dict[str, Any]) -> list[str]:
    return [
        f"{r['task']}: {r['ratio']:.2f}x examples/s (target {r['target_ratio']}x: "
        f"{'met' if r['ratio_met'] else 'MISSED'}; padded/real limit {r['limit_ratio']:.2f}x), "
        f"dev accuracy (mean of {len(r['podium'].get('seeds', [1]))} seeds) "
        f"{100 * r['baseline']['accuracy']:.1f} vs {100 * r['podium']['accuracy']:.1f}"
        f" ({'within' if r['accuracy_within'] else 'NOT within'} "
        f"{data['meta']['accuracy_tolerance_points']:.0f} points)"
        for r in data["results"]
    ]


def _eval(data: dict[str, Any]) -> list[str]:
    s = data["summary"]
    return [
        f"runner vs lm-eval defaults: {s['ratio_runner_vs_lm_eval']:.2f}x "
        f"({'at least as fast' if s['runner_at_least_as_fast'] else 'SLOWER'})",
        f"packed vs lm-eval defaults: {s['ratio_packed_vs_lm_eval']:.2f}x, vs the unpacked "
        f"runner: {s['ratio_packed_vs_unpacked']:.2f}x (target {s['packed_target']}x); "
        f"identical answers: {s['identical_answers']}",
    ]


def _leaderboard(data: dict[str, Any]) -> list[str]:
    lines = []
    for name, growth in data["warm_p95_growth"].items():
        small = data["sizes"]["small"][name]["warm"]["p95_ms"]
        large = data["sizes"]["large"][name]["warm"]["p95_ms"]
        lines.append(
            f"{name}: warm p95 {small:.0f} -> {large:.0f} ms ({growth:.2f}x): "
            f"{'met' if data['targets_met'][name] else 'MISSED'}"
        )
    return lines


def _ingest(data: dict[str, Any]) -> list[str]:
    # Another helper's benchmark (bench_ingest.py): its top-level ratio and target.
    if "ratio" not in data:
        return [json.dumps(data)[:300]]
    return [
        f"{data.get('baseline', 'baseline')}: {data['baseline_s']:.2f} s, Podium "
        f"{data['podium_s']:.2f} s: {data['ratio']:.2f}x (target {data.get('target', '?')}: "
        f"{'met' if data.get('met') else 'MISSED'})"
    ]


SUMMARISE = {
    "ranking": _ranking,
    "training": _training,
    "eval": _eval,
    "ingest": _ingest,
    "leaderboard": _leaderboard,
}


def command(name: str, out: Path, baseline_python: str) -> list[str] | None:
    script = HERE / f"bench_{name}.py"
    if not script.is_file():
        return None
    cmd = [sys.executable, str(script), "--out", str(out)]
    if name in ("ranking", "ingest"):  # the two whose baselines live in the bench venv
        cmd += ["--baseline-python", baseline_python]
    return cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(ORDER), help="comma-separated benchmarks")
    ap.add_argument("--baseline-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    ap.add_argument(
        "--summary-only", action="store_true", help="print the summary of the JSON files there"
    )
    args = ap.parse_args()
    chosen = [n for n in args.only.split(",") if n]
    unknown = sorted(set(chosen) - set(ORDER))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ORDER)}")
        return 2
    RESULTS.mkdir(exist_ok=True)
    summary: dict[str, Any] = {}
    failed = []
    for name in [n for n in ORDER if n in chosen]:
        out = RESULTS / f"{name}.json"
        cmd = command(name, out, args.baseline_python)
        if cmd is None:
            print(f"\n##### {name}: no tests/bench/bench_{name}.py here; skipped", flush=True)
            summary[name] = {"skipped": "script not present"}
            continue
        started = time.perf_counter()
        if args.summary_only:
            code = 0
        else:
            print(f"\n##### {name}: {' '.join(cmd[1:])}", flush=True)
            code = subprocess.call(cmd, cwd=ROOT)
        seconds = time.perf_counter() - started
        if code != 0 or not out.is_file():
            failed.append(name)
            summary[name] = {"failed": f"exit status {code}", "seconds": seconds}
            continue
        lines = SUMMARISE[name](json.loads(out.read_text()))
        summary[name] = {"lines": lines, "json": str(out.relative_to(ROOT))}
        if not args.summary_only:
            summary[name]["seconds"] = seconds
    print("\n==================== make bench: summary ====================")
    for name, entry in summary.items():
        print(f"[{name}]")
        for line in entry.get("lines", [entry.get("failed") or entry.get("skipped")]):
            print(f"  {line}")
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
