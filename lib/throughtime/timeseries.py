"""Forecasting a real series without fooling yourself: data, windows, splits, forecasters.

The pieces of an honest forecasting pipeline, in the order a chapter uses them:

1. ``load_co2``: the Mauna Loa CO2 record shipped with statsmodels (offline), cleaned.
2. ``chronological_split``: train, then validation, then test, in time order, never shuffled.
3. ``StandardScaler``: fit on the training part only, applied everywhere.
4. ``make_windows`` and ``time_major``: (input length L, horizon) pairs for a network.
   ``prepare_windows`` does 3 and 4 at once for the three parts.
5. Baselines that any model must beat, all in one format (inputs (N, L) to forecasts
   (N, horizon)): ``persistence_forecast``, ``seasonal_naive_forecast``, ``mean_forecast``,
   the trend-following ``drift_forecast`` and ``seasonal_drift_forecast`` (slope from
   ``drift_slope``), and ``LinearAR`` (a linear autoregression on the same L lags, on levels
   or, with ``relative=True``, on the same relative inputs as the networks).
6. The field's standard models from statsmodels, fit once on the training part and filtered
   forward with fixed parameters: ``fit_sarima`` and ``fit_ets`` (``StateSpaceForecaster``).
7. Recurrent forecasters: ``RecurrentForecaster`` (``torch.nn`` RNN, LSTM or GRU and a linear
   read-out), ``train_forecaster`` (Adam, early stopping on the validation windows) and
   ``network_forecaster``.
8. Evaluation, in ``forecast_evaluation`` (and importable from here): the metrics ``mae``,
   ``rmse``, ``mase`` and ``r_squared``; ``rolling_origin`` (and its batched twin
   ``rolling_windows``), which moves the forecast origin through a period and forecasts
   again at each one; prediction intervals (``empirical_intervals`` from validation errors,
   ``StateSpaceForecaster.rolling`` from the model) and their ``interval_coverage``; the
   Diebold-Mariano test (``diebold_mariano``) for differences between two forecasters on
   the same origins.

Conventions: a series is a 1-D float array of values y_0, ..., y_{n-1} (position t is time
t). A window that starts at position i has inputs y_i, ..., y_{i+L-1} and targets
y_{i+L}, ..., y_{i+L+horizon-1}; the forecast origin is i + L, the number of values known
when the forecast is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._validate import check_choice, check_float_array, check_int, check_real, describe
from .forecast_evaluation import (  # noqa: F401  (the evaluation, importable from here too)
    DieboldMariano,
    Intervals,
    RollingOrigin,
    _as_series_values,
    _check_coverage,
    _origins,
    diebold_mariano,
    empirical_intervals,
    interval_coverage,
    long_run_variance,
    mae,
    mase,
    r_squared,
    rmse,
    rolling_origin,
    rolling_windows,
    seasonal_naive_mae,
)
from .training import History, choose_device, fit, seed_everything

__all__ = [
    "MONTHS_PER_YEAR",
    "load_co2",
    "Split",
    "chronological_split",
    "Windows",
    "make_windows",
    "time_major",
    "StandardScaler",
    "ForecastData",
    "prepare_windows",
    "persistence_forecast",
    "seasonal_naive_forecast",
    "mean_forecast",
    "drift_slope",
    "drift_forecast",
    "seasonal_drift_forecast",
    "LinearAR",
    "StateSpaceForecaster",
    "fit_sarima",
    "fit_ets",
    "RecurrentForecaster",
    "train_forecaster",
    "network_forecaster",
]

MONTHS_PER_YEAR = 12
"""The season m of a monthly series with a yearly cycle."""


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def load_co2(frequency: str = "monthly") -> pd.Series:
    """Weekly Mauna Loa CO2 (ppm, March 1958 to December 2001), with no missing values.

    The data ship with statsmodels (``statsmodels.datasets.co2``), so they load offline:
    2284 weekly means (weeks ending on Saturday), 59 of them missing, the longest gap 18
    weeks (late January to late May 1964), the last one in 1985.

    Missing weeks are filled by linear interpolation in time (pandas
    ``interpolate(method="time")``): a straight line between the two nearest measured
    weeks. Inside a long gap the line misses the seasonal wiggle; all gaps lie before 1986,
    before any period a chapter evaluates on.

    Parameters
    ----------
    frequency : {"monthly", "weekly"}
        ``"weekly"`` returns the 2284 interpolated weeks. ``"monthly"`` (the default)
        averages them by calendar month: 526 values indexed by the first day of each month,
        with a yearly season of m = 12 steps.

    Returns
    -------
    pandas.Series
        CO2 concentration in ppm, float64, with a ``DatetimeIndex`` and name ``"co2"``.
    """
    check_choice("frequency", frequency, ("monthly", "weekly"))
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"].astype(np.float64)
    weekly = weekly.interpolate(method="time")
    weekly.name = "co2"
    if frequency == "weekly":
        return weekly
    monthly = weekly.resample("MS").mean()
    monthly.name = "co2"
    return monthly


# --------------------------------------------------------------------------------------
# Chronological split
# --------------------------------------------------------------------------------------


class Split(NamedTuple):
    """Positions of the three parts of a series: ``values[split.train]`` and so on.

    The parts are consecutive and in time order: every training position comes before
    every validation position, which comes before every test position.
    """

    train: slice
    validation: slice
    test: slice

    @property
    def lengths(self) -> tuple[int, int, int]:
        """Number of values in train, validation and test."""
        return tuple(part.stop - part.start for part in self)


def _position(name: str, boundary: Any, length: int, index: pd.Index | None) -> int:
    """A split boundary as a position: a fraction, a position, or a date."""
    if isinstance(boundary, bool):
        raise TypeError(f"{name} must be a fraction, a position or a date, got {boundary!r}")
    if isinstance(boundary, float | np.floating):
        if not 0 < boundary < 1:
            raise ValueError(f"{name} as a fraction must lie strictly between 0 and 1, "
                             f"got {boundary}")
        return int(round(float(boundary) * length))
    if isinstance(boundary, int | np.integer):
        return int(boundary)
    if isinstance(boundary, str | pd.Timestamp | np.datetime64):
        if not isinstance(index, pd.DatetimeIndex):
            raise TypeError(f"{name}={boundary!r} is a date, which needs a pandas Series with a "
                            "DatetimeIndex; give a fraction or a position instead")
        return int(index.searchsorted(pd.Timestamp(boundary)))
    raise TypeError(f"{name} must be a fraction (float), a position (int) or a date (str or "
                    f"Timestamp), got {describe(boundary)}")


def chronological_split(series: pd.Series | np.ndarray | int, validation_start: Any,
                        test_start: Any) -> Split:
    """Split a series in time order into train, validation and test; nothing is shuffled.

    Parameters
    ----------
    series : pandas.Series, numpy array or int
        The series (or its length n).
    validation_start, test_start : float, int or date
        Where validation and test begin: a fraction of n (``0.7``), a position (``382``), or,
        for a Series with a ``DatetimeIndex``, a date (``"1990-01-01"``; the part starts at
        the first value on or after it).

    Returns
    -------
    Split
        Slices ``train = [0, v)``, ``validation = [v, t)`` and ``test = [t, n)``, each
        non-empty.
    """
    if isinstance(series, int | np.integer) and not isinstance(series, bool):
        length, index = int(series), None
    elif isinstance(series, pd.Series | np.ndarray):
        if series.ndim != 1:
            raise ValueError(f"series must be 1-D, got shape {series.shape}")
        length = len(series)
        index = series.index if isinstance(series, pd.Series) else None
    else:
        raise TypeError(f"series must be a pandas Series, a numpy array or a length, "
                        f"got {describe(series)}")
    v = _position("validation_start", validation_start, length, index)
    t = _position("test_start", test_start, length, index)
    if not 0 < v < t < length:
        raise ValueError(
            f"need 0 < validation_start < test_start < n = {length} so that every part is "
            f"non-empty, got validation_start at position {v} and test_start at position {t}"
        )
    return Split(slice(0, v), slice(v, t), slice(t, length))


# --------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------


class Windows(NamedTuple):
    """Input windows and the values that follow them (a named tuple of three arrays).

    - ``inputs`` (N, L): ``inputs[k] = values[o - L : o]`` for the origin o = ``origins[k]``;
    - ``targets`` (N, horizon): ``targets[k] = values[o : o + horizon]``;
    - ``origins`` (N,), int: the origin o of each window, the position of its first target.
    """

    inputs: np.ndarray
    targets: np.ndarray
    origins: np.ndarray


def make_windows(values: np.ndarray | pd.Series, input_length: int, horizon: int, *,
                 targets_from: int = 0, targets_to: int | None = None) -> Windows:
    """Every (input, target) pair whose targets lie in ``[targets_from, targets_to)``.

    A window with origin o has inputs y_{o-L}, ..., y_{o-1} and targets y_o, ...,
    y_{o+horizon-1}; the origins run over every o with o >= L, o >= targets_from and
    o + horizon <= targets_to, one step apart. The inputs may reach back before
    ``targets_from``: the past is known when a forecast is made, so validation windows can
    read the end of the training part. Only targets are confined to the part.

    Parameters
    ----------
    values : array of shape (n,) or pandas.Series
    input_length : int
        L, the number of past values the model sees.
    horizon : int
        How many steps ahead to forecast (1 for one-step forecasts).
    targets_from, targets_to : int
        The part whose values may be targets (default: the whole series).

    Returns
    -------
    Windows
        ``inputs`` (N, L), ``targets`` (N, horizon) and ``origins`` (N,), copies in the
        dtype of ``values``.
    """
    values = _as_series_values("values", values)
    input_length = check_int("input_length", input_length, minimum=1)
    horizon = check_int("horizon", horizon, minimum=1)
    n = len(values)
    targets_from = check_int("targets_from", targets_from, minimum=0)
    targets_to = n if targets_to is None else check_int("targets_to", targets_to, minimum=0)
    if targets_to > n:
        raise ValueError(f"targets_to must be at most len(values) = {n}, got {targets_to}")
    first = max(input_length, targets_from)
    origins = np.arange(first, targets_to - horizon + 1)
    if len(origins) == 0:
        raise ValueError(
            f"no window fits: targets must lie in [{targets_from}, {targets_to}) with "
            f"input_length = {input_length} values before them and horizon = {horizon}; "
            f"the series has {n} values"
        )
    inputs = np.stack([values[o - input_length:o] for o in origins])
    targets = np.stack([values[o:o + horizon] for o in origins])
    return Windows(inputs, targets, origins)


def time_major(inputs: np.ndarray) -> np.ndarray:
    """Windows (N, L) as a time-major sequence batch (L, N, 1), the layout of ``torch.nn``.

    Returns a view (no copy). ``torch.tensor(time_major(x), dtype=torch.float32)`` makes the
    input of an ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` with ``input_size=1`` and
    ``batch_first=False``: step t of example k is ``inputs[k, t]``.
    """
    inputs = check_float_array("inputs", inputs, ndim=2)
    return inputs.T[:, :, None]


# --------------------------------------------------------------------------------------
# Scaling, fit on the training part only
# --------------------------------------------------------------------------------------


class StandardScaler:
    """z = (y - mean) / std, with mean and std measured on the data given to ``fit``.

    Fit it on the training part only: a scaler fit on the whole series has seen the mean
    and spread of the validation and test periods, a leak from the future. ``transform``
    and ``inverse_transform`` refuse to run before ``fit``.

    Attributes
    ----------
    mean_, scale_ : float
        The training mean and standard deviation (population, ``ddof=0``); ``None`` before
        ``fit``.
    """

    def __init__(self) -> None:
        self.mean_: float | None = None
        self.scale_: float | None = None

    def fit(self, values: np.ndarray | pd.Series) -> StandardScaler:
        """Measure mean and standard deviation of ``values`` (any shape); return ``self``."""
        if isinstance(values, pd.Series):
            values = values.to_numpy(dtype=np.float64)
        values = check_float_array("values", values)
        scale = float(values.std())
        if not scale > 0:
            raise ValueError(f"values are constant (standard deviation {scale}); "
                             "a standard scaler needs some spread")
        self.mean_, self.scale_ = float(values.mean()), scale
        return self

    def _check_fitted(self, method: str) -> None:
        if self.mean_ is None:
            raise RuntimeError(f"StandardScaler.{method} was called before fit: fit the "
                               "scaler on the training part first, scaler.fit(train_values)")

    def transform(self, values: np.ndarray | pd.Series) -> np.ndarray:
        """``z = (values - mean_) / scale_``, same shape."""
        self._check_fitted("transform")
        if isinstance(values, pd.Series):
            values = values.to_numpy(dtype=np.float64)
        values = check_float_array("values", values)
        return (values - self.mean_) / self.scale_

    def inverse_transform(self, scaled: np.ndarray) -> np.ndarray:
        """``y = scaled * scale_ + mean_``, same shape (back to the original units)."""
        self._check_fitted("inverse_transform")
        scaled = check_float_array("scaled", scaled)
        return scaled * self.scale_ + self.mean_

    def fit_transform(self, values: np.ndarray | pd.Series) -> np.ndarray:
        """``fit(values)`` then ``transform(values)``."""
        return self.fit(values).transform(values)

    def __repr__(self) -> str:
        if self.mean_ is None:
            return "StandardScaler(not fitted)"
        return f"StandardScaler(mean_={self.mean_:.6g}, scale_={self.scale_:.6g})"


class ForecastData(NamedTuple):
    """Scaled windows for the three parts, and the scaler that made them."""

    scaler: StandardScaler
    train: Windows
    validation: Windows
    test: Windows


def prepare_windows(values: np.ndarray | pd.Series, split: Split, input_length: int,
                    horizon: int, scaler: StandardScaler | None = None, *,
                    through_validation: bool = False) -> ForecastData:
    """Scale the series with a scaler fit on the training part, then cut windows per part.

    Each part's windows have their targets inside that part (``make_windows``); the inputs of
    validation and test windows may reach back into earlier parts. Nothing measured on the
    validation or test values reaches the scaler or the training windows.

    Parameters
    ----------
    values : array of shape (n,) or pandas.Series
    split : Split
    input_length, horizon : int
        L and the number of steps forecast.
    scaler : StandardScaler, optional
        Already fitted scaler to use instead (for experiments; ``None``, the default, fits a
        new one on ``values[split.train]``).
    through_validation : bool
        For the refit before the test, once every choice has been made on validation: the
        scaler is fit on training and validation values together, and the training windows
        are every window whose targets lie before the test part. The validation windows are
        still returned (now inside the training data); nothing of the test part is used.

    Returns
    -------
    ForecastData
        The scaler and the ``Windows`` of train, validation and test, all in scaled units.
    """
    values = _as_series_values("values", values)
    if not isinstance(split, Split):
        raise TypeError(f"split must be a Split from chronological_split, got {describe(split)}")
    if split.test.stop != len(values):
        raise ValueError(f"split covers {split.test.stop} values but values has {len(values)}")
    if not isinstance(through_validation, bool | np.bool_):
        raise TypeError(f"through_validation must be True or False, got "
                        f"{describe(through_validation)}")
    known = slice(0, split.test.start) if through_validation else split.train
    if scaler is None:
        scaler = StandardScaler().fit(values[known])
    elif not isinstance(scaler, StandardScaler):
        raise TypeError(f"scaler must be a StandardScaler, got {describe(scaler)}")
    scaled = scaler.transform(values)
    parts = [make_windows(scaled, input_length, horizon, targets_from=part.start,
                          targets_to=part.stop) for part in (known, split.validation, split.test)]
    return ForecastData(scaler, *parts)


# --------------------------------------------------------------------------------------
# Baselines, all mapping inputs (N, L) to forecasts (N, horizon)
# --------------------------------------------------------------------------------------


def _check_inputs(inputs: Any, horizon: Any) -> tuple[np.ndarray, int]:
    inputs = check_float_array("inputs", inputs, ndim=2)
    return inputs, check_int("horizon", horizon, minimum=1)


def persistence_forecast(inputs: np.ndarray, horizon: int) -> np.ndarray:
    """The last value, repeated: y_hat_{o+h} = y_{o-1} for every lead h.

    ``inputs`` (N, L) gives forecasts (N, horizon).
    """
    inputs, horizon = _check_inputs(inputs, horizon)
    return np.repeat(inputs[:, -1:], horizon, axis=1)


def seasonal_naive_forecast(inputs: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season earlier: y_hat_{o+h} = y_{o+h-m*k}, k = ceil((h+1)/m) (h from 0).

    For leads within one season this is y_{o+h-m}; further ahead the last observed season
    repeats. ``inputs`` (N, L) with L >= m gives forecasts (N, horizon).
    """
    inputs, horizon = _check_inputs(inputs, horizon)
    season = check_int("season", season, minimum=1)
    if inputs.shape[1] < season:
        raise ValueError(f"inputs must cover at least one season: L = {inputs.shape[1]} < "
                         f"season m = {season}")
    last_season = inputs[:, -season:]
    return last_season[:, np.arange(horizon) % season]


def mean_forecast(inputs: np.ndarray, horizon: int, mean: float) -> np.ndarray:
    """A constant, the training mean: y_hat_{o+h} = mean for every window and lead.

    ``inputs`` (N, L) only sets N; forecasts have shape (N, horizon).
    """
    inputs, horizon = _check_inputs(inputs, horizon)
    if isinstance(mean, bool) or not isinstance(mean, int | float | np.floating | np.integer):
        raise TypeError(f"mean must be a real number (the training mean), got {describe(mean)}")
    return np.full((inputs.shape[0], horizon), float(mean), dtype=inputs.dtype)


def drift_slope(y_train: np.ndarray | pd.Series, lag: int = 1) -> float:
    """The average change per step over the training part: ``mean(y_t - y_{t-lag}) / lag``.

    With ``lag = 1`` this is (y_{n-1} - y_0) / (n - 1), the slope of the drift method: the
    line through the first and the last training values. With ``lag = m`` (the season) it is
    the mean change over one season divided by m; the seasonal cycle cancels in every
    difference, which makes it the drift of a seasonal random walk y_t = y_{t-m} + m b + e_t.
    Measured on the training part only, like every fitted quantity.

    Parameters
    ----------
    y_train : array of shape (n,)
    lag : int
        1 for the drift method, the season m for seasonal naive with drift.

    Returns
    -------
    float
        The slope b, in units of y per step.
    """
    y_train = _as_series_values("y_train", y_train)
    lag = check_int("lag", lag, minimum=1)
    if len(y_train) <= lag:
        raise ValueError(f"y_train must be longer than lag = {lag}, got {len(y_train)} values")
    return float(np.mean(y_train[lag:] - y_train[:-lag]) / lag)


def drift_forecast(inputs: np.ndarray, horizon: int, slope: float) -> np.ndarray:
    """Persistence plus a straight trend: y_hat_{o+h} = y_{o-1} + (h + 1) b, h = 0, 1, ...

    ``inputs`` (N, L) gives forecasts (N, horizon); b = ``slope`` (see ``drift_slope``).
    """
    inputs, horizon = _check_inputs(inputs, horizon)
    slope = check_real("slope", slope)
    return inputs[:, -1:] + slope * np.arange(1, horizon + 1, dtype=inputs.dtype)


def seasonal_drift_forecast(inputs: np.ndarray, horizon: int, season: int,
                            slope: float) -> np.ndarray:
    """Seasonal naive plus the trend since then: y_hat_{o+h} = y_{o+h-mk} + m k b.

    k = ceil((h + 1) / m) is how many seasons back the copied value lies (h from 0), so the
    copy is moved up by the trend of those k seasons, k m b. ``inputs`` (N, L) with L >= m
    gives forecasts (N, horizon); b = ``slope`` (``drift_slope(y_train, lag=m)``).
    """
    naive = seasonal_naive_forecast(inputs, horizon, season)
    slope = check_real("slope", slope)
    seasons_back = np.arange(horizon) // season + 1
    return naive + slope * season * seasons_back.astype(naive.dtype)


class LinearAR:
    """A linear autoregression on the last L values, one least-squares fit per lead (direct).

    For each lead h = 1, ..., horizon, on levels (``relative=False``, the default):
    y_hat_{o+h-1} = b_h + sum over j = 1..L of a_{h,j} y_{o-j}, with (b_h, a_h) minimising
    the squared error on the training windows (``numpy.linalg.lstsq``). It sees exactly the
    windows the networks see, so it is the linear version of the same forecaster.

    With ``relative=True`` it reads the window relative to its last value, as the book's
    relative networks do, and forecasts the change from it:
    y_hat_{o+h-1} = y_{o-1} + b_h + sum over j = 2..L of a_{h,j} (y_{o-j} - y_{o-1}).
    In levels this is the same model with lag coefficients constrained to sum to 1: a
    forecast moves one for one with the level of its window, so a trend beyond the training
    range does not pull it back.

    Parameters
    ----------
    relative : bool
        Fit on windows and targets minus the window's last value (default False: levels).

    Attributes
    ----------
    coef_ : numpy.ndarray
        On levels, shape (L + 1, horizon): row 0 holds the intercepts b_h; row j (1..L)
        multiplies ``inputs[:, j - 1]`` (oldest value first, like the inputs). Relative,
        shape (L, horizon): row 0 the intercepts, row j (1..L-1) multiplies
        ``inputs[:, j - 1] - inputs[:, -1]``.
    """

    def __init__(self, relative: bool = False) -> None:
        if not isinstance(relative, bool | np.bool_):
            raise TypeError(f"relative must be True or False, got {describe(relative)}")
        self.relative = bool(relative)
        self.coef_: np.ndarray | None = None
        self.input_length_: int | None = None

    def _design(self, inputs: np.ndarray) -> np.ndarray:
        features = inputs[:, :-1] - inputs[:, -1:] if self.relative else inputs
        return np.hstack([np.ones((inputs.shape[0], 1), dtype=inputs.dtype), features])

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> LinearAR:
        """Least squares on windows ``inputs`` (N, L) and ``targets`` (N, horizon)."""
        inputs = check_float_array("inputs", inputs, ndim=2)
        targets = check_float_array("targets", targets, ndim=2)
        if targets.shape[0] != inputs.shape[0]:
            raise ValueError(f"inputs and targets must hold the same number of windows, got "
                             f"{inputs.shape[0]} and {targets.shape[0]}")
        if self.relative and inputs.shape[1] < 2:
            raise ValueError("a relative AR needs windows of at least L = 2 values (the last "
                             f"one is subtracted from the others), got L = {inputs.shape[1]}")
        design = self._design(inputs)
        if inputs.shape[0] < design.shape[1]:
            count = "L" if self.relative else "L + 1"
            raise ValueError(f"need at least {count} = {design.shape[1]} windows to fit "
                             f"{design.shape[1]} coefficients, got {inputs.shape[0]}")
        if self.relative:
            targets = targets - inputs[:, -1:]
        self.coef_, *_ = np.linalg.lstsq(design, targets, rcond=None)
        self.input_length_ = inputs.shape[1]
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Forecasts (N, horizon) for windows ``inputs`` (N, L)."""
        if self.coef_ is None:
            raise RuntimeError("LinearAR.predict was called before fit")
        inputs = check_float_array("inputs", inputs, shape=(None, self.input_length_),
                                   dims=("N", "L"))
        forecasts = self._design(inputs) @ self.coef_
        return forecasts + inputs[:, -1:] if self.relative else forecasts


# --------------------------------------------------------------------------------------
# The field's standard models (statsmodels), fit once and filtered forward
# --------------------------------------------------------------------------------------


class StateSpaceForecaster:
    """A SARIMA or ETS model fit once on the training part, then filtered forward.

    The parameters are estimated once (``fit_sarima``, ``fit_ets``); at each later origin o
    the model runs its filter over ``values[:o]`` with those parameters fixed and forecasts
    the next ``horizon`` values. That is the usual way to roll a statistical model through a
    test period without re-estimating it, the same protocol as a network trained once.

    Call it like any forecaster (``forecaster(history)``, one filter pass per call; works
    with ``rolling_origin``), or use ``rolling`` to forecast at many origins from a single
    filter pass over the whole series, with prediction intervals if asked.

    Attributes
    ----------
    name : str
        ``"SARIMA(p,d,q)(P,D,Q)m"`` or ``"ETS(A,A,A)"``.
    results : statsmodels results
        The fit on the training part (``results.params``, ``results.summary()``).
    horizon : int
    """

    def __init__(self, name: str, results: Any, with_data: Callable[[np.ndarray], Any],
                 horizon: int) -> None:
        self.name = name
        self.results = results
        self._with_data = with_data
        self.horizon = check_int("horizon", horizon, minimum=1)

    def __call__(self, history: np.ndarray) -> np.ndarray:
        """The next ``horizon`` values after ``history`` (1-D), parameters fixed."""
        history = _as_series_values("history", history).astype(np.float64)
        return np.asarray(self._with_data(history).forecast(self.horizon), dtype=np.float64)

    def rolling(self, values: np.ndarray | pd.Series, *, first_origin: int,
                last_origin: int | None = None,
                coverage: float | None = None) -> tuple[RollingOrigin, Intervals | None]:
        """Forecast at every origin first_origin, ..., last_origin from one filter pass.

        The same forecasts as ``rolling_origin(values, self, ...)``: the filter is causal,
        so its state at o depends on ``values[:o]`` only, and the forecast from o is the
        model's dynamic prediction from that state (statsmodels' ``get_prediction`` with
        ``dynamic=0``).

        Parameters
        ----------
        values : array of shape (n,)
        first_origin, last_origin : int
            As in ``rolling_origin`` (default last origin: n - horizon).
        coverage : float, optional
            Also return the model's central prediction intervals of this probability
            (for example 0.8): from the Gaussian forecast distribution, whose variance grows
            with the lead.

        Returns
        -------
        (RollingOrigin, Intervals or None)
        """
        values, horizon, origins = _origins(values, self.horizon, first_origin, last_origin)
        if coverage is not None:
            coverage = _check_coverage(coverage)
        filtered = self._with_data(values)
        forecasts = np.empty((len(origins), horizon))
        lower, upper = np.empty_like(forecasts), np.empty_like(forecasts)
        for k, origin in enumerate(origins):
            prediction = filtered.get_prediction(start=int(origin),
                                                 end=int(origin) + horizon - 1, dynamic=0)
            forecasts[k] = np.asarray(prediction.predicted_mean, dtype=np.float64)
            if coverage is not None:
                bounds = _prediction_bounds(prediction, 1 - coverage)
                lower[k], upper[k] = bounds[:, 0], bounds[:, 1]
        actuals = np.stack([values[o:o + horizon] for o in origins])
        result = RollingOrigin(origins, forecasts, actuals)
        intervals = None if coverage is None else Intervals(lower, upper, coverage)
        return result, intervals

    def __repr__(self) -> str:
        return f"StateSpaceForecaster({self.name}, horizon={self.horizon})"


def _prediction_bounds(prediction: Any, alpha: float) -> np.ndarray:
    """(horizon, 2) lower and upper bounds from a statsmodels prediction (SARIMAX or ETS)."""
    if hasattr(prediction, "pred_int"):  # ETS
        bounds = prediction.pred_int(alpha=alpha)
    else:  # state-space models: conf_int of a forecast includes the observation noise
        bounds = prediction.conf_int(alpha=alpha)
    return np.asarray(bounds, dtype=np.float64)


def fit_sarima(y_train: np.ndarray | pd.Series, *, order: tuple[int, int, int] = (1, 1, 1),
               seasonal_order: tuple[int, int, int, int] = (0, 1, 1, MONTHS_PER_YEAR),
               horizon: int = MONTHS_PER_YEAR) -> StateSpaceForecaster:
    """SARIMA(p,d,q)(P,D,Q)_m by maximum likelihood on ``y_train`` (statsmodels ``SARIMAX``).

    The default, SARIMA(1,1,1)(0,1,1)_12, differences once and once seasonally, so it
    follows a trend and a yearly cycle of slowly changing shape; (0,1,1)(0,1,1)_12 is the
    classic "airline" model, this one adds an AR(1) term.

    Returns
    -------
    StateSpaceForecaster
        Filters forward with the training estimates (``results.apply``).
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y_train = _as_series_values("y_train", y_train).astype(np.float64)
    order = tuple(check_int(f"order[{i}]", v, minimum=0) for i, v in enumerate(order))
    seasonal_order = tuple(check_int(f"seasonal_order[{i}]", v, minimum=0)
                           for i, v in enumerate(seasonal_order))
    if len(order) != 3 or len(seasonal_order) != 4:
        raise ValueError(f"order must be (p, d, q) and seasonal_order (P, D, Q, m), got "
                         f"{order} and {seasonal_order}")
    results = SARIMAX(y_train, order=order, seasonal_order=seasonal_order).fit(disp=False)
    name = "SARIMA({},{},{})({},{},{}){}".format(*order, *seasonal_order)
    return StateSpaceForecaster(name, results, results.apply, horizon)


def fit_ets(y_train: np.ndarray | pd.Series, *, season: int = MONTHS_PER_YEAR,
            horizon: int = MONTHS_PER_YEAR) -> StateSpaceForecaster:
    """ETS(A,A,A), additive Holt-Winters, by maximum likelihood (statsmodels ``ETSModel``).

    Additive errors, an additive (undamped) trend and an additive season of ``season``
    steps: level l, slope b and season s are updated by exponential smoothing, and the
    forecast h steps ahead is l_t + h b_t + s_{t+h-m(k+1)}. The smoothing parameters and the
    initial states are estimated on ``y_train`` and then kept fixed.

    Returns
    -------
    StateSpaceForecaster
        Filters forward with the training estimates (``ETSModel.smooth``).
    """
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y_train = _as_series_values("y_train", y_train).astype(np.float64)
    season = check_int("season", season, minimum=2)
    if len(y_train) < 2 * season + 2:
        raise ValueError(f"y_train must hold at least two seasons and two values "
                         f"({2 * season + 2}), got {len(y_train)}")

    def build(values: np.ndarray) -> Any:
        # A pandas Series with a plain integer index: statsmodels' ETS predictions need one.
        series = pd.Series(values, index=pd.RangeIndex(len(values)))
        return ETSModel(series, error="add", trend="add", seasonal="add",
                        seasonal_periods=season)

    results = build(y_train).fit(disp=False)
    return StateSpaceForecaster("ETS(A,A,A)", results,
                                lambda values: build(values).smooth(results.params), horizon)


# --------------------------------------------------------------------------------------
# Recurrent forecasters (torch.nn)
# --------------------------------------------------------------------------------------


class RecurrentForecaster(nn.Module):
    """A ``torch.nn`` RNN, LSTM or GRU that reads a window and forecasts ``horizon`` steps.

    Reads scaled windows (L, N, 1), time-major, one value per step; a linear layer maps the
    last hidden state h_L (N, H) to the forecasts (N, horizon) (direct multi-output). With
    ``relative=True`` each window is shifted so that its last value is 0 and that value is
    added back to the outputs,
    y_hat_{o+h} = y_{o-1} + g_h(y_{o-L} - y_{o-1}, ..., y_{o-1} - y_{o-1}),
    so the network forecasts the change from the last value seen.

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
        ``torch.nn.RNN`` (tanh), ``torch.nn.LSTM`` or ``torch.nn.GRU``, PyTorch's
        initialisation.
    hidden_size : int
    horizon : int
    relative : bool
    """

    def __init__(self, kind: str, hidden_size: int, horizon: int, relative: bool = True) -> None:
        super().__init__()
        check_choice("kind", kind, ("rnn", "lstm", "gru"))
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        horizon = check_int("horizon", horizon, minimum=1)
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.kind, self.relative = kind, bool(relative)
        self.recurrent = layer(input_size=1, hidden_size=hidden_size)
        self.head = nn.Linear(hidden_size, horizon)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Windows (L, N, 1) -> forecasts (N, horizon), in the windows' units."""
        if windows.ndim != 3 or windows.shape[-1] != 1:
            raise ValueError(f"windows must have shape (L, N, 1), got {tuple(windows.shape)}")
        last = windows[-1] if self.relative else torch.zeros_like(windows[-1])  # (N, 1)
        states, _ = self.recurrent(windows - last)                           # (L, N, H)
        return last + self.head(states[-1])                                  # (N, horizon)


def _as_tensors(windows: Windows, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.tensor(time_major(windows.inputs), dtype=torch.float32, device=device)
    targets = torch.tensor(windows.targets, dtype=torch.float32, device=device)
    return inputs, targets  # (L, N, 1) and (N, horizon)


def train_forecaster(kind: str, hidden_size: int, data: ForecastData, *, relative: bool = True,
                     seed: int = 0, lr: float = 1e-2, epochs: int = 2000,
                     patience: int | None = 50, max_norm: float = 1.0,
                     device: Any = None) -> tuple[RecurrentForecaster, History]:
    """Train a ``RecurrentForecaster`` on ``data.train``, early stopping on ``data.validation``.

    Adam (learning rate ``lr``) on all training windows at once, the mean squared error in
    scaled units, gradients clipped to global norm ``max_norm``; the validation loss after
    every epoch; training stops when it has not improved for ``patience`` epochs (or after
    ``epochs``), and the best epoch's weights are put back (``training.fit``). The network
    is initialised after ``seed_everything(seed)``. With ``patience=None`` it trains for
    exactly ``epochs`` epochs and keeps the last weights (for a refit on more data with a
    budget chosen beforehand; ``data.validation`` is then not used).

    Returns
    -------
    (model, History)
        The model in eval mode and what ``fit`` recorded.
    """
    if not isinstance(data, ForecastData):
        raise TypeError(f"data must be a ForecastData from prepare_windows, got {describe(data)}")
    device = choose_device() if device is None else torch.device(device)
    if device.type == "cuda":  # as reproducible as cuDNN allows
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    seed_everything(seed)
    horizon = data.train.targets.shape[1]
    model = RecurrentForecaster(kind, hidden_size, horizon, relative).to(device)
    validation = None if patience is None else _as_tensors(data.validation, device)
    history = fit(model, _as_tensors(data.train, device), validation=validation,
                  batch_dim=(1, 0), lr=lr, epochs=epochs, patience=patience,
                  max_norm=max_norm, seed=seed, progress=False)
    return model.eval(), history


def network_forecaster(model: nn.Module, scaler: StandardScaler,
                       input_length: int) -> Callable[[np.ndarray], np.ndarray]:
    """A forecaster for ``rolling_origin``/``rolling_windows`` from a trained network.

    The scaler belongs to the model: the last ``input_length`` values are scaled, the
    network forecasts, and the forecasts are scaled back to the series' units. The returned
    function maps a history (n,) to (horizon,) and has a ``predict`` attribute that maps
    windows (N, L) to forecasts (N, horizon) in one batch.
    """
    if not isinstance(scaler, StandardScaler):
        raise TypeError(f"scaler must be a StandardScaler, got {describe(scaler)}")
    input_length = check_int("input_length", input_length, minimum=1)
    device = next(model.parameters()).device

    def predict(inputs: np.ndarray) -> np.ndarray:
        inputs = check_float_array("inputs", inputs, shape=(None, input_length),
                                   dims=("N", "L"))
        windows = torch.tensor(time_major(scaler.transform(inputs)), dtype=torch.float32,
                               device=device)
        with torch.no_grad():
            scaled = model(windows).double().cpu().numpy()
        return scaler.inverse_transform(scaled)

    def forecast(history: np.ndarray) -> np.ndarray:
        return predict(np.asarray(history, dtype=np.float64)[None, -input_length:])[0]

    forecast.predict = predict
    return forecast
