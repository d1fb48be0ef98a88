"""Seed and kernel study of the training claims in "Vanishing and exploding gradients".

The chapter trains small tanh RNNs on the adding problem (Le et al. 2015: T pairs (value,
marker), target the sum of the two marked values, no-memory baseline MSE 1/6). A training
outcome depends on the seed and on the CPU kernels, so this script reruns the chapter's
experiments over many seeds and under three kernel settings (as ``scripts/portability.py``
sets them) and prints what holds:

``sweep``
    How far back a tanh RNN learns: H = 32, PyTorch's initialisation, Adam (learning rate
    0.02), batches of 64, clipping at norm 1; T = 5, 10, 20, 40; the test MSE on 2,000
    sequences after every 100 steps up to ``--sweep-steps``. A run of s steps is the same
    run as the first s steps of a longer one, so one run gives every budget.
``clipping``
    Exploding gradients and clipping: T = 30, plain SGD (learning rate 0.05), W_hh a random
    orthogonal matrix times 2, without clipping and clipped at norm 1, and a control with
    W_hh orthogonal times 1; up to ``--clipping-steps`` steps.
``init``
    Initialisation on the adding problem at T = ``--init-length``: the tanh RNN with
    PyTorch's initialisation, the tanh RNN with an orthogonal W_hh, and the IRNN (ReLU,
    W_hh = identity, zero biases); Adam at each learning rate of ``--init-lrs`` (the same
    grid for every network), clipping at norm 1, up to ``--init-steps`` steps.
``chosen``
    The same three networks, each at the learning rate the chapter gives it
    (``CHOSEN_LR``: the best of the grid 0.001, 0.003, 0.01, 0.02 in the ``init`` study;
    for the tanh networks no rate of the grid learned, and the PyTorch-initialised one
    keeps the sweep's 0.02).

Usage::

    python bench/seeds_vanishing_exploding.py                    # all, three settings
    python bench/seeds_vanishing_exploding.py --settings native --experiments sweep
    python bench/seeds_vanishing_exploding.py --report-only --out DIR   # tables again

The chapter's statements rest on these runs (10 seeds each; about 40 minutes of CPU)::

    python bench/seeds_vanishing_exploding.py --experiments sweep --settings native avx2
    python bench/seeds_vanishing_exploding.py --experiments sweep --settings baseline \
        --sweep-steps 1000
    python bench/seeds_vanishing_exploding.py --experiments clipping --settings native
    python bench/seeds_vanishing_exploding.py --experiments clipping --settings avx2 \
        baseline --clipping-steps 500
    python bench/seeds_vanishing_exploding.py --experiments chosen
    python bench/seeds_vanishing_exploding.py --experiments init --settings native \
        --seeds 5 --init-lrs 0.001 0.003 0.01 0.02

Each setting runs in its own process (the kernel variables must be set before torch is
imported). Results go to ``--out`` (default ``bench/results/seeds_vanishing_exploding``) as
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
EXPERIMENTS = ("sweep", "clipping", "init", "chosen")
BASELINE = 1 / 6  # the adding problem's no-memory MSE
SWEEP_LENGTHS = (5, 10, 20, 40)
INIT_KINDS = {  # name: LastStateRNN options
    "tanh, default": {"nonlinearity": "tanh", "recurrent_init": "default"},
    "tanh, orthogonal": {"nonlinearity": "tanh", "recurrent_init": "orthogonal"},
    "IRNN": {"nonlinearity": "relu", "recurrent_init": "identity"},
}
CHOSEN_LR = {"tanh, default": 0.02, "tanh, orthogonal": 0.003, "IRNN": 0.003}
CLIPPING_RUNS = {  # name: (recurrent scale, clip)
    "scale 2, no clipping": (2.0, None),
    "scale 2, clipped at 1": (2.0, 1.0),
    "scale 1, no clipping": (1.0, None),
}


# --------------------------------------------------------------------------------------
# One run, as the chapter runs it
# --------------------------------------------------------------------------------------


def adding_run(T: int, seed: int, *, steps: int, checkpoints, optimizer: str = "adam",
               lr: float = 0.02, max_norm: float | None = 1.0, hidden_size: int = 32,
               batch_size: int = 64, **model_options) -> dict:
    """Train one LastStateRNN on the adding problem exactly as the chapter does."""
    import torch

    from throughtime.tasks import adding_problem
    from throughtime.training import LastStateRNN, train_steps

    torch.manual_seed(seed)
    data = np.random.default_rng(seed)
    model = LastStateRNN(2, hidden_size, **model_options)
    test = adding_problem(T, 2000, 10_000 + T, as_torch=True)
    history = train_steps(model, lambda: adding_problem(T, batch_size, data, as_torch=True),
                          steps=steps, optimizer=optimizer, lr=lr, max_norm=max_norm,
                          test=test, checkpoints=checkpoints)
    losses = history.losses
    finite = losses[np.isfinite(losses)]
    spikes = np.flatnonzero(history.grad_norms > 1e5)
    return {
        "checkpoints": history.checkpoints,
        "test_mse": [float(v) for v in history.test_losses],
        "diverged_at": history.diverged_at,
        "first_spike": int(spikes[0]) if len(spikes) else None,
        "max_grad_norm": float(np.nanmax(np.where(np.isfinite(history.grad_norms),
                                                  history.grad_norms, np.nan))),
        "initial_loss": float(losses[0]),
        "max_loss": float(finite.max()),
        "last20_at_200": float(np.mean(losses[180:200])) if len(losses) >= 200 else None,
        "min_growth_last30": (float(np.min(finite[-30:][1:] / finite[-30:][:-1]))
                              if len(finite) >= 30 else None),
    }


def run_experiment(name: str, seeds, args) -> dict:
    """Every run of one experiment in this process's kernel setting."""
    import torch

    torch.set_num_threads(1)
    results: dict = {}
    if name == "sweep":
        marks = list(range(100, args.sweep_steps + 1, 100))
        for T in SWEEP_LENGTHS:
            results[f"T={T}"] = {seed: adding_run(T, seed, steps=args.sweep_steps,
                                                  checkpoints=marks) for seed in seeds}
    elif name == "clipping":
        marks = sorted({200, *range(500, args.clipping_steps + 1, 500)})
        for label, (scale, clip) in CLIPPING_RUNS.items():
            results[label] = {
                seed: adding_run(30, seed, steps=args.clipping_steps, checkpoints=marks,
                                 optimizer="sgd", lr=0.05, max_norm=clip,
                                 recurrent_init="orthogonal", recurrent_scale=scale)
                for seed in seeds}
    elif name == "init":
        marks = list(range(100, args.init_steps + 1, 100))
        for label, options in INIT_KINDS.items():
            for lr in args.init_lrs:
                results[f"{label}, lr {lr:g}"] = {
                    seed: adding_run(args.init_length, seed, steps=args.init_steps,
                                     checkpoints=marks, lr=lr, **options)
                    for seed in seeds}
    elif name == "chosen":
        marks = list(range(100, args.init_steps + 1, 100))
        for label, options in INIT_KINDS.items():
            lr = CHOSEN_LR[label]
            results[f"{label}, lr {lr:g}"] = {
                seed: adding_run(args.init_length, seed, steps=args.init_steps,
                                 checkpoints=marks, lr=lr, **options)
                for seed in seeds}
    else:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")
    return results


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _at(run: dict, step: int) -> float:
    """Test MSE after ``step`` updates (inf once the run has diverged before it)."""
    if run["diverged_at"] is not None and step >= run["diverged_at"]:
        return float("inf")
    if step not in run["checkpoints"]:
        return float("nan")  # this setting ran a shorter budget
    return run["test_mse"][run["checkpoints"].index(step)]


def _summary(values) -> str:
    values = np.asarray(values, dtype=float)
    if np.isnan(values).all():
        return "not run"
    return f"{np.min(values):.3f} / {np.median(values):.3f} / {np.max(values):.3f}"


def sweep_table(data: dict[str, dict], budgets) -> list[str]:
    lines = ["### sweep: tanh RNN, Adam 0.02, clip 1; test MSE / (1/6)",
             "",
             "| setting | T | steps | learned (< 0.5 × 1/6) | at baseline (> 0.8 × 1/6) | "
             "min / median / max of MSE/(1/6) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for setting, results in data.items():
        for key, runs in results.items():
            for budget in budgets:
                ratios = [_at(run, budget) / BASELINE for run in runs.values()]
                learned = sum(r < 0.5 for r in ratios)
                stuck = sum(r > 0.8 for r in ratios)
                lines.append(f"| {setting} | {key[2:]} | {budget} | {learned} of {len(ratios)} | "
                             f"{stuck} of {len(ratios)} | {_summary(ratios)} |")
    return lines


def clipping_table(data: dict[str, dict], budgets) -> list[str]:
    lines = ["### clipping: T = 30, SGD 0.05",
             "",
             "| setting | run | diverged | first spike > 1e5 (step) | max grad norm | "
             "loss never above start | mean loss steps 181-200 / (1/6) | "
             + " | ".join(f"test MSE/(1/6) at {b}" for b in budgets) + " |",
             "| --- | --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in budgets)
             + " |"]
    for setting, results in data.items():
        for label, runs in results.items():
            runs = list(runs.values())
            diverged = [r["diverged_at"] for r in runs if r["diverged_at"] is not None]
            spikes = [r["first_spike"] for r in runs if r["first_spike"] is not None]
            never_above = sum(r["max_loss"] <= r["initial_loss"] + 1e-9 for r in runs)
            last20 = [r["last20_at_200"] / BASELINE for r in runs
                      if r["last20_at_200"] is not None and np.isfinite(r["last20_at_200"])]
            cells = []
            for budget in budgets:
                ratios = [_at(r, budget) / BASELINE for r in runs]
                finite = [x for x in ratios if np.isfinite(x)]
                if all(np.isnan(x) or x == float("inf") for x in ratios) and any(
                        np.isnan(x) for x in ratios):
                    cells.append("not run")
                else:
                    cells.append(_summary(finite) if finite else "all diverged")
            lines.append(
                f"| {setting} | {label} | {len(diverged)} of {len(runs)}"
                + (f" (steps {min(diverged)}-{max(diverged)})" if diverged else "")
                + f" | {(str(min(spikes)) + '-' + str(max(spikes))) if spikes else 'none'}"
                + f" | {max(r['max_grad_norm'] for r in runs):.3g}"
                + f" | {never_above} of {len(runs)}"
                + f" | {_summary(last20) if last20 else '-'} | " + " | ".join(cells) + " |")
    return lines


def init_table(data: dict[str, dict], budgets) -> list[str]:
    lines = ["### initialisation: test MSE / (1/6) (min / median / max), learned = < 0.5",
             "",
             "| setting | network, learning rate | "
             + " | ".join(f"{b} steps" for b in budgets) + " | learned at the end | diverged |",
             "| --- | --- | " + " | ".join("---" for _ in budgets) + " | --- | --- |"]
    for setting, results in data.items():
        for label, runs in results.items():
            runs = list(runs.values())
            cells = []
            for budget in budgets:
                ratios = [_at(r, budget) / BASELINE for r in runs]
                cells.append(_summary(ratios))
            final = [_at(r, budgets[-1]) / BASELINE for r in runs]
            diverged = sum(r["diverged_at"] is not None for r in runs)
            lines.append(f"| {setting} | {label} | " + " | ".join(cells)
                         + f" | {sum(x < 0.5 for x in final)} of {len(runs)} | {diverged} |")
    return lines


def evidence_lines(data: dict[str, dict], budgets) -> list[str]:
    """Exact Mann-Whitney p of each network against the PyTorch-initialised tanh RNN."""
    from throughtime.stats import mann_whitney

    lines = ["", "Exact two-sided Mann-Whitney p against the tanh RNN with PyTorch's "
             "initialisation (test MSE):", ""]
    for setting, results in data.items():
        labels = list(results)
        reference = results[labels[0]]
        for label in labels[1:]:
            for budget in budgets:
                a = [_at(run, budget) for run in results[label].values()]
                b = [_at(run, budget) for run in reference.values()]
                if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
                    continue
                test = mann_whitney(a, b)
                lines.append(f"- {setting}, {label} vs {labels[0]}, {budget} steps: "
                             f"p = {test.p:.2g} (smallest possible {test.smallest_p:.2g})")
    return lines


def report(out: Path, settings, experiments, args) -> str:
    lines = []
    for experiment in experiments:
        data = {}
        for setting in settings:
            path = out / f"{experiment}_{setting}.json"
            if path.exists():
                data[setting] = json.loads(path.read_text())
        if not data:
            continue
        if experiment == "sweep":
            budgets = [b for b in (300, 600, 1000, 1500, 2000, 3000) if b <= args.sweep_steps]
            lines += sweep_table(data, budgets)
        elif experiment == "clipping":
            budgets = [b for b in (200, 500, 1000, 2000, 4000) if b <= args.clipping_steps]
            lines += clipping_table(data, budgets)
        else:
            budgets = [b for b in (300, 600, 1000, 1500, 2000, 3000) if b <= args.init_steps]
            lines += init_table(data, budgets)
            if experiment == "chosen":
                lines += evidence_lines(data, budgets)
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=EXPERIMENTS)
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--sweep-steps", type=int, default=1500)
    parser.add_argument("--clipping-steps", type=int, default=2000)
    parser.add_argument("--init-length", type=int, default=40)
    parser.add_argument("--init-steps", type=int, default=1000)
    parser.add_argument("--init-lrs", type=float, nargs="+", default=[0.02])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "seeds_vanishing_exploding")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("SETTING", "EXPERIMENT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))

    if args.worker:
        setting, experiment = args.worker
        started = time.process_time()
        results = run_experiment(experiment, seeds, args)
        path = args.out / f"{experiment}_{setting}.json"
        path.write_text(json.dumps(results, indent=1))
        print(f"{experiment} under {setting}: {time.process_time() - started:.0f} s CPU",
              flush=True)
        return 0

    if not args.report_only:
        passthrough = [f"--seeds={args.seeds}", f"--sweep-steps={args.sweep_steps}",
                       f"--clipping-steps={args.clipping_steps}",
                       f"--init-length={args.init_length}", f"--init-steps={args.init_steps}",
                       f"--out={args.out}", "--init-lrs", *map(str, args.init_lrs)]
        for experiment in args.experiments:
            for setting in args.settings:
                env = kernel_environment(setting)
                subprocess.run([sys.executable, __file__, "--worker", setting, experiment,
                                *passthrough], env=env, check=True)
    text = report(args.out, args.settings, args.experiments, args)
    print(text)
    (args.out / "report.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
