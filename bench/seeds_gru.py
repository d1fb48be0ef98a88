"""Seed and kernel study of the training claims in "Gated recurrent units".

The chapter trains a tanh RNN, an LSTM and a GRU with ``runs.train_on_task`` (H = 32,
Adam, batches of 64, gradients clipped at norm 1, at most 300 steps, the test set of 512
sequences scored every 25 steps, a run stops once solved) on two tasks:

``adding``
    The adding problem at T = 20, learning rate 0.02; solved once the test MSE is at most
    0.01 (the no-memory baseline is 1/6).
``agreement``
    Number agreement without a shortcut at distance 25 (training distances 1 to 25),
    learning rate 0.01; solved once the test accuracy is at least 0.99.

Each network runs with the gate that keeps memory at PyTorch's default initialisation and
with its bias set to 1 (the LSTM's forget gate, ``gates.set_forget_bias``; the GRU's
update gate, ``gates.set_update_bias``), so that the two gated networks get the same
treatment. A tanh RNN with a four times longer budget (1,200 steps) shows whether its failure
at these lengths is a matter of budget. Seeds 0 .. N-1 under three kernel settings (as
``scripts/portability.py`` sets them); the tables give the number of seeds that solved each
task, the steps they needed, and exact two-sided Mann-Whitney p-values
(``throughtime.stats``) for the steps to solve (an unsolved run counts as slower than every
solved one).

Usage::

    python bench/seeds_gru.py                       # 10 seeds, three settings
    python bench/seeds_gru.py --seeds 20 --settings native --experiments adding
    python bench/seeds_gru.py --report-only         # the tables again, from the JSON

Results go to ``--out`` (default ``bench/results/seeds_gru``), one JSON file per setting and
experiment; the tables are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from kernels import SETTINGS, kernel_environment  # bench/kernels.py

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("adding", "agreement")
BUDGET = 300
TASKS = {  # the chapter's settings (chapters/05_gru.ipynb)
    "adding": {"length": 20, "lr": 0.02},
    "agreement": {"length": 25, "min_length": 1, "lr": 0.01},
}
NETWORKS = {  # label: (kind, forget_bias, update_bias, steps)
    "tanh RNN": ("rnn", None, None, BUDGET),
    "LSTM, forget bias 1": ("lstm", 1.0, None, BUDGET),
    "GRU, update bias 1": ("gru", None, 1.0, BUDGET),
    "LSTM, default": ("lstm", None, None, BUDGET),
    "GRU, default": ("gru", None, None, BUDGET),
    "tanh RNN, 1200 steps": ("rnn", None, None, 4 * BUDGET),
}
COMPARISONS = (("LSTM, forget bias 1", "GRU, update bias 1"),
               ("LSTM, default", "GRU, default"),
               ("LSTM, default", "LSTM, forget bias 1"),
               ("GRU, default", "GRU, update bias 1"))


def run_experiment(name: str, seeds) -> dict:
    """Every run of one task in this process's kernel setting."""
    import torch

    from throughtime.runs import train_on_task

    torch.set_num_threads(1)
    if name not in TASKS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")
    results = {}
    for label, (kind, forget_bias, update_bias, steps) in NETWORKS.items():
        for seed in seeds:
            run = train_on_task(kind, name, seed=seed, steps=steps, forget_bias=forget_bias,
                                update_bias=update_bias, device="cpu", **TASKS[name])
            results[f"{label}/{seed}"] = {"steps": run.steps, "metric": run.metric,
                                          "solved_at": run.solved_at, "seconds": run.seconds}
    return results


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _group(results: dict) -> dict[str, list]:
    groups: dict[str, list] = {}
    for key, value in results.items():
        label, _, _seed = key.rpartition("/")
        groups.setdefault(label, []).append(value)
    return groups


def _steps_to_solve(runs, budget) -> np.ndarray:
    """Steps to solve; an unsolved run gets a value above every possible solved one."""
    return np.array([r["solved_at"] if r["solved_at"] is not None else budget + 1000
                     for r in runs], dtype=float)


def task_table(name: str, data: dict[str, dict]) -> list[str]:
    from throughtime.stats import mann_whitney

    metric = "MSE" if name == "adding" else "accuracy"
    lines = [f"### {name} ({TASKS[name]})", "",
             f"| setting | network | solved | steps to solve: min / median / max | final "
             f"{metric} of the unsolved |", "| --- | --- | --- | --- | --- |"]
    for setting, results in data.items():
        for label, runs in _group(results).items():
            solved = [r["solved_at"] for r in runs if r["solved_at"] is not None]
            finals = [r["metric"][-1] for r in runs if r["solved_at"] is None]
            steps = (f"{min(solved)} / {np.median(solved):.0f} / {max(solved)}" if solved
                     else "-")
            final = f"{min(finals):.3f} to {max(finals):.3f}" if finals else "-"
            lines.append(f"| {setting} | {label} | {len(solved)} of {len(runs)} | {steps} | "
                         f"{final} |")
    lines += ["", f"#### {name}: steps to solve compared (exact two-sided Mann-Whitney)", "",
              "| setting | first | second | first faster in (same seed) | second faster in | "
              "ties | p | smallest possible p |", "| --- | --- | --- | --- | --- | --- | --- "
              "| --- |"]
    for setting, results in data.items():
        groups = _group(results)
        for first, second in COMPARISONS:
            a = _steps_to_solve(groups[first], BUDGET)
            b = _steps_to_solve(groups[second], BUDGET)
            test = mann_whitney(a, b)
            lines.append(f"| {setting} | {first} | {second} | {int((a < b).sum())} | "
                         f"{int((b < a).sum())} | {int((a == b).sum())} | {test.p:.3g} | "
                         f"{test.smallest_p:.3g} |")
    return lines


def report(out: Path, settings, experiments) -> str:
    lines = []
    for name in experiments:
        data = {setting: json.loads((out / f"{setting}_{name}.json").read_text())["runs"]
                for setting in settings if (out / f"{setting}_{name}.json").exists()}
        if data:
            lines += task_table(name, data) + [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=EXPERIMENTS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "seeds_gru")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "setting:experiment"
    args = parser.parse_args()

    if args.worker:
        setting, name = args.worker.split(":")
        started = time.process_time()
        results = run_experiment(name, range(args.seeds))
        record = {"cpu_seconds": time.process_time() - started, "runs": results}
        (args.out / f"{setting}_{name}.json").write_text(json.dumps(record, indent=1))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for setting in args.settings:
            for name in args.experiments:
                env = kernel_environment(setting)
                started = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--worker", f"{setting}:{name}",
                                "--seeds", str(args.seeds), "--out", str(args.out)],
                               env=env, check=True)
                print(f"{setting} {name}: {time.perf_counter() - started:.0f} s", flush=True)
    print(report(args.out, args.settings, args.experiments))


if __name__ == "__main__":
    main()
