"""Seed and kernel study of the training claims in "Long short-term memory".

The chapter trains LSTMs (forget bias 1) and tanh RNNs with ``runs.train_on_task``
(H = 32, Adam, batches of 64, gradients clipped at norm 1). A training outcome depends on the
seed and on the CPU kernels, so this script reruns the chapter's experiments over more seeds
and under three kernel settings (as ``scripts/portability.py`` sets them) and prints what
holds:

``adding``
    The adding problem at T = 50, learning rate 0.02, at most 600 steps, the test set (1,000
    sequences) scored every 50 steps, a run stops once its test MSE is at most 0.01 (as in
    the chapter). For every LSTM that solved the task, its memory unit
    (``gates.memory_unit`` on 256 new sequences: the unit that writes at the first mark
    and still holds it at the second): the input gate at and away from the marks, the forget
    gate between the marks, the change of the cell state, the share kept by it and by the
    next best unit.
``agreement``
    Number agreement without a shortcut (``tasks.agreement_task``, nouns of random number),
    learning rate 0.01, 300 steps, each batch at a distance drawn from 1 to 40 and half of the
    intervening tokens nouns of random number; the accuracy on 500 new sequences at
    distances 5, 10, 20, 40 and 80.
``mechanism``
    Why do tanh RNNs fail even at distance 5? The same agreement runs for the tanh RNN with
    no noun between subject and query (share 0), with every intervening token a noun
    (share 1), and with training distances 1 to 10 only; accuracy at distances 5, 40, 80.

Usage::

    python bench/seeds_lstm.py                       # 10 seeds, three settings
    python bench/seeds_lstm.py --seeds 20 --settings native --experiments agreement
    python bench/seeds_lstm.py --report-only         # the tables again, from the JSON

Each setting runs in its own process (the kernel variables must be set before torch is
imported). Results go to ``--out`` (default ``bench/results/seeds_lstm``), one JSON file
per setting and experiment; the tables are printed at the end.
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
EXPERIMENTS = ("adding", "agreement", "mechanism")
BASELINE = 1 / 6

# The chapter's settings (chapters/04_lstm.ipynb uses the same numbers).
ADDING = {"length": 50, "steps": 600, "lr": 0.02, "evaluate_every": 50, "test_size": 1000,
          "solved_mse": 0.01}
AGREEMENT = {"length": 40, "min_length": 1, "steps": 300, "lr": 0.01, "evaluate_every": 300,
             "test_size": 500, "stop_when_solved": False}
TEST_DISTANCES = (5, 10, 20, 40, 80)
MECHANISM = {  # label: (kind, longest training distance, share of nouns)
    "tanh RNN, distances 1-40, half nouns": ("rnn", 40, 0.5),
    "tanh RNN, distances 1-40, no nouns": ("rnn", 40, 0.0),
    "tanh RNN, distances 1-40, all nouns": ("rnn", 40, 1.0),
    "tanh RNN, distances 1-10, half nouns": ("rnn", 10, 0.5),
    "LSTM, distances 1-40, no nouns": ("lstm", 40, 0.0),
    "LSTM, distances 1-40, all nouns": ("lstm", 40, 1.0),
}
MECHANISM_DISTANCES = (5, 40, 80)
LEARNED = 0.9  # an agreement run "learned" when its accuracy is at least this everywhere


def agreement_scores(model, distances, share) -> list[float]:
    """The chapter's test: 500 sequences per distance, test seed 999 + distance."""
    from throughtime.runs import score_on_task

    return [score_on_task(model, "agreement", d, test_size=500, test_seed=999 + d,
                          distractor_share=share) for d in distances]


def gradient_survival(model, sequences) -> float:
    """||dL/dc_1|| / ||dL/dc_T|| through the trained LSTM, L = the sum of its predictions."""
    from throughtime import numpy_cells
    from throughtime.gradients import hidden_gradient_norms

    params = {name: value.astype(np.float64) for name, value in
              numpy_cells.params_from_torch(model.recurrent).items()}
    readout = model.readout.weight.detach().double().numpy()
    dh_last = np.repeat(readout, sequences.shape[1], axis=0)
    norms = hidden_gradient_norms("lstm", params, sequences.astype(np.float64),
                                  dh_last=dh_last, state="c")
    return float(norms[0] / norms[-1])


def run_experiment(name: str, seeds, args) -> dict:
    """Every run of one experiment in this process's kernel setting."""
    import torch

    from throughtime import numpy_cells
    from throughtime.gates import memory_unit, record_gates
    from throughtime.runs import train_on_task
    from throughtime.tasks import adding_problem

    torch.set_num_threads(1)
    results: dict = {}
    if name == "adding":
        sequences, _ = adding_problem(ADDING["length"], 256, 777)
        marked = sequences[:, :, 1] == 1
        for kind in ("lstm", "rnn"):
            for seed in seeds:
                run = train_on_task(kind, "adding", seed=seed, device="cpu", **ADDING)
                entry = {"steps": run.steps, "mse": run.metric, "solved_at": run.solved_at,
                         "seconds": run.seconds}
                if kind == "lstm" and run.solved:
                    params = numpy_cells.params_from_torch(run.model.recurrent)
                    unit = memory_unit(record_gates(sequences, params), marked)
                    entry["memory_unit"] = {k: v for k, v in unit.items()
                                            if k not in ("kept", "response")}
                    kept = np.sort(unit["kept"])
                    entry["kept"], entry["runner_up_kept"] = float(kept[-1]), float(kept[-2])
                    entry["survival"] = gradient_survival(run.model, sequences)
                results[f"{kind}/{seed}"] = entry
    elif name == "agreement":
        for kind in ("lstm", "rnn"):
            for seed in seeds:
                run = train_on_task(kind, "agreement", seed=seed, device="cpu", **AGREEMENT)
                results[f"{kind}/{seed}"] = {
                    "accuracy": agreement_scores(run.model, TEST_DISTANCES, None),
                    "seconds": run.seconds}
    elif name == "mechanism":
        for label, (kind, longest, share) in MECHANISM.items():
            settings = dict(AGREEMENT, length=longest)
            for seed in seeds:
                run = train_on_task(kind, "agreement", seed=seed, device="cpu",
                                    distractor_share=share, **settings)
                results[f"{label}/{seed}"] = {
                    "accuracy": agreement_scores(run.model, MECHANISM_DISTANCES, share),
                    "seconds": run.seconds}
    else:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")
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


def _range(values, fmt=".3f") -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    return f"{min(values):{fmt}} to {max(values):{fmt}}"


def adding_table(data: dict[str, dict]) -> list[str]:
    lines = ["### adding, T = 50: solved = test MSE at most 0.01 within 600 steps", "",
             "| setting | network | solved | solved at (steps) | final MSE / (1/6) of the "
             "unsolved | min MSE / (1/6) at any checkpoint | MSE / (1/6) at step 250 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for setting, results in data.items():
        for kind, runs in _group(results).items():
            solved = [r["solved_at"] for r in runs if r["solved_at"] is not None]
            unsolved = [r["mse"][-1] / BASELINE for r in runs if r["solved_at"] is None]
            lowest = [min(r["mse"]) / BASELINE for r in runs]
            at250 = [r["mse"][r["steps"].index(250)] / BASELINE for r in runs
                     if 250 in r["steps"]]
            lines.append(f"| {setting} | {kind} | {len(solved)} of {len(runs)} | "
                         f"{_range(solved, 'd')} | {_range(unsolved)} | {_range(lowest)} | "
                         f"{_range(at250)} |")
    lines += ["", "### adding: the memory unit of every solved LSTM", "",
              "| setting | solved LSTMs | input gate at marks | input gate elsewhere | "
              "forget between marks (mean) | forget between marks (min) | cell change "
              "marks / elsewhere | mean forget, all units | kept share | next unit's kept share | "
              "gradient dL/dc_1 / dL/dc_T |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for setting, results in data.items():
        units = [r for key, r in results.items() if key.startswith("lstm/") and
                 "memory_unit" in r]
        if not units:
            continue
        m = [r["memory_unit"] for r in units]
        lines.append(
            f"| {setting} | {len(units)} | {_range([u['input_marked'] for u in m])} | "
            f"{_range([u['input_unmarked'] for u in m])} | "
            f"{_range([u['forget_between'] for u in m], '.4f')} | "
            f"{_range([u['forget_between_min'] for u in m])} | "
            f"{_range([u['change_marked'] / u['change_unmarked'] for u in m], '.0f')} | "
            f"{_range([u['forget_all'] for u in m], '.2f')} | "
            f"{_range([r.get('kept', np.nan) for r in units])} | "
            f"{_range([r.get('runner_up_kept', np.nan) for r in units])} | "
            f"{_range([r.get('survival', np.nan) for r in units], '.2f')} |")
    return lines


def agreement_table(data: dict[str, dict], distances, title: str) -> list[str]:
    lines = [f"### {title}", "",
             f"| setting | runs | learned (accuracy >= {LEARNED} at every distance) | "
             + " | ".join(f"accuracy at {d}: min / median / max" for d in distances) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in distances) + " |"]
    for setting, results in data.items():
        for label, runs in _group(results).items():
            accuracy = np.array([r["accuracy"] for r in runs])
            learned = int((accuracy >= LEARNED).all(axis=1).sum())
            cells = [f"{np.min(a):.3f} / {np.median(a):.3f} / {np.max(a):.3f}"
                     for a in accuracy.T]
            lines.append(f"| {setting} | {label} | {learned} of {len(runs)} | "
                         + " | ".join(cells) + " |")
    return lines


def report(out: Path, settings, experiments) -> str:
    lines = []
    for name in experiments:
        data = {}
        for setting in settings:
            path = out / f"{setting}_{name}.json"
            if path.exists():
                data[setting] = json.loads(path.read_text())["runs"]
        if not data:
            continue
        if name == "adding":
            lines += adding_table(data)
        elif name == "agreement":
            lines += agreement_table(data, TEST_DISTANCES,
                                     "agreement: LSTM (forget bias 1) and tanh RNN, "
                                     "distances 1-40, 300 steps")
        else:
            lines += agreement_table(data, MECHANISM_DISTANCES,
                                     "mechanism: what stops the tanh RNN (300 steps)")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=EXPERIMENTS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "seeds_lstm")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "setting:experiment"
    args = parser.parse_args()

    if args.worker:
        setting, name = args.worker.split(":")
        started = time.process_time()
        results = run_experiment(name, range(args.seeds), args)
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
