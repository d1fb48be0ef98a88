"""Explorers: interactive figures for a live notebook, and their static counterparts.

A widget is only a front end. Everything it shows comes from a pure function that takes
its parameters as arguments and returns data, or draws into an ``Axes`` it is given, so
the same function makes the static figure of the website and is tested like any other.

- ``gradient_norm_explorer``: sliders on the vanishing/exploding gradient curve; the
  measurement is ``gradients.gradient_norm_curve``, the figure
  ``plotting.draw_gradient_norm_curve`` and its static counterpart
  ``plotting.gradient_norm_small_multiples``.
- ``comparison_explorer``: the LSTM-or-GRU explorer; its callback ``explore`` is
  ``head_to_head.compare`` on ``tasks.make_task(task_name, length)``, the figure
  ``plotting.draw_comparison`` and the static counterpart
  ``plotting.comparison_small_multiples``.

Both use core ipywidgets only, so they run in ipywidgets 7.7 (Colab) and 8.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._validate import check_choice
from .gradients import DERIVATIVE_BOUNDS, gradient_norm_curve
from .head_to_head import Comparison, compare
from .measure import KINDS
from .plotting import draw_comparison, draw_gradient_norm_curve
from .tasks import TASK_NAMES, make_task

__all__ = [
    "gradient_norm_explorer",
    "explore",
    "comparison_explorer",
]


# --------------------------------------------------------------------------------------
# Vanishing and exploding gradients: the gradient-norm explorer
# --------------------------------------------------------------------------------------


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

