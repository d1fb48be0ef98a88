"""Sequence to sequence: data, encoder, attention, teacher forcing, greedy and beam decoding."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from throughtime import seq2seq as s2s


def _model(attention, hidden=6, seed=0):
    torch.manual_seed(seed)
    model = s2s.Seq2Seq(hidden, attention=attention, embedding_size=4).double()
    # Larger weights than the default, so that an untrained model is not nearly uniform and
    # decoding has something to choose.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model.eval()


def test_reversal_batch_layout():
    batch = s2s.reversal_batch(50, 0, max_length=6, min_length=2)
    T = int(batch.lengths.max())
    assert batch.source.shape == (T, 50) and batch.target.shape == (T + 1, 50)
    assert batch.lengths.min() >= 2 and batch.lengths.max() <= 6
    for b in range(50):
        n = int(batch.lengths[b])
        digits = batch.source[:n, b].tolist()
        assert all(0 <= d <= 9 for d in digits)
        assert (batch.source[n:, b] == s2s.PAD).all()
        assert batch.target[:n + 1, b].tolist() == digits[::-1] + [s2s.END]
        assert batch.decoder_input[:n + 1, b].tolist() == [s2s.START] + digits[::-1]
        assert (batch.target[n + 1:, b] == s2s.PAD).all()
    test = s2s.reversal_test_set(range(3, 5), 7)
    assert list(test) == [3, 4] and test[4].source.shape == (4, 7)
    assert (test[3].lengths == 3).all()


def test_text_helpers():
    source, lengths = s2s.source_from_text("3871")
    assert source[:, 0].tolist() == [3, 8, 7, 1] and lengths.tolist() == [4]
    assert s2s.tokens_to_text([1, 7, 8, 3, s2s.END, s2s.PAD]) == "1783$"
    assert s2s.tokens_to_text(torch.tensor([4, 4])) == "44"
    for bad in ("", "12a", "３", 12):
        with pytest.raises(ValueError, match="text must be a non-empty string of the digits"):
            s2s.source_from_text(bad)


def test_encoder_packing_takes_each_sequence_at_its_own_end():
    model = _model(attention=False)
    batch = s2s.reversal_batch(5, 3, max_length=7)
    states, (h_n, c_n) = model.encoder(batch.source, batch.lengths)
    for b in range(5):
        n = int(batch.lengths[b])
        alone, (h_alone, c_alone) = model.encoder.rnn(
            model.encoder.embedding(batch.source[:n, b:b + 1]))
        torch.testing.assert_close(states[:n, b], alone[:, 0], rtol=0, atol=1e-13)
        torch.testing.assert_close(h_n[0, b], h_alone[0, 0], rtol=0, atol=1e-13)
        torch.testing.assert_close(c_n[0, b], c_alone[0, 0], rtol=0, atol=1e-13)
        assert (states[n:, b] == 0).all()


def test_attention_weights_sum_to_one_and_skip_padding():
    torch.manual_seed(1)
    attention = s2s.AdditiveAttention(3, 4, 5).double()
    values = torch.randn(6, 3, 4, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    mask = torch.arange(6).unsqueeze(1) < lengths
    query = torch.randn(3, 3, dtype=torch.float64)
    context, weights = attention(query, attention.key(values), values, mask)
    torch.testing.assert_close(weights.sum(0), torch.ones(3, dtype=torch.float64))
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    # The formula by hand, for sequence 1 (two real positions).
    with torch.no_grad():
        energies = [attention.score.weight[0] @ torch.tanh(
            attention.query.weight @ query[1] + attention.query.bias
            + attention.key.weight @ values[j, 1]) for j in range(2)]
        alpha = torch.softmax(torch.stack(energies), 0)
        torch.testing.assert_close(weights[:2, 1], alpha)
        torch.testing.assert_close(context[1], alpha @ values[:2, 1])


def test_plain_teacher_forced_loss_equals_a_hand_loop():
    model = _model(attention=False)
    batch = s2s.reversal_batch(4, 5, max_length=5)
    logits = model(batch.source, batch.lengths, batch.decoder_input)
    loss = s2s.sequence_loss(logits, batch.target)
    # By hand: one decoder step at a time from the encoder's state, feeding the true token.
    state = model.begin(batch.source, batch.lengths)
    total, count = 0.0, 0
    for t in range(batch.target.shape[0]):
        step_logits, state = model.step(batch.decoder_input[t], state)
        torch.testing.assert_close(step_logits, logits[t], rtol=0, atol=1e-12)
        log_probs = torch.log_softmax(step_logits, -1)
        for b in range(4):
            if batch.target[t, b] != s2s.PAD:
                total -= log_probs[b, batch.target[t, b]].item()
                count += 1
    assert loss.item() == pytest.approx(total / count, rel=1e-12)


def test_attention_teacher_forced_logits_equal_the_equations():
    model = _model(attention=True)
    batch = s2s.reversal_batch(3, 8, max_length=4)
    logits, weights = model(batch.source, batch.lengths, batch.decoder_input,
                            return_weights=True)
    attention, cell = model.attention, model.cell
    with torch.no_grad():
        memory, (h, c) = model.encoder(batch.source, batch.lengths)
        h, c = h[0], c[0]
        for t in range(batch.decoder_input.shape[0]):
            for b in range(3):
                n = int(batch.lengths[b])
                energies = torch.stack([attention.score.weight[0] @ torch.tanh(
                    attention.query.weight @ h[b] + attention.query.bias
                    + attention.key.weight @ memory[j, b]) for j in range(n)])
                alpha = torch.softmax(energies, 0)
                torch.testing.assert_close(weights[t, :n, b], alpha, rtol=0, atol=1e-12)
            context = torch.einsum("tb,tbh->bh", weights[t], memory)
            x = torch.cat([model.embedding(batch.decoder_input[t]), context], -1)
            gates = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
            i, f, g, o = gates.chunk(4, -1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
            expected = torch.cat([h, context], -1) @ model.readout.weight.T + model.readout.bias
            torch.testing.assert_close(logits[t], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("attention", [False, True])
def test_beam_width_one_is_greedy(attention):
    model = _model(attention)
    batch = s2s.reversal_batch(6, 2, max_length=5)
    tokens, scores = s2s.greedy_decode(model, batch.source, batch.lengths, 7)
    beam = s2s.beam_search(model, batch.source, batch.lengths, beam_width=1, max_length=7)
    assert torch.equal(beam.tokens, tokens)
    torch.testing.assert_close(beam.scores, scores, rtol=0, atol=1e-12)


@pytest.mark.parametrize("attention", [False, True])
def test_beam_search_finds_the_best_sequence_by_brute_force(attention):
    model = _model(attention, seed=4)
    source, lengths = s2s.source_from_text("291")
    max_length = 3
    # Every output the decoder can produce in at most 3 tokens: END at some position (and
    # nothing after it), or 3 tokens without END.
    candidates = []
    for length in range(1, max_length + 1):
        for prefix in itertools.product([v for v in range(s2s.VOCABULARY_SIZE) if v != s2s.END],
                                        repeat=length - 1):
            candidates.append(list(prefix) + [s2s.END] + [s2s.PAD] * (max_length - length))
    candidates += [list(p) for p in itertools.product(
        [v for v in range(s2s.VOCABULARY_SIZE) if v != s2s.END], repeat=max_length)]
    outputs = torch.tensor(candidates).T  # (3, N)
    sources = source.expand(-1, outputs.shape[1])
    scores = s2s.sequence_log_prob(model, sources, lengths.expand(outputs.shape[1]), outputs)
    best = int(scores.argmax())
    width = s2s.VOCABULARY_SIZE ** (max_length - 1)  # keeps every prefix: exact
    found = s2s.beam_search(model, source, lengths, beam_width=width, max_length=max_length)
    assert found.tokens[:, 0].tolist() == candidates[best]
    assert found.scores[0].item() == pytest.approx(scores[best].item(), abs=1e-10)
    # A narrower beam can only do as well or worse than the exact search.
    narrow = s2s.beam_search(model, source, lengths, beam_width=2, max_length=max_length)
    assert narrow.scores[0].item() <= found.scores[0].item() + 1e-12


def test_beam_scores_are_the_model_log_probabilities_and_batching_changes_nothing():
    model = _model(attention=True, seed=2)
    batch = s2s.reversal_batch(4, 9, max_length=5)
    result = s2s.beam_search(model, batch.source, batch.lengths, beam_width=3, max_length=6)
    for k in range(3):
        again = s2s.sequence_log_prob(model, batch.source, batch.lengths, result.beams[:, :, k])
        torch.testing.assert_close(again, result.beam_scores[:, k], rtol=0, atol=1e-10)
    assert (result.beam_scores[:, :-1] >= result.beam_scores[:, 1:]).all(), "best first"
    for b in range(4):
        n = int(batch.lengths[b])
        alone = s2s.beam_search(model, batch.source[:n, b:b + 1], batch.lengths[b:b + 1],
                                beam_width=3, max_length=6)
        assert torch.equal(alone.beams[:, 0], result.beams[:, b])


def test_beam_step_by_hand():
    scores = np.array([-1.0, -2.0])
    log_probs = np.log(np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]]))
    new_scores, parents, tokens = s2s.beam_step(scores, log_probs, 3)
    # The six candidates: -1 + ln(.5, .3, .2) = -1.69, -2.20, -2.61; -2 + ln(.9, .05, .05)
    # = -2.11, -5.0, -5.0. The best three: (0, 0), (1, 0), (0, 1).
    assert parents.tolist() == [0, 1, 0] and tokens.tolist() == [0, 0, 1]
    np.testing.assert_allclose(new_scores, [-1 + math.log(0.5), -2 + math.log(0.9),
                                            -1 + math.log(0.3)])
    with pytest.raises(ValueError, match="beam_width must be at most K V = 6"):
        s2s.beam_step(scores, log_probs, 7)
    with pytest.raises(ValueError, match=r"log_probs must be a 2-D array \(K, V\) with K = 2"):
        s2s.beam_step(scores, log_probs[:1], 2)


def test_beam_step_agrees_with_the_batched_search_step():
    """beam_search keeps the candidates that beam_step keeps (one input, random numbers)."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        scores = -rng.random(4) * 5
        log_probs = np.log(rng.dirichlet(np.ones(s2s.VOCABULARY_SIZE), size=4))
        kept, parents, tokens = s2s.beam_step(scores, log_probs, 4)
        candidates = torch.from_numpy((scores[:, None] + log_probs).reshape(1, -1))
        ordered, index = torch.sort(candidates, dim=1, descending=True, stable=True)
        assert (index[0, :4] // s2s.VOCABULARY_SIZE).tolist() == parents.tolist()
        assert (index[0, :4] % s2s.VOCABULARY_SIZE).tolist() == tokens.tolist()
        np.testing.assert_array_equal(ordered[0, :4].numpy(), kept)


def test_exact_match_counts_whole_outputs(monkeypatch):
    batch = s2s.reversal_test_set([3], 4)[3]
    wrong_last = batch.target.clone()
    wrong_last[2, 1] = (wrong_last[2, 1] + 1) % 10
    monkeypatch.setattr(s2s, "greedy_decode", lambda model, source, lengths, length:
                        (wrong_last, None))
    model = _model(attention=False)
    assert s2s.exact_match(model, batch).tolist() == [True, False, True, True]
    assert s2s.accuracy_by_length(model, {3: batch}) == {3: 0.75}
    np.testing.assert_allclose(s2s.position_accuracy(model, batch), [1, 1, 0.75, 1])


def test_decode_report_and_train_reverser():
    first = s2s.train_reverser(attention=True, hidden_size=8, steps=5, seed=3)
    second = s2s.train_reverser(attention=True, hidden_size=8, steps=5, seed=3)
    np.testing.assert_array_equal(first.losses, second.losses)
    assert first.parameters == sum(p.numel() for p in first.model.parameters())
    report = s2s.decode_report(first.model, "4096", beam_width=3)
    assert report["expected"] == "6904$" and len(report["outputs"]) == 3
    assert report["correct"] == (report["outputs"][0][0] == "6904$")
    scores = [score for _, score in report["outputs"]]
    assert scores == sorted(scores, reverse=True)
    weights = report["weights"]
    assert weights.shape == (len(report["outputs"][0][0]), 4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    plain = s2s.train_reverser(attention=False, hidden_size=8, steps=2)
    assert s2s.decode_report(plain.model, "12")["weights"] is None


def test_model_arguments_are_checked():
    with pytest.raises(TypeError, match="attention must be True or False"):
        s2s.Seq2Seq(8, attention="yes")
    with pytest.raises(ValueError, match="return_weights needs a model with attention"):
        batch = s2s.reversal_batch(2, 0, max_length=3)
        _model(False)(batch.source, batch.lengths, batch.decoder_input, return_weights=True)
    with pytest.raises(ValueError, match="max_length must be an integer >= 1"):
        batch = s2s.reversal_batch(2, 0, max_length=3)
        s2s.greedy_decode(_model(False), batch.source, batch.lengths, 0)
    assert isinstance(_model(True).attention, nn.Module)
