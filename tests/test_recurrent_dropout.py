"""Dropout for recurrent networks: masks, placements, the Markov source."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from throughtime import recurrent_dropout as rd


def _layer(placement, mask, p=0.4):
    torch.manual_seed(0)
    return rd.DropoutLSTM(3, 5, p=p, placement=placement, mask=mask).double()


def test_variational_masks_are_one_per_sequence():
    layer = _layer("recurrent", "variational")
    masks = layer.draw_masks(6, 40, torch.zeros(1, dtype=torch.float64))
    recurrent = masks["recurrent"]
    assert recurrent.shape == (6, 40, 5)
    for t in range(6):  # the same mask at every step of a sequence
        assert torch.equal(recurrent[t], recurrent[0])
    assert not all(torch.equal(recurrent[0, b], recurrent[0, 0]) for b in range(40)), \
        "different sequences get different masks"
    assert set(recurrent.unique().tolist()) == {0.0, 1 / 0.6}
    assert torch.equal(masks["input"], torch.ones(6, 40, 3, dtype=torch.float64))


def test_naive_masks_change_every_step():
    layer = _layer("between", "naive")
    masks = layer.draw_masks(6, 40, torch.zeros(1, dtype=torch.float64))
    assert not torch.equal(masks["input"][1], masks["input"][0])
    assert not torch.equal(masks["output"][2], masks["output"][3])
    assert torch.equal(masks["recurrent"], torch.ones(6, 40, 5, dtype=torch.float64))


def test_no_masks_in_eval_mode_or_without_dropout():
    for layer in (_layer("recurrent", "naive").eval(), _layer("none", "naive"),
                  _layer("between", "variational", p=0.0)):
        masks = layer.draw_masks(3, 2, torch.zeros(1, dtype=torch.float64))
        assert all(bool((mask == 1).all()) for mask in masks.values())


def test_forward_with_masks_equals_a_hand_loop():
    layer = _layer("recurrent", "variational")
    rng = np.random.default_rng(1)
    xs = torch.from_numpy(rng.standard_normal((7, 4, 3)))
    masks = {name: torch.from_numpy(rng.choice([0.0, 2.5], size=(7, 4, size)))
             for name, size in (("input", 3), ("recurrent", 5), ("output", 5))}
    got = layer(xs, masks)
    w_ih, w_hh = layer.lstm.weight_ih_l0, layer.lstm.weight_hh_l0
    bias = layer.lstm.bias_ih_l0 + layer.lstm.bias_hh_l0
    h = torch.zeros(4, 5, dtype=torch.float64)
    c = torch.zeros(4, 5, dtype=torch.float64)
    expected = []
    with torch.no_grad():
        for t in range(7):
            a = (masks["input"][t] * xs[t]) @ w_ih.T + (masks["recurrent"][t] * h) @ w_hh.T + bias
            i, f, g, o = a[:, :5].sigmoid(), a[:, 5:10].sigmoid(), a[:, 10:15].tanh(), \
                a[:, 15:].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            expected.append(masks["output"][t] * h)
    torch.testing.assert_close(got.detach(), torch.stack(expected), rtol=0, atol=1e-13)


def test_without_dropout_it_is_the_plain_lstm():
    layer = _layer("recurrent", "naive").eval()
    reference = nn.LSTM(3, 5, dtype=torch.float64)
    reference.load_state_dict({name.replace("lstm.", ""): value
                               for name, value in layer.state_dict().items()})
    xs = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(xs), reference(xs)[0], rtol=0, atol=1e-13)
    ones = layer.draw_masks(6, 2, xs)  # all ones in eval mode: the step loop agrees
    torch.testing.assert_close(layer(xs, ones), reference(xs)[0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("placement,mask", [("recurrent", "variational"),
                                            ("recurrent", "naive"),
                                            ("between", "variational"), ("between", "naive")])
def test_training_forward_uses_the_drawn_masks(placement, mask):
    layer = _layer(placement, mask).train()
    xs = torch.randn(5, 3, 3, dtype=torch.float64)
    torch.manual_seed(11)
    masks = layer.draw_masks(5, 3, xs)
    torch.manual_seed(11)
    drawn = layer(xs)
    torch.testing.assert_close(drawn, layer(xs, masks), rtol=0, atol=1e-13)
    torch.manual_seed(12)
    assert not torch.allclose(layer(xs), drawn), "another seed draws other masks"


def test_dropout_mask_scaling_and_errors():
    torch.manual_seed(0)
    mask = rd.dropout_mask((200_000,), 0.25, like=torch.zeros(1, dtype=torch.float64))
    assert set(mask.unique().tolist()) == {0.0, 1 / 0.75}
    assert abs(float(mask.mean()) - 1.0) < 0.01  # the expectation is kept
    assert abs(float((mask == 0).double().mean()) - 0.25) < 0.005
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        rd.dropout_mask((3,), 1.0, like=torch.zeros(1))
    with pytest.raises(ValueError, match="placement must be one of"):
        rd.DropoutLSTM(2, 3, placement="everywhere")
    with pytest.raises(ValueError, match="mask must be one of"):
        rd.DropoutLSTM(2, 3, mask="random")
    with pytest.raises(ValueError, match=r"xs must be a \(T, B, I\) tensor with I = 2"):
        rd.DropoutLSTM(2, 3)(torch.zeros(4, 1, 3))


def test_markov_source_and_sampling():
    table = rd.markov_source(3, 2, 5)
    assert table.shape == (9, 3)
    np.testing.assert_allclose(table.sum(axis=1), 1.0)
    sequences = rd.sample_markov(table, 2, 4000, 30, 6)
    assert sequences.shape == (30, 4000) and sequences.min() >= 0 and sequences.max() <= 2
    # Empirical next-symbol frequencies after the context (x_{t-2}, x_{t-1}) = (2, 0).
    after = (sequences[:-2] == 2) & (sequences[1:-1] == 0)
    following = sequences[2:][after]
    frequencies = np.bincount(following, minlength=3) / following.size
    np.testing.assert_allclose(frequencies, table[2 * 3 + 0], atol=0.02)


def test_source_cross_entropy_by_hand():
    table = np.array([[0.9, 0.1], [0.2, 0.8]])  # order 1: row = previous symbol
    sequences = np.array([[0, 1], [0, 1], [1, 0]])  # (T = 3, B = 2)
    steps = [-np.log(0.9), -np.log(0.1), -np.log(0.8), -np.log(0.2)]
    assert rd.source_cross_entropy(table, 1, sequences) == pytest.approx(np.mean(steps))
    with pytest.raises(ValueError, match="table must have symbols \\*\\* order"):
        rd.source_cross_entropy(table, 2, sequences)


def test_train_language_model_repeats_and_reports_the_floor():
    settings = {"placement": "recurrent", "mask": "variational", "steps": 6, "train_size": 8,
                "validation_size": 16, "hidden_size": 8, "evaluate_every": 2, "seed": 3}
    first = rd.train_language_model(**settings)
    second = rd.train_language_model(**settings)
    np.testing.assert_array_equal(first.validation, second.validation)
    assert first.checkpoints == [2, 4, 6]
    assert first.best == min(first.validation)
    assert first.floor > 0
