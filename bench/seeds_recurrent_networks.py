"""Seed and kernel study of the training claims in "Recurrent neural networks" (chapter 1).

The chapter trains small tanh RNNs twice, and a training outcome depends on the seed and on
the CPU kernels. This script reruns both experiments exactly as the chapter runs them, over
more seeds and under three kernel settings (as ``scripts/portability.py`` sets them), and
prints what holds:

``forecast``
    One-year-ahead forecasts of the yearly sunspot numbers (statsmodels, 1700-2008): a tanh
    RNN (H = 32) with a linear read-out, trained on every 32-year window of the training
    years (1700-1915) with a target at every step after a warm-up of 5, full-batch Adam
    (learning rate 0.02, at most 300 epochs), early stopping on the validation years
    (1916-1961, patience 50). Each forecast runs the network over the 32 years before the
    forecast year from h_0 = 0, as in training. Scored on the test years (1962-2008)
    against persistence, the seasonal naive forecast and AR(p) with p chosen on the
    validation years. Also records how far the forecasts move when the network runs once
    over the whole series instead of over windows.
``memory``
    The memory probe: inputs are i.i.d. N(0, 1) noise, the target at step t is x_{t-k}.
    A tanh RNN (H = 64) with a linear read-out, 128 training sequences of k + 16 steps,
    full-batch Adam (learning rate 0.01) for 200 epochs (the chapter's budget), then, for
    the first ``--long-seeds`` seeds and the delays from 16 on, on to 1,000 epochs with the
    same optimiser. Records R^2 on the training sequences and on 512 fresh ones, the mean
    sensitivity |dy_T / dx_{T-k}| of the last output to the input k steps back, before and
    after training, and the sensitivity profile of the untrained network over lags 0-40.

Usage::

    python bench/seeds_recurrent_networks.py                    # both, three settings
    python bench/seeds_recurrent_networks.py --settings native --experiments memory
    python bench/seeds_recurrent_networks.py --report-only      # the tables again

Each setting runs in its own process (the kernel variables must be set before torch is
imported). Results go to ``--out`` (default ``bench/results/seeds_recurrent_networks``) as
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
EXPERIMENTS = ("forecast", "memory")

# The chapter's settings.
FORECAST = {"hidden_size": 32, "window": 32, "warm_up": 5, "lr": 2e-2, "epochs": 300,
            "patience": 50}
PROBE = {"hidden_size": 64, "context": 16, "lr": 1e-2, "epochs": 200, "train_size": 128,
         "test_size": 512, "profile_lags": 40}
CHAPTER_DELAYS = (4, 8, 16, 24, 32)
STUDY_DELAYS = (4, 8, 12, 16, 20, 24, 32)
LONG_EPOCHS = (500, 1000)  # checkpoints after the chapter's 200 epochs
LONG_FROM_DELAY = 16


# --------------------------------------------------------------------------------------
# The chapter's model and helpers
# --------------------------------------------------------------------------------------


def _torch_pieces():
    import torch
    from torch import nn

    torch.set_num_threads(1)

    class SequenceRegressor(nn.Module):
        """A tanh RNN with a linear read-out: one number y_t per step (chapter 1)."""

        def __init__(self, hidden_size: int):
            super().__init__()
            self.rnn = nn.RNN(input_size=1, hidden_size=hidden_size)
            self.read_out = nn.Linear(hidden_size, 1)

        def forward(self, xs):
            hs, _ = self.rnn(xs)
            return self.read_out(hs)

    def as_tensor(array):
        return torch.as_tensor(array, dtype=torch.float32)

    def mse_where_known(outputs, targets):
        known = ~torch.isnan(targets)
        return ((outputs[known] - targets[known]) ** 2).mean()

    return torch, SequenceRegressor, as_tensor, mse_where_known


# --------------------------------------------------------------------------------------
# Forecasting sunspots
# --------------------------------------------------------------------------------------


def forecast_runs(seeds) -> dict:
    """The chapter's sunspot forecast for every seed, with the baselines."""
    import statsmodels.api as sm

    from throughtime.timeseries import (
        LinearAR,
        StandardScaler,
        chronological_split,
        mae,
        make_windows,
        rmse,
        time_major,
    )
    from throughtime.training import fit

    torch, SequenceRegressor, as_tensor, mse_where_known = _torch_pieces()
    data = sm.datasets.sunspots.load_pandas().data
    years = data["YEAR"].to_numpy().astype(int)
    sunspots = data["SUNACTIVITY"].to_numpy(dtype=np.float64)
    n_years = len(sunspots)
    split = chronological_split(n_years, int(np.searchsorted(years, 1916)),
                                int(np.searchsorted(years, 1962)))
    train_end = split.validation.start
    val_steps, test_steps = (np.arange(n_years)[part] for part in split[1:])
    scaler = StandardScaler().fit(sunspots[split.train])
    scaled = scaler.transform(sunspots)
    window, warm_up = FORECAST["window"], FORECAST["warm_up"]

    def windows_for(part, input_length, values=scaled):
        return make_windows(values, input_length, horizon=1, targets_from=part.start,
                            targets_to=part.stop)

    train_windows = make_windows(scaled, window, horizon=1, targets_to=train_end)
    inputs = as_tensor(time_major(train_windows.inputs))
    targets = as_tensor(time_major(np.hstack([train_windows.inputs[:, 1:],
                                              train_windows.targets])))
    targets[:warm_up] = np.nan
    val_windows = windows_for(split.validation, window)
    val_inputs = as_tensor(time_major(val_windows.inputs))
    val_targets = torch.full_like(val_inputs, np.nan)
    val_targets[-1, :, 0] = as_tensor(val_windows.targets[:, 0])

    def forecast_years(model, part):
        part_inputs = as_tensor(time_major(windows_for(part, window).inputs))
        with torch.no_grad():
            return scaler.inverse_transform(model(part_inputs)[-1, :, 0].numpy())

    def forecast_over_series(model):
        with torch.no_grad():
            outputs = model(as_tensor(time_major(scaled[None])))[:, 0, 0].numpy()
        return scaler.inverse_transform(outputs[test_steps - 1])

    def autoregression_forecast(p, part):
        train = windows_for(split.train, p)
        ar = LinearAR().fit(train.inputs, train.targets)
        return scaler.inverse_transform(ar.predict(windows_for(part, p).inputs)[:, 0])

    truth, val_truth = sunspots[test_steps], sunspots[val_steps]
    ar_order = min(range(1, 16), key=lambda p: rmse(val_truth,
                                                     autoregression_forecast(p, split.validation)))
    season = 11
    baselines = {
        "ar_order": ar_order,
        "ar_rmse": rmse(truth, autoregression_forecast(ar_order, split.test)),
        "ar_mae": mae(truth, autoregression_forecast(ar_order, split.test)),
        "ar_val_rmse": rmse(val_truth, autoregression_forecast(ar_order, split.validation)),
        "persistence_rmse": rmse(truth, sunspots[test_steps - 1]),
        "persistence_mae": mae(truth, sunspots[test_steps - 1]),
        "seasonal_rmse": rmse(truth, sunspots[test_steps - season]),
    }
    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = SequenceRegressor(FORECAST["hidden_size"])
        history = fit(model, (inputs, targets), loss_fn=mse_where_known, batch_dim=1,
                      lr=FORECAST["lr"], epochs=FORECAST["epochs"],
                      validation=(val_inputs, val_targets), patience=FORECAST["patience"],
                      progress=False)
        forecast = forecast_years(model, split.test)
        runs.append({
            "seed": seed,
            "rmse": rmse(truth, forecast),
            "mae": mae(truth, forecast),
            "val_rmse": rmse(val_truth, forecast_years(model, split.validation)),
            "best_epoch": history.best_epoch,
            "epochs": history.epochs,
            "stopped_early": history.stopped_early,
            "series_gap": float(np.abs(forecast_over_series(model) - forecast).max()),
        })
    return {"baselines": baselines, "runs": runs}


# --------------------------------------------------------------------------------------
# The memory probe
# --------------------------------------------------------------------------------------


def memory_runs(seeds, long_seeds: int) -> dict:
    """The chapter's memory probe for every delay of STUDY_DELAYS and every seed."""
    from throughtime.timeseries import r_squared
    from throughtime.training import fit

    torch, SequenceRegressor, as_tensor, mse_where_known = _torch_pieces()
    context, hidden = PROBE["context"], PROBE["hidden_size"]

    def delay_task(delay, n, rng):
        xs = rng.standard_normal((delay + context, n, 1))
        targets = np.full_like(xs, np.nan)
        targets[delay:] = xs[:-delay]
        return as_tensor(xs), as_tensor(targets)

    def recall_r2(model, xs, targets, delay):
        with torch.no_grad():
            ys = model(xs)
        return r_squared(targets[delay:].numpy().ravel(), ys[delay:].numpy().ravel())

    def sensitivity_to_past(model, xs):
        xs = xs.clone().requires_grad_()
        (gradient,) = torch.autograd.grad(model(xs)[-1].sum(), xs)
        return gradient[:, :, 0].abs().mean(dim=1).flip(0).numpy()

    def delay_line(delay, scale=0.01):
        model = SequenceRegressor(hidden)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.zero_()
            model.rnn.weight_ih_l0[0, 0] = scale
            model.rnn.weight_hh_l0.copy_(torch.diag(torch.ones(hidden - 1), -1))
            model.read_out.weight[0, delay] = 1 / scale
        return model

    profile_inputs = as_tensor(np.random.default_rng(0).standard_normal(
        (PROBE["profile_lags"] + 1, PROBE["test_size"], 1)))
    line_test = {delay: delay_task(delay, PROBE["test_size"], np.random.default_rng(delay))
                 for delay in STUDY_DELAYS}
    delay_line_r2 = {delay: recall_r2(delay_line(delay), *line_test[delay], delay)
                     for delay in STUDY_DELAYS}
    profiles, runs = {}, []
    for seed in seeds:
        torch.manual_seed(seed)
        profiles[seed] = sensitivity_to_past(SequenceRegressor(hidden), profile_inputs).tolist()
        for delay in STUDY_DELAYS:
            rng = np.random.default_rng(seed)
            torch.manual_seed(seed)
            train = delay_task(delay, PROBE["train_size"], rng)
            test = delay_task(delay, PROBE["test_size"], rng)
            model = SequenceRegressor(hidden)
            before = float(sensitivity_to_past(model, test[0])[delay])
            optimizer = torch.optim.Adam(model.parameters(), lr=PROBE["lr"])
            done, budgets = 0, [PROBE["epochs"]]
            if seed < long_seeds and delay >= LONG_FROM_DELAY:
                budgets += list(LONG_EPOCHS)
            for budget in budgets:
                fit(model, train, loss_fn=mse_where_known, batch_dim=1, optimizer=optimizer,
                    epochs=budget - done, progress=False)
                done = budget
                runs.append({
                    "seed": seed, "delay": delay, "epochs": budget,
                    "train_r2": recall_r2(model, *train, delay),
                    "test_r2": recall_r2(model, *test, delay),
                    "before": before,
                    "after": float(sensitivity_to_past(model, test[0])[delay]),
                })
    return {"delay_line_r2": delay_line_r2, "profiles": profiles, "runs": runs}


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _span(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{np.median(values):.3f} [{values.min():.3f}, {values.max():.3f}]"


def forecast_table(data: dict) -> list[str]:
    lines = ["## Sunspot forecast (test years 1962-2008)", ""]
    base = next(iter(data.values()))["baselines"]
    lines.append(f"AR({base['ar_order']}) RMSE {base['ar_rmse']:.2f}, MAE {base['ar_mae']:.2f}, "
                 f"validation RMSE {base['ar_val_rmse']:.2f}; persistence RMSE "
                 f"{base['persistence_rmse']:.2f}, MAE {base['persistence_mae']:.2f}; "
                 f"seasonal naive RMSE {base['seasonal_rmse']:.2f}")
    lines += ["", "| setting | seeds | RNN RMSE median [min, max] | RMSE / persistence (max) "
              "| RMSE / AR [min, max] | below AR | RNN val RMSE [min, max] | MAE / persistence "
              "(max) | stopped early | largest window-vs-series gap |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for setting, record in data.items():
        runs, b = record["runs"], record["baselines"]
        rmse_values = np.array([run["rmse"] for run in runs])
        to_ar = rmse_values / b["ar_rmse"]
        lines.append(
            f"| {setting} | {len(runs)} | {_span(rmse_values)} | "
            f"{(rmse_values / b['persistence_rmse']).max():.3f} | "
            f"{to_ar.min():.3f}, {to_ar.max():.3f} | {int((to_ar < 1).sum())} of {len(runs)} | "
            f"{_span([run['val_rmse'] for run in runs])} | "
            f"{max(run['mae'] for run in runs) / b['persistence_mae']:.3f} | "
            f"{sum(run['stopped_early'] for run in runs)} of {len(runs)} | "
            f"{max(run['series_gap'] for run in runs):.1e} |")
    return lines


def memory_table(data: dict) -> list[str]:
    lines = ["## Memory probe (i.i.d. noise, target x_{t-k}, H = 64)", ""]
    first = next(iter(data.values()))
    line_r2 = first["delay_line_r2"]
    lines.append("Hand-built delay line, test R^2: " + ", ".join(
        f"k = {delay}: {float(value):.5f}" for delay, value in line_r2.items()))
    profiles = np.array([profile for record in data.values()
                         for profile in record["profiles"].values()])
    lines.append("Untrained networks, mean |dy_T/dx_{T-j}| over seeds and settings: " + ", ".join(
        f"j = {j}: {profiles[:, j].mean():.1e}" for j in (0, 4, 8, 16, 24, 32)))
    lines += ["", "| setting | epochs | k | seeds | test R^2 median [min, max] | train R^2 "
              "median [min, max] | largest train - test | sensitivity before (median) | "
              "after, median [min, max] |", "| --- | --- | --- | --- | --- | --- | --- | --- "
              "| --- |"]
    for setting, record in data.items():
        runs = record["runs"]
        for epochs in sorted({run["epochs"] for run in runs}):
            for delay in STUDY_DELAYS:
                chosen = [run for run in runs if run["delay"] == delay and run["epochs"] == epochs]
                if not chosen:
                    continue
                gap = max(run["train_r2"] - run["test_r2"] for run in chosen)
                lines.append(
                    f"| {setting} | {epochs} | {delay} | {len(chosen)} | "
                    f"{_span([run['test_r2'] for run in chosen])} | "
                    f"{_span([run['train_r2'] for run in chosen])} | {gap:.3f} | "
                    f"{np.median([run['before'] for run in chosen]):.1e} | "
                    f"{_span([run['after'] for run in chosen])} |")
    return lines


def report(out: Path, settings, experiments) -> str:
    lines = []
    for name, table in (("forecast", forecast_table), ("memory", memory_table)):
        if name not in experiments:
            continue
        data = {setting: json.loads((out / f"{setting}_{name}.json").read_text())["result"]
                for setting in settings if (out / f"{setting}_{name}.json").exists()}
        if data:
            lines += table(data) + [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forecast-seeds", type=int, default=20,
                        help="seeds 0 .. N-1 of the forecast (default 20)")
    parser.add_argument("--probe-seeds", type=int, default=10,
                        help="seeds 0 .. N-1 of the memory probe (default 10)")
    parser.add_argument("--long-seeds", type=int, default=5,
                        help="memory-probe seeds trained on to 1,000 epochs (default 5)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=EXPERIMENTS)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "seeds_recurrent_networks")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "setting:experiment"
    args = parser.parse_args()

    if args.worker:
        setting, name = args.worker.split(":")
        started = time.process_time()
        if name == "forecast":
            result = forecast_runs(range(args.forecast_seeds))
        else:
            result = memory_runs(range(args.probe_seeds), args.long_seeds)
        record = {"setting": setting, "cpu_seconds": time.process_time() - started,
                  "result": result}
        (args.out / f"{setting}_{name}.json").write_text(json.dumps(record, indent=1))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for setting in args.settings:
            for name in args.experiments:
                env = kernel_environment(setting)
                started = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--worker", f"{setting}:{name}",
                                "--forecast-seeds", str(args.forecast_seeds),
                                "--probe-seeds", str(args.probe_seeds),
                                "--long-seeds", str(args.long_seeds), "--out", str(args.out)],
                               env=env, check=True)
                print(f"{setting} {name}: {time.perf_counter() - started:.0f} s", flush=True)
    print(report(args.out, args.settings, args.experiments))


if __name__ == "__main__":
    main()
