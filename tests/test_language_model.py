"""throughtime.language_model: the character model, its packed seeds, training, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import softmax
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from throughtime import language_model as lm
from throughtime import numpy_cells
from throughtime import text as tx

V, E, H = 11, 3, 5


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _ids(size=600, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=size)


# The model --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", lm.KINDS)
def test_char_model_equals_the_from_scratch_network(kind):
    model = lm.CharModel(kind, V, E, H, seed=1)
    inputs = torch.as_tensor(_ids(24).reshape(8, 3))
    logits, state = model(inputs)
    assert logits.shape == (8, 3, V)
    # Embedding: a row of the table, i.e. one-hot times the table.
    one_hot = nn.functional.one_hot(inputs, V).double()
    xs = (one_hot @ model.embedding.weight).detach().numpy()
    params = numpy_cells.params_from_torch(model.rnn)
    forward = {"RNN": numpy_cells.rnn_forward, "LSTM": numpy_cells.lstm_forward,
               "GRU": numpy_cells.gru_forward}[kind]
    hs = forward(xs, np.zeros((3, H)), *([np.zeros((3, H))] if kind == "LSTM" else []),
                 params)[0]
    expected = hs @ model.readout.weight.detach().numpy().T + model.readout.bias.detach().numpy()
    np.testing.assert_allclose(logits.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    final = state[0] if kind == "LSTM" else state
    np.testing.assert_allclose(final[0].detach().numpy(), hs[-1], rtol=1e-10, atol=1e-12)


def test_char_model_counts_and_matched_sizes():
    for kind in lm.KINDS:
        model = lm.CharModel(kind, 98, 16, 40)
        assert sum(p.numel() for p in model.parameters()) == lm.char_model_parameters(
            kind, 98, 16, 40)
    sizes = lm.matched_hidden_sizes(98, 16, 64)
    budget = lm.char_model_parameters("LSTM", 98, 16, 64)
    for kind, hidden in sizes.items():
        count = lm.char_model_parameters(kind, 98, 16, hidden)
        assert abs(count - budget) / budget < 0.02
        for other in (hidden - 1, hidden + 1):
            assert abs(lm.char_model_parameters(kind, 98, 16, other) - budget) >= abs(
                count - budget)


def test_the_lstm_forget_bias_is_set():
    model = lm.CharModel("LSTM", V, E, H, forget_bias=1.0, seed=0)
    rnn = model.rnn
    effective = (rnn.bias_ih_l0 + rnn.bias_hh_l0)[H:2 * H]
    np.testing.assert_allclose(effective.detach().numpy(), 1.0)
    untouched = lm.CharModel("LSTM", V, E, H, forget_bias=None, seed=0)
    assert not torch.allclose((untouched.rnn.bias_ih_l0 + untouched.rnn.bias_hh_l0)[H:2 * H],
                              effective)


def test_char_model_rejects_bad_input():
    model = lm.CharModel("GRU", V, E, H)
    with pytest.raises(TypeError, match=r"LongTensor \(T, B\)"):
        model(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="kind"):
        lm.CharModel("TCN", V, E, H)


# Lines of different lengths ---------------------------------------------------------------


@pytest.mark.parametrize("kind", lm.KINDS)
def test_packed_lines_equal_a_loop_over_the_lines(kind):
    model = lm.CharModel(kind, V, E, H, seed=2)
    rng = np.random.default_rng(3)
    lines = [rng.integers(0, V, size=n) for n in (7, 2, 5, 9, 3)]
    padded, lengths = tx.pad_sequences([line[:-1] for line in lines])
    targets, _ = tx.pad_sequences([line[1:] for line in lines])
    packed = pack_padded_sequence(torch.as_tensor(padded), torch.as_tensor(lengths),
                                  enforce_sorted=False)
    logits, state = model(packed)
    h_n = state[0] if kind == "LSTM" else state
    unpacked, _ = pad_packed_sequence(logits)  # (T, B, V), zeros after each line
    mask = torch.as_tensor(tx.length_mask(lengths))
    nats = nn.functional.cross_entropy(unpacked.reshape(-1, V), torch.as_tensor(
        targets).reshape(-1), reduction="none").view(mask.shape)
    masked_mean = (nats * mask).sum() / mask.sum()
    loop = []
    for b, line in enumerate(lines):
        alone, state = model(torch.as_tensor(line[:-1])[:, None])
        np.testing.assert_allclose(unpacked[:len(line) - 1, b].detach().numpy(),
                                   alone[:, 0].detach().numpy(), rtol=1e-12, atol=1e-12)
        final = state[0] if kind == "LSTM" else state
        np.testing.assert_allclose(h_n[0, b].detach().numpy(), final[0, 0].detach().numpy(),
                                   rtol=1e-12, atol=1e-12)
        loop.append(nn.functional.cross_entropy(alone[:, 0], torch.as_tensor(line[1:]),
                                                reduction="none"))
    assert masked_mean.item() == pytest.approx(torch.cat(loop).mean().item(), rel=1e-12)
    # The padded, unmasked mean is a different (wrong) number: padding counts as data.
    assert nats.mean().item() != pytest.approx(masked_mean.item(), rel=1e-3)


# Packed seeds -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", lm.KINDS)
def test_ensemble_members_train_as_they_would_alone(kind):
    seeds = [3, 5, 8]
    ids = _ids(900)
    segments = np.stack([tx.stream_segments(ids, 4, 10, offset=k) for k in range(3)], axis=-1)
    ensemble = lm.CharModelEnsemble(kind, seeds, V, E, H)
    for k, seed in enumerate(seeds):
        alone = lm.CharModel(kind, V, E, H, seed=seed)
        inputs = torch.as_tensor(segments[0, :-1, :, k])
        together, _ = ensemble(torch.as_tensor(segments[0, :-1]))
        np.testing.assert_allclose(together[:, :, k].detach().numpy(),
                                   alone(inputs)[0].detach().numpy(), rtol=1e-12, atol=1e-13)
    history = lm.train_on_stream(ensemble, segments, steps=6, lr=0.05, max_norm=0.3)
    assert history.bits.shape == (6, 3) and (history.grad_norms > 0.3).any(), "clipping ran"
    for k, seed in enumerate(seeds):
        alone = lm.CharModel(kind, V, E, H, seed=seed)
        own = lm.train_on_stream(alone, segments[..., k], steps=6, lr=0.05, max_norm=0.3)
        np.testing.assert_allclose(history.bits[:, k], own.bits[:, 0], rtol=1e-10)
        np.testing.assert_allclose(history.grad_norms[:, k], own.grad_norms[:, 0], rtol=1e-10)
        for (name, a), b in zip(alone.named_parameters(), ensemble.member(k).parameters(),
                                strict=True):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=name)
    for name, parameter in ensemble.rnn.named_parameters():
        between = ensemble._owner(f"rnn.{name}") == ensemble.members
        assert torch.all(parameter[between] == 0), name


def test_ensemble_clips_each_member_by_its_own_norm():
    ensemble = lm.CharModelEnsemble("LSTM", [0, 1], V, E, H)
    inputs = torch.as_tensor(_ids(40).reshape(10, 2, 2))
    logits, _ = ensemble(inputs)
    (logits[..., 0, :].sum() * 50 + logits[..., 1, :].sum() * 1e-3).backward()
    norms = ensemble.clip_gradients(1.0)
    assert norms[0] > 1.0 > norms[1]
    squares = torch.zeros(2)
    for name, parameter in ensemble.named_parameters():
        owner = ensemble._owner(name).reshape(-1)
        g = parameter.grad.reshape(-1)
        for k in range(2):
            squares[k] += g[owner == k].square().sum()
    assert squares[0].sqrt().item() == pytest.approx(1.0, rel=1e-5)
    assert squares[1].sqrt().item() == pytest.approx(norms[1].item(), rel=1e-10)


# Training and evaluation ------------------------------------------------------------------


def test_train_on_stream_carries_and_detaches_the_state():
    ids = _ids(700, seed=4)
    segments = tx.stream_segments(ids, 3, 8)
    trained = lm.CharModel("GRU", V, E, H, seed=7)
    history = lm.train_on_stream(trained, segments, steps=len(segments) + 2, lr=0.02)
    # The same loop written out: state carried and detached, restarted at a new pass.
    by_hand = lm.CharModel("GRU", V, E, H, seed=7)
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=0.02)
    state, losses = None, []
    for step in range(len(segments) + 2):
        segment = torch.as_tensor(segments[step % len(segments)])
        if step % len(segments) == 0:
            state = None
        logits, state = by_hand(segment[:-1], state)
        state = state.detach()
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), segment[1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(by_hand.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item() / math.log(2))
    np.testing.assert_allclose(history.bits[:, 0], losses, rtol=1e-12)
    for a, b in zip(trained.parameters(), by_hand.parameters(), strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
    # Without carrying, every segment starts from zeros: a different run.
    fresh = lm.CharModel("GRU", V, E, H, seed=7)
    stateless = lm.train_on_stream(fresh, segments, steps=3, lr=0.02, carry_state=False)
    assert stateless.bits[0, 0] == history.bits[0, 0]
    assert stateless.bits[1, 0] != pytest.approx(history.bits[1, 0], rel=1e-9)


def test_detach_state():
    h = torch.ones(2, requires_grad=True) * 2
    assert not lm.detach_state(h).requires_grad
    pair = lm.detach_state((h, h + 1))
    assert isinstance(pair, tuple) and not any(p.requires_grad for p in pair)
    assert lm.detach_state(None) is None


@pytest.mark.parametrize("kind", lm.KINDS)
def test_evaluate_bits_equals_one_pass_over_the_whole_text(kind):
    model = lm.CharModel(kind, V, E, H, seed=5)
    ids = _ids(500, seed=6)
    with torch.no_grad():
        logits, _ = model(torch.as_tensor(ids[:-1])[:, None])
        nats = nn.functional.cross_entropy(logits[:, 0], torch.as_tensor(ids[1:]))
    one_pass = nats.item() / math.log(2)
    assert lm.evaluate_bits(model, ids, streams=1)[0] == pytest.approx(one_pass, rel=1e-12)
    assert lm.evaluate_bits(model, ids, streams=7, warmup=500)[0] == pytest.approx(
        one_pass, rel=1e-12)
    # Less warm-up: some characters lose context, the number changes a little.
    short = lm.evaluate_bits(model, ids, streams=7, warmup=2)[0]
    assert short != pytest.approx(one_pass, rel=1e-12) and abs(short - one_pass) < 0.1
    # Reset every L characters: the pieces are read from zeros, one by one.
    pieces = []
    for start in range(0, len(ids) - 1, 40):
        piece = ids[start:min(start + 41, len(ids))]
        with torch.no_grad():
            out, _ = model(torch.as_tensor(piece[:-1])[:, None])
            pieces.append(nn.functional.cross_entropy(out[:, 0], torch.as_tensor(piece[1:]),
                                                      reduction="none"))
    by_piece = torch.cat(pieces).mean().item() / math.log(2)
    assert lm.evaluate_bits(model, ids, reset_every=40)[0] == pytest.approx(by_piece,
                                                                           rel=1e-12)


def test_a_uniform_model_costs_log2_v_bits():
    model = lm.CharModel("LSTM", V, E, H)
    with torch.no_grad():
        model.readout.weight.zero_()
        model.readout.bias.zero_()
    ids = _ids(300)
    assert lm.evaluate_bits(model, ids)[0] == pytest.approx(math.log2(V), rel=1e-12)
    ensemble = lm.CharModelEnsemble("RNN", [0, 1], V, E, H)
    with torch.no_grad():
        ensemble.readout_weight.zero_()
        ensemble.readout_bias.zero_()
    np.testing.assert_allclose(lm.evaluate_bits(ensemble, ids), math.log2(V), rtol=1e-12)


@pytest.mark.parametrize("kind", lm.KINDS)
def test_record_states_are_the_states_of_one_pass(kind):
    ensemble = lm.CharModelEnsemble(kind, [1, 2], V, E, H)
    ids = _ids(300, seed=9)
    recorded = lm.record_states(ensemble, ids, streams=5, warmup=300)
    assert recorded["h"].shape == (300, 2, H)
    for k in range(2):
        model = ensemble.member(k)
        cell = getattr(nn, f"{kind}Cell")(E, H)
        with torch.no_grad():
            for name, value in cell.named_parameters():
                value.copy_(model.rnn.get_parameter(f"{name}_l0"))
            h = torch.zeros(1, H)
            c = torch.zeros(1, H)
            for t, x in enumerate(model.embedding(torch.as_tensor(ids))):
                if kind == "LSTM":
                    h, c = cell(x[None], (h, c))
                    np.testing.assert_allclose(recorded["c"][t, k], c[0].numpy(), rtol=1e-9,
                                               atol=1e-12)
                else:
                    h = cell(x[None], h)
                np.testing.assert_allclose(recorded["h"][t, k], h[0].numpy(), rtol=1e-9,
                                           atol=1e-12)
    assert ("c" in recorded) == (kind == "LSTM")


def test_unit_correlations_are_pearson_correlations():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(200, 2, 4))
    states[:, 1, 3] = 0.5  # a unit that never moves
    feature = states[:, 0, 1] * 2 + rng.normal(size=200)
    r = lm.unit_correlations(states, {"f": feature})["f"]
    assert r.shape == (2, 4) and r[1, 3] == 0
    for k in range(2):
        for j in range(3):
            assert r[k, j] == pytest.approx(np.corrcoef(states[:, k, j], feature)[0, 1],
                                            rel=1e-12)
    with pytest.raises(ValueError, match="one value per character"):
        lm.unit_correlations(states, {"f": feature[:10]})


# Sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("top_k", [None, 3])
def test_the_sampler_draws_from_softmax_of_scaled_logits(temperature, top_k):
    logits = torch.as_tensor(np.random.default_rng(1).normal(0, 2, size=(2, 6)))
    p = lm.sampling_probabilities(logits, temperature=temperature, top_k=top_k)
    expected = tx.next_char_probabilities(logits.numpy(), temperature, top_k)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-14, atol=0)
    if top_k is None:
        np.testing.assert_allclose(p.numpy(), softmax(logits.numpy() / temperature, axis=-1),
                                   rtol=1e-14)
    draws = 100_000
    generator = torch.Generator().manual_seed(0)
    samples = lm.sample_next(logits.repeat(draws, 1), temperature=temperature, top_k=top_k,
                             generator=generator).view(draws, 2)
    for b in range(2):
        frequency = np.bincount(samples[:, b].numpy(), minlength=6) / draws
        spread = np.sqrt(expected[b] * (1 - expected[b]) / draws)
        assert np.all(np.abs(frequency - expected[b]) <= 5 * spread + 1e-12)
        assert np.all(frequency[expected[b] == 0] == 0), "top-k never draws the others"


def test_temperature_zero_is_greedy_and_bad_settings_fail():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert lm.sample_next(logits, temperature=0.0).tolist() == [1, 0]
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        lm.sample_next(logits, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k must be at most V = 3"):
        lm.sample_next(logits, top_k=4)
    with pytest.raises(TypeError, match=r"Tensor \(B, V\)"):
        lm.sample_next(logits[0])


def test_generate_is_seeded_and_never_writes_the_unknown_symbol():
    vocabulary = tx.Vocabulary.from_text("abcdefghij")
    model = lm.CharModel("LSTM", len(vocabulary), E, H, seed=0)
    with torch.no_grad():
        model.readout.bias[0] = 50.0  # the unknown symbol would win every draw
    first = lm.generate(model, vocabulary, "abc", 40, temperature=1.0, seed=3, samples=2)
    again = lm.generate(model, vocabulary, "abc", 40, temperature=1.0, seed=3, samples=2)
    assert first == again and len(first) == 2 and all(len(s) == 40 for s in first)
    assert tx.UNKNOWN not in "".join(first) and first[0] != first[1]
    greedy = lm.generate(model, vocabulary, "abc", 20, temperature=0.0, samples=3)
    assert greedy[0] == greedy[1] == greedy[2]
    with pytest.raises(ValueError, match="prefix"):
        lm.generate(model, vocabulary, "", 5)


# Seeds, and what the units track ----------------------------------------------------------


def test_train_seeds_trains_each_seed_as_train_on_stream_does():
    ids = _ids(1200, seed=11)
    runs = lm.train_seeds("LSTM", [4, 9], ids, vocabulary_size=V, embedding_size=E,
                          hidden_size=H, batch_size=3, length=7, steps=5, lr=0.03)
    packed = lm.train_seeds("LSTM", [4, 9], ids, vocabulary_size=V, embedding_size=E,
                            hidden_size=H, batch_size=3, length=7, steps=5, lr=0.03,
                            group_size=2)
    np.testing.assert_allclose(packed.bits, runs.bits, rtol=1e-10)
    assert runs.bits.shape == (5, 2) and len(runs.models) == 2
    for seed, model, other in zip(runs.seeds, runs.models, packed.models, strict=True):
        alone = lm.CharModel("LSTM", V, E, H, seed=seed)
        segments = tx.stream_segments(ids, 3, 7, offset=lm.stream_offset(seed, 7))
        history = lm.train_on_stream(alone, segments, steps=5, lr=0.03)
        np.testing.assert_allclose(history.bits[:, 0], runs.bits[:, runs.seeds.index(seed)],
                                   rtol=1e-12)
        for a, b, c in zip(alone.parameters(), model.parameters(), other.parameters(),
                           strict=True):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
            np.testing.assert_allclose(a.detach().numpy(), c.detach().numpy(), rtol=1e-9,
                                       atol=1e-12)
    offsets = {lm.stream_offset(seed, 32) for seed in range(20)}
    assert len(offsets) > 5 and all(0 <= o < 32 for o in offsets)


def test_strongest_units_and_the_current_character_ceiling():
    r = np.array([[0.1, -0.7, 0.3], [0.5, 0.2, -0.1]])
    units, values = lm.strongest_units({"f": r})["f"]
    assert units.tolist() == [1, 0] and values.tolist() == [-0.7, 0.5]
    ids = np.array([0, 1, 0, 1, 2, 2])
    # A feature that the character decides exactly: the ceiling is 1.
    assert lm.current_character_correlation(ids, ids * 2.0 + 1) == pytest.approx(1.0)
    # A feature the character says nothing about: the per-character means are all equal.
    assert lm.current_character_correlation(np.array([0, 0, 1, 1]), [1.0, 0, 1, 0]) == 0.0
    with pytest.raises(ValueError, match="same length"):
        lm.current_character_correlation(ids, [1.0])


def test_log2_probabilities_are_in_the_order_of_the_text():
    model = lm.CharModel("GRU", V, E, H, seed=12)
    ids = _ids(400, seed=13)
    with torch.no_grad():
        logits, _ = model(torch.as_tensor(ids[:-1])[:, None])
        expected = torch.log_softmax(logits[:, 0], -1)[torch.arange(399),
                                                        torch.as_tensor(ids[1:])]
    scored = lm.log2_probabilities(model, ids, streams=6, warmup=400)
    assert scored.shape == (399, 1)
    np.testing.assert_allclose(scored[:, 0], expected.numpy() / math.log(2), rtol=1e-10)


@pytest.mark.parametrize("kind", lm.KINDS)
def test_windowed_probabilities_read_exactly_the_window(kind):
    model = lm.CharModel(kind, V, E, H, seed=14)
    ids = _ids(300, seed=15)
    positions = np.array([20, 57, 299])
    windowed = lm.windowed_log2_probabilities(model, ids, positions, context=20)
    for row, t in enumerate(positions):
        with torch.no_grad():
            logits, _ = model(torch.as_tensor(ids[t - 20:t])[:, None])
        p = torch.log_softmax(logits[-1, 0], -1)[ids[t]].item() / math.log(2)
        assert windowed[row, 0] == pytest.approx(p, rel=1e-12)
    # With the whole text as the window, it is the stream's probability.
    whole = lm.windowed_log2_probabilities(model, ids, np.array([299]), context=299)
    stream = lm.log2_probabilities(model, ids, streams=1)
    assert whole[0, 0] == pytest.approx(stream[298, 0], rel=1e-12)
    with pytest.raises(ValueError, match="each needs context = 21"):
        lm.windowed_log2_probabilities(model, ids, positions, context=21)
