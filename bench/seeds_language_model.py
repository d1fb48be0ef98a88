"""Seed and kernel study of "A character-level language model, and what its cells learn".

The chapter trains tanh RNN, LSTM (forget bias 1) and GRU character models of about the same
number of parameters on Python source code (``text.load_python_source``), every kind with
the same budget: Adam, batches of B streams of T characters, the state carried between
segments (stateful truncated BPTT), gradients clipped at norm 1. A training outcome depends
on the seed and on the CPU kernels, so this script reruns the chapter's experiments over
more seeds and under three kernel settings (as ``scripts/portability.py`` sets them):

``tune``
    The learning rate of every kind, chosen on the *validation* text: every kind gets the
    same grid and the same seeds (the chapter uses the rates this picks).
``seeds``
    The chapter's runs: for every kind and seed, the test bits per character (the text read
    as one stream), the same with the state reset every 16 and every 64 characters, and
    what the units learn: for each feature of ``text.code_features`` the largest |r| of a
    unit with it, in the trained network (h, and the cell state c for the LSTM) and in the
    same network before training.

Usage::

    python bench/seeds_language_model.py --experiments tune --seeds 2 --settings native
    python bench/seeds_language_model.py                    # 10 seeds, three settings
    python bench/seeds_language_model.py --report-only

Each setting runs in its own process (the kernel variables must be set before torch is
imported). Results go to ``--out`` (default ``bench/results/seeds_language_model``); the
tables are printed at the end.
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
EXPERIMENTS = ("tune", "seeds")
KINDS = ("RNN", "LSTM", "GRU")

# The chapter's settings (chapters/08_language_model.ipynb uses the same numbers).
CHAPTER = {"min_count": 2, "embedding_size": 16, "lstm_hidden_size": 64, "batch_size": 16,
           "length": 32, "steps": 300, "max_norm": 1.0}
LEARNING_RATES = {"RNN": 0.005, "LSTM": 0.02, "GRU": 0.01}  # chosen by "tune"
TUNING_GRID = (0.005, 0.01, 0.02, 0.04)
RESETS = (16, 64)


def _data():
    from throughtime import language_model as lm
    from throughtime import text as tx

    corpus = tx.load_python_source()
    vocabulary = tx.Vocabulary.from_text(corpus.split("train"), min_count=CHAPTER["min_count"])
    ids = {split: vocabulary.encode(corpus.split(split)) for split in tx.SPLITS}
    sizes = lm.matched_hidden_sizes(len(vocabulary), CHAPTER["embedding_size"],
                                    CHAPTER["lstm_hidden_size"])
    features = {}
    for f in corpus.files_in("test"):
        for name, values in tx.code_features(corpus.file_text(f.name)).items():
            features.setdefault(name, []).append(values)
    features = {name: np.concatenate(parts) for name, parts in features.items()}
    return vocabulary, ids, sizes, features


def _train(kind, seeds, lr, vocabulary, ids, sizes):
    from throughtime import language_model as lm

    return lm.train_seeds(kind, seeds, ids["train"], vocabulary_size=len(vocabulary),
                          embedding_size=CHAPTER["embedding_size"], hidden_size=sizes[kind],
                          batch_size=CHAPTER["batch_size"], length=CHAPTER["length"],
                          steps=CHAPTER["steps"], lr=lr, max_norm=CHAPTER["max_norm"])


def _units(model, ids, features):
    """The largest |r| with each feature, for h (and c), and the unit's index."""
    from throughtime import language_model as lm

    recorded = lm.record_states(model, ids)
    found = {}
    for state, values in recorded.items():
        strongest = lm.strongest_units(lm.unit_correlations(values, features))
        found[state] = {name: {"unit": int(units[0]), "r": float(r[0])}
                        for name, (units, r) in strongest.items()}
    return found


def run_experiment(name: str, seeds, args) -> dict:
    import torch

    from throughtime import language_model as lm

    torch.set_num_threads(1)
    vocabulary, ids, sizes, features = _data()
    results: dict = {}
    if name == "tune":
        for kind in KINDS:
            for lr in TUNING_GRID:
                runs = _train(kind, list(seeds), lr, vocabulary, ids, sizes)
                for seed, model in zip(runs.seeds, runs.models, strict=True):
                    results[f"{kind}/{lr}/{seed}"] = {
                        "validation_bits": float(lm.evaluate_bits(model, ids["validation"])[0]),
                        "seconds": runs.seconds / len(runs.seeds)}
    elif name == "seeds":
        test = ids["test"]
        for kind in KINDS:
            runs = _train(kind, list(seeds), LEARNING_RATES[kind], vocabulary, ids, sizes)
            for seed, model in zip(runs.seeds, runs.models, strict=True):
                untrained = lm.CharModel(kind, len(vocabulary), CHAPTER["embedding_size"],
                                         sizes[kind], seed=seed)
                results[f"{kind}/{seed}"] = {
                    "test_bits": float(lm.evaluate_bits(model, test)[0]),
                    "reset_bits": {str(r): float(lm.evaluate_bits(model, test,
                                                                  reset_every=r)[0])
                                   for r in RESETS},
                    "final_training_bits": float(runs.bits[-20:, runs.seeds.index(seed)].mean()),
                    "units": _units(model, test, features),
                    "untrained_units": _units(untrained, test, features),
                    "seconds": runs.seconds / len(runs.seeds)}
        results["ceiling"] = {name: lm.current_character_correlation(test, values)
                              for name, values in features.items()}
    else:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")
    return results


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _spread(values, fmt=".3f") -> str:
    values = np.asarray(values, dtype=float)
    return (f"{values.min():{fmt}} / {np.median(values):{fmt}} / {values.max():{fmt}}")


def tune_table(data: dict[str, dict]) -> list[str]:
    lines = ["### tune: validation bits per character (min / median / max over seeds)", "",
             "| setting | kind | " + " | ".join(f"lr {lr}" for lr in TUNING_GRID) + " |",
             "| --- | --- | " + " | ".join("---" for _ in TUNING_GRID) + " |"]
    for setting, results in data.items():
        for kind in KINDS:
            cells = []
            for lr in TUNING_GRID:
                values = [r["validation_bits"] for key, r in results.items()
                          if key.startswith(f"{kind}/{lr}/")]
                cells.append(_spread(values) if values else "-")
            lines.append(f"| {setting} | {kind} | " + " | ".join(cells) + " |")
    return lines


def seeds_table(data: dict[str, dict]) -> list[str]:
    from throughtime.stats import mann_whitney

    lines = ["### seeds: test bits per character (min / median / max over seeds)", "",
             "| setting | kind | seeds | stream | reset every 64 | reset every 16 | "
             "CPU s per model |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for setting, results in data.items():
        for kind in KINDS:
            runs = [r for key, r in results.items() if key.startswith(f"{kind}/")]
            lines.append(f"| {setting} | {kind} | {len(runs)} | "
                         f"{_spread([r['test_bits'] for r in runs])} | "
                         f"{_spread([r['reset_bits']['64'] for r in runs])} | "
                         f"{_spread([r['reset_bits']['16'] for r in runs])} | "
                         f"{_spread([r['seconds'] for r in runs], '.1f')} |")
    lines += ["", "### seeds: exact two-sided Mann-Whitney p of the test bits", "",
              "| setting | LSTM vs GRU | LSTM vs RNN | GRU vs RNN | every seed: stream < reset 64 "
              "< reset 16 |", "| --- | --- | --- | --- | --- |"]
    for setting, results in data.items():
        bits = {kind: [r["test_bits"] for key, r in results.items()
                       if key.startswith(f"{kind}/")] for kind in KINDS}
        pairs = [("LSTM", "GRU"), ("LSTM", "RNN"), ("GRU", "RNN")]
        cells = []
        for a, b in pairs:
            test = mann_whitney(bits[a], bits[b])
            cells.append(f"p = {test.p:.4f} (U = {test.u:.0f}, max {a} {max(bits[a]):.3f}, "
                         f"min {b} {min(bits[b]):.3f})")
        ordered = all(r["test_bits"] < r["reset_bits"]["64"] < r["reset_bits"]["16"]
                      for key, r in results.items() if "/" in key)
        lines.append(f"| {setting} | " + " | ".join(cells) + f" | {ordered} |")
    lines += ["", "### seeds: the unit with the largest |r| with each feature "
              "(min / median / max over seeds of |r|)", "",
              "| setting | kind | state | " + " | ".join(
                  f"{name} trained / untrained" for name in _feature_names(data)) + " |",
              "| --- | --- | --- | " + " | ".join("---" for _ in _feature_names(data)) + " |"]
    for setting, results in data.items():
        for kind in KINDS:
            runs = [r for key, r in results.items() if key.startswith(f"{kind}/")]
            for state in runs[0]["units"]:
                cells = []
                for name in _feature_names(data):
                    trained = [abs(r["units"][state][name]["r"]) for r in runs]
                    untrained = [abs(r["untrained_units"][state][name]["r"]) for r in runs]
                    cells.append(f"{_spread(trained, '.2f')} vs {_spread(untrained, '.2f')}")
                lines.append(f"| {setting} | {kind} | {state} | " + " | ".join(cells) + " |")
        ceiling = results["ceiling"]
        lines.append(f"| {setting} | current character alone | - | " + " | ".join(
            f"{abs(ceiling[name]):.2f}" for name in _feature_names(data)) + " |")
    return lines


def _feature_names(data):
    first = next(iter(data.values()))
    return list(first["ceiling"])


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
        lines += tune_table(data) if name == "tune" else seeds_table(data)
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--experiments", nargs="+", default=["seeds"], choices=EXPERIMENTS)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "seeds_language_model")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "setting:experiment"
    args = parser.parse_args()

    if args.worker:
        setting, name = args.worker.split(":")
        started = time.process_time()
        results = run_experiment(name, range(args.seeds), args)
        record = {"cpu_seconds": time.process_time() - started, "settings": CHAPTER,
                  "learning_rates": LEARNING_RATES, "runs": results}
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
