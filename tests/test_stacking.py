"""Stacked and bidirectional layers from the book's cells, and the two bit tasks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from throughtime import numpy_cells, stacking, torch_cells

KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _torch_run(module, xs, h0, c0, kind):
    with torch.no_grad():
        if kind == "lstm":
            output, (h_n, c_n) = module(torch.from_numpy(xs), (torch.from_numpy(h0),
                                                               torch.from_numpy(c0)))
            return output.numpy(), h_n.numpy(), c_n.numpy()
        output, h_n = module(torch.from_numpy(xs), torch.from_numpy(h0))
        return output.numpy(), h_n.numpy()


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("num_layers,bidirectional", [(2, False), (1, True), (2, True),
                                                      (3, False)])
@pytest.mark.parametrize("library", ["torch.nn", "torch_cells"])
def test_stacked_forward_equals_torch(kind, num_layers, bidirectional, library):
    torch.manual_seed(3)
    layer_class = KINDS[kind]
    if library == "torch_cells":
        layer_class = getattr(torch_cells, layer_class.__name__)
    module = layer_class(3, 5, num_layers=num_layers, bidirectional=bidirectional,
                         dtype=torch.float64)
    rng = np.random.default_rng(0)
    directions = 2 if bidirectional else 1
    xs = rng.standard_normal((7, 4, 3))
    h0 = rng.standard_normal((num_layers * directions, 4, 5))
    c0 = rng.standard_normal((num_layers * directions, 4, 5))
    expected = _torch_run(module, xs, h0, c0, kind)
    layers = stacking.layer_params_from_torch(module)
    assert len(layers) == num_layers and all(len(layer) == directions for layer in layers)
    got = stacking.stacked_forward(kind, xs, layers, h0, c0 if kind == "lstm" else None)
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-13)


def test_stacked_forward_zero_initial_states_by_default():
    torch.manual_seed(0)
    module = nn.LSTM(2, 3, num_layers=2, bidirectional=True, dtype=torch.float64)
    xs = np.random.default_rng(1).standard_normal((5, 2, 2))
    with torch.no_grad():
        output, (h_n, c_n) = module(torch.from_numpy(xs))
    got = stacking.stacked_forward("lstm", xs, stacking.layer_params_from_torch(module))
    np.testing.assert_allclose(got[0], output.numpy(), atol=1e-13, rtol=0)
    np.testing.assert_allclose(got[1], h_n.numpy(), atol=1e-13, rtol=0)
    np.testing.assert_allclose(got[2], c_n.numpy(), atol=1e-13, rtol=0)


def test_bidirectional_layer_is_two_directions_concatenated():
    rng = np.random.default_rng(4)
    forward = numpy_cells.init_params("gru", 2, 3, rng)
    backward = numpy_cells.init_params("gru", 2, 3, rng)
    xs = rng.standard_normal((6, 2, 2))
    output, h_n = stacking.bidirectional_layer("gru", xs, forward, backward)
    assert output.shape == (6, 2, 6) and h_n.shape == (2, 2, 3)
    # The backward half at step t has read x_T ... x_t: rerun it on that suffix alone.
    for t in range(6):
        suffix, _ = numpy_cells.gru_forward(xs[t:][::-1].copy(), None, backward)
        np.testing.assert_allclose(output[t, :, 3:], suffix[-1], atol=1e-14, rtol=0)
        prefix, _ = numpy_cells.gru_forward(xs[:t + 1], None, forward)
        np.testing.assert_allclose(output[t, :, :3], prefix[-1], atol=1e-14, rtol=0)
    np.testing.assert_array_equal(h_n[0], output[-1, :, :3])
    np.testing.assert_array_equal(h_n[1], output[0, :, 3:])


def test_stacked_forward_rejects_bad_input():
    rng = np.random.default_rng(0)
    params = numpy_cells.init_params("lstm", 2, 3, rng)
    xs = rng.standard_normal((4, 2, 2))
    with pytest.raises(ValueError, match="kind"):
        stacking.stacked_forward("transformer", xs, [[params]])
    with pytest.raises(ValueError, match="layers must be a non-empty"):
        stacking.stacked_forward("lstm", xs, [])
    with pytest.raises(ValueError, match="one parameter dict"):
        stacking.stacked_forward("lstm", xs, [[params], [params, params]])
    with pytest.raises(ValueError, match=r"h0 must have shape \(L D, B, H\) = \(1, 2, H\)"):
        stacking.stacked_forward("lstm", xs, [[params]], h0=np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="c0 is only for kind='lstm'"):
        stacking.stacked_forward("gru", xs, [[numpy_cells.init_params("gru", 2, 3, rng)]],
                                 c0=np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, B, H\)"):
        stacking.bidirectional_layer("lstm", xs, params, params, h0=np.zeros((1, 2, 3)))
    with pytest.raises(TypeError, match="xs must be a numpy array"):
        stacking.bidirectional_layer("lstm", torch.zeros(4, 2, 2), params, params)


def test_layer_params_from_torch_names_and_refusals():
    module = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    layers = stacking.layer_params_from_torch(module)
    np.testing.assert_array_equal(layers[1][1]["weight_ih"],
                                  module.weight_ih_l1_reverse.detach().numpy())
    assert layers[1][0]["weight_ih"].shape == (12, 8)  # layer 2 reads both directions
    with pytest.raises(ValueError, match="no projection"):
        stacking.layer_params_from_torch(nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="module must be a torch.nn.RNN"):
        stacking.layer_params_from_torch(nn.Linear(3, 4))


def test_neighbour_xor_task_targets():
    bits, targets = stacking.neighbour_xor_task(9, 5, 7)
    assert bits.shape == targets.shape == (9, 5) and bits.dtype == np.int64
    for t in range(9):
        for b in range(5):
            if t in (0, 8):
                assert targets[t, b] == stacking.IGNORE_INDEX
            else:
                assert targets[t, b] == int(bits[t - 1, b] != bits[t + 1, b])
    again, _ = stacking.neighbour_xor_task(9, 5, 7)
    np.testing.assert_array_equal(bits, again)
    with pytest.raises(ValueError, match="T must be an integer >= 3"):
        stacking.neighbour_xor_task(2, 5, 0)


def test_next_bit_task_targets():
    bits, targets = stacking.next_bit_task(6, 3, 1, as_torch=True)
    assert isinstance(bits, torch.Tensor)
    assert torch.equal(targets[:-1], bits[1:])
    assert (targets[-1] == stacking.IGNORE_INDEX).all()


def test_best_additive_accuracy_is_three_quarters():
    assert stacking.best_additive_accuracy() == 0.75
    # Independently: no sum a(l) + b(r) of random values does better than 3 of 4 on XOR,
    # and some reach 3 of 4.
    rng = np.random.default_rng(0)
    best = 0
    for a0, a1, b0, b1 in rng.standard_normal((20_000, 4)):
        a, b = (a0, a1), (b0, b1)
        right = sum((a[l] + b[r] > 0) == bool(l ^ r) for l, r in itertools.product((0, 1), (0, 1)))
        best = max(best, right)
    assert best == 3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_tagger_reads_the_future_only_when_bidirectional(bidirectional):
    torch.manual_seed(0)
    tagger = stacking.SequenceTagger(6, num_layers=2, bidirectional=bidirectional).double()
    bits = torch.randint(0, 2, (8, 3))
    changed = bits.clone()
    changed[5:] = 1 - changed[5:]  # change the future of step 4
    with torch.no_grad():
        before, after = tagger(bits), tagger(changed)
    assert before.shape == (8, 3, 2)
    same = torch.equal(before[:5], after[:5])
    assert same is not bidirectional


def test_tagging_accuracy_and_loss_ignore_steps_without_target():
    class Oracle(nn.Module):
        """Logits that put all weight on the true next bit (reads targets from a closure)."""

        def __init__(self, answer):
            super().__init__()
            self.answer = answer
            self.weight = nn.Parameter(torch.zeros(1))

        def forward(self, bits):
            return nn.functional.one_hot(self.answer.clamp(min=0), 2).double() * 50.0

    bits, targets = stacking.next_bit_task(5, 4, 0, as_torch=True)
    oracle = Oracle(targets)
    assert stacking.tagging_accuracy(oracle, bits, targets) == 1.0
    assert stacking.tagging_loss(oracle(bits), targets).item() < 1e-15
    wrong = Oracle(torch.where(targets >= 0, 1 - targets, targets))
    assert stacking.tagging_accuracy(wrong, bits, targets) == 0.0


def test_train_tagger_repeats_with_a_seed():
    first = stacking.train_tagger("next_bit", hidden_size=8, bidirectional=True, seed=1,
                                  steps=60, test_size=200)
    second = stacking.train_tagger("next_bit", hidden_size=8, bidirectional=True, seed=1,
                                   steps=60, test_size=200)
    np.testing.assert_array_equal(first.losses, second.losses)
    assert first.accuracy == second.accuracy
    assert first.parameters == sum(p.numel() for p in first.model.parameters())
    with pytest.raises(ValueError, match="task must be one of"):
        stacking.train_tagger("copy", hidden_size=4)
