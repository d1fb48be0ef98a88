"""Tests of ``throughtime.head_to_head`` (comparisons, tuning, sweeps, verdicts), their
figures in ``throughtime.plotting`` and their explorer."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from throughtime import explorers, head_to_head, plotting
from throughtime.measure import KINDS, matched_hidden_sizes, model_parameter_count
from throughtime.tasks import make_task

matplotlib.use("Agg")


# --------------------------------------------------------------------------------------
# Learning rates per kind and their tuning
# --------------------------------------------------------------------------------------


def test_compare_takes_one_learning_rate_per_kind():
    task = make_task("adding", 4, test_size=8)
    settings = dict(lstm_hidden_size=4, seeds=(0,), steps=2, batch_size=4, evaluations=1)
    mixed = head_to_head.compare(task, lr={"RNN": 0.01, "LSTM": 0.02, "GRU": 0.03}, **settings)
    assert mixed.settings["lr"] == {"RNN": 0.01, "LSTM": 0.02, "GRU": 0.03}
    for kind, rate in mixed.settings["lr"].items():
        alone = head_to_head.compare(task, lr=rate, kinds=(kind,), **settings)
        np.testing.assert_array_equal(alone.final(kind), mixed.final(kind))
    with pytest.raises(ValueError, match=r"lr must give a value for every kind.*missing \['GRU'\]"):
        head_to_head.compare(task, lr={"RNN": 0.01, "LSTM": 0.02}, **settings)
    with pytest.raises(ValueError, match="lr\\['RNN'\\] must be positive"):
        head_to_head.compare(task, lr={"RNN": -1.0, "LSTM": 0.02, "GRU": 0.03}, **settings)


def test_tuning_prefers_a_rate_that_trains_every_seed():
    rates = (0.001, 0.01, 0.1)
    losses = np.array([[0.30, 0.31, 0.29, 0.30],     # slow but reliable
                       [0.01, 0.01, 0.70, 0.01],     # best median, one seed collapsed
                       [0.001, np.nan, 0.001, 0.001]])  # best otherwise, one run diverged
    assert head_to_head._choose_rate(rates, losses) == 0.01
    losses[1, 2] = 1.5  # a worse collapse: now the reliable rate wins
    assert head_to_head._choose_rate(rates, losses) == 0.001


def test_tuning_never_chooses_a_rate_too_small_to_learn():
    task = make_task("adding", 3, test_size=64)
    validation = make_task("adding", 3, test_size=256, test_seed=7).test()
    tuning = head_to_head.tune_learning_rates(task, validation, (1e-7, 0.05), kinds=("LSTM", "GRU"),
                                     seeds=(0, 1, 2), lstm_hidden_size=6, steps=60,
                                     batch_size=32)
    assert tuning.rates == (1e-7, 0.05)
    for kind in ("LSTM", "GRU"):
        assert tuning.losses[kind].shape == tuning.scores[kind].shape == (2, 3)
        assert np.median(tuning.losses[kind][1]) < np.median(tuning.losses[kind][0])
        assert tuning.chosen[kind] == 0.05
    with pytest.raises(TypeError, match="sets lr itself"):
        head_to_head.tune_learning_rates(task, validation, lr=0.1)


# --------------------------------------------------------------------------------------
# Comparisons, verdicts, sweeps and pictures
# --------------------------------------------------------------------------------------


def test_compare_matches_parameters_and_is_reproducible():
    task = make_task("adding", 5, test_size=16)
    first = head_to_head.compare(task, lstm_hidden_size=6, seeds=(0, 1), steps=6, batch_size=8,
                        evaluations=3)
    second = head_to_head.compare(task, lstm_hidden_size=6, seeds=(0, 1), steps=6, batch_size=8,
                         evaluations=3)
    assert first.kinds == list(KINDS) and first.steps == [2, 4, 6]
    for kind in KINDS:
        assert first.scores[kind].shape == (3, 2)
        np.testing.assert_array_equal(first.scores[kind], second.scores[kind])
        assert first.parameters[kind] == model_parameter_count(
            kind, 2, first.hidden_sizes[kind], 1)
    assert first.hidden_sizes == matched_hidden_sizes(2, 1, 6)
    np.testing.assert_array_equal(first.final("GRU"), first.scores["GRU"][-1])


@pytest.mark.parametrize("first, second, expected", [
    ([0.9, 0.95, 0.99], [0.1, 0.2, 0.3], "first"),
    ([0.1, 0.2, 0.3], [0.9, 0.95, 0.99], "second"),
    ([0.96, 0.97, 0.99], [0.95, 0.99, 0.98], "both"),
    ([0.1, 0.0, 0.3], [0.2, 0.1, 0.3], "neither"),
    ([0.99, 0.1, 0.98], [0.97, 0.96, 0.99], "mixed"),
    ([0.95, 0.6], [0.58, 0.2], "mixed"),  # one seed solves; the margin is not met
])
def test_verdict(first, second, expected):
    assert head_to_head.verdict(first, second, solved=0.9) == expected


def test_verdict_rejects_empty_scores():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        head_to_head.verdict([], [1.0], solved=0.5)


@pytest.mark.parametrize("match", ["parameters", "hidden_size"])
def test_data_size_sweep_shapes_and_sizes(match):
    task = make_task("adding", 4, test_size=16)
    result = head_to_head.data_size_sweep(task, (4, 16), lstm_hidden_size=5, match=match,
                                 seeds=(0, 1, 2), steps=3, batch_size=4)
    assert result.sizes == [4, 16] and result.match == match
    for kind in ("LSTM", "GRU"):
        assert result.scores[kind].shape == (2, 3)
    if match == "hidden_size":
        assert result.hidden_sizes == {"LSTM": 5, "GRU": 5}
    else:
        assert result.hidden_sizes == matched_hidden_sizes(2, 1, 5, kinds=("LSTM", "GRU"))
    with pytest.raises(ValueError, match="match must be one of"):
        head_to_head.data_size_sweep(task, (4,), match="flops")


def test_explore_is_a_pure_function_and_draws():
    import matplotlib.pyplot as plt

    first = explorers.explore("anbn", 3, 4, steps=4, seeds=(0,), evaluations=2, batch_size=4)
    second = explorers.explore("anbn", 3, 4, steps=4, seeds=(0,), evaluations=2, batch_size=4)
    for kind in first.kinds:
        np.testing.assert_array_equal(first.scores[kind], second.scores[kind])
    fig, ax = plt.subplots()
    plotting.draw_comparison(ax, first)
    assert len(ax.lines) == 3 * 2 + 2  # seeds and median per kind, chance, training range
    plt.close(fig)
    grid = plotting.comparison_small_multiples([first, second, first, second], columns=3)
    assert len(grid.axes) == 6 and not grid.axes[-1].axison
    plt.close(grid)
    with pytest.raises(TypeError, match="comparison must be a Comparison"):
        plotting.draw_comparison(ax, {"LSTM": [1]})


def test_a_diverged_run_is_drawn_at_the_floor_and_marked():
    import matplotlib.pyplot as plt

    task = make_task("adding", 4, test_size=8)
    assert plotting.score_floor(task) == pytest.approx(-0.9)  # 0 - (0.9 - 0)
    steps = [10, 20, 30]
    scores = {"RNN": np.array([[0.1, 0.0], [0.2, -50.0], [0.3, np.nan]]),
              "GRU": np.array([[0.5, 0.6], [0.9, 0.95], [0.99, 0.98]])}
    comparison = head_to_head.Comparison(task=task, seeds=(0, 1), hidden_sizes={"RNN": 9, "GRU": 5},
                                parameters={}, steps=steps, scores=scores, seconds={},
                                settings={})
    fig, ax = plt.subplots()
    plotting.draw_comparison(ax, comparison)
    bottom, top = ax.get_ylim()
    assert -1.0 < bottom < -0.9 and top > 0.99  # the other curves keep their scale
    lowest = min(np.min(np.asarray(line.get_ydata(), dtype=float)) for line in ax.lines)
    assert lowest == pytest.approx(-0.9)
    markers = [c for c in ax.collections if len(c.get_offsets())]
    assert len(markers) == 1 and len(markers[0].get_offsets()) == 2  # -50 and NaN
    assert "below the axis (diverged)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    # Medians, not means: one diverged seed of two does not drag the thick line to -25.
    rnn_median = [line for line in ax.lines if line.get_linewidth() == 2.0][0].get_ydata()
    assert rnn_median[1] == pytest.approx(np.median([0.2, -0.9]))
    grid = plotting.comparison_small_multiples([comparison])
    labels = [t.get_text() for t in grid.legends[0].get_texts()]
    assert "below the axis (diverged)" in labels
    plt.close(grid)
    with pytest.raises(TypeError, match="task must be a Task"):
        plotting.score_floor("adding")


def test_explorer_uses_core_widgets_only():
    import ipywidgets as widgets

    box = explorers.comparison_explorer()
    assert isinstance(box, widgets.VBox)
    leaves = [w for child in box.children
              for w in (child.children if isinstance(child, widgets.HBox) else [child])]
    assert {type(w).__name__ for w in leaves} == {"Dropdown", "IntSlider", "Button", "Label",
                                                  "Output"}


def test_the_comparison_explorer_disables_its_controls_while_training_and_flags_stale_figures(
        monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    box = explorers.comparison_explorer()
    leaves = [w for child in box.children
              for w in (child.children if isinstance(child, widgets.HBox) else [child])]
    button = next(w for w in leaves if isinstance(w, widgets.Button))
    status = next(w for w in leaves if isinstance(w, widgets.Label))
    sliders = [w for w in leaves if isinstance(w, widgets.IntSlider)]
    seen = []

    def fake_explore(**values):
        seen.append((button.disabled, all(s.disabled for s in sliders), status.value))
        raise RuntimeError("stopped for the test")

    real_explore = explorers.explore
    monkeypatch.setattr(explorers, "explore", fake_explore)
    button.click()
    disabled, sliders_disabled, during = seen[0]
    assert disabled and sliders_disabled and during.startswith("Training")
    assert not button.disabled and "stopped for the test" in status.value

    comparison = real_explore("adding", length=4, lstm_hidden_size=4, steps=2)
    monkeypatch.setattr(explorers, "explore", lambda **values: comparison)
    button.click()
    assert status.value == "The figure shows these settings."
    sliders[0].value = sliders[0].value + 2
    assert status.value.startswith("Settings changed")
    sliders[0].value = sliders[0].value - 2
    assert status.value == "The figure shows these settings."
