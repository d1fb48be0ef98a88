"""Seed and kernel study of the training claims in "Choosing between LSTM and GRU".

The chapter trains a tanh RNN, an LSTM and a GRU at an equal parameter count (the LSTM has
16 hidden units; ``measure.matched_hidden_sizes``), with Adam, batches of 64, gradients
clipped at norm 1, and the gate that keeps the state opened the same way in both gated
layers (LSTM forget-gate bias 1, GRU update-gate bias 1). A training outcome depends on the
learning rate, the seed and the CPU kernels, so this script reruns the chapter's
experiments with more seeds and under three kernel settings (as ``scripts/portability.py``
sets them) and prints what holds:

``tune``
    The learning-rate sweep: every kind, every task of the chapter, each rate of
    ``RATES``, scored on a validation set that is not the test set (adding, agreement:
    500 new sequences; a^n b^n: the strings of the training range, n = 1 .. 10, because
    the test's longer strings are what the chapter asks about). The chosen rate of a kind
    is the one with the smallest mean validation loss (``head_to_head.tune_learning_rates``).
``compare``
    The chapter's comparisons with the chosen rates (``CHAPTER_RATES``): adding at T = 10
    and T = 30, agreement at distance 10 (200 steps), a^n b^n trained on n <= 10 (300
    steps); and the LSTM on adding at T = 30 for three times the steps (about the GRU's
    training time on a CPU, where an ``nn.GRU`` step costs two to three ``nn.LSTM`` steps
    at these sizes).
``variants``
    The same comparisons with PyTorch's gate biases (no bias treatment for either gated
    layer), and with the chapter's former setting (one rate, 0.02, for every kind, forget
    bias 1 for the LSTM and PyTorch's update bias for the GRU), for the record. Run under
    the native kernels only by default: they are not claims of the chapter.
``sweep``
    "GRU for small data": adding at T = 10 on fixed training sets of 16, 128 and 1,024
    sequences, LSTM and GRU with H = 16 each.

Usage::

    python bench/seeds_lstm_vs_gru.py                        # 10 seeds, three settings
                                                             # (variants: native only)
    python bench/seeds_lstm_vs_gru.py --experiments tune --settings native
    python bench/seeds_lstm_vs_gru.py --report-only          # the tables again

Each setting runs in its own process (the kernel variables must be set before torch is
imported). Results go to ``--out`` (default ``bench/results/seeds_lstm_vs_gru``), one JSON
file per setting and experiment; the tables are printed at the end.
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
EXPERIMENTS = ("tune", "compare", "variants", "sweep")

# The chapter's settings (chapters/06_lstm_vs_gru.ipynb uses the same numbers).
TASKS = {  # label: (task, length, steps)
    "adding, T = 10": ("adding", 10, 200),
    "adding, T = 30": ("adding", 30, 200),
    "agreement, distance 10": ("agreement", 10, 200),
    "a^n b^n, n <= 10": ("anbn", 10, 300),
}
LSTM_HIDDEN = 16
TRAINING = {"batch_size": 64, "max_norm": 1.0, "forget_bias": 1.0, "update_bias": 1.0}
RATES = (0.003, 0.01, 0.03, 0.1)
LONGER = 3  # the LSTM's steps on adding at T = 30, as a multiple of the chapter's
LONGER_LABEL = f"adding, T = 30, LSTM for {LONGER} times the steps"
CHAPTER_RATES = {  # chosen by ``tune`` (native kernels, 10 seeds)
    "adding, T = 10": {"RNN": 0.01, "LSTM": 0.03, "GRU": 0.03},
    "adding, T = 30": {"RNN": 0.003, "LSTM": 0.1, "GRU": 0.1},
    "agreement, distance 10": {"RNN": 0.003, "LSTM": 0.01, "GRU": 0.1},
    "a^n b^n, n <= 10": {"RNN": 0.01, "LSTM": 0.03, "GRU": 0.03},
    LONGER_LABEL: {"LSTM": 0.03},
}
TEST_SIZE, VALIDATION_SEED = 500, 2024
SWEEP_SIZES = (16, 128, 1024)


def make_task(name: str, length: int):
    from throughtime import tasks

    return tasks.make_task(name, length, test_size=TEST_SIZE, test_max_n=3 * length)


def validation_data(name: str, length: int):
    """Data no network trains on and that is not the test set (see the module docstring)."""
    from throughtime import tasks

    if name == "anbn":
        return tasks.make_task("anbn", length, test_max_n=length).test()
    return tasks.make_task(name, length, test_size=TEST_SIZE, test_seed=VALIDATION_SEED).test()


def _scores(comparison) -> dict[str, list[float]]:
    return {kind: comparison.final(kind).tolist() for kind in comparison.kinds}


def run_experiment(name: str, seeds, args) -> dict:
    """Every run of one experiment in this process's kernel setting."""
    import torch

    from throughtime import head_to_head
    from throughtime.measure import KINDS

    torch.set_num_threads(1)
    results: dict = {}
    if name == "tune":
        # The LSTM's longer run gets its own sweep: a rate is tuned for a budget.
        runs = {label: (*entry, KINDS) for label, entry in TASKS.items()}
        runs[LONGER_LABEL] = ("adding", 30, LONGER * TASKS["adding, T = 30"][2], ("LSTM",))
        if args.only_longer:
            runs = {LONGER_LABEL: runs[LONGER_LABEL]}
        for label, (task_name, length, steps, kinds) in runs.items():
            tuning = head_to_head.tune_learning_rates(
                make_task(task_name, length), validation_data(task_name, length), RATES,
                kinds=kinds, seeds=seeds, lstm_hidden_size=LSTM_HIDDEN, steps=steps,
                **TRAINING)
            results[label] = {"rates": list(tuning.rates), "chosen": tuning.chosen,
                              "losses": {k: v.tolist() for k, v in tuning.losses.items()},
                              "scores": {k: v.tolist() for k, v in tuning.scores.items()}}
    elif name == "compare":
        for label, (task_name, length, steps) in TASKS.items():
            task = make_task(task_name, length)
            rates = CHAPTER_RATES[label]
            chapter = head_to_head.compare(task, lstm_hidden_size=LSTM_HIDDEN, seeds=seeds,
                                           lr=rates, steps=steps, evaluations=4, **TRAINING)
            results[label] = {"chapter": _scores(chapter),
                              "chapter_curves": {k: v.tolist()
                                                 for k, v in chapter.scores.items()},
                              "steps": chapter.steps,
                              "seconds": chapter.seconds}
            if label == "adding, T = 30":
                longer = head_to_head.compare(task, lstm_hidden_size=LSTM_HIDDEN, kinds=("LSTM",),
                                              seeds=seeds, lr=CHAPTER_RATES[LONGER_LABEL],
                                              steps=LONGER * steps,
                                              evaluations=2 * LONGER, **TRAINING)
                results[label]["lstm_longer"] = {
                    "steps": longer.steps, "curves": longer.scores["LSTM"].tolist()}
    elif name == "variants":
        for label, (task_name, length, steps) in TASKS.items():
            task = make_task(task_name, length)
            default_biases = head_to_head.compare(task, lstm_hidden_size=LSTM_HIDDEN, seeds=seeds,
                                                  lr=CHAPTER_RATES[label], steps=steps,
                                                  evaluations=1, **(TRAINING | {"forget_bias": None,
                                                                 "update_bias": None}))
            former = head_to_head.compare(task, lstm_hidden_size=LSTM_HIDDEN, seeds=seeds, lr=0.02,
                                          steps=steps, evaluations=1,
                                          **(TRAINING | {"update_bias": None}))
            results[label] = {"default_biases": _scores(default_biases),
                              "former": _scores(former)}
    elif name == "sweep":
        task = make_task("adding", 10)
        sweep = head_to_head.data_size_sweep(task, SWEEP_SIZES, lstm_hidden_size=LSTM_HIDDEN,
                                             match="hidden_size", seeds=seeds, steps=200,
                                             lr=CHAPTER_RATES["adding, T = 10"], **TRAINING)
        results["sizes"] = list(sweep.sizes)
        results["scores"] = {k: v.tolist() for k, v in sweep.scores.items()}
    else:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")
    return results


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------

SOLVED = {"adding": 0.9, "agreement": 0.95, "anbn": 10.0}


def _solved(task_name: str, length: int) -> float:
    return float(length) if task_name == "anbn" else SOLVED[task_name]


def _summary(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{np.min(values):.3g} / {np.median(values):.3g} / {np.max(values):.3g}"


def _evidence(first, second) -> str:
    sys.path.insert(0, str(ROOT / "lib"))
    from throughtime.stats import mann_whitney

    test = mann_whitney(first, second)
    return f"p = {test.p:.2g} (smallest {test.smallest_p:.2g})"


def tune_table(data: dict[str, dict]) -> list[str]:
    lines = ["### Learning rates: mean validation loss (median validation score)", ""]
    for setting, results in data.items():
        lines += [f"#### {setting}", "",
                  "| task | kind | " + " | ".join(f"lr {r}" for r in RATES) + " | chosen |",
                  "| --- | --- | " + " | ".join("---" for _ in RATES) + " | --- |"]
        for label, entry in results.items():
            for kind, losses in entry["losses"].items():
                cells = [f"{np.mean(loss):.3g} ({np.median(score):.3g})" for loss, score
                         in zip(losses, entry["scores"][kind], strict=True)]
                chosen = entry["rates"][int(np.argmin([np.mean(np.where(
                    np.isfinite(loss), loss, np.inf)) for loss in losses]))]
                lines.append(f"| {label} | {kind} | " + " | ".join(cells) + f" | {chosen} |")
        lines.append("")
    return lines


def compare_table(data: dict[str, dict]) -> list[str]:
    lines = ["### The chapter's comparisons (final test score: min / median / max; solved "
             "count)", ""]
    lines += _score_tables(data, (("chapter", "tuned rates, both gate biases 1"),))
    lines += [f"#### the LSTM on adding at T = 30 for {LONGER} times the steps", "",
              "| setting | steps | LSTM scores (min / median / max) | solved |",
              "| --- | --- | --- | --- |"]
    for setting, results in data.items():
        entry = results["adding, T = 30"].get("lstm_longer")
        if not entry:
            continue
        for step, row in zip(entry["steps"], entry["curves"], strict=True):
            lines.append(f"| {setting} | {step} | {_summary(row)} | "
                         f"{sum(v >= 0.9 for v in row)}/{len(row)} |")
    lines.append("")
    return lines


def variants_table(data: dict[str, dict]) -> list[str]:
    return _score_tables(data, (
        ("default_biases", "tuned rates, PyTorch's gate biases"),
        ("former", "former setting: lr 0.02 for all, forget bias 1, GRU default")))


def _score_tables(data: dict[str, dict], variants) -> list[str]:
    lines = []
    for variant, title in variants:
        lines += [f"#### {title}", "",
                  "| task | setting | RNN | LSTM | GRU | LSTM vs GRU (Mann-Whitney) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for label, (task_name, length, _) in TASKS.items():
            solved = _solved(task_name, length)
            for setting, results in data.items():
                scores = results[label][variant]
                cells = [f"{_summary(scores[k])}; {sum(v >= solved for v in scores[k])}"
                         f"/{len(scores[k])}" for k in ("RNN", "LSTM", "GRU")]
                lines.append(f"| {label} | {setting} | " + " | ".join(cells) + " | "
                             + _evidence(scores["LSTM"], scores["GRU"]) + " |")
        lines.append("")
    return lines


def sweep_table(data: dict[str, dict]) -> list[str]:
    lines = ["### GRU for small data? adding, T = 10, H = 16 each (min / median / max; "
             "solved)", "", "| setting | N | LSTM | GRU | LSTM vs GRU (Mann-Whitney) |",
             "| --- | --- | --- | --- | --- |"]
    for setting, results in data.items():
        for i, size in enumerate(results["sizes"]):
            lstm, gru = results["scores"]["LSTM"][i], results["scores"]["GRU"][i]
            lines.append(f"| {setting} | {size} | {_summary(lstm)}; "
                         f"{sum(v >= 0.9 for v in lstm)}/{len(lstm)} | {_summary(gru)}; "
                         f"{sum(v >= 0.9 for v in gru)}/{len(gru)} | {_evidence(lstm, gru)} |")
    lines.append("")
    return lines


TABLES = {"tune": tune_table, "compare": compare_table, "variants": variants_table,
          "sweep": sweep_table}


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def _child(args) -> int:
    seeds = list(range(args.seeds))
    started = time.process_time()
    results = run_experiment(args.experiment, seeds, args)
    results["_cpu_seconds"] = time.process_time() - started
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS))
    parser.add_argument("--experiments", nargs="*", default=list(EXPERIMENTS))
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "seeds_lstm_vs_gru")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--variants-everywhere", action="store_true",
                        help="run the variants under every setting, not only native")
    parser.add_argument("--only-longer", action="store_true",
                        help="tune: only the LSTM's longer run on adding at T = 30")
    parser.add_argument("--experiment", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.experiment:
        return _child(args)
    for setting in args.settings:
        if setting not in SETTINGS:
            parser.error(f"--settings: {setting!r} is not one of {list(SETTINGS)}")
    for experiment in args.experiments:
        if experiment not in EXPERIMENTS:
            parser.error(f"--experiments: {experiment!r} is not one of {EXPERIMENTS}")
    if not args.report_only:
        for experiment in args.experiments:
            for setting in args.settings:
                if (experiment == "variants" and setting != "native"
                        and not args.variants_everywhere):
                    continue
                environment = kernel_environment(setting)
                suffix = "_longer" if args.only_longer and experiment == "tune" else ""
                result = args.out / f"{setting}_{experiment}{suffix}.json"
                started = time.perf_counter()
                extra = ["--only-longer"] if args.only_longer else []
                subprocess.run([sys.executable, __file__, "--experiment", experiment,
                                "--seeds", str(args.seeds), "--result", str(result), *extra],
                               env=environment, check=True)
                print(f"{experiment} under {setting}: {time.perf_counter() - started:.0f} s",
                      flush=True)
    lines = [f"# Seed study: choosing between LSTM and GRU ({args.seeds} seeds)", ""]
    for experiment in args.experiments:
        data = {}
        for setting in args.settings:
            for suffix in ("", "_longer"):
                path = args.out / f"{setting}_{experiment}{suffix}.json"
                if path.exists():
                    data.setdefault(setting, {}).update(
                        {key: value for key, value in json.loads(path.read_text()).items()
                         if not key.startswith("_")})
        if data:
            lines += TABLES[experiment](data)
    report = "\n".join(lines)
    print(report)
    (args.out / "report.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
