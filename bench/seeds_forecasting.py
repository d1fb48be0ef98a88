"""Seed and kernel study of the training claims in "Forecasting a real series, honestly".

The chapter forecasts monthly Mauna Loa CO2 twelve months ahead from the last 24 months with
``timeseries.RecurrentForecaster`` networks (relative inputs, Adam at 0.01 on all windows at
once, gradients clipped at norm 1, early stopping on the validation windows with patience
50 and a cap of 2000 epochs). A training outcome depends on the seed and on the CPU
kernels, so this script reruns the chapter's networks over more seeds and under three
kernel settings (as ``scripts/portability.py`` sets them) and prints what holds:

``grid``
    RNN, LSTM and GRU with 8 and 32 hidden units, trained on the training part (up to
    1989) with early stopping on 1990-1995: epochs run, best epoch, rolling-origin MAE on
    validation, on the test period (1996-2001) over 1-12 months and one month ahead, and
    the per-origin losses for Diebold-Mariano tests against SARIMA.
``fold``
    The same networks trained up to 1983 with early stopping on 1984-1989: the second fold
    of the rolling-origin validation (the chapter's split is the first). By default the
    chapter trains only seed 0 on this fold (all seeds with ``FULL=1``); this script trains
    every seed, so its choice of forecaster uses the mean over seeds on both folds.
``level``
    The GRU with 32 units reading levels instead of relative windows.
``leak``
    The 32-unit networks and the level GRU with a scaler fit on all the data.
``refit``
    The 32-unit networks refit on training and validation data for the number of epochs
    that early stopping chose, then scored on the test period.

The fitted baselines (relative AR, SARIMA, ETS) are computed once per setting, on the test
period and on both validation folds, since the last bits of their fits can depend on the
kernels too; the report ranks every forecaster by its validation MAE over both folds.

Usage::

    python bench/seeds_forecasting.py                     # 10 seeds, three settings
    python bench/seeds_forecasting.py --seeds 5 --settings native --jobs 2
    python bench/seeds_forecasting.py --report-only       # the tables again, from the JSON

Each (setting, seed) runs in its own process (the kernel variables must be set before
torch is imported) and writes ``<setting>_seed<k>.json`` under ``--out`` (default
``bench/results/seeds_forecasting``); finished files are kept, so an interrupted study
resumes where it stopped. The tables are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from kernels import SETTINGS, kernel_environment  # bench/kernels.py

ROOT = Path(__file__).resolve().parents[1]

# The chapter's settings (chapters/07_forecasting.ipynb uses the same numbers).
INPUT_LENGTH, HORIZON = 24, 12
FOLDS = {"1990": ("1990-01-01", "1996-01-01"),   # the chapter's split: validation 1990-1995
         "1984": ("1984-01-01", "1990-01-01")}   # the earlier fold: validation 1984-1989
KINDS = ("rnn", "lstm", "gru")
HIDDEN_SIZES = (8, 32)
TRAINING = {"lr": 1e-2, "epochs": 2000, "patience": 50, "max_norm": 1.0}


def _setup():
    import torch

    from throughtime import timeseries as ts

    torch.set_num_threads(1)
    co2 = ts.load_co2("monthly")
    values = co2.to_numpy()
    splits = {name: ts.chronological_split(co2, validation_start=v, test_start=t)
              for name, (v, t) in FOLDS.items()}
    return ts, values, splits


def _scores(ts, result) -> dict:
    errors = np.abs(result.forecasts - result.actuals)
    return {"mae": float(errors.mean()), "mae_one": float(errors[:, 0].mean()),
            "origin_loss": errors.mean(axis=1).tolist(), "one_loss": errors[:, 0].tolist()}


def _evaluate(ts, values, predict, part) -> object:
    return ts.rolling_windows(values[:part.stop], predict, first_origin=part.start,
                              horizon=HORIZON, input_length=INPUT_LENGTH)


def run_seed(seed: int) -> dict:
    """Every network of one seed, in this process's kernel setting."""
    ts, values, splits = _setup()
    chapter = splits["1990"]
    data = {name: ts.prepare_windows(values, split, INPUT_LENGTH, HORIZON)
            for name, split in splits.items()}
    record: dict = {"grid": {}, "fold": {}, "leak": {}, "refit": {}}
    for kind in KINDS:
        for hidden_size in HIDDEN_SIZES:
            key = f"{kind}/{hidden_size}"
            for fold, split in splits.items():
                model, history = ts.train_forecaster(kind, hidden_size, data[fold], seed=seed,
                                                     device="cpu", **TRAINING)
                forecast = ts.network_forecaster(model, data[fold].scaler, INPUT_LENGTH)
                entry = {"epochs": history.epochs, "best_epoch": history.best_epoch,
                         "validation_mae": _scores(ts, _evaluate(ts, values, forecast.predict,
                                                                 split.validation))["mae"]}
                if fold == "1990":
                    entry.update(_scores(ts, _evaluate(ts, values, forecast.predict,
                                                       split.test)))
                    record["grid"][key] = entry
                    if hidden_size == 32:
                        refit_data = ts.prepare_windows(values, split, INPUT_LENGTH, HORIZON,
                                                        through_validation=True)
                        refit, _ = ts.train_forecaster(
                            kind, hidden_size, refit_data, seed=seed, device="cpu",
                            lr=TRAINING["lr"], epochs=history.best_epoch, patience=None,
                            max_norm=TRAINING["max_norm"])
                        refit_forecast = ts.network_forecaster(refit, refit_data.scaler,
                                                               INPUT_LENGTH)
                        record["refit"][key] = _scores(ts, _evaluate(
                            ts, values, refit_forecast.predict, split.test))
                else:
                    record["fold"][key] = entry
    # The network that reads levels, with the honest and with a leaky scaler.
    leaky_scaler = ts.StandardScaler().fit(values)
    leaky = ts.prepare_windows(values, chapter, INPUT_LENGTH, HORIZON, scaler=leaky_scaler)
    for label, windows in (("honest", data["1990"]), ("leaky", leaky)):
        model, history = ts.train_forecaster("gru", 32, windows, relative=False, seed=seed,
                                             device="cpu", **TRAINING)
        forecast = ts.network_forecaster(model, windows.scaler, INPUT_LENGTH)
        test = _evaluate(ts, values, forecast.predict, chapter.test)
        validation = _evaluate(ts, values, forecast.predict, chapter.validation)
        record["leak"][f"level/{label}"] = {
            "mae": ts.mae(test.actuals, test.forecasts),
            "validation_mae": ts.mae(validation.actuals, validation.forecasts),
            "bias": float(np.mean(test.forecasts - test.actuals)),
            "epochs": history.epochs, "best_epoch": history.best_epoch}
    for kind in KINDS:
        model, _ = ts.train_forecaster(kind, 32, leaky, seed=seed, device="cpu", **TRAINING)
        forecast = ts.network_forecaster(model, leaky_scaler, INPUT_LENGTH)
        test = _evaluate(ts, values, forecast.predict, chapter.test)
        record["leak"][f"{kind}/leaky"] = {"mae": ts.mae(test.actuals, test.forecasts)}
    return record


def run_baselines() -> dict:
    """The fitted statistical baselines (no seed involved): test scores, validation per fold."""
    ts, values, splits = _setup()
    record: dict = {}
    for fold, split in splits.items():
        y_train = values[split.train]
        windows = ts.make_windows(values, INPUT_LENGTH, HORIZON,
                                  targets_to=split.validation.start)
        relative_ar = ts.LinearAR(relative=True).fit(windows.inputs, windows.targets)
        models = {"relative AR": relative_ar.predict}
        models.update({model.name: model for model in (ts.fit_sarima(y_train),
                                                        ts.fit_ets(y_train))})
        for name, model in models.items():
            entry = record.setdefault(name, {})
            for part_name in ("validation", "test") if fold == "1990" else ("validation",):
                part = getattr(split, part_name)
                if callable(getattr(model, "rolling", None)):
                    result, _ = model.rolling(values[:part.stop], first_origin=part.start)
                else:
                    result = _evaluate(ts, values, model, part)
                if part_name == "test":
                    entry.update(_scores(ts, result))
                else:
                    entry[f"validation_{fold}"] = ts.mae(result.actuals, result.forecasts)
    return record


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _load(out: Path, settings) -> dict[str, list[dict]]:
    loaded = {}
    for setting in settings:
        files = sorted(out.glob(f"{setting}_seed*.json"),
                       key=lambda path: int(path.stem.rpartition("seed")[2]))
        if files:
            loaded[setting] = [json.loads(path.read_text()) for path in files]
    return loaded


def _range(values, fmt=".3f") -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():{fmt}} ({values.min():{fmt}}-{values.max():{fmt}})"


def report(out: Path, settings) -> str:
    from throughtime.stats import mann_whitney
    from throughtime.timeseries import diebold_mariano

    loaded = _load(out, settings)
    lines = ["# Seeds and kernels: forecasting Mauna Loa CO2", "",
             f"Training: {TRAINING}; mean (min-max) over seeds; MAE in ppm.", ""]
    for setting, seeds in loaded.items():
        base_path = out / f"{setting}_baselines.json"
        baselines = json.loads(base_path.read_text()) if base_path.exists() else {}
        baselines = {name: scores for name, scores in baselines.items()
                     if isinstance(scores, dict)}
        lines += [f"## {setting}: {len(seeds)} seeds", "",
                  "| network | epochs (max) | best epoch (max) | validation 1990-95 | "
                  "validation 1984-89 | both folds | test 1-12 | test 1 month | refit test |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for kind in KINDS:
            for hidden_size in HIDDEN_SIZES:
                key = f"{kind}/{hidden_size}"
                grid = [s["grid"][key] for s in seeds]
                fold = [s["fold"][key] for s in seeds]
                both = [(g["validation_mae"] + f["validation_mae"]) / 2
                        for g, f in zip(grid, fold, strict=True)]
                refit = [s["refit"][key]["mae"] for s in seeds if key in s["refit"]]
                epochs = max(max(g["epochs"] for g in grid), max(f["epochs"] for f in fold))
                best = max(max(g["best_epoch"] for g in grid), max(f["best_epoch"] for f in fold))
                lines.append(
                    f"| {kind} {hidden_size} | {epochs} | {best} | "
                    f"{_range([g['validation_mae'] for g in grid])} | "
                    f"{_range([f['validation_mae'] for f in fold])} | {_range(both)} | "
                    f"{_range([g['mae'] for g in grid])} | "
                    f"{_range([g['mae_one'] for g in grid])} | "
                    f"{_range(refit) if refit else '-'} |")
        for name, scores in baselines.items():
            lines.append(f"| {name} | | | | | | {scores['mae']:.3f} | {scores['mae_one']:.3f} | |")
        lines.append("")
        # Which configuration would each validation pick, per seed and on the mean?
        lines.append("Chosen by mean validation MAE over seeds (hidden size per kind, then kind):")
        for label, score in (("1990-95 only", lambda g, f: g),
                             ("both folds", lambda g, f: (g + f) / 2)):
            means = {}
            for kind in KINDS:
                for hidden_size in HIDDEN_SIZES:
                    key = f"{kind}/{hidden_size}"
                    means[key] = np.mean([score(s["grid"][key]["validation_mae"],
                                                s["fold"][key]["validation_mae"]) for s in seeds])
            chosen = min(means, key=means.get)
            lines.append(f"- {label}: {chosen} ({means[chosen]:.3f}); sizes per kind: " + ", ".join(
                f"{k} {min(HIDDEN_SIZES, key=lambda h, k=k: means[f'{k}/{h}'])}" for k in KINDS))
        if "SARIMA(1,1,1)(0,1,1)12" in baselines:
            lines.append("Rolling-origin validation over both folds, among all forecasters "
                         "(networks: 32 units, mean over seeds):")
            scores = {name: (entry["validation_1990"] + entry["validation_1984"]) / 2
                      for name, entry in baselines.items() if "validation_1984" in entry}
            for kind in KINDS:
                scores[f"{kind}/32"] = np.mean([
                    (s["grid"][f"{kind}/32"]["validation_mae"]
                     + s["fold"][f"{kind}/32"]["validation_mae"]) / 2 for s in seeds])
            ranked = sorted(scores, key=scores.get)
            lines.append("- " + ", ".join(f"{name} {scores[name]:.3f}" for name in ranked))
        lines.append("")
        # Mann-Whitney between kinds and sizes on the test MAE.
        lines.append("Exact Mann-Whitney p on test MAE (1-12 months):")
        for a, b in (("rnn/32", "lstm/32"), ("rnn/32", "gru/32"), ("lstm/32", "gru/32"),
                     ("rnn/8", "rnn/32"), ("lstm/8", "lstm/32"), ("gru/8", "gru/32")):
            first = [s["grid"][a]["mae"] for s in seeds]
            second = [s["grid"][b]["mae"] for s in seeds]
            test = mann_whitney(first, second)
            lines.append(f"- {a} vs {b}: p = {test.p:.2g} (smallest {test.smallest_p:.2g})")
        lines.append("")
        if "SARIMA(1,1,1)(0,1,1)12" in baselines:
            sarima = baselines["SARIMA(1,1,1)(0,1,1)12"]
            lines.append("Diebold-Mariano against SARIMA (lag 11), each seed; mean loss over "
                         "seeds:")
            for kind in KINDS:
                key = f"{kind}/32"
                for loss, label in (("origin_loss", "1-12"), ("one_loss", "1 month")):
                    ps = [diebold_mariano(np.array(s["grid"][key][loss]), np.array(sarima[loss]),
                                          lag=HORIZON - 1) for s in seeds]
                    pooled = np.mean([s["grid"][key][loss] for s in seeds], axis=0)
                    joint = diebold_mariano(pooled, np.array(sarima[loss]), lag=HORIZON - 1)
                    lines.append(
                        f"- {key} {label}: seeds better at p<0.05 "
                        f"{sum(r.p < 0.05 and r.mean_difference < 0 for r in ps)}, worse "
                        f"{sum(r.p < 0.05 and r.mean_difference > 0 for r in ps)} of {len(ps)}; "
                        f"seed-mean loss: difference {joint.mean_difference:+.3f}, "
                        f"p = {joint.p:.3f}")
            lines.append("")
        level = [s["leak"]["level/honest"] for s in seeds]
        leaky_level = [s["leak"]["level/leaky"] for s in seeds]
        lines += ["Level GRU 32: test MAE " + _range([r["mae"] for r in level]) +
                  ", validation " + _range([r["validation_mae"] for r in level]) +
                  ", bias " + _range([r["bias"] for r in level]) +
                  ", epochs (max) " + str(max(r["epochs"] for r in level)),
                  "Leaky scaler, level GRU 32: change " + _range(
                      [b["mae"] - a["mae"] for a, b in zip(level, leaky_level, strict=True)])]
        for kind in KINDS:
            changes = [s["leak"][f"{kind}/leaky"]["mae"] - s["grid"][f"{kind}/32"]["mae"]
                       for s in seeds]
            lines.append(f"Leaky scaler, {kind} 32 relative: change {_range(changes)}")
        lines.append("")
    return "\n".join(lines)


def _worker_command(setting: str, job: str, out: Path) -> list[str]:
    return [sys.executable, __file__, "--worker", f"{setting}:{job}", "--out", str(out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--jobs", type=int, default=1, help="worker processes at once")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "seeds_forecasting")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "setting:seed" or "setting:baselines"
    args = parser.parse_args()

    if args.worker:
        setting, job = args.worker.split(":")
        started = time.process_time()
        record = run_baselines() if job == "baselines" else run_seed(int(job))
        record["cpu_seconds"] = time.process_time() - started
        name = f"{setting}_baselines.json" if job == "baselines" else f"{setting}_seed{job}.json"
        (args.out / name).write_text(json.dumps(record))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        jobs = [(setting, job) for setting in args.settings
                for job in ["baselines", *map(str, range(args.seeds))]]
        jobs = [(setting, job) for setting, job in jobs if not (args.out / (
            f"{setting}_baselines.json" if job == "baselines" else f"{setting}_seed{job}.json"
        )).exists()]

        def run(job: tuple[str, str]) -> None:
            setting, name = job
            started = time.perf_counter()
            subprocess.run(_worker_command(setting, name, args.out),
                           env=kernel_environment(setting), check=True)
            print(f"{setting} {name}: {time.perf_counter() - started:.0f} s", flush=True)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(run, jobs))
    print(report(args.out, args.settings))


if __name__ == "__main__":
    main()
