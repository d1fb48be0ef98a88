"""Forecasting tools: data, splits, windows, scaler (no leakage), baselines, metrics, origins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from throughtime import timeseries as ts

# --- data ----------------------------------------------------------------------------------


def test_co2_loads_offline_and_clean():
    from statsmodels.datasets import co2

    raw = co2.load_pandas().data["co2"]
    assert len(raw) == 2284 and int(raw.isna().sum()) == 59
    weekly = ts.load_co2("weekly")
    assert len(weekly) == 2284 and not weekly.isna().any()
    assert weekly.index.equals(raw.index) and weekly.name == "co2"
    measured = raw.notna()
    np.testing.assert_array_equal(weekly[measured], raw[measured])  # only the gaps change
    # A filled week lies on the straight line (in time) between its measured neighbours.
    gap = raw.index[raw.isna()][0]
    before, after = raw[:gap].dropna().index[-1], raw[gap:].dropna().index[0]
    fraction = (gap - before) / (after - before)
    assert weekly[gap] == pytest.approx(raw[before] + fraction * (raw[after] - raw[before]))

    monthly = ts.load_co2()
    assert len(monthly) == 526 and not monthly.isna().any()
    assert monthly.index[0] == pd.Timestamp("1958-03-01")
    assert monthly.index[-1] == pd.Timestamp("2001-12-01")
    assert monthly["1990-01-01"] == pytest.approx(weekly["1990-01"].mean())
    with pytest.raises(ValueError, match="frequency"):
        ts.load_co2("daily")


# --- split ---------------------------------------------------------------------------------


def test_split_parts_are_consecutive_and_strictly_ordered():
    series = pd.Series(np.arange(100.0), index=pd.date_range("2000-01-01", periods=100,
                                                              freq="MS"))
    for split in (ts.chronological_split(series, 0.6, 0.8),
                  ts.chronological_split(series, 60, 80),
                  ts.chronological_split(series, "2005-01-01", "2006-09-01")):
        positions = [np.arange(len(series))[part] for part in split]
        assert all(len(p) for p in positions)
        train, validation, test = positions
        assert train.max() < validation.min() and validation.max() < test.min()
        assert np.array_equal(np.concatenate(positions), np.arange(100))  # no gap, no overlap
        for p in positions:
            assert np.all(np.diff(p) == 1)  # never shuffled
    assert ts.chronological_split(series, 0.6, 0.8) == ts.chronological_split(100, 60, 80)
    assert ts.chronological_split(series, "2005-01-01", "2006-09-01").lengths == (60, 20, 20)
    # a date between two observations starts the part at the next one
    assert ts.chronological_split(series, "2004-12-15", 80).validation.start == 60


@pytest.mark.parametrize(
    ("args", "error", "pattern"),
    [
        ((0.8, 0.6), ValueError, "validation_start < test_start"),
        ((0.0, 0.5), ValueError, "strictly between 0 and 1"),
        ((10, 10), ValueError, "every part is non-empty"),
        ((10, 100), ValueError, "non-empty"),
        (("2000-01-01", 50), TypeError, "DatetimeIndex"),
        ((None, 50), TypeError, "validation_start must be"),
    ],
)
def test_split_rejects_bad_boundaries(args, error, pattern):
    with pytest.raises(error, match=pattern):
        ts.chronological_split(np.arange(100.0), *args)


# --- windows -------------------------------------------------------------------------------


def test_windows_by_hand():
    values = np.arange(10.0)
    windows = ts.make_windows(values, input_length=3, horizon=2)
    assert windows.inputs.shape == (6, 3) and windows.targets.shape == (6, 2)
    np.testing.assert_array_equal(windows.inputs[0], [0, 1, 2])
    np.testing.assert_array_equal(windows.targets[0], [3, 4])
    np.testing.assert_array_equal(windows.inputs[-1], [5, 6, 7])
    np.testing.assert_array_equal(windows.targets[-1], [8, 9])
    np.testing.assert_array_equal(windows.origins, np.arange(3, 9))
    for k, origin in enumerate(windows.origins):
        np.testing.assert_array_equal(windows.inputs[k], values[origin - 3:origin])
        np.testing.assert_array_equal(windows.targets[k], values[origin:origin + 2])


def test_windows_confine_targets_but_not_inputs_to_a_part():
    values = np.arange(20.0)
    windows = ts.make_windows(values, 4, 3, targets_from=10, targets_to=15)
    np.testing.assert_array_equal(windows.origins, [10, 11, 12])
    assert windows.targets.min() >= 10 and windows.targets.max() < 15
    assert windows.inputs.min() == 6  # the inputs read the past, before the part


def test_time_major_view():
    inputs = np.arange(12.0).reshape(4, 3)  # N = 4 windows of L = 3
    view = ts.time_major(inputs)
    assert view.shape == (3, 4, 1)
    for k in range(4):
        for t in range(3):
            assert view[t, k, 0] == inputs[k, t]
    assert np.shares_memory(view, inputs)


def test_windows_reject_bad_arguments():
    with pytest.raises(ValueError, match="no window fits"):
        ts.make_windows(np.arange(5.0), 4, 2)
    with pytest.raises(ValueError, match="input_length"):
        ts.make_windows(np.arange(5.0), 0, 1)
    with pytest.raises(TypeError, match="values must be a numpy array"):
        ts.make_windows([1.0, 2.0, 3.0], 1, 1)
    with pytest.raises(ValueError, match="targets_to must be at most"):
        ts.make_windows(np.arange(5.0), 1, 1, targets_to=6)


# --- scaler and leakage --------------------------------------------------------------------


def test_scaler_round_trip_and_formula():
    values = np.array([1.0, 2.0, 3.0, 6.0])
    scaler = ts.StandardScaler().fit(values)
    assert scaler.mean_ == 3.0 and scaler.scale_ == pytest.approx(np.sqrt(3.5))
    z = scaler.transform(np.array([3.0, 6.0]))
    np.testing.assert_allclose(z, [0.0, 3.0 / np.sqrt(3.5)])
    np.testing.assert_allclose(scaler.inverse_transform(z), [3.0, 6.0])
    np.testing.assert_allclose(ts.StandardScaler().fit_transform(values).mean(), 0, atol=1e-15)


def test_scaler_refuses_to_work_before_fit():
    scaler = ts.StandardScaler()
    with pytest.raises(RuntimeError, match="before fit"):
        scaler.transform(np.ones(3))
    with pytest.raises(RuntimeError, match="before fit"):
        scaler.inverse_transform(np.ones(3))
    with pytest.raises(ValueError, match="constant"):
        scaler.fit(np.ones(3))
    assert "not fitted" in repr(scaler)


def test_nothing_from_validation_or_test_reaches_the_scaler_or_the_training_windows():
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=120)) + 50
    split = ts.chronological_split(120, 80, 100)
    wild = values.copy()
    wild[split.validation] = 1e6 * rng.normal(size=20)  # the future, changed beyond recognition
    wild[split.test] = -1e9
    honest = ts.prepare_windows(values, split, input_length=6, horizon=3)
    changed = ts.prepare_windows(wild, split, input_length=6, horizon=3)
    assert honest.scaler.mean_ == changed.scaler.mean_
    assert honest.scaler.scale_ == changed.scaler.scale_
    assert honest.scaler.mean_ == values[:80].mean()  # fit on the training part, exactly
    np.testing.assert_array_equal(honest.train.inputs, changed.train.inputs)
    np.testing.assert_array_equal(honest.train.targets, changed.train.targets)
    # and the training windows never hold a value from position 80 on
    assert honest.train.origins.max() + 3 <= 80


def test_prepared_windows_target_their_own_part_only():
    values = np.arange(100.0)
    split = ts.chronological_split(100, 70, 85)
    data = ts.prepare_windows(values, split, input_length=5, horizon=4)
    for part, windows in zip(split, data[1:], strict=True):
        raw = data.scaler.inverse_transform(windows.targets)
        assert raw.min() >= part.start and raw.max() < part.stop
    np.testing.assert_allclose(data.scaler.inverse_transform(data.test.inputs[0]),
                               values[80:85])  # test inputs read the validation part
    leaky = ts.StandardScaler().fit(values)
    assert ts.prepare_windows(values, split, 5, 4, scaler=leaky).scaler is leaky
    with pytest.raises(TypeError, match="split must be a Split"):
        ts.prepare_windows(values, (slice(0, 70),), 5, 4)
    with pytest.raises(ValueError, match="split covers"):
        ts.prepare_windows(values[:90], split, 5, 4)


# --- metrics -------------------------------------------------------------------------------


def test_metrics_against_direct_formulas():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    y_hat = np.array([[2.0, 2.0], [1.0, 8.0]])  # errors -1, 0, 2, -4
    assert ts.mae(y, y_hat) == pytest.approx((1 + 0 + 2 + 4) / 4)
    assert ts.rmse(y, y_hat) == pytest.approx(np.sqrt((1 + 0 + 4 + 16) / 4))
    train = np.array([1.0, 5.0, 2.0, 4.0, 4.0])  # season 2: |2-1|, |4-5|, |4-2| -> mean 4/3
    assert ts.seasonal_naive_mae(train, 2) == pytest.approx(4 / 3)
    assert ts.mase(y, y_hat, train, season=2) == pytest.approx(1.75 / (4 / 3))
    assert ts.seasonal_naive_mae(train, 1) == pytest.approx((4 + 3 + 2 + 0) / 4)


def test_r_squared_by_hand_and_against_exact_results():
    y = np.array([1.0, 2.0, 3.0, 6.0])  # mean 3, squared deviations 4 + 1 + 0 + 9 = 14
    y_hat = np.array([1.0, 3.0, 3.0, 4.0])  # squared errors 0 + 1 + 0 + 4 = 5
    assert ts.r_squared(y, y_hat) == pytest.approx(1 - 5 / 14)
    assert ts.r_squared(y, y) == 1.0
    assert ts.r_squared(y, np.full(4, y.mean())) == pytest.approx(0.0, abs=1e-15)
    assert ts.r_squared(y, np.full(4, y.mean() + 1)) == pytest.approx(-4 / 14)  # worse: < 0
    # The least-squares line with an intercept has R^2 = (correlation of x and y)^2.
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = 2 * x + rng.normal(size=200)
    slope, intercept = np.polyfit(x, y, 1)
    assert ts.r_squared(y, slope * x + intercept) == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    # Any shape: the sums run over every entry.
    assert ts.r_squared(y.reshape(20, 10), (slope * x + intercept).reshape(20, 10)) \
        == pytest.approx(ts.r_squared(y, slope * x + intercept))


def test_r_squared_rejects_constant_truth_and_mismatched_shapes():
    with pytest.raises(ValueError, match="y_true is constant"):
        ts.r_squared(np.ones(5), np.zeros(5))
    with pytest.raises(ValueError, match="same shape"):
        ts.r_squared(np.arange(3.0), np.arange(4.0))


def test_mase_of_the_in_sample_seasonal_naive_forecast_is_one():
    rng = np.random.default_rng(1)
    for season in (1, 4, 12):
        train = np.sin(np.arange(200) * 2 * np.pi / 12) + rng.normal(size=200)
        in_sample = train[:-season]  # y_hat_t = y_{t-m}
        assert ts.mase(train[season:], in_sample, train, season) == pytest.approx(1.0)


def test_metrics_reject_mismatched_or_degenerate_inputs():
    with pytest.raises(ValueError, match="same shape"):
        ts.mae(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        ts.rmse(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="longer than the season"):
        ts.seasonal_naive_mae(np.arange(12.0), 12)
    with pytest.raises(ValueError, match="MASE is undefined"):
        ts.mase(np.zeros(2), np.ones(2), np.tile([1.0, 2.0], 5), season=2)


# --- baselines -----------------------------------------------------------------------------


INPUTS = np.array([[1.0, 2.0, 3.0, 4.0, 5.0],
                   [10.0, 20.0, 30.0, 40.0, 50.0]])  # N = 2 windows, L = 5


def test_persistence_by_hand():
    np.testing.assert_array_equal(ts.persistence_forecast(INPUTS, 3),
                                  [[5.0, 5.0, 5.0], [50.0, 50.0, 50.0]])


def test_seasonal_naive_by_hand():
    # season 2: the last season is (4, 5); leads 1, 2, 3, 4, 5 read 4, 5, 4, 5, 4
    np.testing.assert_array_equal(ts.seasonal_naive_forecast(INPUTS, 5, season=2),
                                  [[4, 5, 4, 5, 4], [40, 50, 40, 50, 40]])
    np.testing.assert_array_equal(ts.seasonal_naive_forecast(INPUTS, 1, season=5)[:, 0], [1, 10])
    np.testing.assert_array_equal(ts.seasonal_naive_forecast(INPUTS, 2, season=1),
                                  ts.persistence_forecast(INPUTS, 2))
    with pytest.raises(ValueError, match="at least one season"):
        ts.seasonal_naive_forecast(INPUTS, 2, season=6)


def test_mean_forecast_by_hand():
    np.testing.assert_array_equal(ts.mean_forecast(INPUTS, 2, mean=7.5), np.full((2, 2), 7.5))
    with pytest.raises(TypeError, match="mean must be a real number"):
        ts.mean_forecast(INPUTS, 2, mean="7.5")


def test_baselines_share_one_format():
    for forecast in (ts.persistence_forecast(INPUTS, 4), ts.seasonal_naive_forecast(INPUTS, 4, 3),
                     ts.mean_forecast(INPUTS, 4, 0.0)):
        assert forecast.shape == (2, 4)
    with pytest.raises(ValueError, match="inputs must be a 2-D array"):
        ts.persistence_forecast(np.arange(3.0), 2)
    with pytest.raises(ValueError, match="horizon"):
        ts.persistence_forecast(INPUTS, 0)


def test_linear_ar_recovers_an_exact_autoregression():
    # y_t = 0.5 + 0.8 y_{t-1} - 0.3 y_{t-2}, noise-free: least squares finds it exactly.
    y = np.zeros(60)
    y[:2] = [1.0, 2.0]
    for t in range(2, 60):
        y[t] = 0.5 + 0.8 * y[t - 1] - 0.3 * y[t - 2]
    windows = ts.make_windows(y, input_length=2, horizon=2)
    model = ts.LinearAR().fit(windows.inputs, windows.targets)
    np.testing.assert_allclose(model.coef_[:, 0], [0.5, -0.3, 0.8], atol=1e-8)
    # Lead 2 is the recursion applied twice: y_{o+1} = 0.5 + 0.8 y_o - 0.3 y_{o-1}.
    b, a2, a1 = 0.5, -0.3, 0.8
    np.testing.assert_allclose(model.coef_[:, 1], [b + a1 * b, a1 * a2, a1 * a1 + a2],
                               atol=1e-8)
    np.testing.assert_allclose(model.predict(windows.inputs), windows.targets, atol=1e-8)


def test_linear_ar_matches_the_normal_equations_on_noisy_data():
    rng = np.random.default_rng(2)
    inputs, targets = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    design = np.hstack([np.ones((40, 1)), inputs])
    expected = np.linalg.solve(design.T @ design, design.T @ targets)
    np.testing.assert_allclose(ts.LinearAR().fit(inputs, targets).coef_, expected, atol=1e-10)


def test_linear_ar_rejects_misuse():
    with pytest.raises(RuntimeError, match="before fit"):
        ts.LinearAR().predict(INPUTS)
    with pytest.raises(ValueError, match="at least L \\+ 1"):
        ts.LinearAR().fit(INPUTS, INPUTS[:, :1])
    model = ts.LinearAR().fit(np.random.default_rng(0).normal(size=(10, 5)), np.ones((10, 1)))
    with pytest.raises(ValueError, match=r"inputs must have shape \(N, L\)"):
        model.predict(np.ones((2, 4)))


# --- rolling origin ------------------------------------------------------------------------


def test_rolling_origin_expanding_and_sliding():
    values = np.arange(20.0)
    seen = []

    def last_value(history):
        seen.append(history.copy())
        return np.full(3, history[-1])

    result = ts.rolling_origin(values, last_value, first_origin=10, horizon=3, step=2)
    np.testing.assert_array_equal(result.origins, [10, 12, 14, 16])  # 16 + 3 = 19 <= 20
    for origin, history, forecast, actual in zip(result.origins, seen, result.forecasts,
                                                 result.actuals, strict=True):
        np.testing.assert_array_equal(history, values[:origin])  # only the past
        np.testing.assert_array_equal(forecast, [origin - 1] * 3)
        np.testing.assert_array_equal(actual, values[origin:origin + 3])
    seen.clear()
    ts.rolling_origin(values, last_value, first_origin=10, horizon=3, last_origin=12, window=4)
    assert [len(h) for h in seen] == [4, 4, 4]
    np.testing.assert_array_equal(seen[0], values[6:10])


def test_rolling_origin_agrees_with_windows():
    values = np.sin(np.arange(50.0))
    windows = ts.make_windows(values, 4, 2, targets_from=30)
    result = ts.rolling_origin(values, lambda h: ts.persistence_forecast(h[None, -4:], 2)[0],
                               first_origin=30, horizon=2)
    np.testing.assert_array_equal(result.origins, windows.origins)
    np.testing.assert_array_equal(result.actuals, windows.targets)
    np.testing.assert_array_equal(result.forecasts, ts.persistence_forecast(windows.inputs, 2))


def test_rolling_origin_cannot_leak_through_the_history():
    values = np.arange(10.0)

    def vandal(history):
        history[:] = -1.0  # tries to overwrite what it was given
        return [0.0]

    ts.rolling_origin(values, vandal, first_origin=5, horizon=1)
    np.testing.assert_array_equal(values, np.arange(10.0))


def test_rolling_origin_rejects_bad_arguments():
    values = np.arange(10.0)
    with pytest.raises(ValueError, match="returned 2 values"):
        ts.rolling_origin(values, lambda h: [0.0, 0.0], first_origin=5, horizon=1)
    with pytest.raises(ValueError, match="last_origin"):
        ts.rolling_origin(values, lambda h: [0.0], first_origin=5, horizon=1, last_origin=10)
    with pytest.raises(ValueError, match="window"):
        ts.rolling_origin(values, lambda h: [0.0], first_origin=3, horizon=1, window=4)
    with pytest.raises(TypeError, match="forecaster must be callable"):
        ts.rolling_origin(values, None, first_origin=5, horizon=1)


def test_rolling_windows_is_rolling_origin_in_one_batch():
    values = np.cos(np.arange(60.0) / 3) + np.arange(60.0) / 10
    windows = ts.make_windows(values, 6, 3, targets_to=40)
    model = ts.LinearAR().fit(windows.inputs, windows.targets)
    calls = []

    def predict(inputs):
        calls.append(inputs.shape)
        return model.predict(inputs)

    batched = ts.rolling_windows(values, predict, first_origin=40, horizon=3, input_length=6)
    looped = ts.rolling_origin(values, lambda h: model.predict(h[None, -6:])[0], first_origin=40,
                               horizon=3)
    assert calls == [(18, 6)]  # one call for the 18 origins 40 .. 57
    np.testing.assert_array_equal(batched.origins, looped.origins)
    np.testing.assert_array_equal(batched.actuals, looped.actuals)
    np.testing.assert_allclose(batched.forecasts, looped.forecasts, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="input_length"):
        ts.rolling_windows(values, predict, first_origin=5, horizon=3, input_length=6)
    with pytest.raises(ValueError, match="predict returned shape"):
        ts.rolling_windows(values, lambda x: x[:, :2], first_origin=40, horizon=3,
                           input_length=6)


# --- trend baselines and the relative AR ---------------------------------------------------


def test_drift_slope_by_hand():
    y = np.array([1.0, 3.0, 4.0, 8.0])
    assert ts.drift_slope(y) == pytest.approx(7 / 3)  # (8 - 1) / 3
    assert ts.drift_slope(y, lag=2) == pytest.approx(2.0)  # mean(4 - 1, 8 - 3) / 2
    with pytest.raises(ValueError, match="longer than lag"):
        ts.drift_slope(y, lag=4)


def test_drift_forecasts_by_hand():
    np.testing.assert_allclose(ts.drift_forecast(np.array([[1.0, 2.0, 5.0]]), 3, 0.5),
                               [[5.5, 6.0, 6.5]])
    # season 2, slope 1: the last season (3, 4) moved up by 2 per season it lies back
    np.testing.assert_allclose(ts.seasonal_drift_forecast(np.array([[1.0, 2.0, 3.0, 4.0]]), 5,
                                                          2, 1.0),
                               [[5.0, 6.0, 7.0, 8.0, 9.0]])
    np.testing.assert_array_equal(ts.seasonal_drift_forecast(INPUTS, 4, 2, 0.0),
                                  ts.seasonal_naive_forecast(INPUTS, 4, 2))
    with pytest.raises(TypeError, match="slope must be a real number"):
        ts.drift_forecast(INPUTS, 2, "fast")


def test_drift_methods_are_exact_on_their_own_model():
    t = np.arange(120.0)
    line = 2.0 + 0.3 * t
    windows = ts.make_windows(line, 24, 12)
    slope = ts.drift_slope(line)
    np.testing.assert_allclose(ts.drift_forecast(windows.inputs, 12, slope), windows.targets,
                               atol=1e-10)
    season = np.array([0.0, 2.0, 3.0, 1.0, -1.0, -2.0, -3.0, -1.5, 0.5, 1.0, 0.5, -0.5])
    seasonal = line + season[t.astype(int) % 12]
    windows = ts.make_windows(seasonal, 24, 12)
    slope = ts.drift_slope(seasonal, lag=12)
    assert slope == pytest.approx(0.3)
    np.testing.assert_allclose(ts.seasonal_drift_forecast(windows.inputs, 12, 12, slope),
                               windows.targets, atol=1e-10)
    # Without the drift the seasonal naive forecast is a year of trend too low.
    np.testing.assert_allclose(windows.targets - ts.seasonal_naive_forecast(windows.inputs, 12,
                                                                            12), 12 * 0.3)


def test_relative_ar_recovers_a_unit_sum_autoregression():
    # y_t = 1 + y_{t-1} + 0.5 (y_{t-1} - y_{t-2}): lag coefficients 1.5 and -0.5 sum to 1.
    y = np.zeros(80)
    y[:2] = [0.0, 0.3]
    for t in range(2, 80):
        y[t] = 1.0 + y[t - 1] + 0.5 * (y[t - 1] - y[t - 2])
    windows = ts.make_windows(y, input_length=2, horizon=1)
    model = ts.LinearAR(relative=True).fit(windows.inputs, windows.targets)
    # The change from the last value: 1 - 0.5 (y_{o-2} - y_{o-1}).
    np.testing.assert_allclose(model.coef_[:, 0], [1.0, -0.5], atol=1e-8)
    assert model.coef_.shape == (2, 1)  # intercept and L - 1 = 1 difference
    np.testing.assert_allclose(model.predict(windows.inputs), windows.targets, rtol=1e-10)


def test_relative_ar_moves_one_for_one_with_the_level():
    rng = np.random.default_rng(3)
    inputs, targets = rng.normal(size=(50, 6)), rng.normal(size=(50, 3))
    relative = ts.LinearAR(relative=True).fit(inputs, targets)
    levels = ts.LinearAR().fit(inputs, targets)
    shifted = inputs + 100.0
    np.testing.assert_allclose(relative.predict(shifted), relative.predict(inputs) + 100.0,
                               atol=1e-9)
    # The AR on levels has no such constraint: its forecasts do not follow the shift.
    assert not np.allclose(levels.predict(shifted), levels.predict(inputs) + 100.0)
    with pytest.raises(ValueError, match="at least L = 2"):
        ts.LinearAR(relative=True).fit(inputs[:, :1], targets)
    with pytest.raises(TypeError, match="relative must be True or False"):
        ts.LinearAR(relative="yes")


# --- statsmodels' SARIMA and ETS, filtered forward -----------------------------------------


def _seasonal_series(n=132, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 300 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(0, 0.2, n))


@pytest.mark.parametrize("fit", [ts.fit_sarima, ts.fit_ets])
def test_state_space_rolling_equals_a_filter_per_origin(fit):
    values = _seasonal_series()
    model = fit(values[:96], horizon=6)
    fast, _ = model.rolling(values, first_origin=100, last_origin=103)
    slow = ts.rolling_origin(values, model, first_origin=100, last_origin=103, horizon=6)
    np.testing.assert_array_equal(fast.origins, slow.origins)
    np.testing.assert_array_equal(fast.actuals, slow.actuals)
    np.testing.assert_allclose(fast.forecasts, slow.forecasts, rtol=0, atol=1e-8)


@pytest.mark.parametrize("fit", [ts.fit_sarima, ts.fit_ets])
def test_state_space_forecasts_the_training_end_like_statsmodels(fit):
    values = _seasonal_series(seed=1)
    model = fit(values[:96], horizon=12)
    np.testing.assert_allclose(model(values[:96]), np.asarray(model.results.forecast(12)),
                               atol=1e-8)
    result, intervals = model.rolling(values[:108], first_origin=96, coverage=0.8)
    assert result.origins.tolist() == [96]
    np.testing.assert_allclose(result.forecasts[0], np.asarray(model.results.forecast(12)),
                               atol=1e-8)
    assert np.all(intervals.lower < result.forecasts) and np.all(result.forecasts
                                                                 < intervals.upper)
    width = intervals.upper - intervals.lower
    assert np.all(np.diff(width[0]) > 0)  # the further ahead, the wider


def test_sarima_intervals_are_statsmodels_prediction_intervals():
    values = _seasonal_series(seed=3)
    model = ts.fit_sarima(values[:96], horizon=6)
    _, intervals = model.rolling(values, first_origin=101, last_origin=101, coverage=0.9)
    expected = model.results.apply(values[:101]).get_forecast(6).conf_int(alpha=0.1)
    np.testing.assert_allclose(intervals.lower[0], expected[:, 0], atol=1e-8)
    np.testing.assert_allclose(intervals.upper[0], expected[:, 1], atol=1e-8)


def test_state_space_models_reject_bad_arguments():
    values = _seasonal_series()
    with pytest.raises(ValueError, match="two seasons"):
        ts.fit_ets(values[:20])
    with pytest.raises(ValueError, match="order must be"):
        ts.fit_sarima(values, order=(1, 1))
    model = ts.fit_sarima(values[:96], horizon=12)
    with pytest.raises(ValueError, match="last_origin"):
        model.rolling(values, first_origin=100, last_origin=125)
    with pytest.raises(ValueError, match="coverage must lie strictly between 0 and 1"):
        model.rolling(values, first_origin=100, coverage=80)


# --- prediction intervals ------------------------------------------------------------------


def test_empirical_intervals_by_hand():
    actuals = np.array([[0.0], [0.0], [0.0], [0.0], [0.0]])
    validation = ts.RollingOrigin(np.arange(5), actuals - np.array([[-1.0], [0], [1], [2], [3]]),
                                  actuals)  # errors y - y_hat: -1, 0, 1, 2, 3
    test = ts.RollingOrigin(np.array([7, 8]), np.array([[10.0], [20.0]]),
                            np.array([[12.0], [25.0]]))
    intervals = ts.empirical_intervals(validation, test, coverage=0.6)
    # 20% and 80% quantiles of (-1, 0, 1, 2, 3), linear interpolation: -0.2 and 2.2
    np.testing.assert_allclose(intervals.lower, [[9.8], [19.8]])
    np.testing.assert_allclose(intervals.upper, [[12.2], [22.2]])
    assert intervals.coverage == 0.6
    np.testing.assert_allclose(ts.interval_coverage(test.actuals, intervals), [0.5])
    with pytest.raises(ValueError, match="coverage must lie strictly"):
        ts.empirical_intervals(validation, test, coverage=1.0)
    with pytest.raises(ValueError, match="actuals has shape"):
        ts.interval_coverage(np.zeros((3, 1)), intervals)


def test_empirical_intervals_hold_their_coverage_on_errors_like_the_validation_ones():
    rng = np.random.default_rng(5)
    horizon = 3
    spread = np.array([1.0, 2.0, 4.0])  # errors grow with the lead

    def period(size):
        actuals = rng.normal(size=(size, horizon)) * spread
        return ts.RollingOrigin(np.arange(size), np.zeros((size, horizon)), actuals)

    validation, test = period(4000), period(4000)
    intervals = ts.empirical_intervals(validation, test, coverage=0.8)
    np.testing.assert_allclose(ts.interval_coverage(test.actuals, intervals), 0.8, atol=0.02)
    # 80% of a normal lies within 1.2816 standard deviations
    np.testing.assert_allclose(intervals.upper[0], 1.2816 * spread, rtol=0.06)


# --- Diebold-Mariano ----------------------------------------------------------------------


def test_long_run_variance_by_hand():
    d = np.array([1.0, 2.0, 4.0, 3.0])  # mean 2.5, centred -1.5, -0.5, 1.5, 0.5
    assert ts.long_run_variance(d, 0) == pytest.approx(5 / 4)
    # g_1 = (0.75 - 0.75 + 0.75) / 4; Bartlett weight of lag 1 with lag = 1: 1/2
    assert ts.long_run_variance(d, 1) == pytest.approx(5 / 4 + 2 * 0.5 * 0.1875)
    with pytest.raises(ValueError, match="lag must be smaller"):
        ts.long_run_variance(d, 4)


def test_diebold_mariano_matches_statsmodels_newey_west():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    # Overlapping losses: a moving average of 5, like multi-step forecasts from near origins.
    a = np.convolve(rng.normal(size=70), np.ones(5) / 5, "valid") + 0.1
    b = np.zeros_like(a)
    for lag in (0, 3, 11):
        regression = sm.OLS(a - b, np.ones((len(a), 1))).fit(
            cov_type="HAC", cov_kwds={"maxlags": lag, "use_correction": False})
        result = ts.diebold_mariano(a, b, lag=lag)
        assert result.statistic == pytest.approx(regression.tvalues[0], rel=1e-10)
        assert result.n == len(a) and result.lag == lag
        assert result.mean_difference == pytest.approx(a.mean())


def test_diebold_mariano_without_lags_is_a_one_sample_t_test():
    from scipy import stats

    rng = np.random.default_rng(1)
    a, b = rng.normal(0.3, 1.0, 40), rng.normal(0.0, 1.0, 40)
    result = ts.diebold_mariano(a, b, lag=0)
    t_test = stats.ttest_1samp(a - b, 0.0)
    # The same test, except that the variance divides by K instead of K - 1.
    assert result.statistic == pytest.approx(t_test.statistic * np.sqrt(40 / 39))
    swapped = ts.diebold_mariano(b, a, lag=0)
    assert swapped.statistic == pytest.approx(-result.statistic) and swapped.p == result.p


def test_diebold_mariano_overlap_weakens_the_evidence():
    rng = np.random.default_rng(2)
    d = np.convolve(rng.normal(size=72), np.ones(12) / 12, "valid") + 0.15
    naive = ts.diebold_mariano(d, np.zeros_like(d), lag=0)
    honest = ts.diebold_mariano(d, np.zeros_like(d), lag=11)
    assert honest.p > naive.p  # correlated neighbours carry less information


def test_diebold_mariano_rejects_bad_input():
    with pytest.raises(ValueError, match="same origins"):
        ts.diebold_mariano(np.ones(5), np.ones(6), lag=1)
    with pytest.raises(ValueError, match="constant"):
        ts.diebold_mariano(np.ones(5), np.zeros(5), lag=1)
    with pytest.raises(ValueError, match="at least 3 origins"):
        ts.diebold_mariano(np.ones(2), np.zeros(2), lag=0)


# --- recurrent forecasters -----------------------------------------------------------------


def _small_data():
    values = _seasonal_series(n=150)
    split = ts.chronological_split(150, 100, 125)
    return values, split, ts.prepare_windows(values, split, 12, 3)


def test_relative_forecaster_moves_one_for_one_with_the_level():
    import torch

    torch.manual_seed(0)
    model = ts.RecurrentForecaster("gru", 4, horizon=3, relative=True)
    windows = torch.randn(12, 5, 1)
    np.testing.assert_allclose((model(windows + 10.0) - 10.0).detach().numpy(),
                               model(windows).detach().numpy(), atol=1e-5)
    levels = ts.RecurrentForecaster("gru", 4, horizon=3, relative=False)
    assert not torch.allclose(levels(windows + 10.0) - 10.0, levels(windows), atol=1e-3)
    assert isinstance(model.recurrent, torch.nn.GRU) and model.head.out_features == 3
    with pytest.raises(ValueError, match="kind must be one of"):
        ts.RecurrentForecaster("transformer", 4, 3)
    with pytest.raises(ValueError, match=r"windows must have shape \(L, N, 1\)"):
        model(torch.randn(12, 5))


def test_train_forecaster_is_reproducible_and_keeps_the_best_epoch():
    values, split, data = _small_data()
    first, history = ts.train_forecaster("lstm", 4, data, seed=3, epochs=15, patience=3,
                                         lr=0.05, device="cpu")
    second, again = ts.train_forecaster("lstm", 4, data, seed=3, epochs=15, patience=3,
                                        lr=0.05, device="cpu")
    assert history.train_loss == again.train_loss
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        assert torch_equal(p, q)
    assert history.validation_loss[history.best_epoch - 1] == min(history.validation_loss)
    fixed, budget = ts.train_forecaster("lstm", 4, data, seed=3, epochs=3, patience=None,
                                        device="cpu")
    assert budget.epochs == 3 and budget.validation_loss == [] and not budget.stopped_early
    with pytest.raises(TypeError, match="data must be a ForecastData"):
        ts.train_forecaster("lstm", 4, data.train, device="cpu")


def torch_equal(p, q):
    import torch

    return torch.equal(p, q)


def test_network_forecaster_works_in_ppm_and_in_batches():
    values, split, data = _small_data()
    model, _ = ts.train_forecaster("rnn", 4, data, seed=0, epochs=5, patience=None,
                                   device="cpu")
    forecast = ts.network_forecaster(model, data.scaler, 12)
    looped = ts.rolling_origin(values, forecast, first_origin=split.test.start, horizon=3)
    batched = ts.rolling_windows(values, forecast.predict, first_origin=split.test.start,
                                 horizon=3, input_length=12)
    np.testing.assert_allclose(batched.forecasts, looped.forecasts, rtol=1e-6)
    # In ppm: the network's scaled output for the test windows, scaled back.
    import torch

    with torch.no_grad():
        scaled = model(torch.tensor(ts.time_major(data.test.inputs), dtype=torch.float32))
    np.testing.assert_allclose(batched.forecasts,
                               data.scaler.inverse_transform(scaled.double().numpy()),
                               rtol=1e-6)
    with pytest.raises(TypeError, match="scaler must be a StandardScaler"):
        ts.network_forecaster(model, None, 12)


def test_refit_windows_reach_the_test_start_and_no_further():
    values, split, _ = _small_data()
    refit = ts.prepare_windows(values, split, 12, 3, through_validation=True)
    assert refit.scaler.mean_ == pytest.approx(values[:split.test.start].mean())
    assert refit.train.origins[-1] + 3 == split.test.start  # the last targets end there
    changed = values.copy()
    changed[split.test] += 50.0  # the test part cannot reach the refit's training data
    again = ts.prepare_windows(changed, split, 12, 3, through_validation=True)
    np.testing.assert_array_equal(again.train.inputs, refit.train.inputs)
    np.testing.assert_array_equal(again.train.targets, refit.train.targets)
    assert again.scaler.mean_ == refit.scaler.mean_
