"""Views of a character model: what it predicts, what it writes, what a unit tracks.

- ``explore_sampling``: the pure function behind the sampling explorer: the distribution
  of the next character after a prefix, at a temperature and top-k, and a sample.
- ``draw_next_char_distribution``: the most likely next characters as bars.
- ``draw_activation_text``: text drawn character by character on a background coloured by
  a value per character (a unit's activation), as in Karpathy, Johnson & Fei-Fei (2015).
- ``sampling_small_multiples``: the static counterpart of the explorer, one column per
  temperature: the next-character distribution and a sample.
- ``sampling_explorer``: the ipywidgets explorer (core widgets only: ipywidgets 7.7 and 8).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._validate import check_int, check_real, describe
from .language_model import CharModel, generate, sampling_probabilities
from .plotting import COLORS
from .text import Vocabulary

__all__ = [
    "printable",
    "explore_sampling",
    "draw_next_char_distribution",
    "draw_activation_text",
    "sampling_small_multiples",
    "sampling_explorer",
]

_SHOWN = {"\n": "\u21b5", " ": "\u2423", "\t": "\u21e5"}


def printable(symbol: str) -> str:
    """A character as a label: newline, space and tab get visible signs (↵, ␣, ⇥)."""
    return _SHOWN.get(symbol, symbol)


@torch.no_grad()
def explore_sampling(model: CharModel, vocabulary: Vocabulary, prefix: str, *,
                     temperature: float = 1.0, top_k: int | None = None, length: int = 200,
                     seed: int = 0) -> dict[str, Any]:
    """What the sampling explorer shows for one setting of its controls.

    Returns
    -------
    dict
        ``"probabilities"``: float64 (V,), the distribution the first character after
        ``prefix`` is drawn from (``language_model.sampling_probabilities``, the unknown
        symbol excluded); ``"sample"``: ``length`` characters drawn by
        ``language_model.generate`` with the same settings.
    """
    if not isinstance(model, CharModel):
        raise TypeError(f"model must be a CharModel, got {describe(model)}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
    temperature = check_real("temperature", temperature, positive=True)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    ids = torch.as_tensor(vocabulary.encode(prefix), device=device)[:, None]
    logits = model(ids)[0][-1].double()
    logits[:, 0] = -math.inf  # the unknown symbol is never drawn
    model.train(was_training)
    probabilities = sampling_probabilities(logits, temperature=temperature,
                                           top_k=top_k)[0].cpu().numpy()
    sample = generate(model, vocabulary, prefix, length, temperature=temperature,
                      top_k=top_k, seed=seed)[0]
    return {"probabilities": probabilities, "sample": sample}


def draw_next_char_distribution(ax: Any, vocabulary: Vocabulary, probabilities: Any, *,
                                top: int = 10, color: str | None = None) -> None:
    """Bars of the ``top`` most likely next characters, most likely first."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(vocabulary),):
        raise ValueError(f"probabilities must have shape ({len(vocabulary)},), one per symbol, "
                         f"got {probabilities.shape}")
    top = check_int("top", top, minimum=1)
    order = np.argsort(-probabilities, kind="stable")[:top]
    ax.bar(range(len(order)), probabilities[order], color=color or COLORS["input"])
    ax.set_xticks(range(len(order)), [printable(vocabulary.symbols[i]) for i in order],
                  fontfamily="monospace")
    ax.set_ylim(0, 1)
    ax.grid(axis="x", visible=False)


def draw_activation_text(ax: Any, text: str, values: Any, *, limit: float | None = None,
                         cmap: str = "RdBu_r", fontsize: float = 7.5,
                         columns: int | None = None) -> Any:
    """Draw ``text`` one character per cell, each cell coloured by its value.

    Parameters
    ----------
    ax : matplotlib Axes
    text : str
        Lines are drawn one below the other; a newline is drawn as ↵ at the end of its line.
    values : array (len(text),)
        The value of each character (e.g. a unit's state after reading it).
    limit : float, optional
        The colour scale runs from -limit to +limit (default: the largest ``|value|``).
    cmap : str
    fontsize : float
    columns : int, optional
        Cells per row (default: the longest line); longer lines are cut.

    Returns
    -------
    matplotlib.image.AxesImage
        For a colour bar.
    """
    values = np.asarray(values, dtype=np.float64)
    if not isinstance(text, str) or not text or values.shape != (len(text),):
        raise ValueError(f"text must be a non-empty string and values an array of shape "
                         f"(len(text),) = ({len(text) if isinstance(text, str) else '?'},), "
                         f"got {describe(values)}")
    lines = text.splitlines(keepends=True)
    width = columns or max(len(line) for line in lines)
    grid = np.full((len(lines), width), np.nan)
    limit = float(np.abs(values).max()) if limit is None else check_real("limit", limit,
                                                                         positive=True)
    position = 0
    for row, line in enumerate(lines):
        shown = min(len(line), width)
        grid[row, :shown] = values[position:position + shown]
        for column, symbol in enumerate(line[:shown]):
            label = "\u21b5" if symbol == "\n" else symbol
            if label.strip():
                ax.text(column, row, label, ha="center", va="center", fontsize=fontsize,
                        fontfamily="monospace", color="black")
        position += len(line)
    image = ax.imshow(grid, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.grid(False)
    return image


def sampling_small_multiples(model: CharModel, vocabulary: Vocabulary, prefix: str, *,
                             temperatures: Sequence[float] = (0.5, 1.0, 1.5),
                             top_k: int | None = None, length: int = 160, seed: int = 0,
                             top: int = 8) -> Any:
    """The explorer's static counterpart: one column per temperature.

    Top row: the distribution of the next character after ``prefix``; bottom row: a sample
    of ``length`` characters drawn with that temperature (same seed in every column).
    """
    import matplotlib.pyplot as plt

    temperatures = [check_real("temperatures[i]", t, positive=True) for t in temperatures]
    if not temperatures:
        raise ValueError("temperatures must not be empty")
    fig, axes = plt.subplots(2, len(temperatures), figsize=(3.1 * len(temperatures), 4.6),
                             gridspec_kw={"height_ratios": [1, 2.2]}, squeeze=False)
    for column, temperature in enumerate(temperatures):
        shown = explore_sampling(model, vocabulary, prefix, temperature=temperature,
                                 top_k=top_k, length=length, seed=seed)
        ax = axes[0, column]
        draw_next_char_distribution(ax, vocabulary, shown["probabilities"], top=top)
        ax.set_title(f"temperature {temperature:g}" + (f", top-{top_k}" if top_k else ""),
                     fontsize=9)
        if column == 0:
            ax.set_ylabel("p(next character)")
        ax = axes[1, column]
        ax.axis("off")
        sample = "\n".join(line[:34] for line in (prefix + shown["sample"]).splitlines()[:14])
        ax.text(0.0, 1.0, sample, ha="left", va="top", fontsize=6.5, fontfamily="monospace",
                transform=ax.transAxes)
    fig.tight_layout()
    return fig


def sampling_explorer(model: CharModel, vocabulary: Vocabulary, prefix: str = "def ",
                      temperature: float = 1.0) -> Any:
    """A text box for the prefix, sliders for the temperature, top-k and seed; redraws.

    Core ipywidgets only. Everything shown comes from ``explore_sampling``.

    Returns
    -------
    ipywidgets.VBox
        Display it as the last expression of a cell.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    controls = {
        "prefix": widgets.Text(value=prefix, description="prefix", continuous_update=False),
        "temperature": widgets.FloatSlider(value=temperature, min=0.1, max=2.5, step=0.1,
                                           description="temperature",
                                           continuous_update=False),
        "top_k": widgets.IntSlider(value=0, min=0, max=20, description="top-k (0: all)",
                                   continuous_update=False,
                                   style={"description_width": "initial"}),
        "seed": widgets.IntSlider(value=0, min=0, max=20, description="seed",
                                  continuous_update=False),
    }

    def redraw(prefix: str, temperature: float, top_k: int, seed: int) -> None:
        if not prefix:
            print("type a prefix: the model continues it")
            return
        shown = explore_sampling(model, vocabulary, prefix, temperature=temperature,
                                 top_k=top_k or None, length=300, seed=seed)
        fig, ax = plt.subplots(figsize=(6.0, 2.0))
        draw_next_char_distribution(ax, vocabulary, shown["probabilities"], top=12)
        ax.set_title(f"the next character after {prefix[-20:]!r}", fontsize=9)
        plt.show()
        print(prefix + shown["sample"])

    output = widgets.interactive_output(redraw, controls)
    return widgets.VBox([widgets.HBox([controls["prefix"], controls["temperature"]]),
                         widgets.HBox([controls["top_k"], controls["seed"]]), output])
