"""throughtime.text_checks: the checks pass right answers and name the known mistakes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from throughtime import text as tx
from throughtime import text_checks as tc
from throughtime.checks import CheckFailed


def good_probabilities(logits, temperature, top_k=None):
    z = logits / temperature
    if top_k is not None:
        kth = np.sort(z, axis=-1)[:, -top_k][:, None]
        z = np.where(z >= kth, z, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def good_scores(logits, targets):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    bits = -log_p[np.arange(len(targets)), targets].mean() / np.log(2)
    return bits, 2.0**bits


def test_the_right_answers_pass(capsys):
    tc.check_next_char_probabilities(good_probabilities)
    tc.check_bits_and_perplexity(good_scores)
    out = capsys.readouterr().out
    assert "check_next_char_probabilities: the sampling distribution matches" in out
    assert "check_bits_and_perplexity: bits per character and perplexity match" in out


def _fails(check, fn, *fragments):
    with pytest.raises(CheckFailed) as failure:
        check(fn)
    for fragment in fragments:
        assert fragment in str(failure.value), str(failure.value)
    return str(failure.value)


def test_temperature_mistakes_are_named():
    def multiplied(logits, temperature, top_k=None):
        return good_probabilities(logits * temperature ** 2, temperature, top_k)

    _fails(tc.check_next_char_probabilities, multiplied, "multiplied by the temperature")

    def batch_axis(logits, temperature, top_k=None):
        return good_probabilities(logits.T, temperature, top_k).T if top_k is None else \
            good_probabilities(logits, temperature, top_k)

    _fails(tc.check_next_char_probabilities, batch_axis, "batch axis")


def test_top_k_mistakes_are_named():
    def not_renormalised(logits, temperature, top_k=None):
        p = good_probabilities(logits, temperature)
        if top_k is None:
            return p
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
        return np.where(logits >= kth, p, 0.0)

    _fails(tc.check_next_char_probabilities, not_renormalised, "not renormalised")

    def zero_logits(logits, temperature, top_k=None):
        z = logits / temperature
        if top_k is not None:
            kth = np.sort(z, axis=-1)[:, -top_k][:, None]
            z = np.where(z >= kth, z, 0.0)
        return good_probabilities(z, 1.0)

    _fails(tc.check_next_char_probabilities, zero_logits, "set them to -inf")

    def one_too_many(logits, temperature, top_k=None):
        return good_probabilities(logits, temperature, None if top_k is None else top_k + 1)

    _fails(tc.check_next_char_probabilities, one_too_many, "one logit too many")


def test_an_overflowing_softmax_is_reported():
    def naive(logits, temperature, top_k=None):
        with np.errstate(all="ignore"):
            return _naive(logits, temperature, top_k)

    def _naive(logits, temperature, top_k):
        e = np.exp(logits / temperature)
        if top_k is not None:
            kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
            e = np.where(logits >= kth, e, 0.0)
        return e / e.sum(axis=-1, keepdims=True)

    _fails(tc.check_next_char_probabilities, naive, "NaN or infinite", "overflow")


def test_score_mistakes_are_named():
    def nats(logits, targets):
        bits, _ = good_scores(logits, targets)
        return bits * math.log(2), 2.0 ** (bits * math.log(2))

    message = _fails(tc.check_bits_and_perplexity, nats, "natural")
    assert "bits is wrong" in message

    def summed(logits, targets):
        bits, _ = good_scores(logits, targets)
        return bits * len(targets), 2.0 ** min(bits * len(targets), 1000.0)

    _fails(tc.check_bits_and_perplexity, summed, "summed")

    def e_power(logits, targets):
        bits, _ = good_scores(logits, targets)
        return bits, math.e**bits

    message = _fails(tc.check_bits_and_perplexity, e_power, "e ** bits")
    assert "perplexity is wrong" in message and "The other outputs (bits) are right" in message

    def raw_logits(logits, targets):
        bits = -logits[np.arange(len(targets)), targets].mean() / np.log(2)
        return bits, 2.0**bits

    _fails(tc.check_bits_and_perplexity, raw_logits, "log-softmax")

    def greedy(logits, targets):
        return good_scores(logits, logits.argmax(axis=-1))

    _fails(tc.check_bits_and_perplexity, greedy, "most likely character")


def test_the_library_and_broken_functions_are_refused():
    _fails(tc.check_next_char_probabilities, tx.next_char_probabilities, "library's own")

    def calls_library(logits, temperature, top_k=None):
        return tx.next_char_probabilities(logits, temperature, top_k)

    _fails(tc.check_next_char_probabilities, calls_library, "calls",
           "throughtime.text.next_char_probabilities")

    def stub(logits, targets):
        raise NotImplementedError

    _fails(tc.check_bits_and_perplexity, stub, "not implemented yet")

    def one_value(logits, targets):
        return good_scores(logits, targets)[0]

    _fails(tc.check_bits_and_perplexity, one_value, "must return a tuple (bits, perplexity)")

    def in_place(logits, temperature, top_k=None):
        logits /= temperature
        return good_probabilities(logits, 1.0, top_k)

    _fails(tc.check_next_char_probabilities, in_place, "changed its input logits in place")


def test_graders_can_run_the_halves_apart():
    cases = tc.hidden_cases("check_bits_and_perplexity", seed=123)
    outcomes = tc.run_cases("check_bits_and_perplexity", [c.public for c in cases], good_scores)
    assert tc.judge_cases("check_bits_and_perplexity", cases, outcomes).passed
    bad = tc.run_cases("check_bits_and_perplexity", [c.public for c in cases],
                       lambda logits, targets: (1.0, 2.0))
    assert not tc.judge_cases("check_bits_and_perplexity", cases, bad).passed
    assert "matches the reference on 7 hidden cases" in tc.hidden_check(
        "check_next_char_probabilities", good_probabilities, seed=[1, 2])
    assert set(tc.CHECKS) == {"check_next_char_probabilities", "check_bits_and_perplexity"}
    with pytest.raises(ValueError, match="check must be one of"):
        tc.hidden_cases("check_nothing", seed=1)
