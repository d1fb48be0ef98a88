"""Forecast evaluation: metrics, rolling origins, prediction intervals, the Diebold-Mariano test.

How good is a forecast, and is one forecaster really better than another? The measuring
half of an honest forecasting pipeline (``timeseries`` holds the data, the splits, the
windows, the baselines and the forecasters):

- Metrics ``mae``, ``rmse``, ``mase`` (against ``seasonal_naive_mae``, the in-sample error
  of the seasonal naive forecast) and ``r_squared``.
- ``rolling_origin`` (and its batched twin ``rolling_windows``), which moves the forecast
  origin through a period and forecasts again at each one (``RollingOrigin``).
- Prediction intervals from validation errors (``empirical_intervals``) and their
  ``interval_coverage``.
- The Diebold-Mariano test (``diebold_mariano``, with a Newey-West variance,
  ``long_run_variance``, for the overlapping multi-step origins) for differences between
  two forecasters on the same origins.

Conventions as in ``timeseries``: a series is a 1-D float array y_0, ..., y_{n-1}; the
forecast origin is the number of values known when the forecast is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._validate import check_float_array, check_int, check_real, describe

__all__ = [
    "mae",
    "rmse",
    "r_squared",
    "seasonal_naive_mae",
    "mase",
    "RollingOrigin",
    "rolling_origin",
    "rolling_windows",
    "Intervals",
    "empirical_intervals",
    "interval_coverage",
    "DieboldMariano",
    "long_run_variance",
    "diebold_mariano",
]


def _as_series_values(name: str, values: Any) -> np.ndarray:
    """A 1-D float array from a numpy array or a pandas Series."""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=np.float64)
    return check_float_array(name, values, ndim=1)


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
    """Mean absolute scaled error, in its seasonal form.

    ``MASE = mean |y - y_hat| / Q`` with Q = ``seasonal_naive_mae(y_train, season)``, the
    in-sample MAE of the seasonal naive forecast y_hat_t = y_{t-m} on the training part.
    Hyndman and Koehler (2006) defined MASE with the one-step naive forecast as the scale
    (``season=1`` here); scaling by the seasonal naive forecast for seasonal data is the form
    of Hyndman and Athanasopoulos, *Forecasting: Principles and Practice*.
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


def _origins(values: Any, horizon: int, first_origin: int, last_origin: int | None,
             step: int = 1) -> tuple[np.ndarray, int, np.ndarray]:
    """The series as float64, the checked horizon and the forecast origins.

    The origins run from ``first_origin`` to ``last_origin`` (by default the last one that
    leaves ``horizon`` values to forecast) every ``step`` values.
    """
    values = _as_series_values("values", values).astype(np.float64)
    n = len(values)
    horizon = check_int("horizon", horizon, minimum=1)
    first_origin = check_int("first_origin", first_origin, minimum=1)
    last_origin = n - horizon if last_origin is None else check_int("last_origin", last_origin,
                                                                      minimum=1)
    step = check_int("step", step, minimum=1)
    if not first_origin <= last_origin <= n - horizon:
        raise ValueError(f"need first_origin <= last_origin <= n - horizon = {n - horizon}, got "
                         f"first_origin = {first_origin}, last_origin = {last_origin}")
    return values, horizon, np.arange(first_origin, last_origin + 1, step)


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
    values, horizon, origins = _origins(values, horizon, first_origin, last_origin, step)
    if not callable(forecaster):
        raise TypeError(f"forecaster must be callable, got {describe(forecaster)}")
    if window is not None:
        window = check_int("window", window, minimum=1)
        if origins[0] < window:
            raise ValueError(f"first_origin = {origins[0]} leaves fewer than window = "
                             f"{window} past values")
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


def rolling_windows(values: np.ndarray | pd.Series, predict: Callable[[np.ndarray], Any], *,
                    first_origin: int, horizon: int, input_length: int,
                    last_origin: int | None = None) -> RollingOrigin:
    """``rolling_origin`` for a fixed model that reads only the last L values, in one batch.

    ``predict`` maps windows (N, L) to forecasts (N, horizon), like the baselines and
    ``LinearAR.predict``; the window of origin o is ``values[o - L:o]``. The result equals
    ``rolling_origin(values, lambda history: predict(history[None, -L:])[0], ...)`` with
    origins one step apart, computed with one call of ``predict`` instead of one per origin.

    Returns
    -------
    RollingOrigin
        Origins (K,), forecasts (K, horizon) and actuals (K, horizon).
    """
    values, horizon, origins = _origins(values, horizon, first_origin, last_origin)
    input_length = check_int("input_length", input_length, minimum=1)
    if not callable(predict):
        raise TypeError(f"predict must be callable, got {describe(predict)}")
    if origins[0] < input_length:
        raise ValueError(f"first_origin = {origins[0]} leaves fewer than input_length = "
                         f"{input_length} past values")
    inputs = np.stack([values[o - input_length:o] for o in origins])
    forecasts = np.asarray(predict(inputs), dtype=np.float64)
    if forecasts.shape != (len(origins), horizon):
        raise ValueError(f"predict returned shape {forecasts.shape} for {len(origins)} windows, "
                         f"expected ({len(origins)}, horizon = {horizon})")
    actuals = np.stack([values[o:o + horizon] for o in origins])
    return RollingOrigin(origins, forecasts, actuals)


# --------------------------------------------------------------------------------------
# Prediction intervals
# --------------------------------------------------------------------------------------


class Intervals(NamedTuple):
    """Central prediction intervals at every origin and lead (a named tuple).

    - ``lower``, ``upper`` (K, horizon): the interval for ``forecasts[k, h]``;
    - ``coverage``: the probability the intervals are meant to hold, e.g. 0.8.
    """

    lower: np.ndarray
    upper: np.ndarray
    coverage: float


def _check_coverage(coverage: Any) -> float:
    coverage = check_real("coverage", coverage)
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must lie strictly between 0 and 1 (e.g. 0.8), got {coverage}")
    return coverage


def empirical_intervals(validation: RollingOrigin, result: RollingOrigin,
                        coverage: float) -> Intervals:
    """Intervals from the errors a forecaster made on the validation period, lead by lead.

    For each lead h the validation errors e = y - y_hat give the quantiles
    q_lo = Q_e((1 - c) / 2) and q_hi = Q_e((1 + c) / 2) (``numpy.quantile``, linear
    interpolation), and every forecast of ``result`` at that lead gets the interval
    [y_hat + q_lo, y_hat + q_hi]. No distribution is assumed, and a bias seen on validation
    shifts the interval. It holds its coverage on the test period only as far as the errors
    there resemble those on validation; ``interval_coverage`` measures that.

    Parameters
    ----------
    validation : RollingOrigin
        The forecaster's forecasts on the validation period (N_val, horizon).
    result : RollingOrigin
        Its forecasts to put intervals around (K, horizon), usually the test period.
    coverage : float
        c, the central probability (0.8 for 80% intervals).
    """
    coverage = _check_coverage(coverage)
    for name, value in (("validation", validation), ("result", result)):
        if not isinstance(value, RollingOrigin):
            raise TypeError(f"{name} must be a RollingOrigin, got {describe(value)}")
    if validation.forecasts.shape[1] != result.forecasts.shape[1]:
        raise ValueError(f"validation and result must have the same horizon, got "
                         f"{validation.forecasts.shape[1]} and {result.forecasts.shape[1]}")
    errors = validation.actuals - validation.forecasts  # (N_val, horizon)
    low, high = np.quantile(errors, [(1 - coverage) / 2, (1 + coverage) / 2], axis=0)
    return Intervals(result.forecasts + low, result.forecasts + high, coverage)


def interval_coverage(actuals: np.ndarray, intervals: Intervals) -> np.ndarray:
    """The share of actual values inside their interval, for each lead.

    ``actuals`` (K, horizon) and ``intervals`` for the same forecasts; returns (horizon,),
    the empirical coverage per lead (``.mean()`` of it is the coverage over all forecasts).
    Compare it with ``intervals.coverage``: well calibrated intervals land close to it.
    """
    if not isinstance(intervals, Intervals):
        raise TypeError(f"intervals must be an Intervals, got {describe(intervals)}")
    actuals = check_float_array("actuals", np.asarray(actuals, dtype=np.float64), ndim=2)
    if actuals.shape != intervals.lower.shape:
        raise ValueError(f"actuals has shape {actuals.shape} but the intervals have "
                         f"{intervals.lower.shape}")
    inside = (intervals.lower <= actuals) & (actuals <= intervals.upper)
    return inside.mean(axis=0)


# --------------------------------------------------------------------------------------
# Is one forecaster better than another? The Diebold-Mariano test
# --------------------------------------------------------------------------------------


def long_run_variance(series: np.ndarray, lag: int) -> float:
    """Newey-West estimate of the long-run variance of a series, Bartlett weights.

    ``S = g_0 + 2 * sum over j = 1..lag of (1 - j / (lag + 1)) g_j`` with the
    autocovariances ``g_j = (1/K) * sum over t = j..K-1 of (d_t - d_bar)(d_{t-j} - d_bar)``.
    For a stationary series, K times the variance of its mean tends to the long-run
    variance; S / K estimates the variance of the mean when neighbouring values are
    correlated up to ``lag`` steps apart. The Bartlett weights keep S >= 0.

    Parameters
    ----------
    series : array of shape (K,)
    lag : int
        The truncation lag, 0 <= lag < K (0 gives the ordinary variance with divisor K).
    """
    series = check_float_array("series", np.asarray(series, dtype=np.float64), ndim=1)
    lag = check_int("lag", lag, minimum=0)
    k = len(series)
    if lag >= k:
        raise ValueError(f"lag must be smaller than the number of values {k}, got {lag}")
    centred = series - series.mean()
    total = float(centred @ centred) / k
    for j in range(1, lag + 1):
        total += 2 * (1 - j / (lag + 1)) * float(centred[j:] @ centred[:-j]) / k
    return total


class DieboldMariano(NamedTuple):
    """The result of ``diebold_mariano``.

    ``mean_difference`` is the mean of d_k = loss_a_k - loss_b_k (negative: a is better);
    ``statistic`` = mean_difference / sqrt(S / K) with S the Newey-West long-run variance;
    ``p`` the two-sided p-value from Student's t with K - 1 degrees of freedom; ``lag`` the
    truncation lag and ``n`` = K, the number of origins.
    """

    mean_difference: float
    statistic: float
    p: float
    lag: int
    n: int


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, *, lag: int) -> DieboldMariano:
    """Diebold-Mariano test: do forecasters a and b have the same expected loss?

    At each origin k the two forecasters' losses give the difference d_k = a_k - b_k (for
    example absolute errors, or their mean over the leads of one origin). Under the
    hypothesis of equal expected loss, mean(d) / sqrt(S / K) is approximately standard
    normal (Diebold and Mariano 1995), with S the long-run variance of d
    (``long_run_variance``): forecasts from neighbouring origins share target months and
    their errors are correlated, so the plain variance would overstate the evidence. For
    h-step forecasts the differences are correlated up to h - 1 origins apart, the usual
    choice of ``lag``. The p-value uses Student's t with K - 1 degrees of freedom, which is
    more cautious than the normal for few origins (Harvey, Leybourne and Newbold 1997).

    Parameters
    ----------
    loss_a, loss_b : arrays of shape (K,)
        Losses of the two forecasters at the same K origins, in time order.
    lag : int
        Truncation lag of the Newey-West variance (h - 1 for h-step forecasts).

    Returns
    -------
    DieboldMariano
    """
    from scipy import stats

    loss_a = check_float_array("loss_a", np.asarray(loss_a, dtype=np.float64), ndim=1)
    loss_b = check_float_array("loss_b", np.asarray(loss_b, dtype=np.float64), ndim=1)
    if loss_a.shape != loss_b.shape:
        raise ValueError(f"loss_a and loss_b must hold one loss per origin for the same origins, "
                         f"got shapes {loss_a.shape} and {loss_b.shape}")
    if len(loss_a) < 3:
        raise ValueError(f"need at least 3 origins, got {len(loss_a)}")
    difference = loss_a - loss_b
    variance = long_run_variance(difference, lag)
    if not variance > 0:
        raise ValueError("the loss differences are constant (long-run variance 0); the test "
                         "needs differences that vary between origins")
    k = len(difference)
    statistic = float(difference.mean() / np.sqrt(variance / k))
    p = float(2 * stats.t.sf(abs(statistic), df=k - 1))
    return DieboldMariano(float(difference.mean()), statistic, p, int(lag), k)
