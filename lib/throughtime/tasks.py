"""Synthetic long-range tasks and the scores a network gets without any memory.

Each task hides one piece of information early in a sequence and asks for it at the end.
A network that cannot carry information across the gap can still learn the *statistics*
of the answer, and that sets a floor, the no-memory baseline, which every result in the
book is compared with. The baselines are computed exactly here, not copied from papers.

- ``adding_problem``: two marked numbers among T, output their sum (Le et al. 2015) or
  a scaled sum (Hochreiter & Schmidhuber 1997). Baseline: ``adding_baseline_mse``.
- ``copy_task``: remember 10 symbols over T blanks and write them back (Arjovsky et al.
  2016). Baseline: ``copy_baseline_cross_entropy``.
- ``agreement_task``: a synthetic subject-verb number agreement set in the spirit of
  Linzen et al. 2016: the number of the first noun, asked for after ``distance``
  tokens, some of them nouns of the opposite number (or of random number, which leaves no
  shortcut). Baseline: ``agreement_chance_accuracy``.
- ``anbn`` and ``anbn_batch``: the counting language a^n b^n, the next symbol at every step.
- ``Task`` and ``make_task``: the adding problem, agreement and a^n b^n as a training loop
  sees them, inputs ready for a network, a loss and a score for K networks at once.

Every generator takes ``rng``, a ``numpy.random.Generator`` or an integer seed, so the
same call gives the same batch. Arrays are time-major like ``torch.nn`` with
``batch_first=False``; ``as_torch=True`` returns torch tensors instead of numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_choice, check_int, check_real, describe

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADDING_VERSIONS",
    "adding_problem",
    "adding_baseline_prediction",
    "adding_baseline_mse",
    "COPY_LENGTH",
    "COPY_SYMBOLS",
    "COPY_BLANK",
    "COPY_DELIMITER",
    "COPY_VOCABULARY_SIZE",
    "copy_task",
    "copy_baseline_cross_entropy",
    "AgreementVocabulary",
    "AGREEMENT_VOCABULARY",
    "ATTRACTOR_NUMBERS",
    "agreement_task",
    "agreement_chance_accuracy",
    "decode_agreement",
]


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _generator(rng: Any) -> np.random.Generator:
    """Accept a numpy Generator or a non-negative integer seed; return a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng must be a numpy Generator or a seed >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        "rng must be a numpy.random.Generator (np.random.default_rng(seed)) or an integer "
        f"seed, got {describe(rng)}"
    )


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    return resolved


def _to_output(arrays: tuple[np.ndarray, ...], as_torch: bool) -> tuple[Any, ...]:
    if not isinstance(as_torch, bool):
        raise TypeError(f"as_torch must be True or False, got {describe(as_torch)}")
    if not as_torch:
        return arrays
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)


# --------------------------------------------------------------------------------------
# The adding problem
# --------------------------------------------------------------------------------------

ADDING_VERSIONS = ("le", "hochreiter")
"""The two versions of the adding problem: Le et al. 2015 and Hochreiter & Schmidhuber 1997."""


def adding_problem(T: int, batch_size: int, rng: np.random.Generator | int, *,
                   version: str = "le", dtype: Any = np.float32,
                   as_torch: bool = False) -> tuple[Any, Any]:
    """A batch of the adding problem: find two marked numbers in a sequence, output their sum.

    Each of the T steps shows a pair (value, marker). Exactly two steps carry the marker
    1; the target depends only on their values X_1 and X_2, so the network must notice
    the marked values, keep them, and answer after the last step.

    ``version="le"`` (Le, Jaitly & Hinton 2015, section 4.1): values from U[0, 1];
    markers 0 except the two marked steps; the first marked step is drawn uniformly from
    the first half of the sequence (0-based positions 0 .. T//2 - 1), the second
    uniformly from the second half (T//2 .. T - 1). Target X_1 + X_2.

    ``version="hochreiter"`` (Hochreiter & Schmidhuber 1997, experiment 4): values from
    U[-1, 1]; X_1 is drawn uniformly from the first ten steps (all T steps when T < 10),
    X_2 uniformly from the first max(T//2 - 1, 1) steps that are not X_1's. The first and
    the last steps carry the marker -1 unless they are marked; every other marker is 0.
    Target 0.5 + (X_1 + X_2) / 4, the sum mapped into [0, 1]. Two simplifications of the
    paper: every sequence has length exactly T (the paper draws lengths in
    [T, T + T/10], which would not stack into one tensor), and X_1 keeps its value when
    the first step is marked (the paper sets it to 0 then), so the no-memory baseline is
    exactly 1/24 for every T.

    Parameters
    ----------
    T : int
        Sequence length, at least 2.
    batch_size : int
        B, at least 1.
    rng : numpy.random.Generator or int
        The random source, or a seed for a new one.
    version : {"le", "hochreiter"}
    dtype : np.float32 or np.float64
    as_torch : bool
        Return torch tensors (sharing memory with the numpy arrays) instead.

    Returns
    -------
    inputs : ndarray or Tensor, shape (T, B, 2)
        ``inputs[t, b] = (value, marker)``, time-major.
    targets : ndarray or Tensor, shape (B, 1)
        The target after the last step.
    """
    T = check_int("T", T, minimum=2)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_choice("version", version, ADDING_VERSIONS)
    dtype = _check_dtype(dtype)
    rng = _generator(rng)
    rows = np.arange(batch_size)
    markers = np.zeros((batch_size, T))
    if version == "le":
        values = rng.uniform(0.0, 1.0, size=(batch_size, T))
        first = rng.integers(0, T // 2, size=batch_size)
        second = rng.integers(T // 2, T, size=batch_size)
    else:
        values = rng.uniform(-1.0, 1.0, size=(batch_size, T))
        first = rng.integers(0, min(10, T), size=batch_size)
        # The k-th unmarked step among the first ones: skip over the first marked step.
        k = rng.integers(0, max(T // 2 - 1, 1), size=batch_size)
        second = k + (k >= first)
        markers[:, 0] = -1.0
        markers[:, -1] = -1.0
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    total = values[rows, first] + values[rows, second]
    targets = total if version == "le" else 0.5 + total / 4
    inputs = np.stack([values.T, markers.T], axis=-1).astype(dtype)
    return _to_output((inputs, targets[:, None].astype(dtype)), as_torch)


def adding_baseline_prediction(version: str = "le") -> float:
    """The best constant prediction, E[target]: 1 for ``"le"``, 0.5 for ``"hochreiter"``."""
    check_choice("version", version, ADDING_VERSIONS)
    return 1.0 if version == "le" else 0.5


def adding_baseline_mse(version: str = "le") -> float:
    """The mean squared error of the best prediction that ignores the input, exactly.

    A network without memory can only output a constant c; its expected squared error is
    Var(target) + (E[target] - c)^2, smallest at c = E[target], where it equals the
    variance of the target.

    - ``"le"``: target X_1 + X_2 with X_i ~ U[0, 1] independent, so the best constant is 1
      and the MSE is Var = 2 * (1/12) = 1/6 = 0.1667 (some papers print 0.1767).
    - ``"hochreiter"``: target 0.5 + (X_1 + X_2)/4 with X_i ~ U[-1, 1], so the best
      constant is 0.5 and the MSE is 2 * (1/3) / 16 = 1/24.

    Parameters
    ----------
    version : {"le", "hochreiter"}

    Returns
    -------
    float
    """
    check_choice("version", version, ADDING_VERSIONS)
    variance_of_value = 1 / 12 if version == "le" else 1 / 3  # (b - a)^2 / 12
    scale = 1.0 if version == "le" else 1 / 4
    return 2 * variance_of_value * scale**2


# --------------------------------------------------------------------------------------
# The copy task
# --------------------------------------------------------------------------------------

COPY_LENGTH = 10
"""How many symbols the copy task asks the network to remember."""
COPY_SYMBOLS = 8
"""The symbols to remember are the ids 0 .. 7."""
COPY_BLANK = 8
"""The id of the blank (filler) token."""
COPY_DELIMITER = 9
"""The id of the delimiter, the cue to start writing the symbols back."""
COPY_VOCABULARY_SIZE = 10
"""Ten token ids in all: 8 symbols, blank and delimiter."""


def copy_task(T: int, batch_size: int, rng: np.random.Generator | int, *,
              as_torch: bool = False) -> tuple[Any, Any]:
    """A batch of the copy task (Arjovsky, Shah & Bengio 2016, section 4.1).

    Layout of one sequence, T + 20 steps, token ids 0 .. 9::

        step:    0 .. 9        10 .. T+8     T+9         T+10 .. T+19
        input:   s_1 .. s_10   blank (8)     delim (9)   blank (8)
        target:  blank (8) for steps 0 .. T+9            s_1 .. s_10

    The symbols s_i are drawn uniformly and independently from {0, ..., 7}. The input
    shows them, then T - 1 blanks and the delimiter (T steps of waiting in all), then
    10 more blanks during which the network must write s_1 .. s_10 back. The target is
    blank everywhere except the last 10 steps.

    Parameters
    ----------
    T : int
        The delay, at least 1.
    batch_size : int
        B, at least 1.
    rng : numpy.random.Generator or int
    as_torch : bool
        Return torch tensors instead of numpy arrays.

    Returns
    -------
    tokens : ndarray or Tensor of int64, shape (T + 20, B)
        Input token ids, time-major.
    targets : ndarray or Tensor of int64, shape (T + 20, B)
        Target token ids at every step.
    """
    T = check_int("T", T, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    rng = _generator(rng)
    total = T + 2 * COPY_LENGTH
    symbols = rng.integers(0, COPY_SYMBOLS, size=(COPY_LENGTH, batch_size), dtype=np.int64)
    tokens = np.full((total, batch_size), COPY_BLANK, dtype=np.int64)
    tokens[:COPY_LENGTH] = symbols
    tokens[COPY_LENGTH + T - 1] = COPY_DELIMITER
    targets = np.full((total, batch_size), COPY_BLANK, dtype=np.int64)
    targets[-COPY_LENGTH:] = symbols
    return _to_output((tokens, targets), as_torch)


def copy_baseline_cross_entropy(T: int) -> float:
    """The cross-entropy per step (nats) of the best memoryless strategy: 10 ln 8 / (T + 20).

    Without memory the best a network can do is predict each step's target distribution
    from the step alone: blank with certainty for the first T + 10 steps (no loss) and
    the uniform distribution over the 8 symbols for the last 10 (ln 8 each). Averaged
    over the T + 20 steps this is 10 ln 8 / (T + 20) (Arjovsky et al. 2016).

    Parameters
    ----------
    T : int
        The delay, at least 1.

    Returns
    -------
    float
    """
    T = check_int("T", T, minimum=1)
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LENGTH)


# --------------------------------------------------------------------------------------
# Subject-verb agreement
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementVocabulary:
    """The token ids of ``agreement_task`` and the words they stand for.

    Attributes
    ----------
    words : tuple of str
        ``words[i]`` is the word of token id i.
    singular : tuple of int
        Ids of the singular nouns.
    plural : tuple of int
        Ids of the plural nouns; ``plural[k]`` is the plural of ``singular[k]``.
    fillers : tuple of int
        Ids of the number-neutral words ("the", "near", ...).
    query : int
        Id of the final token, where the verb would go: the network answers there.
    """

    words: tuple[str, ...]
    singular: tuple[int, ...]
    plural: tuple[int, ...]
    fillers: tuple[int, ...]
    query: int

    @property
    def size(self) -> int:
        """The number of token ids (for an embedding or one-hot layer)."""
        return len(self.words)


def _build_agreement_vocabulary() -> AgreementVocabulary:
    singular = ("cat", "dog", "key", "bird", "child", "table", "song", "city")
    plural = ("cats", "dogs", "keys", "birds", "children", "tables", "songs", "cities")
    fillers = ("the", "near", "of", "old", "big", "red", "by", "with")
    words = (*singular, *plural, *fillers, "<verb>")
    n = len(singular)
    return AgreementVocabulary(
        words=words,
        singular=tuple(range(n)),
        plural=tuple(range(n, 2 * n)),
        fillers=tuple(range(2 * n, 2 * n + len(fillers))),
        query=len(words) - 1,
    )


AGREEMENT_VOCABULARY = _build_agreement_vocabulary()
"""The vocabulary of ``agreement_task``: 8 singular nouns (ids 0-7), their plurals (8-15),
8 number-neutral fillers (16-23) and the query token ``<verb>`` (24)."""


ATTRACTOR_NUMBERS = ("opposite", "random")
"""The numbers ``agreement_task`` can give the nouns between the subject and the query."""


def agreement_task(distance: int, batch_size: int, rng: np.random.Generator | int, *,
                   attractors: int = 0, attractor_number: str = "opposite",
                   plural_probability: float = 0.5,
                   as_torch: bool = False) -> tuple[Any, Any]:
    """A batch of synthetic subject-verb agreement: say the subject's number at the end.

    In "The keys to the cabinet are ..." the verb agrees with "keys", not with the
    nearer "cabinet", an *attractor* of the opposite number (Linzen, Dupoux & Goldberg
    2016). This synthetic version keeps the structure and drops the language::

        step:   0          1 .. distance                    distance + 1
        token:  subject    fillers and attractor nouns      <verb>

    The subject is a noun drawn uniformly from the singular nouns (label 0) or from the
    plural ones (label 1, with probability ``plural_probability``). Of the ``distance``
    tokens in between, exactly ``attractors`` are nouns of the opposite number at
    uniformly random positions; the rest are fillers drawn uniformly. The network reads
    the whole sequence and outputs the subject's number at the query token, so it must
    carry one bit across ``distance + 1`` steps while ignoring the attractors.

    With ``attractor_number="opposite"`` (the default) and ``attractors >= 1`` the last
    noun before the query always has the wrong number, so the shortcut "agree with the most
    recent noun" scores 0, and its mirror "answer the opposite of the last noun" scores 1:
    a network can solve the task without remembering the subject. With
    ``attractor_number="random"`` each of those nouns keeps the opposite number or takes
    the subject's with probability 1/2, independently of everything else: the nouns in
    between then say nothing about the label, and only the subject does.

    Parameters
    ----------
    distance : int
        Tokens between the subject and the query, at least 0.
    batch_size : int
        B, at least 1.
    rng : numpy.random.Generator or int
    attractors : int
        Number of nouns among the ``distance`` tokens, 0 .. distance.
    attractor_number : {"opposite", "random"}
        The number of those nouns: always opposite to the subject's, or drawn
        independently of it (opposite or the same with probability 1/2 each).
    plural_probability : float
        Probability of a plural subject, in [0, 1].
    as_torch : bool
        Return torch tensors instead of numpy arrays.

    Returns
    -------
    tokens : ndarray or Tensor of int64, shape (distance + 2, B)
        Token ids (see ``AGREEMENT_VOCABULARY``), time-major.
    labels : ndarray or Tensor of int64, shape (B,)
        0 for a singular subject, 1 for a plural one.
    """
    distance = check_int("distance", distance, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    attractors = check_int("attractors", attractors, minimum=0)
    if attractors > distance:
        raise ValueError(
            f"attractors must be at most distance={distance} (they sit between the subject "
            f"and the query), got {attractors}"
        )
    check_choice("attractor_number", attractor_number, ATTRACTOR_NUMBERS)
    plural_probability = check_real("plural_probability", plural_probability)
    if not 0.0 <= plural_probability <= 1.0:
        raise ValueError(f"plural_probability must be in [0, 1], got {plural_probability}")
    rng = _generator(rng)
    vocabulary = AGREEMENT_VOCABULARY
    singular = np.array(vocabulary.singular)
    plural = np.array(vocabulary.plural)
    nouns = len(singular)

    labels = (rng.random(batch_size) < plural_probability).astype(np.int64)
    subject_lexeme = rng.integers(0, nouns, size=batch_size)
    tokens = np.empty((distance + 2, batch_size), dtype=np.int64)
    tokens[0] = np.where(labels == 1, plural[subject_lexeme], singular[subject_lexeme])
    fillers = np.array(vocabulary.fillers)
    tokens[1:distance + 1] = fillers[rng.integers(0, len(fillers), size=(distance, batch_size))]
    if attractors:
        # A random permutation of the middle positions per sequence; keep the first few.
        positions = np.argsort(rng.random((distance, batch_size)), axis=0)[:attractors] + 1
        lexemes = rng.integers(0, nouns, size=(attractors, batch_size))
        attractor_ids = np.where(labels == 1, singular[lexemes], plural[lexemes])
        tokens[positions, np.arange(batch_size)] = attractor_ids
    if attractor_number == "random":
        # One coin per middle token, drawn whatever the tokens are; it turns a noun into
        # the subject's number when it lands below 1/2.
        same_number = rng.random((distance, batch_size)) < 0.5
        middle = tokens[1:distance + 1]  # a view into tokens
        flip = np.isin(middle, vocabulary.singular + vocabulary.plural) & same_number
        other_number = np.arange(vocabulary.size)
        other_number[singular], other_number[plural] = plural, singular
        middle[flip] = other_number[middle[flip]]
    tokens[-1] = vocabulary.query
    return _to_output((tokens, labels), as_torch)


def agreement_chance_accuracy(plural_probability: float = 0.5) -> float:
    """Accuracy of the best guess that ignores the input: always the more frequent number.

    max(p, 1 - p) with p the probability of a plural subject: 0.5 for balanced labels.
    """
    plural_probability = check_real("plural_probability", plural_probability)
    if not 0.0 <= plural_probability <= 1.0:
        raise ValueError(f"plural_probability must be in [0, 1], got {plural_probability}")
    return max(plural_probability, 1.0 - plural_probability)


def decode_agreement(tokens: Any) -> list[str]:
    """The words of one agreement sequence, for reading: a 1-D sequence of token ids.

    Example: ``" ".join(decode_agreement(tokens[:, 0]))`` gives "keys the near cat <verb>".
    """
    ids = np.asarray(tokens.detach().cpu() if hasattr(tokens, "detach") else tokens)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"tokens must be a 1-D sequence of integer ids (one column of agreement_task's "
            f"tokens), got {describe(ids)}"
        )
    size = AGREEMENT_VOCABULARY.size
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        raise ValueError(f"tokens must be ids in 0 .. {size - 1}, got values "
                         f"from {ids.min()} to {ids.max()}")
    return [AGREEMENT_VOCABULARY.words[i] for i in ids]


# --------------------------------------------------------------------------------------
# Counting: the language a^n b^n
# --------------------------------------------------------------------------------------

ANBN_SYMBOLS = ("a", "b", "$")
"""The token ids of ``anbn``: 0 is a, 1 is b, 2 is the end mark $ (which also pads)."""
ANBN_A, ANBN_B, ANBN_END = 0, 1, 2


def anbn(n: Any, *, length: int | None = None,
         as_torch: bool = False) -> tuple[Any, Any, Any]:
    """Strings a^n b^n with next-symbol targets: a test of counting (Weiss et al. 2018).

    String k reads n_k a's, then n_k b's, then the end mark $, which also fills the rest of
    the ``length`` steps. At step t the network has read ``tokens[0..t]`` and predicts the
    next symbol, ``targets[t] = tokens[t + 1]``: $ after the last b. While it reads the a's
    the next symbol may be a or b whatever it has understood, so those steps have no
    target; while it reads the b's the next symbol is determined, b until n b's have been
    read and $ after that. ``mask`` marks these determined steps, t = n_k .. 2 n_k - 1. A
    string is *recognised* when every masked prediction is right, which needs the count
    n_k: finite-precision LSTMs can keep it in a cell state, GRUs cannot (Weiss, Goldberg
    and Yahav 2018)::

        n = 2    step:    0  1  2  3  4  5
                 token:   a  a  b  b  $  $
                 target:  a  b  b  $  $  $
                 mask:    .  .  x  x  .  .

    Parameters
    ----------
    n : int or 1-D sequence of int
        The count of each string, every one at least 1.
    length : int, optional
        T, at least 2 max(n); 2 max(n) by default (the longest string without its $).
    as_torch : bool
        Return torch tensors instead of numpy arrays.

    Returns
    -------
    tokens : ndarray or Tensor of int64, shape (T, B)
        Symbol ids (``ANBN_SYMBOLS``), time-major.
    targets : ndarray or Tensor of int64, shape (T, B)
        The next symbol at every step.
    mask : ndarray or Tensor of bool, shape (T, B)
        True where the next symbol is determined by what has been read.
    """
    counts = np.atleast_1d(np.asarray(n))
    if counts.ndim != 1 or counts.size == 0 or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"n must be a positive integer or a non-empty 1-D sequence of them, "
                         f"got {describe(n)}")
    if counts.min() < 1:
        raise ValueError(f"n must be at least 1 for every string, got a smallest n of "
                         f"{counts.min()}")
    longest = 2 * int(counts.max())
    length = longest if length is None else check_int("length", length, minimum=1)
    if length < longest:
        raise ValueError(f"length must be at least 2 max(n) = {longest} so that every string "
                         f"fits, got {length}")
    steps = np.arange(length + 1)[:, None]
    symbols = np.where(steps < counts, ANBN_A, np.where(steps < 2 * counts, ANBN_B, ANBN_END))
    tokens, targets = symbols[:-1].astype(np.int64), symbols[1:].astype(np.int64)
    mask = (steps[:-1] >= counts) & (steps[:-1] < 2 * counts)
    return _to_output((tokens, targets, mask), as_torch)


def anbn_batch(batch_size: int, rng: np.random.Generator | int, *, max_n: int,
               min_n: int = 1, length: int | None = None,
               as_torch: bool = False) -> tuple[Any, Any, Any, Any]:
    """A batch of ``anbn`` strings with n drawn uniformly from ``min_n`` .. ``max_n``.

    Parameters
    ----------
    batch_size : int
        B, at least 1.
    rng : numpy.random.Generator or int
    max_n, min_n : int
        The range of n, 1 <= min_n <= max_n.
    length : int, optional
        T, at least 2 ``max_n``; 2 ``max_n`` by default, so every batch has the same shape.
    as_torch : bool

    Returns
    -------
    tokens, targets, mask
        As ``anbn`` returns them, shape (T, B).
    n : ndarray or Tensor of int64, shape (B,)
        The count of each string.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    min_n = check_int("min_n", min_n, minimum=1)
    max_n = check_int("max_n", max_n, minimum=min_n)
    length = 2 * max_n if length is None else check_int("length", length, minimum=2 * max_n)
    rng = _generator(rng)
    counts = rng.integers(min_n, max_n + 1, size=batch_size).astype(np.int64)
    tokens, targets, mask = anbn(counts, length=length)
    return _to_output((tokens, targets, mask, counts), as_torch)


__all__ += ["ANBN_SYMBOLS", "ANBN_A", "ANBN_B", "ANBN_END", "anbn", "anbn_batch"]


# --------------------------------------------------------------------------------------
# Tasks as a training loop sees them: batches, a loss and a score, for K networks at once
# --------------------------------------------------------------------------------------

TASK_NAMES = ("adding", "agreement", "anbn")
"""The tasks ``make_task`` builds."""


@dataclass(frozen=True)
class Task:
    """A task as the training loop sees it.

    Attributes
    ----------
    name : {"adding", "agreement", "anbn"}
    length : int
        T for the adding problem; the subject-verb distance for agreement; the largest n
        trained on for a^n b^n.
    input_size, output_size : int
        I and O of a network for the task.
    per_step : bool
        Whether the network answers at every step (a^n b^n) or after the last one.
    score_name : str
        What ``score`` measures, for axis labels.
    chance : float
        The score of a network without memory.
    solved : float
        The score at which the task counts as solved.
    batch : callable
        ``batch(batch_size, rng) -> (inputs, targets, mask)``: inputs (T, B, I) float32;
        targets (B,) after the last step or (T, B) at every step; mask like the targets,
        True where an answer counts (``None``: every answer counts).
    test : callable
        ``test() -> (inputs, targets, mask)``: the fixed test set, in the same form.
    loss : callable
        ``loss(outputs, targets, mask) -> (K,)``: the training loss of each of K networks.
        Outputs have the networks on the second-to-last axis, (B, K, O) or (T, B, K, O);
        targets and mask get the network axis last, (B, K) or (T, B, K).
    score : callable
        ``score(outputs, targets, mask) -> (K,)``: the test score of each network (numpy),
        higher is better; arguments as for ``loss``.
    """

    name: str
    length: int
    input_size: int
    output_size: int
    per_step: bool
    score_name: str
    chance: float
    solved: float
    batch: Callable[[int, np.random.Generator], tuple[Any, Any, Any]] = field(repr=False)
    test: Callable[[], tuple[Any, Any, Any]] = field(repr=False)
    loss: Callable[[Any, Any, Any], torch.Tensor] = field(repr=False)
    score: Callable[[Any, Any, Any], np.ndarray] = field(repr=False)

    @property
    def label(self) -> str:
        """A short name with the length, for titles: "adding, T = 50"."""
        symbol = {"adding": "T", "agreement": "distance", "anbn": "n ≤"}[self.name]
        joiner = " " if self.name == "anbn" else " = "
        return f"{self.name}, {symbol}{joiner}{self.length}"


def _one_hot(tokens: Any, size: int) -> torch.Tensor:
    import torch
    from torch.nn import functional

    tokens = torch.as_tensor(tokens)
    return functional.one_hot(tokens, size).to(torch.float32)


def _cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross entropy of every entry: outputs (..., O) logits, targets (...) -> (...)."""
    from torch.nn import functional

    losses = functional.cross_entropy(outputs.reshape(-1, outputs.shape[-1]),
                                      targets.reshape(-1), reduction="none")
    return losses.reshape(targets.shape)


def _adding(length: int, test_size: int, test_seed: int) -> Task:
    baseline = adding_baseline_mse("le")

    def batch(batch_size: int, rng: np.random.Generator) -> tuple[Any, Any, Any]:
        inputs, targets = adding_problem(length, batch_size, rng, as_torch=True)
        return inputs, targets[:, 0], None

    def loss(outputs: torch.Tensor, targets: torch.Tensor, mask: Any) -> torch.Tensor:
        return (outputs[..., 0] - targets).square().mean(dim=0)       # (B, K) -> (K,)

    def score(outputs: torch.Tensor, targets: torch.Tensor, mask: Any) -> np.ndarray:
        mse = (outputs[..., 0] - targets).square().double().mean(dim=0)
        return (1.0 - mse / baseline).cpu().numpy()

    return Task("adding", length, 2, 1, False, "variance explained", 0.0, 0.9, batch,
                lambda: batch(test_size, np.random.default_rng(test_seed)), loss, score)


def _agreement(length: int, test_size: int, test_seed: int) -> Task:
    size = AGREEMENT_VOCABULARY.size

    def batch(batch_size: int, rng: np.random.Generator) -> tuple[Any, Any, Any]:
        tokens, labels = agreement_task(length, batch_size, rng, attractors=length // 2,
                                        attractor_number="random", as_torch=True)
        return _one_hot(tokens, size), labels, None

    def loss(outputs: torch.Tensor, targets: torch.Tensor, mask: Any) -> torch.Tensor:
        return _cross_entropy(outputs, targets).mean(dim=0)           # (B, K) -> (K,)

    def score(outputs: torch.Tensor, targets: torch.Tensor, mask: Any) -> np.ndarray:
        right = outputs.argmax(dim=-1) == targets                       # (B, K)
        return right.double().mean(dim=0).cpu().numpy()

    return Task("agreement", length, size, 2, False, "accuracy", 0.5, 0.95, batch,
                lambda: batch(test_size, np.random.default_rng(test_seed)), loss, score)


def _anbn(length: int, test_max_n: int) -> Task:
    symbols = len(ANBN_SYMBOLS)

    def batch(batch_size: int, rng: np.random.Generator) -> tuple[Any, Any, Any]:
        tokens, targets, mask, _ = anbn_batch(batch_size, rng, max_n=length, as_torch=True)
        return _one_hot(tokens, symbols), targets, mask

    def test() -> tuple[Any, Any, Any]:
        tokens, targets, mask = anbn(np.arange(1, test_max_n + 1), as_torch=True)
        return _one_hot(tokens, symbols), targets, mask

    def loss(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.to(outputs.dtype)                                # (T, B, K)
        losses = _cross_entropy(outputs, targets) * weights
        return losses.sum(dim=(0, 1)) / weights.sum(dim=(0, 1))

    def score(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        return anbn_longest_recognised(outputs, targets, mask).astype(np.float64)

    return Task("anbn", length, symbols, symbols, True, "largest n recognised", 0.0,
                float(length), batch, test, loss, score)


def anbn_recognised(outputs: torch.Tensor, targets: torch.Tensor,
                    mask: torch.Tensor) -> np.ndarray:
    """Which strings each network recognises: every determined next symbol predicted right.

    Parameters
    ----------
    outputs : Tensor, shape (T, B, K, 3)
        Scores of the next symbol (a, b, $) from K networks on B strings.
    targets : Tensor of int64, shape (T, B, K)
        The next symbols (the same for every network: ``Tensor.expand`` them).
    mask : Tensor of bool, shape (T, B, K)
        Steps whose next symbol is determined (see ``anbn``).

    Returns
    -------
    ndarray of bool, shape (K, B)
    """
    right = (outputs.argmax(dim=-1) == targets) | ~mask                # (T, B, K)
    return right.all(dim=0).T.cpu().numpy()


def anbn_longest_recognised(outputs: torch.Tensor, targets: torch.Tensor,
                            mask: torch.Tensor) -> np.ndarray:
    """For the strings n = 1, 2, ..., N in order: the largest n with every n' <= n recognised.

    Parameters are those of ``anbn_recognised``, with string b holding n = b + 1.

    Returns
    -------
    ndarray of int, shape (K,)
        0 when the string with n = 1 is already wrong; N when all are right.
    """
    failed = ~anbn_recognised(outputs, targets, mask)                  # (K, N)
    return np.where(failed.any(axis=1), failed.argmax(axis=1), failed.shape[1]).astype(np.int64)


def make_task(name: str, length: int, *, test_size: int = 1000, test_seed: int = 12345,
              test_max_n: int | None = None) -> Task:
    """Build a task for ``ensembles.train_ensemble`` and ``head_to_head.compare``.

    ``"adding"``
        Le et al.'s adding problem (``adding_problem``) with T = ``length``; two
        inputs per step, one output after the last; loss MSE; score the variance
        explained, 1 - MSE / (1/6), so 0 is the no-memory baseline and 1 is perfect.
    ``"agreement"``
        Number agreement at distance ``length`` with distractor nouns of random number
        (``agreement_task`` with ``length // 2`` nouns and ``attractor_number="random"``:
        only the subject predicts the label), tokens one-hot
        (I = 25); two outputs after the last step; cross entropy; score the accuracy
        (chance 0.5).
    ``"anbn"``
        The counting language a^n b^n (``anbn``) with n drawn from 1 .. ``length``
        for training; one-hot symbols; the next symbol predicted at every step; cross
        entropy on the steps whose next symbol is determined. The test set holds one string
        for every n from 1 to ``test_max_n`` (3 ``length`` by default), longer than any
        string trained on; the score is the largest n such that every string up to it is
        recognised (``anbn_longest_recognised``). Scoring ``length`` means the training
        range is learned; more means the network counts beyond it.

    Parameters
    ----------
    name : {"adding", "agreement", "anbn"}
    length : int
        T, the distance or the largest n trained on.
    test_size : int
        Test sequences (adding and agreement).
    test_seed : int
        Seed of the test set (adding and agreement).
    test_max_n : int, optional
        Largest n tested (a^n b^n).

    Returns
    -------
    Task
    """
    check_choice("name", name, TASK_NAMES)
    length = check_int("length", length, minimum=2 if name == "adding" else 1)
    test_size = check_int("test_size", test_size, minimum=1)
    test_seed = check_int("test_seed", test_seed, minimum=0)
    if name == "adding":
        return _adding(length, test_size, test_seed)
    if name == "agreement":
        return _agreement(length, test_size, test_seed)
    test_max_n = 3 * length if test_max_n is None else check_int("test_max_n", test_max_n,
                                                                 minimum=1)
    return _anbn(length, test_max_n)


__all__ += ["TASK_NAMES", "Task", "make_task", "anbn_recognised", "anbn_longest_recognised"]
