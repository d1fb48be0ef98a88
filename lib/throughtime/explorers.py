"""Explorers: interactive figures for a live notebook, and their static counterparts.

A widget is only a front end. Everything it shows comes from a pure function that takes
its parameters as arguments and returns data, or draws into an ``Axes`` it is given, so
the same function makes the static figure of the website and is tested like any other.

The vanishing/exploding gradient explorer (chapter "Vanishing and exploding gradients"):

- ``gradient_norm_problem`` and ``gradient_log_norms``: the network and the measurement.
- ``gradient_norm_curve``: how the norm of dL/dh_t changes with the distance T - t for a
  vanilla RNN whose recurrent matrix is a scaled orthogonal matrix, next to Pascanu et
  al.'s bound (gamma * ||W_hh||_2)^(T - t), where ||W_hh||_2 is the spectral norm (the
  largest singular value; the book keeps the letter sigma for the sigmoid).
- ``draw_gradient_norm_curve``: draw one such curve into an ``Axes``.
- ``gradient_norm_small_multiples``: the static counterpart, a grid of curves over scales
  and activations.
- ``gradient_norm_explorer``: the ipywidgets version (core widgets only, so it runs in
  ipywidgets 7.7 and 8).

The LSTM-or-GRU explorer (chapter "Choosing between LSTM and GRU"):

- ``explore``: its callback, ``comparison.compare`` on ``tasks.make_task(task_name, length)``.
- ``comparison_explorer``: the ipywidgets version; the figure is
  ``comparison.draw_comparison`` and the static counterpart
  ``comparison.comparison_small_multiples``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import numpy_cells as cells
from ._validate import check_choice, check_float_array, check_int, check_real, describe
from .comparison import Comparison, compare, draw_comparison
from .measure import KINDS
from .tasks import TASK_NAMES, make_task

__all__ = [
    "DERIVATIVE_BOUNDS",
    "derivative_bound",
    "scaled_orthogonal",
    "GradientNormCurve",
    "gradient_norm_problem",
    "gradient_log_norms",
    "gradient_norm_curve",
    "draw_gradient_norm_curve",
    "gradient_norm_small_multiples",
    "gradient_norm_explorer",
    "explore",
    "comparison_explorer",
]

DERIVATIVE_BOUNDS = {"tanh": 1.0, "sigmoid": 0.25, "linear": 1.0}
"""gamma, the largest value of f' for each activation: tanh'(0) = 1, sigma'(0) = 1/4."""

MAX_LOG = 700.0  # exp(700) ~ 1e304: the largest log-ratio turned back into a float


def derivative_bound(activation: str) -> float:
    """gamma = max f'(a) over all a: 1 for tanh and linear, 1/4 for the sigmoid."""
    check_choice("activation", activation, DERIVATIVE_BOUNDS)
    return DERIVATIVE_BOUNDS[activation]


def scaled_orthogonal(hidden_size: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal matrix times ``scale``: every singular value equals ``scale``.

    Q comes from the QR decomposition of a standard Gaussian matrix, with the signs of R's
    diagonal moved into Q so that Q is uniformly distributed (Haar). For W = scale * Q the
    largest singular value and the spectral radius are both ``scale``, so Pascanu et
    al.'s bound is as tight as it can be for the linear part.

    Parameters
    ----------
    hidden_size : int
        H.
    scale : float
        ||W||_2, the largest singular value, >= 0.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (H, H), float64
    """
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    scale = check_real("scale", scale)
    if scale < 0:
        raise ValueError(f"scale must be >= 0 (it is a singular value), got {scale}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {describe(rng)}")
    q, r = np.linalg.qr(rng.standard_normal((hidden_size, hidden_size)))
    return scale * q * np.sign(np.diag(r))


@dataclass(frozen=True)
class GradientNormCurve:
    """The measured ratio ||dL/dh_{T-k}|| / ||dL/dh_T|| for k = 0 .. T - 1, and its bound.

    Attributes
    ----------
    distance : ndarray, shape (T,)
        k = T - t, the number of steps the gradient has travelled back.
    log_ratio : ndarray, shape (T,)
        ln(||dL/dh_{T-k}|| / ||dL/dh_T||), exact even where the ratio itself would
        underflow or overflow a float.
    scale : float
        ||W_hh||_2, the spectral norm (largest singular value) of W_hh.
    activation : str
    gamma : float
        The bound on f' (``derivative_bound``).
    input_scale : float
        Standard deviation of the input drive of each unit.
    """

    distance: np.ndarray
    log_ratio: np.ndarray
    scale: float
    activation: str
    gamma: float
    input_scale: float

    @property
    def ratio(self) -> np.ndarray:
        """The ratio itself, exp(log_ratio), clipped to about [1e-304, 1e304]."""
        return np.exp(np.clip(self.log_ratio, -MAX_LOG, MAX_LOG))

    @property
    def bound_rate(self) -> float:
        """ln(gamma * ||W_hh||_2): the bound on the change of the log-norm per step."""
        product = self.gamma * self.scale
        return float(np.log(product)) if product > 0 else float("-inf")

    @property
    def log_bound(self) -> np.ndarray:
        """ln of the bound (gamma * ||W_hh||_2)^k at every distance k."""
        with np.errstate(invalid="ignore"):  # 0 * -inf at k = 0 when the scale is 0
            return np.where(self.distance == 0, 0.0, self.distance * self.bound_rate)

    @property
    def measured_rate(self) -> float:
        """The average change of the log-norm per step over the whole curve.

        log_ratio[-1] / (T - 1). Because every step multiplies the norm by at most
        gamma * ||W_hh||_2, this can never exceed ``bound_rate``.
        """
        return float(self.log_ratio[-1] / self.distance[-1])

    @property
    def step_rates(self) -> np.ndarray:
        """The change of the log-norm at each single step back, shape (T - 1,)."""
        return np.diff(self.log_ratio)


def gradient_norm_problem(scale: float, activation: str = "tanh", T: int = 60, *,
                          hidden_size: int = 32, input_scale: float = 1.0,
                          batch_size: int = 4,
                          seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """The network, inputs and final gradient that ``gradient_norm_curve`` measures.

    The network is h_t = f(W_ih x_t + W_hh h_{t-1}), h_0 = 0, no biases, with
    W_hh = scale * Q (``scaled_orthogonal``), W_ih Gaussian with variance 1/I (I = 4) and
    inputs x_t ~ N(0, input_scale^2), so each unit's input drive has standard deviation
    ``input_scale``. The loss looks only at the last state, L = <g, h_T>, with g a
    standard Gaussian (B, H) array, so dL/dh_T = g. All drawn from ``seed``.

    Parameters
    ----------
    scale, activation, T, hidden_size, input_scale, batch_size, seed
        As for ``gradient_norm_curve``.

    Returns
    -------
    params : dict
        ``weight_ih`` (H, 4), ``weight_hh`` (H, H), zero ``bias_ih`` and ``bias_hh`` (H,),
        float64.
    xs : ndarray, shape (T, B, 4)
    g : ndarray, shape (B, H)
        dL/dh_T.
    """
    scale = check_real("scale", scale)
    if scale < 0:
        raise ValueError(f"scale must be >= 0 (it is a singular value), got {scale}")
    check_choice("activation", activation, DERIVATIVE_BOUNDS)
    T = check_int("T", T, minimum=2)
    if T > 1000:
        raise ValueError(f"T must be at most 1000, got {T}")
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    input_scale = check_real("input_scale", input_scale)
    if input_scale < 0:
        raise ValueError(f"input_scale must be >= 0, got {input_scale}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)

    rng = np.random.default_rng(seed)
    input_size = 4
    params = {
        "weight_ih": rng.standard_normal((hidden_size, input_size)) / np.sqrt(input_size),
        "weight_hh": scaled_orthogonal(hidden_size, scale, rng),
        "bias_ih": np.zeros(hidden_size),
        "bias_hh": np.zeros(hidden_size),
    }
    xs = input_scale * rng.standard_normal((T, batch_size, input_size))
    g = rng.standard_normal((batch_size, hidden_size))
    return params, xs, g


def gradient_log_norms(params: dict, xs: np.ndarray, g: np.ndarray,
                       activation: str = "tanh") -> np.ndarray:
    """ln(||dL/dh_{T-k}|| / ||dL/dh_T||) for k = 0 .. T - 1, for L = <g, h_T>.

    The gradient is carried back one step at a time by ``numpy_cells.rnn_step_backward``,

    .. math::

        \\frac{\\partial L}{\\partial h_{t-1}} = \\left(\\frac{\\partial L}{\\partial h_t}
        \\odot f'(a_t)\\right) W_{hh}

    and, to stay exact over hundreds of steps, renormalised after each step while the
    logarithms of the norms are summed: the result neither underflows nor overflows.

    Parameters
    ----------
    params : dict
        Vanilla RNN parameters (see ``numpy_cells``).
    xs : ndarray, shape (T, B, I)
    g : ndarray, shape (B, H)
        dL/dh_T, not all zero.
    activation : {"tanh", "sigmoid", "linear"}

    Returns
    -------
    ndarray, shape (T,)
        Entry k is the log-ratio at distance k (entry 0 is 0). The norm is taken over the
        whole (B, H) gradient. A gradient that becomes exactly 0 gives -inf from there on.
    """
    check_choice("activation", activation, DERIVATIVE_BOUNDS)
    # A linear network with a large scale may overflow in the forward pass; its
    # Jacobians do not depend on the states, so the gradient is still exact.
    with np.errstate(over="ignore", invalid="ignore"):
        hs, cache = cells.rnn_forward(xs, None, params, nonlinearity=activation)
    check_float_array("g", g, shape=hs[-1].shape, dims=("B", "H"), dtype=hs.dtype)
    if not np.any(g):
        raise ValueError("g must not be all zeros: the ratios would be undefined")
    T = xs.shape[0]
    log_ratio = np.zeros(T)
    dh = g / np.linalg.norm(g)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, T):  # carry dL/dh_{T-k+1} back through step T-k+1 to h_{T-k}
            _, dh, _ = cells.rnn_step_backward(dh, cache["steps"][T - k])
            norm = np.linalg.norm(dh)
            if norm == 0.0:
                log_ratio[k:] = -np.inf
                break
            log_ratio[k] = log_ratio[k - 1] + np.log(norm)
            dh = dh / norm
    return log_ratio


def gradient_norm_curve(scale: float, activation: str = "tanh", T: int = 60, *,
                        hidden_size: int = 32, input_scale: float = 1.0,
                        batch_size: int = 4, seed: int = 0) -> GradientNormCurve:
    """Measure how dL/dh_t shrinks or grows as it travels back through a vanilla RNN.

    A vanilla RNN with W_hh = scale * Q (all singular values equal to ``scale``) reads T
    random inputs; the loss looks only at the last state (``gradient_norm_problem``). The
    curve is ||dL/dh_{T-k}|| / ||dL/dh_T|| for k = 0 .. T - 1 (``gradient_log_norms``).
    Each step back multiplies the norm by at most gamma * scale (Pascanu et al. 2013),
    with gamma = max f' (``derivative_bound``).

    Parameters
    ----------
    scale : float
        ||W_hh||_2, the spectral norm of W_hh, >= 0.
    activation : {"tanh", "sigmoid", "linear"}
    T : int
        Sequence length, 2 .. 1000.
    hidden_size : int
        H.
    input_scale : float
        Standard deviation of each unit's input drive, >= 0 (large values saturate
        tanh and the sigmoid).
    batch_size : int
        B; the norm is taken over the whole (B, H) gradient.
    seed : int
        Seed of the weights, inputs and g: the same arguments give the same curve.

    Returns
    -------
    GradientNormCurve
    """
    params, xs, g = gradient_norm_problem(scale, activation, T, hidden_size=hidden_size,
                                          input_scale=input_scale, batch_size=batch_size,
                                          seed=seed)
    log_ratio = gradient_log_norms(params, xs, g, activation)
    return GradientNormCurve(distance=np.arange(T), log_ratio=log_ratio, scale=float(scale),
                             activation=activation, gamma=DERIVATIVE_BOUNDS[activation],
                             input_scale=float(input_scale))


def draw_gradient_norm_curve(ax: Any, curve: GradientNormCurve, *, show_bound: bool = True,
                             title: bool = True, ylim: tuple[float, float] = (1e-12, 1e12),
                             color: str = "#0072B2") -> Any:
    """Draw ``curve`` (log scale) and, dashed, its bound (gamma * ||W_hh||_2)^k into ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    curve : GradientNormCurve
    show_bound : bool
        Draw the bound as a dashed grey line.
    title : bool
        Title the panel with the activation, ||W_hh||_2 and the two rates.
    ylim : (float, float)
        The y range; values beyond it are cut off by the axes.
    color : str
        Colour of the measured curve.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    if not isinstance(curve, GradientNormCurve):
        raise TypeError(f"curve must be a GradientNormCurve, got {describe(curve)}")
    if not (hasattr(ax, "semilogy") and hasattr(ax, "set_ylim")):
        raise TypeError(f"ax must be a matplotlib Axes, got {describe(ax)}")
    ax.semilogy(curve.distance, curve.ratio, color=color, lw=1.6, label="measured")
    if show_bound:
        bound = np.exp(np.clip(curve.log_bound, -MAX_LOG, MAX_LOG))
        ax.semilogy(curve.distance, bound, color="#7F7F7F", lw=1.0, ls="--",
                    label=r"bound $(\gamma\,\|W_{hh}\|_2)^{T-t}$")
    ax.axhline(1.0, color="black", lw=0.5)
    ax.set_ylim(*ylim)
    ax.set_xlim(0, curve.distance[-1])
    ax.set_xlabel("distance $T - t$")
    ax.set_ylabel(r"$\|\partial L/\partial h_t\| \,/\, \|\partial L/\partial h_T\|$")
    if title:
        ax.set_title(f"{curve.activation}, $\\|W_{{hh}}\\|_2$ = {curve.scale:g}: "
                     f"rate {curve.measured_rate:+.2f} (bound {curve.bound_rate:+.2f})",
                     fontsize=9)
    return ax


def gradient_norm_small_multiples(scales: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
                                  activations: Sequence[str] = ("tanh", "sigmoid", "linear"),
                                  T: int = 60, *, input_scale: float = 1.0,
                                  panel_size: tuple[float, float] = (2.0, 1.6),
                                  **curve_options: Any) -> Any:
    """The static counterpart of the explorer: one panel per (activation, scale).

    Rows are activations, columns are ||W_hh||_2; every panel shows the measured
    ratio ||dL/dh_t|| / ||dL/dh_T|| against T - t (log scale) and the bound
    (gamma * ||W_hh||_2)^(T - t), with the measured and bound rates per step in its corner.

    Parameters
    ----------
    scales : sequence of float
        The columns.
    activations : sequence of str
        The rows, each in {"tanh", "sigmoid", "linear"}.
    T : int
    input_scale : float
    panel_size : (float, float)
        Width and height of one panel in inches.
    **curve_options
        Passed on to ``gradient_norm_curve`` (hidden_size, batch_size, seed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    scales, activations = list(scales), list(activations)
    if not scales or not activations:
        raise ValueError(f"scales and activations must not be empty, got {scales} and "
                         f"{activations}")
    for activation in activations:
        check_choice("activation", activation, DERIVATIVE_BOUNDS)
    fig, axes = plt.subplots(len(activations), len(scales), sharex=True, sharey=True,
                             squeeze=False,
                             figsize=(panel_size[0] * len(scales),
                                      panel_size[1] * len(activations)))
    for row, activation in enumerate(activations):
        for column, scale in enumerate(scales):
            ax = axes[row, column]
            curve = gradient_norm_curve(scale, activation, T, input_scale=input_scale,
                                        **curve_options)
            draw_gradient_norm_curve(ax, curve, title=False)
            ax.text(0.04, 0.05, f"rate {curve.measured_rate:+.2f}\nbound {curve.bound_rate:+.2f}",
                    transform=ax.transAxes, fontsize=6.5, va="bottom",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85,
                          "edgecolor": "none"})
            ax.set_xlabel("$T - t$" if row == len(activations) - 1 else "")
            ax.set_ylabel(activation if column == 0 else "")
            if row == 0:
                ax.set_title(f"$\\|W_{{hh}}\\|_2$ = {scale:g}", fontsize=9)
    fig.tight_layout()
    return fig


def gradient_norm_explorer(T: int = 60, scale: float = 1.0, activation: str = "tanh",
                           input_scale: float = 1.0) -> Any:
    """Sliders for ||W_hh||_2, the activation, T and the input scale; redraws the curve.

    Only core ipywidgets (``FloatSlider``, ``IntSlider``, ``Dropdown``, ``Output``,
    ``interactive_output``), so it runs in ipywidgets 7.7 (Colab) and 8. The drawing is
    ``draw_gradient_norm_curve(ax, gradient_norm_curve(...))``: the widget adds nothing
    but the controls.

    Returns
    -------
    ipywidgets.VBox
        Display it as the last expression of a cell.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    controls = {
        "scale": widgets.FloatSlider(value=scale, min=0.25, max=8.0, step=0.25,
                                     description="‖W_hh‖₂", continuous_update=False,
                                     style={"description_width": "initial"}),
        "activation": widgets.Dropdown(options=list(DERIVATIVE_BOUNDS), value=activation,
                                       description="activation"),
        "T": widgets.IntSlider(value=T, min=10, max=200, step=10, description="T",
                               continuous_update=False),
        "input_scale": widgets.FloatSlider(value=input_scale, min=0.0, max=5.0, step=0.25,
                                           description="input scale",
                                           continuous_update=False),
    }

    def redraw(scale: float, activation: str, T: int, input_scale: float) -> None:
        fig, ax = plt.subplots(figsize=(6.0, 3.2))
        curve = gradient_norm_curve(scale, activation, T, input_scale=input_scale)
        draw_gradient_norm_curve(ax, curve)
        ax.legend(loc="upper left", fontsize=8)
        plt.show()

    output = widgets.interactive_output(redraw, controls)
    return widgets.VBox([widgets.HBox([controls["scale"], controls["activation"]]),
                         widgets.HBox([controls["T"], controls["input_scale"]]), output])


# --------------------------------------------------------------------------------------
# LSTM or GRU: the comparison explorer
# --------------------------------------------------------------------------------------


def explore(task_name: str, length: int, lstm_hidden_size: int, *, steps: int = 200,
            seeds: Iterable[int] = (0, 1), kinds: Iterable[str] = KINDS,
            **settings: Any) -> Comparison:
    """The explorer's callback: ``compare`` on ``make_task(task_name, length)``.

    A pure function of its arguments (same arguments, same numbers), so the live widget
    and the tests see the same thing. Both gated layers start with the gate that keeps the
    state opened by a bias of 1 (``forget_bias`` and ``update_bias``), unless ``settings``
    say otherwise; every kind gets the same learning rate (``compare``'s ``lr``).
    """
    task = make_task(task_name, length)
    settings = {"forget_bias": 1.0, "update_bias": 1.0} | settings
    return compare(task, lstm_hidden_size=lstm_hidden_size, kinds=kinds, seeds=seeds,
                   steps=steps, **settings)


def comparison_explorer(task_name: str = "adding", length: int = 20,
                        lstm_hidden_size: int = 16, steps: int = 200) -> Any:
    """Dropdown and sliders for the task, its length, the LSTM's size and the steps.

    Only core ipywidgets (``Dropdown``, ``IntSlider``, ``Button``, ``Output``), so it runs
    in ipywidgets 7.7 (Colab) and 8. Training starts when the button is pressed (a run
    takes seconds); the figure is ``draw_comparison(ax, explore(...))``. While a run trains,
    the button and the controls are disabled and a label says what is training; a setting
    changed after a run is flagged as not yet shown.

    Returns
    -------
    ipywidgets.VBox
        Display it as the last expression of a cell.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    check_choice("task_name", task_name, TASK_NAMES)
    controls = {
        "task_name": widgets.Dropdown(options=list(TASK_NAMES), value=task_name,
                                      description="task"),
        "length": widgets.IntSlider(value=length, min=2, max=100, step=2,
                                    description="length", continuous_update=False),
        "lstm_hidden_size": widgets.IntSlider(value=lstm_hidden_size, min=4, max=64, step=4,
                                              description="LSTM H", continuous_update=False),
        "steps": widgets.IntSlider(value=steps, min=50, max=1000, step=50,
                                   description="steps", continuous_update=False),
    }
    button = widgets.Button(description="train")
    status = widgets.Label(value="Press train: a run takes from a few seconds to a minute.")
    output = widgets.Output()
    shown: dict[str, Any] = {}  # the settings of the figure on display

    def mark_stale(_: Any = None) -> None:
        if shown and button.description == "train":
            changed = {name: control.value for name, control in controls.items()} != shown
            status.value = ("Settings changed: the figure shows the previous ones; press train."
                            if changed else "The figure shows these settings.")

    def run(_: Any = None) -> None:
        values = {name: control.value for name, control in controls.items()}
        for widget in (button, *controls.values()):
            widget.disabled = True
        button.description = "training..."
        status.value = (f"Training LSTM, GRU and tanh RNN on {values['task_name']} (length "
                        f"{values['length']}, {values['steps']} steps)...")
        output.clear_output()
        try:
            comparison = explore(**values)
            with output:
                fig, ax = plt.subplots(figsize=(6.0, 3.4))
                draw_comparison(ax, comparison)
                parameters = ", ".join(f"{kind} {count}"
                                       for kind, count in comparison.parameters.items())
                ax.set_title(f"{comparison.task.label} (parameters: {parameters})", fontsize=9)
                plt.show()
            shown.clear()
            shown.update(values)
            status.value = "The figure shows these settings."
        except Exception as error:  # shown to the reader, not lost in a callback
            status.value = f"The run failed: {error}"
        finally:
            button.description = "train"
            for widget in (button, *controls.values()):
                widget.disabled = False

    button.on_click(run)
    for control in controls.values():
        control.observe(mark_stale, names="value")
    return widgets.VBox([widgets.HBox([controls["task_name"], controls["length"]]),
                         widgets.HBox([controls["lstm_hidden_size"], controls["steps"]]),
                         widgets.HBox([button, status]), output])
