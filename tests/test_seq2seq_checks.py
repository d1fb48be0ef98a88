"""The checks of the bidirectional-layer and beam-search exercises pass right answers and
name the known mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from throughtime import numpy_cells, seq2seq, seq2seq_checks, stacking
from throughtime.checks import CheckFailed


def _directions(xs, forward_params, backward_params):
    forward, _ = numpy_cells.gru_forward(xs, None, forward_params)
    backward, _ = numpy_cells.gru_forward(xs[::-1], None, backward_params)
    return forward, backward  # backward in reversed time order


def bidirectional_gru(xs, forward_params, backward_params):
    forward, backward = _directions(xs, forward_params, backward_params)
    return (np.concatenate([forward, backward[::-1]], axis=2),
            np.stack([forward[-1], backward[-1]]))


def not_reversed_back(xs, forward_params, backward_params):
    forward, backward = _directions(xs, forward_params, backward_params)
    return np.concatenate([forward, backward], axis=2), np.stack([forward[-1], backward[-1]])


def reads_forwards(xs, forward_params, backward_params):
    forward, _ = numpy_cells.gru_forward(xs, None, forward_params)
    backward, _ = numpy_cells.gru_forward(xs, None, backward_params)
    return np.concatenate([forward, backward], axis=2), np.stack([forward[-1], backward[-1]])


def swapped(xs, forward_params, backward_params):
    forward, backward = _directions(xs, forward_params, backward_params)
    return (np.concatenate([backward[::-1], forward], axis=2),
            np.stack([backward[-1], forward[-1]]))


def wrong_end(xs, forward_params, backward_params):
    forward, backward = _directions(xs, forward_params, backward_params)
    in_order = backward[::-1]
    return np.concatenate([forward, in_order], axis=2), np.stack([forward[-1], in_order[-1]])


def same_parameters(xs, forward_params, backward_params):
    return bidirectional_gru(xs, forward_params, forward_params)


@pytest.mark.parametrize("mistake,hint", [
    (not_reversed_back, "still in reversed time order"),
    (reads_forwards, "reads the sequence forwards"),
    (swapped, "concatenated in the wrong order"),
    (wrong_end, "sits at row 0 of the output"),
    (same_parameters, "uses the forward direction's parameters"),
])
def test_bidirectional_check_names_each_mistake(mistake, hint):
    with pytest.raises(CheckFailed, match=hint):
        seq2seq_checks.check_bidirectional_gru(mistake)


def test_bidirectional_check_passes_the_reference_and_refuses_the_library(capsys):
    seq2seq_checks.check_bidirectional_gru(bidirectional_gru)
    assert "output and h_n match the reference on 4 hidden cases" in capsys.readouterr().out

    def calls_library(xs, forward_params, backward_params):
        return stacking.bidirectional_layer("gru", xs, forward_params, backward_params)

    with pytest.raises(CheckFailed, match="calls throughtime.stacking.bidirectional_layer"):
        seq2seq_checks.check_bidirectional_gru(calls_library)

    def wrong_axis(xs, forward_params, backward_params):
        forward, backward = _directions(xs, forward_params, backward_params)
        return np.concatenate([forward, backward[::-1]], axis=0), forward[-1]

    with pytest.raises(CheckFailed, match=r"output returned by your bidirectional_gru has "
                                          r"shape \(2, 2, 3\), expected \(1, 2, 6\)"):
        seq2seq_checks.check_bidirectional_gru(wrong_axis)


def beam_step(scores, log_probs, beam_width):
    vocabulary = log_probs.shape[1]
    candidates = (scores[:, None] + log_probs).ravel()
    best = np.argsort(-candidates)[:beam_width]
    return candidates[best], best // vocabulary, best % vocabulary


def by_token_only(scores, log_probs, beam_width):
    vocabulary = log_probs.shape[1]
    best = np.argsort(-log_probs.ravel())[:beam_width]
    return (scores[best // vocabulary] + log_probs.ravel()[best], best // vocabulary,
            best % vocabulary)


def lowest(scores, log_probs, beam_width):
    vocabulary = log_probs.shape[1]
    candidates = (scores[:, None] + log_probs).ravel()
    best = np.argsort(candidates)[:beam_width]
    return candidates[best], best // vocabulary, best % vocabulary


def worst_first(scores, log_probs, beam_width):
    new_scores, parents, tokens = beam_step(scores, log_probs, beam_width)
    return new_scores[::-1], parents[::-1], tokens[::-1]


def divided_by_k(scores, log_probs, beam_width):
    hypotheses = log_probs.shape[0]
    candidates = (scores[:, None] + log_probs).ravel()
    best = np.argsort(-candidates)[:beam_width]
    return candidates[best], best // hypotheses, best % hypotheses


def probabilities(scores, log_probs, beam_width):
    new_scores, parents, tokens = beam_step(scores, log_probs, beam_width)
    return np.exp(new_scores), parents, tokens


@pytest.mark.parametrize("mistake,hint", [
    (by_token_only, "ranked by the new token's log-probability alone"),
    (lowest, "the lowest scores are kept"),
    (worst_first, "returned worst first"),
    (divided_by_k, "divide by V"),
    (probabilities, "keep them as log-probabilities"),
])
def test_beam_check_names_each_mistake(mistake, hint):
    with pytest.raises(CheckFailed, match=hint):
        seq2seq_checks.check_beam_step(mistake)


def test_own_best_token_only_is_named_where_it_applies():
    case = seq2seq_checks.hidden_cases("check_beam_step", 0, sizes=[(3, 5, 2)])[0]

    def own_best(scores, log_probs, beam_width):
        extended = scores + log_probs.max(axis=1)
        keep = np.argsort(-extended)[:beam_width]
        return extended[keep], keep, log_probs.argmax(axis=1)[keep]

    outcomes = seq2seq_checks.run_cases("check_beam_step", [case.public], own_best)
    verdict = seq2seq_checks.judge_cases("check_beam_step", [case], outcomes)
    assert not verdict.passed and "keeps only its own best token" in verdict.message


def test_beam_check_passes_the_reference_with_integer_or_float_indices(capsys):
    seq2seq_checks.check_beam_step(beam_step)
    assert "match the reference on 5 hidden cases" in capsys.readouterr().out

    def float_indices(scores, log_probs, beam_width):
        new_scores, parents, tokens = beam_step(scores, log_probs, beam_width)
        return new_scores, parents.astype(float), tokens.astype(float)

    seq2seq_checks.check_beam_step(float_indices)
    with pytest.raises(CheckFailed, match="the library's own"):
        seq2seq_checks.check_beam_step(seq2seq.beam_step)

    def changes_input(scores, log_probs, beam_width):
        log_probs += 0.0 * log_probs + scores[:, None]
        return beam_step(np.zeros_like(scores), log_probs, beam_width)

    with pytest.raises(CheckFailed, match="changed its input log_probs in place"):
        seq2seq_checks.check_beam_step(changes_input)


def test_graders_see_the_same_verdicts():
    cases = seq2seq_checks.hidden_cases("check_bidirectional_gru", [7, 1])
    outcomes = seq2seq_checks.run_cases("check_bidirectional_gru",
                                        [case.public for case in cases], bidirectional_gru)
    assert seq2seq_checks.judge_cases("check_bidirectional_gru", cases, outcomes).passed
    outcomes = seq2seq_checks.run_cases("check_bidirectional_gru",
                                        [case.public for case in cases], swapped)
    verdict = seq2seq_checks.judge_cases("check_bidirectional_gru", cases, outcomes)
    assert not verdict.passed and "wrong order" in verdict.message
    assert seq2seq_checks.hidden_check("check_beam_step", beam_step, seed=3).startswith(
        "check_beam_step")
    with pytest.raises(ValueError, match="check must be one of"):
        seq2seq_checks.hidden_cases("check_copy", 0)
    assert seq2seq_checks.CHECKS == ("check_bidirectional_gru", "check_beam_step")
