"""Forecasting a real series without fooling yourself: data, windows, splits, baselines.

The pieces of an honest forecasting pipeline, in the order a chapter uses them:

1. ``load_co2``: the Mauna Loa CO2 record shipped with statsmodels (offline), cleaned.
2. ``chronological_split``: train, then validation, then test, in time order, never shuffled.
3. ``StandardScaler``: fit on the training part only, applied everywhere.
4. ``make_windows`` and ``time_major``: (input length L, horizon) pairs for a network.
   ``prepare_windows`` does 3 and 4 at once for the three parts.
5. Baselines that any model must beat, all in one format (inputs (N, L) to forecasts
   (N, horizon)): ``persistence_forecast``, ``seasonal_naive_forecast``, ``mean_forecast``
   and ``LinearAR`` (a linear autoregression on the same L lags).
6. Metrics ``mae``, ``rmse``, ``mase`` (Hyndman and Koehler 2006) and ``r_squared``, and
   ``rolling_origin``,
   which moves the forecast origin through the test period and forecasts again at each one.

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

from ._validate import check_choice, check_float_array, check_int, describe

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
    "mae",
    "rmse",
    "r_squared",
    "seasonal_naive_mae",
    "mase",
    "persistence_forecast",
    "seasonal_naive_forecast",
    "mean_forecast",
    "LinearAR",
    "RollingOrigin",
    "rolling_origin",
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


def _as_series_values(name: str, values: Any) -> np.ndarray:
    """A 1-D float array from a numpy array or a pandas Series."""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=np.float64)
    return check_float_array(name, values, ndim=1)


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
                    horizon: int, scaler: StandardScaler | None = None) -> ForecastData:
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
    if scaler is None:
        scaler = StandardScaler().fit(values[split.train])
    elif not isinstance(scaler, StandardScaler):
        raise TypeError(f"scaler must be a StandardScaler, got {describe(scaler)}")
    scaled = scaler.transform(values)
    parts = [make_windows(scaled, input_length, horizon, targets_from=part.start,
                          targets_to=part.stop) for part in split]
    return ForecastData(scaler, *parts)


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = check_float_array("y_true", np.asarray(y_true, dtype=np.float64))
    y_pred = check_float_array("y_pred", np.asarray(y_pred, dtype=np.float64))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and "
                         f"{y_pred.shape}")
    return y_true, y_pred


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, ``mean |y - y_hat|`` over every entry (any shape, shapes equal)."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error, sqrt(mean (y - y_hat)^2) over every entry."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def r_squared(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, ``R^2 = 1 - sum (y - y_hat)^2 / sum (y - y_bar)^2``.

    The sums run over every entry (any shape, shapes equal), and y_bar is the mean of
    ``y_true``. A perfect forecast scores 1, the constant forecast y_bar scores 0, and a
    forecast worse than that constant scores below 0 (there is no lower bound).
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    spread = float(np.sum((y_true - y_true.mean()) ** 2))
    if not spread > 0:
        raise ValueError("y_true is constant, so R^2 is undefined (its denominator, the sum of "
                         "squared deviations from the mean, is 0)")
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / spread


def seasonal_naive_mae(y_train: np.ndarray | pd.Series, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast on the training part, MASE's denominator.

    ``Q = (1 / (n - m)) * sum over t = m, ..., n-1 of |y_t - y_{t-m}|`` for the season m.
    """
    y_train = _as_series_values("y_train", y_train)
    season = check_int("season", season, minimum=1)
    if len(y_train) <= season:
        raise ValueError(f"y_train must be longer than the season m = {season}, got "
                         f"{len(y_train)} values")
    scale = float(np.mean(np.abs(y_train[season:] - y_train[:-season])))
    if not scale > 0:
        raise ValueError("y_train repeats exactly every season, so the seasonal naive MAE is 0 "
                         "and MASE is undefined")
    return scale


def mase(y_true: np.ndarray, y_pred: np.ndarray, y_train: np.ndarray | pd.Series,
         season: int) -> float:
    """Mean absolute scaled error (Hyndman and Koehler 2006).

    ``MASE = mean |y - y_hat| / Q`` with Q = ``seasonal_naive_mae(y_train, season)``, the
    in-sample MAE of the seasonal naive forecast y_hat_t = y_{t-m} on the training part.
    MASE < 1: the forecast beats, on average, what the seasonal naive method achieved
    in-sample. One scale serves every horizon, so errors at different horizons stay
    comparable.

    Parameters
    ----------
    y_true, y_pred : arrays of the same shape
        Truth and forecast (for example (N, horizon)).
    y_train : array of shape (n,)
        The training part, in the same units.
    season : int
        m, for example 12 for monthly data with a yearly cycle (1 gives the non-seasonal
        naive scaling).
    """
    return mae(y_true, y_pred) / seasonal_naive_mae(y_train, season)


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


class LinearAR:
    """A linear autoregression on the last L values, one least-squares fit per lead (direct).

    For each lead h = 1, ..., horizon:
    y_hat_{o+h-1} = b_h + sum over j = 1..L of a_{h,j} y_{o-j}, with (b_h, a_h) minimising
    the squared error on the training windows (``numpy.linalg.lstsq``). It sees exactly the
    windows the networks see, so it is the linear version of the same forecaster.

    Attributes
    ----------
    coef_ : numpy.ndarray, shape (L + 1, horizon)
        Row 0 holds the intercepts b_h; row j (1..L) multiplies ``inputs[:, j - 1]``
        (oldest value first, like the inputs).
    """

    def __init__(self) -> None:
        self.coef_: np.ndarray | None = None

    @staticmethod
    def _design(inputs: np.ndarray) -> np.ndarray:
        return np.hstack([np.ones((inputs.shape[0], 1), dtype=inputs.dtype), inputs])

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> LinearAR:
        """Least squares on windows ``inputs`` (N, L) and ``targets`` (N, horizon)."""
        inputs = check_float_array("inputs", inputs, ndim=2)
        targets = check_float_array("targets", targets, ndim=2)
        if targets.shape[0] != inputs.shape[0]:
            raise ValueError(f"inputs and targets must hold the same number of windows, got "
                             f"{inputs.shape[0]} and {targets.shape[0]}")
        if inputs.shape[0] < inputs.shape[1] + 1:
            raise ValueError(f"need at least L + 1 = {inputs.shape[1] + 1} windows to fit "
                             f"{inputs.shape[1] + 1} coefficients, got {inputs.shape[0]}")
        self.coef_, *_ = np.linalg.lstsq(self._design(inputs), targets, rcond=None)
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Forecasts (N, horizon) for windows ``inputs`` (N, L)."""
        if self.coef_ is None:
            raise RuntimeError("LinearAR.predict was called before fit")
        length = self.coef_.shape[0] - 1
        inputs = check_float_array("inputs", inputs, shape=(None, length), dims=("N", "L"))
        return self._design(inputs) @ self.coef_


# --------------------------------------------------------------------------------------
# Rolling-origin evaluation
# --------------------------------------------------------------------------------------


class RollingOrigin(NamedTuple):
    """Forecasts made at successive origins, and what happened (a named tuple of arrays).

    - ``origins`` (K,), int: each origin o; the forecast was made knowing ``values[:o]``;
    - ``forecasts`` (K, horizon): ``forecasts[k, h]`` forecasts ``actuals[k, h]``;
    - ``actuals`` (K, horizon): ``actuals[k, h] = values[origins[k] + h]``.
    """

    origins: np.ndarray
    forecasts: np.ndarray
    actuals: np.ndarray


def rolling_origin(values: np.ndarray | pd.Series, forecaster: Callable[[np.ndarray], Any], *,
                   first_origin: int, horizon: int, last_origin: int | None = None,
                   step: int = 1, window: int | None = None) -> RollingOrigin:
    """Re-forecast at every origin o = first_origin, first_origin + step, ..., last_origin.

    At each origin the forecaster receives only the past, ``history = values[:o]``
    (expanding origin) or its last ``window`` values (sliding window), and returns the next
    ``horizon`` values. A forecaster that refits itself on ``history`` is re-estimated at
    every origin; one that only reads the last L values is a fixed model rolled forward.

    Parameters
    ----------
    values : array of shape (n,) or pandas.Series
    forecaster : callable
        ``forecaster(history)`` with ``history`` a 1-D float64 array, returning ``horizon``
        numbers.
    first_origin : int
        The first origin (for example the start of the test part).
    horizon : int
    last_origin : int, optional
        The last origin; default n - horizon, the last one whose targets all exist.
    step : int
        Distance between origins.
    window : int, optional
        Sliding-window length; ``None`` gives the whole past (expanding).

    Returns
    -------
    RollingOrigin
        Origins (K,), forecasts (K, horizon) and actuals (K, horizon).
    """
    values = _as_series_values("values", values).astype(np.float64)
    n = len(values)
    horizon = check_int("horizon", horizon, minimum=1)
    first_origin = check_int("first_origin", first_origin, minimum=1)
    last_origin = n - horizon if last_origin is None else check_int("last_origin", last_origin,
                                                                      minimum=1)
    step = check_int("step", step, minimum=1)
    if not callable(forecaster):
        raise TypeError(f"forecaster must be callable, got {describe(forecaster)}")
    if window is not None:
        window = check_int("window", window, minimum=1)
        if first_origin < window:
            raise ValueError(f"first_origin = {first_origin} leaves fewer than window = "
                             f"{window} past values")
    if not first_origin <= last_origin <= n - horizon:
        raise ValueError(f"need first_origin <= last_origin <= n - horizon = {n - horizon}, got "
                         f"first_origin = {first_origin}, last_origin = {last_origin}")
    origins = np.arange(first_origin, last_origin + 1, step)
    forecasts = np.empty((len(origins), horizon))
    for k, origin in enumerate(origins):
        start = 0 if window is None else origin - window
        history = values[start:origin].copy()  # a copy: a forecaster cannot touch the future
        forecast = np.asarray(forecaster(history), dtype=np.float64).reshape(-1)
        if forecast.shape != (horizon,):
            raise ValueError(f"forecaster returned {forecast.size} values at origin {origin}, "
                             f"expected horizon = {horizon}")
        forecasts[k] = forecast
    actuals = np.stack([values[o:o + horizon] for o in origins])
    return RollingOrigin(origins, forecasts, actuals)
