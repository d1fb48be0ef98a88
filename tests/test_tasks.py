"""Tests for throughtime.tasks: layouts, seeds, bad arguments, and the exact baselines.

The baseline tests draw a large sample and compare the empirical no-memory score with
the exact formula. The tolerance is 4 standard errors of the sample mean, with the
standard deviation computed exactly from the distribution (not estimated): a correct
generator fails such a test with probability about 6e-5, a wrong formula (0.1767
instead of 1/6, say) fails it for sure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional

from throughtime.tasks import (
    AGREEMENT_VOCABULARY,
    COPY_BLANK,
    COPY_DELIMITER,
    COPY_LENGTH,
    COPY_SYMBOLS,
    adding_baseline_mse,
    adding_baseline_prediction,
    adding_problem,
    agreement_chance_accuracy,
    agreement_task,
    anbn_recognised,
    copy_baseline_cross_entropy,
    copy_task,
    decode_agreement,
    make_task,
)

N = 200_000  # sample size for the baseline checks


# --------------------------------------------------------------------------------------
# Adding problem
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["le", "hochreiter"])
@pytest.mark.parametrize("T", [2, 3, 7, 50])
def test_adding_shapes_dtypes_and_markers(version, T):
    inputs, targets = adding_problem(T, 64, 0, version=version)
    assert inputs.shape == (T, 64, 2) and inputs.dtype == np.float32
    assert targets.shape == (64, 1) and targets.dtype == np.float32
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((markers == 1).sum(axis=0) == 2).all(), "exactly two marked steps per sequence"
    marked_sum = (values * (markers == 1)).sum(axis=0)
    if version == "le":
        assert set(np.unique(markers)) <= {0.0, 1.0}
        assert values.min() >= 0 and values.max() <= 1
        np.testing.assert_allclose(targets[:, 0], marked_sum, rtol=1e-6)
    else:
        assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
        assert values.min() >= -1 and values.max() <= 1
        np.testing.assert_allclose(targets[:, 0], 0.5 + marked_sum / 4, rtol=1e-6)


def test_adding_le_marks_one_step_in_each_half():
    T = 11
    inputs, _ = adding_problem(T, 5000, 1, version="le")
    marked = inputs[..., 1] == 1  # (T, B)
    first_half = marked[: T // 2].sum(axis=0)
    second_half = marked[T // 2:].sum(axis=0)
    assert (first_half == 1).all() and (second_half == 1).all()
    # Every position of each half is used (uniform choice, 5000 draws).
    assert marked.any(axis=1).all()


def test_adding_hochreiter_positions_and_end_markers():
    T = 40
    inputs, _ = adding_problem(T, 20_000, 2, version="hochreiter")
    markers = inputs[..., 1]
    marked = markers == 1
    positions = np.sort(np.argwhere(marked.T)[:, 1].reshape(-1, 2), axis=1)
    # Both marks fall within the first max(10, T//2 - 1) + 1 steps.
    assert positions.max() <= max(10, T // 2 - 1)
    # At least one mark sits in the first ten steps.
    assert (positions[:, 0] < 10).all()
    # First and last steps carry -1 when they are not marked.
    assert (markers[0][~marked[0]] == -1).all() and (markers[-1] == -1).all()
    assert ((markers[1:-1] == 0) | marked[1:-1]).all()


@pytest.mark.parametrize("version", ["le", "hochreiter"])
def test_adding_baseline_matches_a_large_sample(version):
    """The empirical MSE of the best constant agrees with the exact variance."""
    _, targets = adding_problem(20, N, 3, version=version, dtype=np.float64)
    errors = (targets[:, 0] - adding_baseline_prediction(version)) ** 2
    # S = X1 + X2 - E[X1 + X2] is triangular; with S = width * Z, Z triangular on [-1, 1]:
    # E[Z^2] = 1/6, E[Z^4] = 1/15. The squared error is (scale * S)^2.
    width, scale = (1.0, 1.0) if version == "le" else (2.0, 0.25)
    mean = (scale * width) ** 2 / 6
    second_moment = (scale * width) ** 4 / 15
    standard_error = math.sqrt((second_moment - mean**2) / N)
    assert mean == pytest.approx(adding_baseline_mse(version), rel=1e-12)
    assert abs(errors.mean() - adding_baseline_mse(version)) < 4 * standard_error
    # The misprint 0.1767 is rejected by the same test.
    if version == "le":
        assert abs(errors.mean() - 0.1767) > 4 * standard_error


def test_adding_baseline_exact_values():
    assert adding_baseline_mse("le") == pytest.approx(1 / 6, abs=1e-15)
    assert adding_baseline_mse("hochreiter") == pytest.approx(1 / 24, abs=1e-15)
    assert adding_baseline_prediction("le") == 1.0
    assert adding_baseline_prediction("hochreiter") == 0.5


def test_adding_seed_reproducibility_and_generator():
    a = adding_problem(30, 8, 123)
    b = adding_problem(30, 8, 123)
    c = adding_problem(30, 8, np.random.default_rng(123))
    d = adding_problem(30, 8, 124)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a, c, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], d[0])
    # A shared generator moves on: two calls give two different batches.
    rng = np.random.default_rng(5)
    assert not np.array_equal(adding_problem(30, 8, rng)[0], adding_problem(30, 8, rng)[0])


def test_adding_torch_output_and_float64():
    inputs, targets = adding_problem(12, 4, 0, as_torch=True)
    assert isinstance(inputs, torch.Tensor) and inputs.dtype == torch.float32
    assert tuple(inputs.shape) == (12, 4, 2) and tuple(targets.shape) == (4, 1)
    numpy_inputs, _ = adding_problem(12, 4, 0)
    np.testing.assert_array_equal(inputs.numpy(), numpy_inputs)
    inputs64, _ = adding_problem(12, 4, 0, dtype=np.float64, as_torch=True)
    assert inputs64.dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"T": 1}, ValueError, "T must be an integer >= 2"),
        ({"T": 2.5}, TypeError, "T must be an integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"version": "pascanu"}, ValueError, "version must be one of"),
        ({"rng": "seed"}, TypeError, "rng must be a numpy.random.Generator"),
        ({"rng": -1}, ValueError, "seed >= 0"),
        ({"dtype": np.int64}, TypeError, "dtype must be np.float32 or np.float64"),
        ({"as_torch": 1}, TypeError, "as_torch must be True or False"),
    ],
)
def test_adding_rejects_bad_arguments(kwargs, error, words):
    arguments = {"T": 10, "batch_size": 4, "rng": 0, **kwargs}
    with pytest.raises(error, match=words):
        adding_problem(**arguments)


def test_adding_baseline_rejects_a_bad_version():
    with pytest.raises(ValueError, match="version must be one of"):
        adding_baseline_mse("Le")


# --------------------------------------------------------------------------------------
# Copy task
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 5, 100])
def test_copy_layout(T):
    tokens, targets = copy_task(T, 32, 0)
    assert tokens.shape == targets.shape == (T + 20, 32)
    assert tokens.dtype == targets.dtype == np.int64
    symbols = tokens[:COPY_LENGTH]
    assert symbols.min() >= 0 and symbols.max() < COPY_SYMBOLS
    # T - 1 blanks, then the delimiter at step T + 9, then 10 blanks.
    assert (tokens[COPY_LENGTH:COPY_LENGTH + T - 1] == COPY_BLANK).all()
    assert (tokens[COPY_LENGTH + T - 1] == COPY_DELIMITER).all()
    assert (tokens[-COPY_LENGTH:] == COPY_BLANK).all()
    assert (tokens == COPY_DELIMITER).sum() == 32
    # The target is blank for T + 10 steps, then the symbols in order.
    assert (targets[: T + COPY_LENGTH] == COPY_BLANK).all()
    np.testing.assert_array_equal(targets[-COPY_LENGTH:], symbols)


def test_copy_baseline_matches_a_large_sample():
    """The best memoryless predictor, estimated from a sample, scores 10 ln 8 / (T + 20).

    Without memory, the best predictor outputs at each step the distribution of that
    step's target. Estimated from n sequences, its cross-entropy is the plug-in entropy of
    each step's empirical target distribution. For the 10 symbol steps (uniform over K = 8)
    the classical result 2n (ln K - H_hat) ~ chi-squared with K - 1 degrees of freedom
    gives, summed over 10 independent steps, 2n (10 ln 8 - sum H_hat) ~ chi-squared(70):
    mean 70, standard deviation sqrt(140). The blank steps have entropy exactly 0. We
    accept the statistic within 4 standard deviations of its mean.
    """
    T, n = 30, 50_000
    _, targets = copy_task(T, n, 7)
    entropies = []
    for step in targets:
        p = np.bincount(step, minlength=10) / n
        p = p[p > 0]
        entropies.append(float(-(p * np.log(p)).sum()))
    entropies = np.array(entropies)
    assert (entropies[: T + COPY_LENGTH] == 0).all()
    empirical = entropies.sum() / (T + 20)
    exact = copy_baseline_cross_entropy(T)
    statistic = 2 * n * (exact - empirical) * (T + 20)
    assert abs(statistic - 70) < 4 * math.sqrt(140), statistic
    assert exact == pytest.approx(10 * math.log(8) / 50, rel=1e-15)


def test_copy_symbols_are_uniform():
    tokens, _ = copy_task(3, 40_000, 11)
    frequencies = np.bincount(tokens[:COPY_LENGTH].ravel(), minlength=10) / (40_000 * 10)
    standard_error = math.sqrt((1 / 8) * (7 / 8) / (40_000 * 10))
    np.testing.assert_allclose(frequencies[:8], 1 / 8, atol=4 * standard_error)
    assert frequencies[8:].sum() == 0


def test_copy_seed_and_torch():
    a, b = copy_task(9, 6, 42), copy_task(9, 6, 42)
    np.testing.assert_array_equal(a[0], b[0])
    tokens, targets = copy_task(9, 6, 42, as_torch=True)
    assert tokens.dtype == torch.int64 and tuple(targets.shape) == (29, 6)
    np.testing.assert_array_equal(tokens.numpy(), a[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"T": 0}, ValueError, "T must be an integer >= 1"),
        ({"batch_size": -3}, ValueError, "batch_size must be an integer >= 1"),
        ({"rng": 1.5}, TypeError, "rng must be"),
    ],
)
def test_copy_rejects_bad_arguments(kwargs, error, words):
    arguments = {"T": 10, "batch_size": 4, "rng": 0, **kwargs}
    with pytest.raises(error, match=words):
        copy_task(**arguments)
    if "T" in kwargs:
        with pytest.raises(error, match=words):
            copy_baseline_cross_entropy(kwargs["T"])


# --------------------------------------------------------------------------------------
# Agreement task
# --------------------------------------------------------------------------------------


def _number(ids: np.ndarray) -> np.ndarray:
    """1 for plural nouns, 0 for singular ones, -1 for anything else."""
    vocabulary = AGREEMENT_VOCABULARY
    out = np.full(ids.shape, -1)
    out[np.isin(ids, vocabulary.singular)] = 0
    out[np.isin(ids, vocabulary.plural)] = 1
    return out


def test_agreement_vocabulary():
    vocabulary = AGREEMENT_VOCABULARY
    ids = [*vocabulary.singular, *vocabulary.plural, *vocabulary.fillers, vocabulary.query]
    assert sorted(ids) == list(range(vocabulary.size))
    assert len(set(vocabulary.words)) == vocabulary.size
    assert len(vocabulary.singular) == len(vocabulary.plural)
    assert vocabulary.words[vocabulary.query] == "<verb>"


@pytest.mark.parametrize(("distance", "attractors"), [(0, 0), (1, 1), (5, 0), (5, 2), (20, 20)])
def test_agreement_structure(distance, attractors):
    tokens, labels = agreement_task(distance, 500, 0, attractors=attractors)
    assert tokens.shape == (distance + 2, 500) and tokens.dtype == np.int64
    assert labels.shape == (500,) and labels.dtype == np.int64
    numbers = _number(tokens)
    np.testing.assert_array_equal(numbers[0], labels)  # the subject carries the label
    assert (tokens[-1] == AGREEMENT_VOCABULARY.query).all()
    middle = numbers[1:-1]
    # Exactly `attractors` nouns in between, all of the opposite number.
    assert ((middle >= 0).sum(axis=0) == attractors).all()
    assert ((middle == -1) | (middle == 1 - labels)).all()
    assert np.isin(tokens[1:-1][middle == -1], AGREEMENT_VOCABULARY.fillers).all()


def test_agreement_attractor_positions_are_spread():
    tokens, _ = agreement_task(6, 6000, 4, attractors=1)
    middle = _number(tokens)[1:-1]
    counts = (middle >= 0).sum(axis=1)
    assert (counts > 0).all(), "an attractor can sit at every position"
    # Uniform over the 6 positions: 1000 each, binomial sd about 29.
    assert np.abs(counts - 1000).max() < 4 * math.sqrt(6000 * (1 / 6) * (5 / 6))


def _opposite_of_last_noun(tokens):
    """The shortcut that needs no memory: the number opposite to the last noun's."""
    numbers = _number(tokens)[1:-1]
    last = numbers.shape[0] - 1 - (numbers >= 0)[::-1].argmax(axis=0)
    return 1 - numbers[last, np.arange(numbers.shape[1])]


def test_opposite_attractors_leave_a_shortcut_and_random_ones_do_not():
    tokens, labels = agreement_task(20, 4000, 5, attractors=10)
    assert (_opposite_of_last_noun(tokens) == labels).all()
    tokens, labels = agreement_task(20, 4000, 5, attractors=10, attractor_number="random")
    accuracy = (_opposite_of_last_noun(tokens) == labels).mean()
    assert abs(accuracy - 0.5) < 4 * math.sqrt(0.25 / 4000)


def test_random_attractor_number_changes_only_the_number_of_middle_nouns():
    random, random_labels = agreement_task(12, 400, np.random.default_rng(5), attractors=4,
                                           attractor_number="random", as_torch=True)
    opposite, labels = agreement_task(12, 400, np.random.default_rng(5), attractors=4)
    np.testing.assert_array_equal(random_labels.numpy(), labels)
    changed = random.numpy() != opposite
    assert not changed[0].any() and not changed[-1].any()
    assert changed.any()
    n = len(AGREEMENT_VOCABULARY.singular)
    # A changed token is the same noun in the other number: ids differ by exactly n.
    np.testing.assert_array_equal(np.abs(random.numpy()[changed] - opposite[changed]), n)
    assert random.dtype == torch.int64 and random.shape == (14, 400)


def test_random_attractor_numbers_are_independent_of_the_subject():
    tokens, labels = agreement_task(10, 4000, 11, attractors=5, attractor_number="random")
    numbers = _number(tokens)
    np.testing.assert_array_equal(numbers[0], labels)
    middle = numbers[1:-1]
    assert ((middle >= 0).sum(axis=0) == 5).all()
    nouns = middle[middle >= 0]
    same = (middle == labels).sum()
    # Each noun has the subject's number with probability 1/2, whatever the subject.
    assert abs(same / nouns.size - 0.5) < 4 * math.sqrt(0.25 / nouns.size)
    for label in (0, 1):
        columns = middle[:, labels == label]
        plural_share = (columns == 1).sum() / (columns >= 0).sum()
        assert abs(plural_share - 0.5) < 0.03


@pytest.mark.parametrize("p", [0.5, 0.8])
def test_agreement_chance_matches_a_large_sample(p):
    _, labels = agreement_task(3, N, 9, plural_probability=p)
    majority = int(p >= 0.5)
    accuracy = (labels == majority).mean()
    exact = agreement_chance_accuracy(p)
    standard_error = math.sqrt(exact * (1 - exact) / N)
    assert abs(accuracy - exact) < 4 * standard_error
    assert agreement_chance_accuracy(0.5) == 0.5 and agreement_chance_accuracy(0.2) == 0.8


def test_agreement_seed_torch_and_decode():
    a, b = agreement_task(4, 10, 3, attractors=2), agreement_task(4, 10, 3, attractors=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    tokens, labels = agreement_task(4, 10, 3, attractors=2, as_torch=True)
    assert tokens.dtype == torch.int64 and labels.dtype == torch.int64
    words = decode_agreement(tokens[:, 0])
    assert len(words) == 6 and words[-1] == "<verb>"
    assert words == decode_agreement(a[0][:, 0])


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"distance": -1}, ValueError, "distance must be an integer >= 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"attractors": 6}, ValueError, "attractors must be at most distance=5"),
        ({"attractors": -1}, ValueError, "attractors must be an integer >= 0"),
        ({"plural_probability": 1.5}, ValueError, r"plural_probability must be in \[0, 1\]"),
        ({"plural_probability": "half"}, TypeError, "plural_probability must be a real"),
        ({"attractor_number": "same"}, ValueError, "attractor_number must be one of"),
        ({"rng": "seed"}, TypeError, "rng must be"),
    ],
)
def test_agreement_rejects_bad_arguments(kwargs, error, words):
    arguments = {"distance": 5, "batch_size": 4, "rng": 0, **kwargs}
    with pytest.raises(error, match=words):
        agreement_task(**arguments)


def test_decode_rejects_bad_tokens():
    with pytest.raises(ValueError, match="1-D sequence of integer ids"):
        decode_agreement(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="ids in 0 .. 24"):
        decode_agreement(np.array([0, 99]))


# --------------------------------------------------------------------------------------
# Tasks as the training loop sees them: make_task
# --------------------------------------------------------------------------------------


def test_adding_task_scores_variance_explained():
    task = make_task("adding", 12, test_size=4000)
    inputs, targets, mask = task.test()
    assert inputs.shape == (12, 4000, 2) and targets.shape == (4000,) and mask is None
    # The best constant, 1, explains nothing; the exact sum explains everything.
    constant = torch.ones(4000, 1, 1)
    assert abs(task.score(constant, targets[:, None], None)[0]) < 0.05
    exact = targets[:, None, None]
    assert task.score(exact, targets[:, None], None)[0] == pytest.approx(1.0)
    mse = float(((constant[..., 0] - targets[:, None]) ** 2).mean())
    assert task.loss(constant, targets[:, None], None)[0].item() == pytest.approx(mse)


def test_agreement_task_scores_accuracy():
    task = make_task("agreement", 6, test_size=100)
    inputs, labels, _ = task.test()
    assert inputs.shape == (8, 100, 25) and torch.equal(inputs.sum(-1), torch.ones(8, 100))
    right = functional.one_hot(labels, 2).float()[:, None, :] * 5
    wrong = -right
    outputs = torch.cat([right, wrong], dim=1)                       # two networks
    targets = labels[:, None].expand(100, 2)
    assert task.score(outputs, targets, None).tolist() == [1.0, 0.0]
    losses = task.loss(outputs, targets, None)
    expected = functional.cross_entropy(right[:, 0], labels)
    assert losses[0].item() == pytest.approx(expected.item())


def test_anbn_task_scores_the_longest_recognised_prefix():
    task = make_task("anbn", 4, test_max_n=10)
    inputs, targets, mask = task.test()
    assert inputs.shape == (20, 10, 3)
    perfect = functional.one_hot(targets, 3).float()[:, :, None, :]
    broken = perfect.clone()
    n_wrong = 7  # spoil the prediction of the end mark for the string with n = 7
    broken[2 * n_wrong - 1, n_wrong - 1, 0] = torch.tensor([0.0, 1.0, 0.0])
    outputs = torch.cat([perfect, broken], dim=2)
    expanded = [t[..., None].expand(*t.shape, 2) for t in (targets, mask)]
    assert task.score(outputs, *expanded).tolist() == [10.0, 6.0]
    recognised = anbn_recognised(outputs, *expanded)
    assert recognised.shape == (2, 10) and recognised[1].sum() == 9
    # A wrong guess where nothing is determined (reading the a's) costs nothing.
    relaxed = perfect.clone()
    relaxed[0, 5, 0] = torch.tensor([0.0, 0.0, 1.0])
    assert task.score(relaxed, *(t[..., :1] for t in expanded))[0] == 10.0
    losses = task.loss(outputs * 20, *expanded)
    assert losses[0].item() < 1e-6 < losses[1].item()


def test_make_task_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        make_task("copy", 10)
    with pytest.raises(ValueError, match="length must be"):
        make_task("adding", 1)
