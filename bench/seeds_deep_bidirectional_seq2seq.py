"""Seed and kernel study of the training claims in "Deeper, both ways, and sequence to sequence".

The chapter trains small networks and states what they learned. A training outcome depends
on the seed and on the CPU kernels, so this script reruns the chapter's experiments over more
seeds and under three kernel settings (as ``scripts/portability.py`` sets them) and prints
what holds:

``xor``
    ``stacking.neighbour_xor_task`` (T = 10): the XOR of the two neighbours at every inner
    step. A one-layer unidirectional LSTM, a one-layer bidirectional one and a two-layer
    bidirectional one, with about the same number of parameters (``TAGGERS``), 300 steps
    of Adam (learning rate 0.02, batches of 32, clipped at norm 1); test accuracy on 1,000
    sequences.
``leak``
    ``stacking.next_bit_task``: predict the next fair coin flip. A one-layer unidirectional
    and a one-layer bidirectional LSTM (H = 16), 100 steps; test accuracy.
``dropout``
    ``recurrent_dropout.train_language_model``: an LSTM language model (H = 64) over-fits 64
    sequences of 16 symbols from a random order-2 Markov source; no dropout, dropout between
    layers and on the recurrent connection, naive and variational masks (p = 0.3), 80
    full-batch steps; the best validation loss minus the source's own loss.
``seq2seq``
    ``seq2seq.train_reverser``: reverse digit strings of lengths 1-8, without attention (the
    hidden size that matches the parameters of the attention model) and with additive
    attention (H = 32), 400 steps; exact-match accuracy by length with greedy decoding and
    beam search (width 4) on 100 strings per length.

Usage::

    python bench/seeds_deep_bidirectional_seq2seq.py                 # 10 seeds, 3 settings
    python bench/seeds_deep_bidirectional_seq2seq.py --seeds 5 --settings native --experiments xor
    python bench/seeds_deep_bidirectional_seq2seq.py --report-only

Each setting runs in its own process (the kernel variables must be set before torch is
imported). Results go to ``--out`` (default ``bench/results/seeds_deep_bidirectional_seq2seq``),
one JSON file per setting and experiment; the tables are printed at the end.
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
EXPERIMENTS = ("xor", "leak", "dropout", "seq2seq")

# The chapter's settings (chapters/09_deep_bidirectional_seq2seq.ipynb uses the same numbers).
TAGGERS = {  # label: (hidden size, layers, bidirectional)
    "unidirectional, 1 layer": (34, 1, False),
    "bidirectional, 1 layer": (24, 1, True),
    "bidirectional, 2 layers": (12, 2, True),
}
XOR = {"length": 10, "batch_size": 32, "lr": 0.02, "steps": 300}
LEAK_TAGGERS = {"unidirectional": (16, 1, False), "bidirectional": (16, 1, True)}
LEAK = {"length": 10, "batch_size": 32, "lr": 0.02, "steps": 100}
DROPOUT = {  # label: (placement, mask)
    "none": ("none", "variational"),
    "between layers, naive": ("between", "naive"),
    "between layers, variational": ("between", "variational"),
    "recurrent, naive": ("recurrent", "naive"),
    "recurrent, variational": ("recurrent", "variational"),
}
DROPOUT_SETTINGS = {"p": 0.3, "steps": 80}
SEQ2SEQ = {"steps": 400, "max_length": 8, "batch_size": 32, "lr": 0.01}
ATTENTION_HIDDEN = 32
BEAM_WIDTH = 4
PER_LENGTH = 100


def matched_plain_hidden() -> int:
    """The plain model's hidden size whose parameter count is closest to the attention
    model's (as the chapter chooses it)."""
    from throughtime import seq2seq

    budget = seq2seq.parameter_count(seq2seq.Seq2Seq(ATTENTION_HIDDEN, attention=True))
    return min(range(8, 80), key=lambda h: abs(
        seq2seq.parameter_count(seq2seq.Seq2Seq(h, attention=False)) - budget))


def run_experiment(name: str, seeds, args) -> dict:
    """Run one experiment for every seed in this process; a JSON-ready dict."""
    import torch

    from throughtime import recurrent_dropout, seq2seq, stacking

    torch.set_num_threads(1)
    results: dict = {}
    started = time.process_time()
    for seed in seeds:
        if name in ("xor", "leak"):
            taggers, settings = (TAGGERS, XOR) if name == "xor" else (LEAK_TAGGERS, LEAK)
            task = "neighbour_xor" if name == "xor" else "next_bit"
            for label, (hidden, layers, both) in taggers.items():
                run = stacking.train_tagger(task, hidden_size=hidden, num_layers=layers,
                                            bidirectional=both, seed=seed, **settings)
                results.setdefault(label, []).append(
                    {"seed": seed, "accuracy": run.accuracy, "parameters": run.parameters,
                     "seconds": run.seconds})
        elif name == "dropout":
            for label, (placement, mask) in DROPOUT.items():
                run = recurrent_dropout.train_language_model(
                    placement=placement, mask=mask, seed=seed, **DROPOUT_SETTINGS)
                results.setdefault(label, []).append(
                    {"seed": seed, "excess": run.best - run.floor,
                     "final_train_excess": run.final_train - run.floor,
                     "best_step": int(run.checkpoints[int(np.argmin(run.validation))]),
                     "seconds": run.seconds})
        else:
            test = seq2seq.reversal_test_set(range(1, SEQ2SEQ["max_length"] + 1), PER_LENGTH)
            plain_hidden = matched_plain_hidden()
            for label, attention, hidden in (("plain", False, plain_hidden),
                                             ("attention", True, ATTENTION_HIDDEN)):
                run = seq2seq.train_reverser(attention=attention, hidden_size=hidden, seed=seed,
                                             **SEQ2SEQ)
                greedy = seq2seq.accuracy_by_length(run.model, test)
                beam = seq2seq.accuracy_by_length(run.model, test, beam_width=BEAM_WIDTH)
                results.setdefault(label, []).append(
                    {"seed": seed, "hidden": hidden, "parameters": run.parameters,
                     "greedy": {str(k): v for k, v in greedy.items()},
                     "beam": {str(k): v for k, v in beam.items()},
                     "final_loss": float(np.mean(run.losses[-20:])), "seconds": run.seconds})
        print(f"  {name}: seed {seed} done ({time.process_time() - started:.0f} s CPU)",
              flush=True)
    return results


def _range(values, fmt=".3f") -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.min():{fmt}}-{values.max():{fmt}} (mean {values.mean():{fmt}})"


def report(out: Path, settings, experiments) -> str:
    from throughtime.stats import mann_whitney

    lines = []
    for name in experiments:
        lines.append(f"\n## {name}\n")
        for setting in settings:
            path = out / f"{setting}_{name}.json"
            if not path.exists():
                lines.append(f"- {setting}: not run")
                continue
            data = json.loads(path.read_text())
            lines.append(f"### {setting}")
            if name in ("xor", "leak"):
                for label, runs in data.items():
                    accuracy = [r["accuracy"] for r in runs]
                    lines.append(f"- {label} ({runs[0]['parameters']} parameters, "
                                 f"{len(runs)} seeds): accuracy {_range(accuracy)}")
            elif name == "dropout":
                none = [r["excess"] for r in data["none"]]
                for label, runs in data.items():
                    excess = [r["excess"] for r in runs]
                    line = (f"- {label}: best validation excess {_range(excess)}, best at "
                            f"steps {sorted({r['best_step'] for r in runs})}, final training "
                            f"excess {_range([r['final_train_excess'] for r in runs])}")
                    if label != "none":
                        test = mann_whitney(excess, none)
                        line += f"; vs none p = {test.p:.4f}"
                    lines.append(line)
                for first, second in (("between layers, naive", "between layers, variational"),
                                      ("recurrent, naive", "recurrent, variational"),
                                      ("between layers, variational",
                                       "recurrent, variational"),
                                      ("between layers, naive", "recurrent, naive")):
                    a = [r["excess"] for r in data[first]]
                    b = [r["excess"] for r in data[second]]
                    wins = int(sum(x < y for x, y in zip(a, b, strict=True)))
                    lines.append(f"  - {first} vs {second}: lower in {wins} of {len(a)} seeds "
                                 f"(paired), Mann-Whitney p = {mann_whitney(a, b).p:.4f}")
            else:
                for label, runs in data.items():
                    lines.append(f"- {label} (H = {runs[0]['hidden']}, {runs[0]['parameters']} "
                                 f"parameters, {len(runs)} seeds, "
                                 f"{np.mean([r['seconds'] for r in runs]):.1f} s CPU per run)")
                    for decode in ("greedy", "beam"):
                        by_length = {k: [r[decode][k] for r in runs] for k in runs[0][decode]}
                        cells = ", ".join(f"{k}: {min(v):.2f}-{max(v):.2f}"
                                          for k, v in by_length.items())
                        lines.append(f"  - {decode}: {cells}")
                longest = str(SEQ2SEQ["max_length"])
                plain = [r["greedy"][longest] for r in data["plain"]]
                attention = [r["greedy"][longest] for r in data["attention"]]
                lines.append(f"  - length {longest}, greedy: attention vs plain p = "
                             f"{mann_whitney(attention, plain).p:.5f}")
                gain = [r["beam"][longest] - r["greedy"][longest] for r in data["plain"]]
                lines.append(f"  - plain, length {longest}: beam minus greedy "
                             f"{_range(gain, '+.2f')}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=list(EXPERIMENTS))
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "seeds_deep_bidirectional_seq2seq")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("SETTING", "EXPERIMENT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.worker:
        setting, name = args.worker
        results = run_experiment(name, seeds, args)
        (args.out / f"{setting}_{name}.json").write_text(json.dumps(results, indent=1))
        return
    if not args.report_only:
        for setting in args.settings:
            for name in args.experiments:
                print(f"{setting}: {name}", flush=True)
                env = kernel_environment(setting)
                command = [sys.executable, __file__, "--seeds", str(args.seeds),
                           "--first-seed", str(args.first_seed), "--out", str(args.out),
                           "--worker", setting, name]
                subprocess.run(command, env=env, check=True)
    print(report(args.out, args.settings, args.experiments))


if __name__ == "__main__":
    main()
