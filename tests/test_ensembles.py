"""Tests of ``throughtime.ensembles``: K networks trained side by side as one model.

The ensemble is compared with the same networks trained one at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from throughtime import ensembles
from throughtime.gates import gate_rows, set_forget_bias
from throughtime.measure import KINDS
from throughtime.tasks import make_task

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
    ensemble = ensembles.Ensemble(kind, seeds, I, H, O, per_step=per_step, dtype=torch.float64)
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
    ensemble = ensembles.Ensemble("GRU", seeds, I, H, O, dtype=torch.float64)
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
        probe = ensembles.Ensemble("GRU", seeds, I, H, O, dtype=torch.float64)
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
    run = ensembles.train_ensemble(kind, task, H, seeds, steps=steps, batch_size=batch_size, lr=lr,
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

    ensemble = ensembles.Ensemble("GRU", (0, 1, 2), 2, 4, 1, update_bias=1.5)
    for k in range(3):
        layer, _ = ensemble.network(k)
        z = gate_rows("GRU", "z", 4)
        effective = layer.bias_ih_l0[z] + layer.bias_hh_l0[z]
        torch.testing.assert_close(effective, torch.full((4,), 1.5))
        default, _ = standalone("GRU", k, 2, 4, 1, dtype=torch.float32)
        r = gate_rows("GRU", "r", 4)  # the other gates keep PyTorch's initialisation
        assert torch.equal(layer.bias_ih_l0[r], default.bias_ih_l0[r])
    lstm = ensembles.Ensemble("LSTM", (0,), 2, 4, 1, forget_bias=None, update_bias=1.5)
    layer, _ = lstm.network(0)
    default, _ = standalone("LSTM", 0, 2, 4, 1, forget_bias=None, dtype=torch.float32)
    for a, b in zip(layer.parameters(), default.parameters(), strict=True):
        assert torch.equal(a, b)


def test_grouping_changes_only_the_rounding():
    task = make_task("agreement", 3, test_size=32)
    seeds = (0, 1, 2, 3, 4)
    together = ensembles.train_ensemble("LSTM", task, 5, seeds, steps=5, batch_size=8,
                                  evaluations=1, group_size=5)
    apart = ensembles.train_ensemble("LSTM", task, 5, seeds, steps=5, batch_size=8,
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
    run = ensembles.train_ensemble("GRU", task, 4, (3, 8), steps=3, batch_size=8, evaluations=1,
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


def test_ensemble_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seeds must hold"):
        ensembles.Ensemble("LSTM", [], 2, 3, 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        ensembles.Ensemble("Gru", [0], 2, 3, 1)
    assert ensembles.Ensemble("gru", [0], 2, 3, 1).kind == "GRU"  # lower case is accepted
    ensemble = ensembles.Ensemble("LSTM", [0, 1], 2, 3, 1)
    with pytest.raises(ValueError, match="one batch per network"):
        ensemble.stack_inputs([torch.zeros(3, 1, 2)])
    with pytest.raises(ValueError, match="k must be in 0 .. 1"):
        ensemble.network(2)

