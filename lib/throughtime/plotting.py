"""The book's figures: one style for every plot, and the diagrams of recurrent networks.

Every chapter calls ``use_book_style()`` once, so all plots share sizes, fonts and
colours. The diagrams are drawn with plain matplotlib boxes and arrows, so a reader can
change them (more steps, other labels) without any drawing tool.

- ``use_book_style``: rcParams for small, light figures that read well on a web page.
- ``COLORS``: one colour per role (input, hidden state, output) used by every diagram.
- ``draw_rnn_unrolled``: the recurrent network folded (a loop through a delay) and
  unrolled over T steps, with the same weights on every step.
- ``draw_sequence_pattern`` and ``draw_io_patterns``: which steps read an input and
  which emit an output (one-to-many with its outputs fed back, many-to-one, aligned
  many-to-many, and the encoder-decoder, whose input and output lengths differ).
- ``draw_gradient_norm_curve`` and ``gradient_norm_small_multiples``: the measured norm of
  dL/dh_t against the distance T - t, with Pascanu et al.'s bound
  (``gradients.gradient_norm_curve``), one panel or a grid over scales and activations.
- ``KIND_COLORS``, ``draw_comparison`` and ``comparison_small_multiples``: the learning
  curves of a ``head_to_head.Comparison`` (a diverged run at ``score_floor``, marked),
  one panel or a grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ._validate import check_choice, check_int, describe
from .gradients import DERIVATIVE_BOUNDS, MAX_LOG, GradientNormCurve, gradient_norm_curve

if TYPE_CHECKING:  # the figures of comparisons need torch only when they are drawn
    from .head_to_head import Comparison
    from .tasks import Task

__all__ = [
    "COLORS",
    "FIGSIZE",
    "use_book_style",
    "table_number",
    "text_color",
    "draw_rnn_unrolled",
    "draw_sequence_pattern",
    "draw_io_patterns",
    "IO_PATTERNS",
    "draw_gradient_norm_curve",
    "gradient_norm_small_multiples",
    "KIND_COLORS",
    "score_floor",
    "draw_comparison",
    "comparison_small_multiples",
]

# Okabe and Ito's colour-blind-safe palette, one colour per role.
COLORS = {
    "input": "#0072B2",  # blue
    "hidden": "#E69F00",  # orange
    "output": "#009E73",  # green
    "delay": "#CC79A7",  # purple
    "accent": "#D55E00",  # vermillion
    "muted": "#6E6E6E",  # grey, dark enough for text on white (5.1:1)
}
"""Colour of each role in the book's figures: input, hidden, output, delay, accent, muted."""

FIGSIZE = (5.2, 3.0)
"""The default figure size in inches: at most 5.4 inches wide, so that text of 10 points or
more stays at least 9 CSS pixels tall when a phone (390 pixels) shows the figure."""


def text_color(color: str, *, contrast: float = 4.5) -> str:
    """``color`` darkened just enough for text on white to reach ``contrast`` (WCAG's 4.5:1).

    The book's palette is for lines and fills; orange, pink and vermillion are too light for
    text. ``text_color(COLORS["accent"])`` keeps the hue and returns a darker shade
    (``"#b44f00"``-like); a colour already dark enough comes back unchanged (as ``#rrggbb``).
    """
    red, green, blue = mpl.colors.to_rgb(color)

    def luminance(channels: tuple[float, float, float]) -> float:
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    scale = 1.0
    while scale > 0 and 1.05 / (luminance((red * scale, green * scale, blue * scale)) + 0.05) \
            < contrast:
        scale -= 0.01
    return mpl.colors.to_hex((red * max(scale, 0), green * max(scale, 0), blue * max(scale, 0)))


def table_number(value: float) -> str:
    """How the book's tables print a float: four significant digits, thousands grouped.

    ``table_number(20 / 3)`` is ``'6.667'``, ``table_number(123456.7)`` is ``'123,457'`` and
    ``table_number(3.0)`` is ``'3'``.
    """
    if value != value or value in (float("inf"), float("-inf")):  # nan, inf
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def use_book_style() -> None:
    """Set matplotlib's rcParams to the book's style (call once per chapter).

    Text of 10 to 11 points, no top or right spines, a light grid, the colour cycle of
    ``COLORS`` and the default size ``FIGSIZE``; pandas tables print floats with
    ``table_number``. In Jupyter, figures are shown as SVG with
    their text kept as text: sharp at any zoom, searchable, and with font sizes the book's
    website tests read back. Figures stay readable on a phone when they are at most 5.4
    inches wide and hold no text under 10 points.
    """
    cycle = [COLORS[name] for name in ("input", "accent", "output", "hidden", "delay", "muted")]
    mpl.rcParams.update({
        "figure.figsize": FIGSIZE,
        "figure.dpi": 100,
        "savefig.dpi": 200,  # raster formats (png) at twice the screen's density
        "savefig.bbox": "tight",
        "svg.fonttype": "none",  # text stays text, in the page's own sans-serif font
        "svg.hashsalt": "throughtime",  # the same file on every run
        "font.size": 10.5,
        "axes.titlesize": 11,
        "axes.labelsize": 10.5,
        "legend.fontsize": 10,
        "legend.title_fontsize": 10,
        "legend.frameon": False,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
        "figure.titlesize": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "grid.linewidth": 0.6,
        "lines.linewidth": 1.6,
        "axes.prop_cycle": mpl.cycler(color=cycle),
    })
    try:  # tables: four significant digits, not pandas' six decimals ("6.667", not "6.666667")
        import pandas as pd
    except ImportError:
        pass
    else:
        pd.set_option("display.float_format", table_number)
    try:  # in Jupyter: SVG figures, without the date that would change them on every run
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("svg", metadata={"Date": None})


# --------------------------------------------------------------------------------------
# Drawing blocks: a labelled box and a labelled arrow, in data coordinates
# --------------------------------------------------------------------------------------

BOX_WIDTH, BOX_HEIGHT = 0.8, 0.5


def _prepare_diagram_axes(ax: Axes) -> None:
    ax.set_aspect("equal")
    ax.axis("off")


def _box(ax: Axes, center: tuple[float, float], text: str, color: str,
         width: float = BOX_WIDTH, height: float = BOX_HEIGHT) -> None:
    """A rounded box filled with a light tint of ``color``, its text in the middle."""
    x, y = center
    ax.add_patch(FancyBboxPatch(
        (x - width / 2, y - height / 2), width, height,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor=mpl.colors.to_rgba(color, 0.18), edgecolor=color, linewidth=1.4,
    ))
    ax.text(x, y, text, ha="center", va="center", fontsize=11)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float],
           label: str | None = None, label_offset: tuple[float, float] = (0.0, 0.0),
           color: str = "black", connectionstyle: str = "arc3",
           linestyle: str = "-") -> None:
    """An arrow from ``start`` to ``end``; ``label`` sits at its middle plus the offset."""
    ax.annotate("", xy=end, xytext=start, arrowprops={
        "arrowstyle": "-|>", "color": color, "linewidth": 1.2, "mutation_scale": 11,
        "shrinkA": 0, "shrinkB": 0, "connectionstyle": connectionstyle,
        "linestyle": linestyle,
    })
    if label is not None:
        middle = ((start[0] + end[0]) / 2 + label_offset[0],
                  (start[1] + end[1]) / 2 + label_offset[1])
        ax.text(*middle, label, ha="center", va="center", fontsize=10, color=color)


# --------------------------------------------------------------------------------------
# The recurrent network, folded and unrolled
# --------------------------------------------------------------------------------------

# Heights of the three rows of every diagram, and the horizontal distance between steps.
ROW_X, ROW_H, ROW_Y = 0.0, 1.3, 2.6
STEP = 1.6


def _draw_folded(ax: Axes) -> None:
    """x_t -> h_t -> y_t, with h_t fed back to itself through a delay block."""
    half = BOX_HEIGHT / 2
    _box(ax, (0, ROW_X), "$x_t$", COLORS["input"])
    _box(ax, (0, ROW_H), "$h_t$", COLORS["hidden"])
    _box(ax, (0, ROW_Y), "$y_t$", COLORS["output"])
    _arrow(ax, (0, ROW_X + half), (0, ROW_H - half), "$W_{ih}$", (-0.32, 0))
    _arrow(ax, (0, ROW_H + half), (0, ROW_Y - half), "$W_y$", (-0.28, 0))
    # The loop: out of h_t on the right, through the delay, back into h_t from below.
    delay = (1.25, ROW_H)
    _box(ax, delay, "delay", COLORS["delay"], width=0.7, height=0.4)
    _arrow(ax, (BOX_WIDTH / 2, ROW_H + 0.12), (delay[0], ROW_H + 0.2),
           connectionstyle="arc3,rad=-0.6")
    _arrow(ax, (delay[0], ROW_H - 0.2), (BOX_WIDTH / 2, ROW_H - 0.12),
           connectionstyle="arc3,rad=-0.6")
    ax.text(delay[0] - 0.05, ROW_H + 0.6, "$h_t$", ha="center", va="center", fontsize=10,
            color=COLORS["muted"])
    ax.text(delay[0] - 0.05, ROW_H - 0.62, "$W_{hh}\\, h_{t-1}$", ha="center", va="center",
            fontsize=10)
    ax.set_xlim(-0.8, 1.8)
    ax.set_ylim(ROW_X - 0.5, ROW_Y + 0.5)


def _draw_unrolled(ax: Axes, steps: int) -> None:
    """h_0 on the left, then one column (x_t, h_t, y_t) per step, same weights on each."""
    half_w, half_h = BOX_WIDTH / 2, BOX_HEIGHT / 2
    _box(ax, (0, ROW_H), "$h_0$", COLORS["hidden"])
    for t in range(1, steps + 1):
        x = t * STEP
        _box(ax, (x, ROW_X), f"$x_{t}$", COLORS["input"])
        _box(ax, (x, ROW_H), f"$h_{t}$", COLORS["hidden"])
        _box(ax, (x, ROW_Y), f"$y_{t}$", COLORS["output"])
        _arrow(ax, (x, ROW_X + half_h), (x, ROW_H - half_h), "$W_{ih}$", (-0.3, 0))
        _arrow(ax, (x, ROW_H + half_h), (x, ROW_Y - half_h), "$W_y$", (-0.26, 0))
        _arrow(ax, (x - STEP + half_w, ROW_H), (x - half_w, ROW_H), "$W_{hh}$", (0, 0.2))
    ax.set_xlim(-0.6, steps * STEP + 0.6)
    ax.set_ylim(ROW_X - 0.5, ROW_Y + 0.5)


def draw_rnn_unrolled(steps: int = 4) -> Figure:
    """The recurrent network folded (above) and unrolled over ``steps`` time steps (below).

    Folded, the hidden state h_t feeds back into the next step through a delay. Unrolled,
    the same loop becomes a chain h_0 -> h_1 -> ... -> h_T, and every step reuses the
    same W_ih, W_hh and W_y.

    Parameters
    ----------
    steps : int
        T, the number of unrolled steps (1 to 8).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels; the lower one holds exactly ``steps`` labels ``$W_{hh}$``.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 8:
        raise ValueError(f"steps must be an integer from 1 to 8, got {steps!r}")
    # The folded network above the unrolled one: side by side, the figure would be too wide
    # for a phone to show its 10-point labels at 9 pixels or more.
    # Each panel as tall as the unrolled diagram is at the figure's full width.
    unrolled_width, height = STEP * steps + 1.2, ROW_Y - ROW_X + 1.0
    width = min(5.4, 0.75 * unrolled_width + 0.6)
    panel_height = width * height / unrolled_width
    fig, (folded, unrolled) = plt.subplots(2, 1, figsize=(width, 2 * panel_height + 0.7))
    for ax in (folded, unrolled):
        _prepare_diagram_axes(ax)
    _draw_folded(folded)
    _draw_unrolled(unrolled, steps)
    folded.set_title("folded")
    unrolled.set_title(f"unrolled over T = {steps} steps")
    return fig


# --------------------------------------------------------------------------------------
# Input and output patterns
# --------------------------------------------------------------------------------------


def draw_sequence_pattern(ax: Axes, inputs: Sequence[bool], outputs: Sequence[bool],
                          title: str | None = None, feedback: bool = False) -> None:
    """Draw one unrolled network whose step t reads an input where ``inputs[t]`` is true
    and emits an output where ``outputs[t]`` is true.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw (its axis is switched off).
    inputs, outputs : sequence of bool
        One flag per step; both of the same length T >= 1.
    title : str, optional
        Drawn above the diagram.
    feedback : bool
        Draw a dashed arrow from the output of step t into step t + 1 wherever step t
        emits an output and step t + 1 reads no input of its own: the output fed back as the
        next input, as when a network generates a sequence.
    """
    inputs, outputs = list(inputs), list(outputs)
    if not inputs or len(inputs) != len(outputs):
        raise ValueError(
            f"inputs and outputs must be non-empty and of the same length, got lengths "
            f"{len(inputs)} and {len(outputs)}"
        )
    if not isinstance(feedback, bool):
        raise TypeError(f"feedback must be True or False, got {feedback!r}")
    _prepare_diagram_axes(ax)
    half_w, half_h = BOX_WIDTH / 2, BOX_HEIGHT / 2
    for t, (reads, emits) in enumerate(zip(inputs, outputs, strict=True)):
        x = t * STEP
        _box(ax, (x, ROW_H), "$h$", COLORS["hidden"])
        if t > 0:
            _arrow(ax, (x - STEP + half_w, ROW_H), (x - half_w, ROW_H))
        if reads:
            _box(ax, (x, ROW_X), "$x$", COLORS["input"])
            _arrow(ax, (x, ROW_X + half_h), (x, ROW_H - half_h))
        if emits:
            _box(ax, (x, ROW_Y), "$y$", COLORS["output"])
            _arrow(ax, (x, ROW_H + half_h), (x, ROW_Y - half_h))
        if feedback and emits and t + 1 < len(inputs) and not inputs[t + 1]:
            _arrow(ax, (x + half_w, ROW_Y - half_h / 2), (x + STEP - half_w / 2, ROW_H + half_h),
                   color=COLORS["output"], linestyle="--")
    ax.set_xlim(-0.6, (len(inputs) - 1) * STEP + 0.6)
    ax.set_ylim(ROW_X - 0.5, ROW_Y + 0.5)
    if title is not None:
        ax.set_title(title)


IO_PATTERNS = ("one-to-many", "many-to-one", "many-to-many, aligned",
               "many-to-many, unaligned (encoder-decoder)")
"""The titles of the panels of ``draw_io_patterns``, in order."""


def draw_io_patterns(steps: int = 4) -> Figure:
    """Four ways to use a recurrent network, one panel each (titles in ``IO_PATTERNS``).

    - one-to-many: an input at the first step, an output at every step, each output fed
      back as the next step's input (dashed);
    - many-to-one: an input at every step, one output at the last;
    - many-to-many, aligned: an input and an output at every step;
    - many-to-many, unaligned (encoder-decoder): the network reads ``steps`` inputs (the
      encoder), then emits ``steps - 1`` outputs with no further input, each fed back into
      the next step (the decoder); the two lengths differ.

    Parameters
    ----------
    steps : int
        T, the number of steps drawn in each of the first three patterns (3 to 6).

    Returns
    -------
    matplotlib.figure.Figure
        Three panels in the top row and the encoder-decoder, wider, below.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or not 3 <= steps <= 6:
        raise ValueError(f"steps must be an integer from 3 to 6, got {steps!r}")
    reads, emits = steps, steps - 1
    patterns = [
        ([True] + [False] * (steps - 1), [True] * steps, True),
        ([True] * steps, [False] * (steps - 1) + [True], False),
        ([True] * steps, [True] * steps, False),
        ([True] * reads + [False] * emits, [False] * reads + [True] * emits, True),
    ]
    fig = plt.figure(figsize=(FIGSIZE[0] + 0.2, 3.9))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.1])
    axes = [fig.add_subplot(grid[0, column]) for column in range(3)]
    axes.append(fig.add_subplot(grid[1, :]))
    for ax, title, (inputs, outputs, feedback) in zip(axes, IO_PATTERNS, patterns, strict=True):
        draw_sequence_pattern(ax, inputs, outputs, title=title, feedback=feedback)
    # Name the two halves of the encoder-decoder under its steps.
    encoder_decoder = axes[-1]
    for name, first, last in (("encoder", 0, reads - 1), ("decoder", reads, reads + emits - 1)):
        encoder_decoder.text((first + last) / 2 * STEP, ROW_X - 0.55, name, ha="center",
                             va="top", fontsize=10, color=COLORS["muted"])
    encoder_decoder.set_ylim(ROW_X - 0.95, ROW_Y + 0.5)
    # The same scale as the panels above: the wide panel spans three of their widths.
    middle, half_width = (reads + emits - 1) * STEP / 2, 1.5 * ((steps - 1) * STEP + 1.2)
    encoder_decoder.set_xlim(middle - half_width, middle + half_width)
    return fig


# --------------------------------------------------------------------------------------
# Vanishing and exploding gradients: the measured norm and its bound
# --------------------------------------------------------------------------------------


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
                     fontsize=10)
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
                    transform=ax.transAxes, fontsize=10, va="bottom",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85,
                          "edgecolor": "none"})
            ax.set_xlabel("$T - t$" if row == len(activations) - 1 else "")
            ax.set_ylabel(activation if column == 0 else "")
            if row == 0:
                ax.set_title(f"$\\|W_{{hh}}\\|_2$ = {scale:g}", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# Comparisons of recurrent layers: learning curves over seeds
# --------------------------------------------------------------------------------------

KIND_COLORS = {"RNN": "#7F7F7F", "LSTM": "#0072B2", "GRU": "#D55E00"}
"""One colour per kind in every figure of the chapter (grey, blue, vermillion)."""


def score_floor(task: Task) -> float:
    """The lowest score the figures draw: as far below the no-memory score as solving is above.

    A run below it is far worse than a network without memory (for the adding problem,
    variance explained below -0.9: a mean squared error almost twice the baseline's), which
    happens when training diverges. Drawing it to scale would squash every other curve, so
    ``draw_comparison`` draws it at this floor with a marker instead.
    """
    from .tasks import Task

    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (from make_task), got {describe(task)}")
    return task.chance - (task.solved - task.chance)


def draw_comparison(ax: Any, comparison: Comparison, *, legend: bool = True,
                    title: bool = True) -> Any:
    """Learning curves of one comparison: every seed thin, the median thick, chance dotted.

    A score below ``score_floor(task)`` (a diverged run) is drawn at the floor, with a
    downward triangle at each such evaluation, so that it stays visible without squashing
    the other curves; the axis then ends just below the floor.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    comparison : Comparison
    legend, title : bool

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .head_to_head import Comparison

    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison must be a Comparison (from compare), "
                        f"got {describe(comparison)}")
    steps = np.asarray(comparison.steps)
    task = comparison.task
    floor = score_floor(task)
    clipped = False
    for kind, scores in comparison.scores.items():
        color = KIND_COLORS[kind]
        below = ~(scores >= floor)  # NaN counts as below
        shown = np.where(below, floor, scores)
        ax.plot(steps, shown, color=color, linewidth=0.7, alpha=0.45)
        if below.any():
            clipped = True
            rows, _ = np.nonzero(below)
            ax.scatter(steps[rows], np.full(len(rows), floor), marker="v", s=22, color=color,
                       zorder=3, clip_on=False)
        ax.plot(steps, np.median(shown, axis=1), color=color, linewidth=2.0, marker="o",
                markersize=3, label=f"{kind} (H = {comparison.hidden_sizes[kind]})")
    ax.axhline(task.chance, color="black", linestyle=":", linewidth=1.0, label="no memory")
    if task.name == "anbn":
        ax.axhline(task.length, color="black", linestyle="--", linewidth=0.8,
                   label="largest n trained on")
    if clipped:
        top = ax.get_ylim()[1]
        ax.set_ylim(floor - 0.04 * (top - floor), top)
        ax.scatter([], [], marker="v", color="black", label="below the axis (diverged)")
    ax.set_xlabel("training step")
    ax.set_ylabel(task.score_name)
    if title:
        ax.set_title(task.label)
    if legend:
        ax.legend(fontsize=10)
    return ax


def comparison_small_multiples(comparisons: Sequence[Comparison], *, columns: int = 3,
                               panel_size: tuple[float, float] = (2.9, 2.2)) -> Any:
    """The static counterpart of the explorer: one panel per comparison, in a grid.

    Returns
    -------
    matplotlib.figure.Figure
    """
    comparisons = list(comparisons)
    if not comparisons:
        raise ValueError("comparisons must hold at least one Comparison")
    columns = check_int("columns", columns, minimum=1)
    columns = min(columns, len(comparisons))
    rows = math.ceil(len(comparisons) / columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(panel_size[0] * columns, panel_size[1] * rows))
    clipped = False
    for index, ax in enumerate(axes.flat):
        if index >= len(comparisons):
            ax.axis("off")
            continue
        comparison = comparisons[index]
        draw_comparison(ax, comparison, legend=False)
        ax.set_xlabel("step" if index >= len(comparisons) - columns else "")
        floor = score_floor(comparison.task)
        clipped |= any(bool((~(scores >= floor)).any()) for scores in comparison.scores.values())
    handles = [plt.Line2D([], [], color=KIND_COLORS[kind], linewidth=2, label=kind)
               for kind in comparisons[0].kinds]
    handles.append(plt.Line2D([], [], color="black", linestyle=":", label="no memory"))
    if clipped:
        handles.append(plt.Line2D([], [], color="black", marker="v", linestyle="none",
                                  label="below the axis (diverged)"))
    fig.legend(handles=handles, loc="lower center", ncols=len(handles), fontsize=10,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
