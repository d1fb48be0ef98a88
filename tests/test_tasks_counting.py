"""Tests of the counting task a^n b^n in ``throughtime.tasks``.

Every batch is compared with strings built character by character in plain Python, and
the mask with the definition "the next symbol is determined by what has been read".
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from throughtime.tasks import ANBN_A, ANBN_B, ANBN_END, ANBN_SYMBOLS, anbn, anbn_batch


def reference(n: int, length: int) -> tuple[list[int], list[int], list[bool]]:
    """Tokens, targets and mask of one string, from the string itself."""
    ids = {symbol: index for index, symbol in enumerate(ANBN_SYMBOLS)}
    text = "a" * n + "b" * n + "$" * (length + 1 - 2 * n)
    tokens = [ids[c] for c in text[:length]]
    targets = [ids[c] for c in text[1:length + 1]]
    # Determined: the continuations of the prefix read so far, among strings of the
    # language, all agree. A prefix a^k (k >= 1) continues with a or b; a prefix a^n b^j
    # (1 <= j <= n) continues with b if j < n and $ if j == n.
    mask = []
    for t in range(length):
        prefix = text[:t + 1]
        inside = len(prefix) <= 2 * n
        mask.append(inside and "b" in prefix)
    return tokens, targets, mask


@pytest.mark.parametrize("counts, length", [([1], None), ([3, 1, 2], None), ([2, 5], 12),
                                            ([4], 9)])
def test_anbn_matches_strings_built_by_hand(counts, length):
    tokens, targets, mask = anbn(counts, length=length)
    T = 2 * max(counts) if length is None else length
    assert tokens.shape == targets.shape == mask.shape == (T, len(counts))
    assert tokens.dtype == targets.dtype == np.int64 and mask.dtype == bool
    for b, n in enumerate(counts):
        expected_tokens, expected_targets, expected_mask = reference(n, T)
        assert tokens[:, b].tolist() == expected_tokens
        assert targets[:, b].tolist() == expected_targets
        assert mask[:, b].tolist() == expected_mask


def test_symbol_constants():
    assert ANBN_SYMBOLS[ANBN_A] == "a" and ANBN_SYMBOLS[ANBN_B] == "b"
    assert ANBN_SYMBOLS[ANBN_END] == "$"


def test_targets_are_the_next_token():
    tokens, targets, _ = anbn([1, 2, 3, 4], length=10)
    assert np.array_equal(targets[:-1], tokens[1:])
    assert (targets[-1] == ANBN_END).all()


def test_mask_counts_n_determined_steps_and_the_end_is_among_them():
    counts = np.arange(1, 8)
    _, targets, mask = anbn(counts)
    assert mask.sum(axis=0).tolist() == counts.tolist()
    # The last determined step of every string asks for the end mark, the others for b.
    last = 2 * counts - 1
    assert (targets[last, np.arange(counts.size)] == ANBN_END).all()
    assert (targets[mask] != ANBN_A).all()
    assert (targets[mask] == ANBN_END).sum() == counts.size


def test_scalar_n_and_torch_output():
    tokens, targets, mask = anbn(3, as_torch=True)
    assert isinstance(tokens, torch.Tensor) and tokens.shape == (6, 1)
    assert tokens.dtype == targets.dtype == torch.int64 and mask.dtype == torch.bool
    assert tokens[:, 0].tolist() == [0, 0, 0, 1, 1, 1]


def test_batch_is_reproducible_and_draws_n_in_range():
    first = anbn_batch(500, 7, max_n=6, min_n=2)
    second = anbn_batch(500, np.random.default_rng(7), max_n=6, min_n=2)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)
    tokens, targets, mask, counts = first
    assert tokens.shape == (12, 500)
    assert counts.min() == 2 and counts.max() == 6
    assert set(np.unique(counts)) == {2, 3, 4, 5, 6}
    expected = anbn(counts, length=12)
    for got, want in zip((tokens, targets, mask), expected, strict=True):
        assert np.array_equal(got, want)


def test_batch_as_torch_and_custom_length():
    tokens, targets, mask, counts = anbn_batch(4, 0, max_n=3, length=10, as_torch=True)
    assert all(isinstance(t, torch.Tensor) for t in (tokens, targets, mask, counts))
    assert tokens.shape == (10, 4) and counts.shape == (4,)


@pytest.mark.parametrize("n, message", [(0, "at least 1"), ([2, -1], "at least 1"),
                                        ([], "non-empty"), ([[1, 2]], "1-D"),
                                        (1.5, "integer"), ([True], "integer")])
def test_anbn_rejects_bad_counts(n, message):
    with pytest.raises(ValueError, match=message):
        anbn(n)


def test_anbn_rejects_short_length():
    with pytest.raises(ValueError, match=r"length must be at least 2 max\(n\) = 8"):
        anbn([4, 1], length=7)


def test_anbn_batch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_n must be an integer >= 3"):
        anbn_batch(4, 0, max_n=2, min_n=3)
    with pytest.raises(ValueError, match="min_n must be an integer >= 1"):
        anbn_batch(4, 0, max_n=2, min_n=0)
    with pytest.raises(ValueError, match="length must be an integer >= 6"):
        anbn_batch(4, 0, max_n=3, length=5)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        anbn_batch(4, "seed", max_n=3)
