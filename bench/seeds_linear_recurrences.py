"""Seed and kernel study of the training claims in "Recurrence today".

The chapter trains minGRU and minLSTM networks (``linear_recurrence``) against LSTM and GRU
networks with the parameter count of an LSTM with 16 hidden units
(``linear_recurrence_comparison.compare_recurrences``): Adam, batches of 64, gradients
clipped at norm 1, the gate that keeps the state started at sigma(1) in every kind (LSTM
forget gate, GRU update gate, minGRU z, minLSTM f / (f + i)), the same steps and batches.

``tune``
    Each kind's learning rate on each task, chosen from ``RATES`` by the smallest mean loss
    over ``TUNING_SEEDS`` seeds on validation data (adding, agreement: 500 new sequences;
    a^n b^n: the strings of the training range), the same effort for every kind
    (``linear_recurrence_comparison.tune_rates``). Run under the native kernels only.
``compare``
    The chapter's comparisons with the chosen rates (``CHAPTER_RATES``) from ``--seeds``
    seeds, under every kernel setting.

Usage::

    python bench/seeds_linear_recurrences.py                     # tune (native), compare (3)
    python bench/seeds_linear_recurrences.py --experiments compare --settings baseline
    python bench/seeds_linear_recurrences.py --report-only

Each setting runs in its own process with one thread (``bench/kernels.py``). Results go to
``--out`` (default ``bench/results/seeds_linear_recurrences``), one JSON file per setting
and experiment; the tables are printed at the end (``bench/reports/seeds_linear_recurrences.md``
holds them).
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
EXPERIMENTS = ("tune", "compare")

# The chapter's settings (chapters/10_linear_recurrences.ipynb uses the same numbers).
TASKS = {  # label: (task, length, steps, kinds)
    "adding, T = 30": ("adding", 30, 200, ("LSTM", "GRU", "minGRU", "minLSTM")),
    "agreement, distance 10": ("agreement", 10, 200,
                               ("LSTM", "GRU", "minGRU", "minLSTM", "minGRU, 2 layers")),
    "a^n b^n, n <= 10": ("anbn", 10, 300, ("LSTM", "GRU", "minGRU", "minLSTM")),
}
LSTM_HIDDEN = 16
TRAINING = {"batch_size": 64, "max_norm": 1.0, "keep_bias": 1.0}
RATES = (0.003, 0.01, 0.03, 0.1)
TUNING_SEEDS = 3
CHAPTER_RATES: dict[str, dict[str, float]] = {  # chosen by ``tune`` (native kernels)
}
TEST_SIZE, VALIDATION_SEED = 500, 2024


def make_task(name: str, length: int):
    from throughtime import tasks

    return tasks.make_task(name, length, test_size=TEST_SIZE, test_max_n=3 * length)


def validation_data(name: str, length: int):
    """Data no network trains on and that is not the test set (see the module docstring)."""
    from throughtime import tasks

    if name == "anbn":
        return tasks.make_task("anbn", length, test_max_n=length).test()
    return tasks.make_task(name, length, test_size=TEST_SIZE, test_seed=VALIDATION_SEED).test()


def run_experiment(name: str, seeds, rates_file: Path | None) -> dict:
    """Every run of one experiment in this process's kernel setting."""
    import torch

    from throughtime import linear_recurrence_comparison as lrc

    torch.set_num_threads(1)
    results: dict = {}
    if name == "tune":
        for label, (task_name, length, steps, kinds) in TASKS.items():
            chosen, losses = lrc.tune_rates(
                make_task(task_name, length), validation_data(task_name, length), RATES,
                kinds=kinds, seeds=range(TUNING_SEEDS), lstm_hidden_size=LSTM_HIDDEN,
                steps=steps, **TRAINING)
            results[label] = {"rates": list(RATES), "chosen": chosen,
                              "losses": {k: v.tolist() for k, v in losses.items()}}
    elif name == "compare":
        rates = CHAPTER_RATES
        if rates_file is not None and rates_file.exists():
            tuned = json.loads(rates_file.read_text())
            rates = {label: entry["chosen"] for label, entry in tuned.items()}
        for label, (task_name, length, steps, kinds) in TASKS.items():
            result = lrc.compare_recurrences(
                make_task(task_name, length), kinds=kinds, seeds=seeds,
                lstm_hidden_size=LSTM_HIDDEN, steps=steps, lr=rates[label], **TRAINING)
            results[label] = {"scores": {k: result.final(k).tolist() for k in result.kinds},
                              "hidden_sizes": result.hidden_sizes,
                              "parameters": result.parameters,
                              "lr": result.settings["lr"], "seconds": result.seconds}
    else:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")
    return results


def _summary(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{np.min(values):.3g} / {np.median(values):.3g} / {np.max(values):.3g}"


def report(out: Path) -> str:
    sys.path.insert(0, str(ROOT / "lib"))
    from throughtime.stats import mann_whitney

    lines = ["# Seed study: linear recurrences against gated ones", ""]
    tune = out / "native_tune.json"
    if tune.exists():
        lines += ["## Learning rates (native kernels, mean validation loss over "
                  f"{TUNING_SEEDS} seeds)", "",
                  "| task | kind | " + " | ".join(f"lr {r}" for r in RATES) + " | chosen |",
                  "| --- | --- | " + " | ".join("---" for _ in RATES) + " | --- |"]
        for label, entry in json.loads(tune.read_text()).items():
            for kind, losses in entry["losses"].items():
                cells = [f"{np.mean(loss):.3g}" for loss in losses]
                lines.append(f"| {label} | {kind} | " + " | ".join(cells)
                             + f" | {entry['chosen'][kind]} |")
        lines.append("")
    for setting in SETTINGS:
        path = out / f"{setting}_compare.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        lines += [f"## Final test scores, {setting} kernels (min / median / max over seeds)",
                  "", "| task | kind | H | parameters | lr | scores | vs LSTM: p | vs GRU: p |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label, entry in data.items():
            scores = entry["scores"]
            for kind, values in scores.items():
                p_lstm = mann_whitney(values, scores["LSTM"]).p if kind != "LSTM" else None
                p_gru = mann_whitney(values, scores["GRU"]).p if kind != "GRU" else None
                lines.append(
                    f"| {label} | {kind} | {entry['hidden_sizes'][kind]} | "
                    f"{entry['parameters'][kind]} | {entry['lr'][kind]} | "
                    f"{_summary(values)} | {'' if p_lstm is None else f'{p_lstm:.2g}'} | "
                    f"{'' if p_gru is None else f'{p_gru:.2g}'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=EXPERIMENTS)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/seeds_linear_recurrences")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("EXPERIMENT", "SETTING"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        sys.path.insert(0, str(ROOT / "lib"))
        experiment, setting = args.worker
        start = time.process_time()
        results = run_experiment(experiment, range(args.seeds), args.out / "native_tune.json")
        (args.out / f"{setting}_{experiment}.json").write_text(json.dumps(results, indent=1))
        print(f"{experiment} under {setting}: {time.process_time() - start:.0f} s CPU",
              flush=True)
        return
    if not args.report_only:
        for experiment in args.experiments:
            settings = ["native"] if experiment == "tune" else args.settings
            for setting in settings:
                subprocess.run([sys.executable, __file__, "--worker", experiment, setting,
                                "--seeds", str(args.seeds), "--out", str(args.out)],
                               env=kernel_environment(setting), check=True)
    print(report(args.out))


if __name__ == "__main__":
    main()
