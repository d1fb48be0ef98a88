"""The book's figure helpers: the style applies, the diagrams hold what they promise."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl
import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import FancyBboxPatch

from throughtime.plotting import (
    COLORS,
    FIGSIZE,
    IO_PATTERNS,
    draw_io_patterns,
    draw_rnn_unrolled,
    draw_sequence_pattern,
    table_number,
    use_book_style,
)


def texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


def boxes(ax) -> list[FancyBboxPatch]:
    return [patch for patch in ax.patches if isinstance(patch, FancyBboxPatch)]


def test_use_book_style_sets_size_spines_and_colours():
    with mpl.rc_context():
        use_book_style()
        assert tuple(mpl.rcParams["figure.figsize"]) == FIGSIZE
        assert not mpl.rcParams["axes.spines.top"]
        assert not mpl.rcParams["axes.spines.right"]
        cycle = [entry["color"] for entry in mpl.rcParams["axes.prop_cycle"]]
        assert cycle[0] == COLORS["input"]
        assert len(set(cycle)) == len(cycle)


PHONE_FIGURE_PX = 366  # a 390-pixel phone less the page's margins
MIN_TEXT_PX = 9


def test_use_book_style_keeps_figure_text_readable_on_a_phone():
    import io
    import re

    import pandas as pd

    with mpl.rc_context():
        use_book_style()
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [0, 1, 4], label="a line")
        ax.set_xlabel("step $t$")
        ax.set_title("a title")
        ax.legend()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
        plt.close(fig)
    pd.reset_option("display.float_format")
    svg = buffer.getvalue()
    width_pt = float(re.search(r'<svg[^>]*width="([\d.]+)pt"', svg).group(1))
    sizes = [float(size) for size in re.findall(r"font-size: ([\d.]+)px", svg)]
    assert "<text" in svg and sizes, "the SVG keeps no text as text (svg.fonttype)"
    smallest_px = min(size for size in sizes if size > 7.5) * PHONE_FIGURE_PX / width_pt
    assert width_pt <= 5.4 * 72, f"the default figure is {width_pt / 72:.2f} in wide"
    assert smallest_px >= MIN_TEXT_PX, f"text {smallest_px:.1f} px tall on a phone"


@pytest.mark.parametrize(
    ("value", "printed"),
    [(20 / 3, "6.667"), (123456.7, "123,457"), (3.0, "3"), (-0.5, "-0.5"), (1.5e-9, "1.5e-09")],
)
def test_table_number_prints_four_significant_digits(value, printed):
    assert table_number(value) == printed


@pytest.mark.parametrize("steps", [1, 4, 6])
def test_unrolled_diagram_shares_the_same_weights_on_every_step(steps):
    fig = draw_rnn_unrolled(steps)
    folded, unrolled = fig.axes
    labels = texts(unrolled)
    # One input, one hidden state and one output per step, plus the initial state h_0.
    assert len(boxes(unrolled)) == 3 * steps + 1
    for name in ("$W_{ih}$", "$W_{hh}$", "$W_y$"):
        assert labels.count(name) == steps, f"{name} should label every one of {steps} steps"
    assert "$h_0$" in labels and f"$h_{steps}$" in labels
    # Folded: x_t, h_t, y_t and the delay block, with the recurrent weight on the loop.
    assert len(boxes(folded)) == 4
    assert "delay" in texts(folded)
    assert any("W_{hh}" in text for text in texts(folded))
    plt.close(fig)


@pytest.mark.parametrize("steps", [0, 9, 2.0, True, "4"])
def test_unrolled_diagram_rejects_bad_steps(steps):
    with pytest.raises(ValueError, match="steps must be an integer from 1 to 8"):
        draw_rnn_unrolled(steps)


def test_sequence_pattern_draws_only_the_inputs_and_outputs_asked_for():
    fig, ax = plt.subplots()
    draw_sequence_pattern(ax, [True, False, False], [False, True, True], title="pattern")
    labels = texts(ax)
    assert labels.count("$h$") == 3
    assert labels.count("$x$") == 1
    assert labels.count("$y$") == 2
    assert ax.get_title() == "pattern"
    plt.close(fig)


def test_sequence_pattern_rejects_mismatched_lengths():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="same length, got lengths 2 and 3"):
        draw_sequence_pattern(ax, [True, True], [True, True, True])
    with pytest.raises(ValueError, match="non-empty"):
        draw_sequence_pattern(ax, [], [])
    plt.close(fig)


def dashed_arrows(ax) -> int:
    return sum(1 for child in ax.texts if getattr(child, "arrow_patch", None) is not None
               and child.arrow_patch.get_linestyle() not in ("-", "solid"))


def test_sequence_pattern_feeds_outputs_back_only_into_steps_without_input():
    fig, ax = plt.subplots()
    # Outputs at steps 0, 1, 2; steps 1 and 2 read nothing, so two outputs are fed back.
    draw_sequence_pattern(ax, [True, False, False], [True, True, True], feedback=True)
    assert dashed_arrows(ax) == 2
    ax.clear()
    draw_sequence_pattern(ax, [True, True, True], [True, True, True], feedback=True)
    assert dashed_arrows(ax) == 0, "a step that reads its own input gets no feedback arrow"
    ax.clear()
    draw_sequence_pattern(ax, [True, False, False], [True, True, True])
    assert dashed_arrows(ax) == 0, "no feedback unless asked for"
    with pytest.raises(TypeError, match="feedback must be True or False, got 'yes'"):
        draw_sequence_pattern(ax, [True], [True], feedback="yes")
    plt.close(fig)


@pytest.mark.parametrize("steps", [3, 4, 6])
def test_io_patterns_show_the_four_shapes(steps):
    fig = draw_io_patterns(steps)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == list(IO_PATTERNS)
    assert titles[3] == "many-to-many, unaligned (encoder-decoder)"
    counts = [(texts(ax).count("$x$"), texts(ax).count("$y$")) for ax in fig.axes]
    reads, emits = steps, steps - 1
    assert counts == [(1, steps), (steps, 1), (steps, steps), (reads, emits)]
    # The encoder-decoder's output length differs from its input length, and no step
    # both reads and emits.
    assert reads != emits
    assert texts(fig.axes[3]).count("$h$") == reads + emits
    assert "encoder" in texts(fig.axes[3]) and "decoder" in texts(fig.axes[3])
    # Generated outputs are fed back: every output but the last in one-to-many, and every
    # decoder output but the last.
    assert [dashed_arrows(ax) for ax in fig.axes] == [steps - 1, 0, 0, emits - 1]
    plt.close(fig)


@pytest.mark.parametrize("steps", [2, 7, 4.0, True])
def test_io_patterns_reject_bad_steps(steps):
    with pytest.raises(ValueError, match="steps must be an integer from 3 to 6"):
        draw_io_patterns(steps)


def _contrast_on_white(hex_color: str) -> float:
    """WCAG 2 contrast ratio of ``hex_color`` against white, from the definition."""
    channels = [int(hex_color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def test_text_color_reaches_the_contrast_and_keeps_the_hue():
    from throughtime.plotting import text_color

    for color in ("#E69F00", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442"):
        darker = text_color(color)
        assert 4.5 <= _contrast_on_white(darker) < 4.8, (color, darker)
        original = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
        shade = [int(darker[i:i + 2], 16) for i in (1, 3, 5)]
        ratios = [s / o for s, o in zip(shade, original, strict=True) if o > 40]
        assert max(ratios) - min(ratios) < 0.03, (color, darker)  # the same hue, darker
    assert text_color("#0072B2") == "#0072b2"  # 5.2:1 already
    assert text_color("black") == "#000000"
