"""minGRU/minLSTM against LSTM/GRU: sizes, ensembles, the training loop, the evidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from throughtime import linear_recurrence_comparison as lrc
from throughtime import tasks
from throughtime.stats import mann_whitney


def _modules(kind, inputs, hidden, outputs):
    layer, layers = lrc.MODEL_KINDS[kind]
    if layer in ("LSTM", "GRU"):
        return [getattr(nn, layer)(inputs, hidden), nn.Linear(hidden, outputs)]
    return [lrc.MinNetwork(layer, inputs, hidden, outputs, num_layers=layers)]


@pytest.mark.parametrize("kind", list(lrc.MODEL_KINDS))
def test_model_parameters_match_the_modules(kind):
    for inputs, hidden, outputs in ((1, 1, 1), (2, 16, 1), (25, 20, 2), (3, 7, 3)):
        modules = _modules(kind, inputs, hidden, outputs)
        assert lrc.model_parameters(kind, inputs, hidden, outputs) == sum(
            p.numel() for m in modules for p in m.parameters())


@pytest.mark.parametrize("kind", list(lrc.MODEL_KINDS))
def test_hidden_size_for_parameters_is_the_closest(kind):
    for inputs, outputs in ((2, 1), (25, 2), (3, 3)):
        budget = lrc.model_parameters("LSTM", inputs, 16, outputs)
        chosen = lrc.hidden_size_for_parameters(kind, budget, inputs, outputs)
        gap = abs(lrc.model_parameters(kind, inputs, chosen, outputs) - budget)
        best = min(abs(lrc.model_parameters(kind, inputs, h, outputs) - budget)
                   for h in range(1, 600))
        assert gap == best, (kind, inputs, outputs, chosen)
        assert gap / budget < 0.05


@pytest.mark.parametrize("kind,layers,per_step", [("minGRU", 1, False), ("minLSTM", 2, True)])
def test_ensemble_members_are_the_networks_alone(kind, layers, per_step):
    seeds = (3, 7)
    ensemble = lrc.MinEnsemble(kind, seeds, 3, 5, 2, num_layers=layers, per_step=per_step,
                               keep_bias=1.0)
    inputs = [torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(k)) for k in seeds]
    together = ensemble(ensemble.stack_inputs(inputs))
    for k, seed in enumerate(seeds):
        torch.manual_seed(seed)
        alone = lrc.MinNetwork(kind, 3, 5, 2, num_layers=layers, per_step=per_step,
                               keep_bias=1.0)
        expected = alone(inputs[k])
        torch.testing.assert_close(together[..., k, :], expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ensemble.network(k)(inputs[k]), expected)


def test_keep_bias_sets_the_keeping_gate():
    for kind in ("minGRU", "minLSTM"):
        network = lrc.MinNetwork(kind, 2, 4, 1, keep_bias=1.5)
        layer = network.layers[0]
        pre = layer.bias_ih.detach().double()
        from throughtime.linear_recurrence import min_decay_increment

        decay, _ = min_decay_increment(kind, pre)  # the decay at x = 0
        torch.testing.assert_close(decay, torch.full((4,), 1 / (1 + np.exp(-1.5)),
                                                     dtype=torch.float64))
    lstm = lrc.gated_ensemble("LSTM", (0, 1), 2, 3, 1, keep_bias=1.5).layer
    forget = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()[6:12]   # blocks i, f, g, o of K H
    torch.testing.assert_close(forget, torch.full((6,), 1.5))
    gru = lrc.gated_ensemble("GRU", (0, 1), 2, 3, 1, keep_bias=1.5).layer
    update = (gru.bias_ih_l0 + gru.bias_hh_l0).detach()[6:12]      # blocks r, z, n of K H
    torch.testing.assert_close(update, torch.full((6,), 1.5))


def test_side_by_side_training_is_each_network_trained_alone():
    task = tasks.make_task("adding", 6, test_size=20)
    seeds = (0, 5)
    ensemble = lrc.MinEnsemble("minLSTM", seeds, 2, 4, 1, keep_bias=1.0)
    lrc.train_side_by_side(ensemble, task, steps=4, batch_size=8, lr=0.05, max_norm=0.1,
                           evaluations=1)
    for k, seed in enumerate(seeds):
        torch.manual_seed(seed)
        alone = lrc.MinNetwork("minLSTM", 2, 4, 1, keep_bias=1.0)
        optimizer = torch.optim.Adam(alone.parameters(), lr=0.05)
        generator = np.random.default_rng([seed, 1])
        for _ in range(4):
            inputs, targets, mask = task.batch(8, generator)
            optimizer.zero_grad()
            task.loss(alone(inputs)[:, None], targets[:, None], mask).sum().backward()
            nn.utils.clip_grad_norm_(alone.parameters(), 0.1)
            optimizer.step()
        trained = ensemble.network(k)
        for mine, theirs in zip(trained.parameters(), alone.parameters(), strict=True):
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_compare_recurrences_and_tune_rates_run_small():
    task = tasks.make_task("agreement", 4, test_size=30)
    result = lrc.compare_recurrences(task, seeds=(0, 1), steps=3, batch_size=8,
                                     lstm_hidden_size=4, evaluations=2,
                                     lr={"LSTM": 0.01, "GRU": 0.01, "minGRU": 0.02,
                                         "minLSTM": 0.02})
    assert result.kinds == ["LSTM", "GRU", "minGRU", "minLSTM"]
    assert result.steps == [2, 3]
    budget = result.parameters["LSTM"]
    for kind in result.kinds:
        assert result.scores[kind].shape == (2, 2)
        assert abs(result.parameters[kind] - budget) / budget < 0.05
        assert np.all((result.final(kind) >= 0) & (result.final(kind) <= 1))
    assert result.settings["lr"]["minGRU"] == 0.02
    validation = tasks.make_task("agreement", 4, test_size=30, test_seed=9).test()
    chosen, losses = lrc.tune_rates(task, validation, (0.01, 0.1), kinds=("minGRU",),
                                    seeds=(0,), steps=2, batch_size=8, lstm_hidden_size=4)
    assert chosen["minGRU"] == (0.01, 0.1)[int(np.argmin(losses["minGRU"][:, 0]))]
    with pytest.raises(TypeError, match="lr"):
        lrc.tune_rates(task, validation, lr=0.1)


def test_evidence():
    first, second = [0.9, 0.95, 0.99], [0.5, 0.6, 0.7]
    found = lrc.evidence(first, second)
    assert found["separated"] and found["margin"] == pytest.approx(0.2)
    assert found["p"] == mann_whitney(first, second).p == pytest.approx(0.1)
    overlapping = lrc.evidence([0.5, 0.8], [0.6, 0.9])
    assert not overlapping["separated"] and overlapping["margin"] < 0


def test_bad_input_names_the_argument():
    task = tasks.make_task("adding", 5, test_size=10)
    with pytest.raises(ValueError, match="kind"):
        lrc.model_parameters("minRNN", 2, 3, 1)
    with pytest.raises(ValueError, match="budget"):
        lrc.hidden_size_for_parameters("GRU", 0, 2, 1)
    with pytest.raises(ValueError, match="seeds"):
        lrc.MinEnsemble("minGRU", (), 2, 3, 1)
    with pytest.raises(TypeError, match="task"):
        lrc.compare_recurrences("adding")
    with pytest.raises(ValueError, match="lr"):
        lrc.compare_recurrences(task, kinds=("LSTM", "minGRU"), lr={"LSTM": 0.1}, steps=1)
    with pytest.raises(ValueError, match="k must"):
        lrc.MinEnsemble("minGRU", (0,), 2, 3, 1).network(1)


@pytest.mark.parametrize("algorithm", ["sequential", "hillis_steele", "blelloch"])
def test_draw_scan_schedule_draws_one_arrow_per_edge(algorithm):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from throughtime.linear_recurrence import scan_cost, scan_schedule

    fig, ax = plt.subplots()
    lrc.draw_scan_schedule(ax, 6, algorithm)
    edges = sum(len(r) for r in scan_schedule(6, algorithm))
    assert len(ax.texts) == edges  # annotations
    cost = scan_cost(6, algorithm)
    assert f"depth {cost.depth}" in ax.get_title() and f"work {cost.work}" in ax.get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="algorithm"):
        lrc.draw_scan_schedule(ax, 6, "bubble")
