"""Tests of ``throughtime.comparison``: the ensemble, comparisons and pictures.

The ensemble is compared with the same networks trained one at a time.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from throughtime import comparison as cmp
from throughtime import explorers
from throughtime.gates import gate_rows, set_forget_bias
from throughtime.measure import KINDS, matched_hidden_sizes, model_parameter_count
from throughtime.tasks import make_task

matplotlib.use("Agg")


# --------------------------------------------------------------------------------------
# The ensemble
# --------------------------------------------------------------------------------------


def standalone(kind, seed, input_size, hidden_size, output_size, forget_bias=1.0,
               dtype=torch.float64):
    torch.manual_seed(seed)
    layer = getattr(nn, kind)(input_size, hidden_size, dtype=dtype)
    head = nn.Linear(hidden_size, output_size, dtype=dtype)
    if kind == "LSTM" and forget_bias is not None:
        set_forget_bias(layer, forget_bias)
    return layer, head


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("per_step", [False, True])
def test_ensemble_computes_each_network_as_if_alone(kind, per_step):
    seeds, I, H, O = (3, 7, 11), 2, 5, 3
    ensemble = cmp.Ensemble(kind, seeds, I, H, O, per_step=per_step, dtype=torch.float64)
    xs = [torch.randn(6, 4, I, dtype=torch.float64) for _ in seeds]
    outputs = ensemble(ensemble.stack_inputs(xs))
    assert outputs.shape == ((6, 4, 3, O) if per_step else (4, 3, O))
    for k, seed in enumerate(seeds):
        layer, head = standalone(kind, seed, I, H, O)
        states, _ = layer(xs[k])
        expected = head(states if per_step else states[-1])
        torch.testing.assert_close(outputs[..., k, :], expected)
        got_layer, got_head = ensemble.network(k)
        for a, b in zip(got_layer.parameters(), layer.parameters(), strict=True):
            assert torch.equal(a, b)
        assert torch.equal(got_head.weight, head.weight)


def test_ensemble_gradients_stay_inside_each_network_and_clip_like_torch():
    seeds, I, H, O = (0, 1), 3, 4, 2
    ensemble = cmp.Ensemble("GRU", seeds, I, H, O, dtype=torch.float64)
    xs = [torch.randn(5, 2, I, dtype=torch.float64) for _ in seeds]
    (ensemble(ensemble.stack_inputs(xs)) ** 2).sum().mul(50).backward()
    ensemble.mask_gradients()
    norms = ensemble.clip_per_network(0.3)
    for k, seed in enumerate(seeds):
        layer, head = standalone("GRU", seed, I, H, O)
        states, _ = layer(xs[k])
        (head(states[-1]) ** 2).sum().mul(50).backward()
        parameters = [*layer.parameters(), *head.parameters()]
        norm = nn.utils.clip_grad_norm_(parameters, 0.3)
        assert norms[k].item() == pytest.approx(norm.item())
        probe = cmp.Ensemble("GRU", seeds, I, H, O, dtype=torch.float64)
        for name, parameter in ensemble.named_parameters():
            probe.get_parameter(name).grad = parameter.grad.clone()
        with torch.no_grad():  # read network k's gradients through the same block indices
            grads = {}
            for name, _ in probe.named_parameters():
                grads[name] = probe.get_parameter(name).grad[probe._block_index(name, k)]
        mine = [grads[f"layer.{n}"] for n, _ in layer.named_parameters()]
        mine += [grads["head.weight"], grads["head.bias"]]
        for a, p in zip(mine, parameters, strict=True):
            torch.testing.assert_close(a.reshape(p.shape), p.grad)
    for name, parameter in ensemble.named_parameters():
        outside = ensemble._owners[name] == len(seeds)
        assert (parameter.grad.reshape(-1)[outside] == 0).all(), name


@pytest.mark.parametrize("kind, task_name", [("LSTM", "adding"), ("GRU", "anbn"),
                                             ("RNN", "agreement")])
def test_training_the_ensemble_equals_training_each_network_alone(kind, task_name):
    task = make_task(task_name, 4, test_size=8)
    seeds, H, steps, batch_size, lr = (5, 9), 6, 4, 8, 0.05
    run = cmp.train_ensemble(kind, task, H, seeds, steps=steps, batch_size=batch_size, lr=lr,
                             max_norm=0.5, evaluations=2)
    assert run.steps == [2, 4] and run.scores.shape == (2, 2)
    for k, seed in enumerate(seeds):
        layer, head = standalone(kind, seed, task.input_size, H, task.output_size,
                                 dtype=torch.float32)
        parameters = [*layer.parameters(), *head.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=lr)
        rng = np.random.default_rng([seed, 1])
        for _ in range(steps):
            inputs, targets, mask = task.batch(batch_size, rng)
            optimizer.zero_grad()
            states, _ = layer(inputs)
            outputs = head(states if task.per_step else states[-1])[..., None, :]
            loss = task.loss(outputs, targets[..., None],
                             None if mask is None else mask[..., None])
            loss.sum().backward()
            nn.utils.clip_grad_norm_(parameters, 0.5)
            optimizer.step()
        trained_layer, trained_head = run.network(k)
        for a, b in zip([*trained_layer.parameters(), *trained_head.parameters()], parameters,
                        strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_ensemble_sets_the_update_bias_of_every_gru_and_only_of_grus():

    ensemble = cmp.Ensemble("GRU", (0, 1, 2), 2, 4, 1, update_bias=1.5)
    for k in range(3):
        layer, _ = ensemble.network(k)
        z = gate_rows("GRU", "z", 4)
        effective = layer.bias_ih_l0[z] + layer.bias_hh_l0[z]
        torch.testing.assert_close(effective, torch.full((4,), 1.5))
        default, _ = standalone("GRU", k, 2, 4, 1, dtype=torch.float32)
        r = gate_rows("GRU", "r", 4)  # the other gates keep PyTorch's initialisation
        assert torch.equal(layer.bias_ih_l0[r], default.bias_ih_l0[r])
    lstm = cmp.Ensemble("LSTM", (0,), 2, 4, 1, forget_bias=None, update_bias=1.5)
    layer, _ = lstm.network(0)
    default, _ = standalone("LSTM", 0, 2, 4, 1, forget_bias=None, dtype=torch.float32)
    for a, b in zip(layer.parameters(), default.parameters(), strict=True):
        assert torch.equal(a, b)


def test_grouping_changes_only_the_rounding():
    task = make_task("agreement", 3, test_size=32)
    seeds = (0, 1, 2, 3, 4)
    together = cmp.train_ensemble("LSTM", task, 5, seeds, steps=5, batch_size=8,
                                  evaluations=1, group_size=5)
    apart = cmp.train_ensemble("LSTM", task, 5, seeds, steps=5, batch_size=8,
                               evaluations=1, group_size=2)
    assert [e.members for e in together.ensembles] == [5]
    assert [e.members for e in apart.ensembles] == [2, 1, 2]  # as equal as possible
    assert apart.members == 5
    for k in range(len(seeds)):
        for a, b in zip(together.network(k)[0].parameters(), apart.network(k)[0].parameters(),
                        strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="k must be in 0 .. 4"):
        apart.network(5)


def test_evaluate_scores_each_network_on_new_data_like_the_network_alone():
    task = make_task("adding", 6, test_size=16)
    run = cmp.train_ensemble("GRU", task, 4, (3, 8), steps=3, batch_size=8, evaluations=1,
                             group_size=1)
    data = make_task("adding", 6, test_size=40, test_seed=99).test()
    scores, losses = run.evaluate(task, data)
    inputs, targets, _ = data
    for k in range(2):
        layer, head = run.network(k)
        with torch.no_grad():
            prediction = head(layer(inputs)[0][-1])[:, 0]
        mse = float((prediction - targets).double().square().mean())
        assert losses[k] == pytest.approx(mse, rel=1e-5)
        assert scores[k] == pytest.approx(1 - mse * 6, rel=1e-5)
    # The final test score is the same evaluation on the test set.
    test_scores, _ = run.evaluate(task, task.test())
    np.testing.assert_allclose(test_scores, run.final, rtol=1e-6)


def test_compare_takes_one_learning_rate_per_kind():
    task = make_task("adding", 4, test_size=8)
    settings = dict(lstm_hidden_size=4, seeds=(0,), steps=2, batch_size=4, evaluations=1)
    mixed = cmp.compare(task, lr={"RNN": 0.01, "LSTM": 0.02, "GRU": 0.03}, **settings)
    assert mixed.settings["lr"] == {"RNN": 0.01, "LSTM": 0.02, "GRU": 0.03}
    for kind, rate in mixed.settings["lr"].items():
        alone = cmp.compare(task, lr=rate, kinds=(kind,), **settings)
        np.testing.assert_array_equal(alone.final(kind), mixed.final(kind))
    with pytest.raises(ValueError, match=r"lr must give a value for every kind.*missing \['GRU'\]"):
        cmp.compare(task, lr={"RNN": 0.01, "LSTM": 0.02}, **settings)
    with pytest.raises(ValueError, match="lr\\['RNN'\\] must be positive"):
        cmp.compare(task, lr={"RNN": -1.0, "LSTM": 0.02, "GRU": 0.03}, **settings)


def test_tuning_prefers_a_rate_that_trains_every_seed():
    rates = (0.001, 0.01, 0.1)
    losses = np.array([[0.30, 0.31, 0.29, 0.30],     # slow but reliable
                       [0.01, 0.01, 0.70, 0.01],     # best median, one seed collapsed
                       [0.001, np.nan, 0.001, 0.001]])  # best otherwise, one run diverged
    assert cmp._choose_rate(rates, losses) == 0.01
    losses[1, 2] = 1.5  # a worse collapse: now the reliable rate wins
    assert cmp._choose_rate(rates, losses) == 0.001


def test_tuning_never_chooses_a_rate_too_small_to_learn():
    task = make_task("adding", 3, test_size=64)
    validation = make_task("adding", 3, test_size=256, test_seed=7).test()
    tuning = cmp.tune_learning_rates(task, validation, (1e-7, 0.05), kinds=("LSTM", "GRU"),
                                     seeds=(0, 1, 2), lstm_hidden_size=6, steps=60,
                                     batch_size=32)
    assert tuning.rates == (1e-7, 0.05)
    for kind in ("LSTM", "GRU"):
        assert tuning.losses[kind].shape == tuning.scores[kind].shape == (2, 3)
        assert np.median(tuning.losses[kind][1]) < np.median(tuning.losses[kind][0])
        assert tuning.chosen[kind] == 0.05
    with pytest.raises(TypeError, match="sets lr itself"):
        cmp.tune_learning_rates(task, validation, lr=0.1)


def test_ensemble_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seeds must hold"):
        cmp.Ensemble("LSTM", [], 2, 3, 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        cmp.Ensemble("gru", [0], 2, 3, 1)
    ensemble = cmp.Ensemble("LSTM", [0, 1], 2, 3, 1)
    with pytest.raises(ValueError, match="one batch per network"):
        ensemble.stack_inputs([torch.zeros(3, 1, 2)])
    with pytest.raises(ValueError, match="k must be in 0 .. 1"):
        ensemble.network(2)


# --------------------------------------------------------------------------------------
# Comparisons, verdicts, sweeps and pictures
# --------------------------------------------------------------------------------------


def test_compare_matches_parameters_and_is_reproducible():
    task = make_task("adding", 5, test_size=16)
    first = cmp.compare(task, lstm_hidden_size=6, seeds=(0, 1), steps=6, batch_size=8,
                        evaluations=3)
    second = cmp.compare(task, lstm_hidden_size=6, seeds=(0, 1), steps=6, batch_size=8,
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
    assert cmp.verdict(first, second, solved=0.9) == expected


def test_verdict_rejects_empty_scores():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        cmp.verdict([], [1.0], solved=0.5)


@pytest.mark.parametrize("match", ["parameters", "hidden_size"])
def test_data_size_sweep_shapes_and_sizes(match):
    task = make_task("adding", 4, test_size=16)
    result = cmp.data_size_sweep(task, (4, 16), lstm_hidden_size=5, match=match,
                                 seeds=(0, 1, 2), steps=3, batch_size=4)
    assert result.sizes == [4, 16] and result.match == match
    for kind in ("LSTM", "GRU"):
        assert result.scores[kind].shape == (2, 3)
    if match == "hidden_size":
        assert result.hidden_sizes == {"LSTM": 5, "GRU": 5}
    else:
        assert result.hidden_sizes == matched_hidden_sizes(2, 1, 5, kinds=("LSTM", "GRU"))
    with pytest.raises(ValueError, match="match must be one of"):
        cmp.data_size_sweep(task, (4,), match="flops")


def test_explore_is_a_pure_function_and_draws():
    import matplotlib.pyplot as plt

    first = explorers.explore("anbn", 3, 4, steps=4, seeds=(0,), evaluations=2, batch_size=4)
    second = explorers.explore("anbn", 3, 4, steps=4, seeds=(0,), evaluations=2, batch_size=4)
    for kind in first.kinds:
        np.testing.assert_array_equal(first.scores[kind], second.scores[kind])
    fig, ax = plt.subplots()
    cmp.draw_comparison(ax, first)
    assert len(ax.lines) == 3 * 2 + 2  # seeds and median per kind, chance, training range
    plt.close(fig)
    grid = cmp.comparison_small_multiples([first, second, first, second], columns=3)
    assert len(grid.axes) == 6 and not grid.axes[-1].axison
    plt.close(grid)
    with pytest.raises(TypeError, match="comparison must be a Comparison"):
        cmp.draw_comparison(ax, {"LSTM": [1]})


def test_a_diverged_run_is_drawn_at_the_floor_and_marked():
    import matplotlib.pyplot as plt

    task = make_task("adding", 4, test_size=8)
    assert cmp.score_floor(task) == pytest.approx(-0.9)  # 0 - (0.9 - 0)
    steps = [10, 20, 30]
    scores = {"RNN": np.array([[0.1, 0.0], [0.2, -50.0], [0.3, np.nan]]),
              "GRU": np.array([[0.5, 0.6], [0.9, 0.95], [0.99, 0.98]])}
    comparison = cmp.Comparison(task=task, seeds=(0, 1), hidden_sizes={"RNN": 9, "GRU": 5},
                                parameters={}, steps=steps, scores=scores, seconds={},
                                settings={})
    fig, ax = plt.subplots()
    cmp.draw_comparison(ax, comparison)
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
    grid = cmp.comparison_small_multiples([comparison])
    labels = [t.get_text() for t in grid.legends[0].get_texts()]
    assert "below the axis (diverged)" in labels
    plt.close(grid)
    with pytest.raises(TypeError, match="task must be a Task"):
        cmp.score_floor("adding")


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
