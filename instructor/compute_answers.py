"""Numbers for the answer key of the open exercises that need a run (instructor-only).

    python instructor/compute_answers.py [--out instructor/computed_answers.md]

Runs the experiments that chapter 6's exercises ask students to run, with the chapter's
default settings (three seeds, 200 training steps, the CPU), and prints their results as
Markdown for `instructor/answers.md`. Results depend on the machine's kernels and on the
library's version: they are ranges to grade against, not the only right answers. About ten
minutes of one CPU core.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from throughtime import comparison as cmp

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)  # chapter 6's default seeds
TRAINING = {"steps": 200, "batch_size": 64, "lr": 0.02, "max_norm": 1.0, "forget_bias": 1.0}
LSTM_HIDDEN = 16


def run(name: str, length: int, **overrides):
    """Chapter 6's `run`, on the CPU."""
    task = cmp.make_task(name, length, test_size=500, test_max_n=30)
    return cmp.compare(task, lstm_hidden_size=LSTM_HIDDEN, seeds=SEEDS,
                       device=torch.device("cpu"), **(TRAINING | overrides))


def solved(comparison, kind: str) -> int:
    return int((comparison.final(kind) >= comparison.task.solved).sum())


def forget_bias_table() -> list[str]:
    lines = ["| forget bias | steps | LSTM seeds solved | LSTM final scores |",
             "| --- | --- | --- | --- |"]
    for bias in (None, 1.0, 3.0):
        for steps in (200, 600):
            comparison = run("adding", 30, forget_bias=bias, steps=steps)
            scores = ", ".join(f"{s:.2f}" for s in comparison.final("LSTM"))
            lines.append(f"| {'PyTorch default' if bias is None else bias} | {steps} | "
                         f"{solved(comparison, 'LSTM')} of {len(SEEDS)} | {scores} |")
    return lines


def sweep_table() -> list[str]:
    sizes = (16, 64, 256, 1024, 4096)
    lines = []
    for match in ("parameters", "hidden_size"):
        sweep = cmp.data_size_sweep(cmp.make_task("adding", 10, test_size=500), sizes,
                                    lstm_hidden_size=LSTM_HIDDEN, match=match,
                                    seeds=range(5), device=torch.device("cpu"), **TRAINING)
        lines += [f"match={match!r}: hidden sizes {sweep.hidden_sizes}, parameters "
                  f"{sweep.parameters}", "",
                  "| N | LSTM scores (5 seeds) | GRU scores (5 seeds) | verdict |",
                  "| --- | --- | --- | --- |"]
        for i, size in enumerate(sweep.sizes):
            lstm, gru = sweep.scores["LSTM"][i], sweep.scores["GRU"][i]
            verdict = cmp.verdict(lstm, gru, solved=sweep.task.solved)
            lines.append(f"| {size} | {', '.join(f'{s:.2f}' for s in lstm)} | "
                         f"{', '.join(f'{s:.2f}' for s in gru)} | {verdict} |")
        lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "instructor" / "computed_answers.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    lines = [f"Computed by instructor/compute_answers.py at commit {commit}, torch "
             f"{torch.__version__}, {platform.machine()} CPU, one thread.", "",
             "## ex-compare-forget-bias (adding, T = 30, seeds 0-2)", "", *forget_bias_table(),
             "", "## ex-compare-sweep (adding, T = 10, seeds 0-4, 200 steps)", "",
             *sweep_table()]
    lines.append(f"({time.perf_counter() - started:.0f} s)")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
