r"""Text for language models: the corpus, a vocabulary, counting models and their scores.

The book's character-level language model reads Python source code: a fixed selection of
modules of the Python standard library, shipped with this package (``data/``, under the
Python Software Foundation License, whose text ships beside it), so that every reader, in
Colab or on a laptop, reads exactly the same characters.

- ``load_python_source``: the corpus, split by file into training, validation and test
  text (no module has characters in two splits).
- ``Vocabulary``: characters to integer ids and back, built from the training text only;
  characters it does not know map to one unknown symbol.
- ``NGramModel``: counting models of order n, p(x_t | x_{t-n+1} .. x_{t-1}), with add-k
  (Lidstone) or interpolated Kneser-Ney smoothing; every distribution sums to 1.
- ``bits_per_character``, ``perplexity``: the scores, in bits per character
  (-mean log2 p) and 2 ** bits.
- ``stream_segments``: a long text cut into B parallel streams and consecutive segments of
  T characters, for training with the hidden state carried from segment to segment
  (truncated backpropagation through time).
- ``pad_sequences`` and ``length_mask``: batches of lines of different lengths.
- ``next_char_probabilities``: the sampling distribution softmax(logits / temperature),
  optionally cut to the k most likely characters (float64, numpy).
- ``code_features``: per character of Python source, whether it lies in a string literal
  or a comment, the bracket depth, the indentation of its line and its column.

Notation: V symbols in the vocabulary, x_t the id of the t-th character; sequences of ids
are time-major (T, B) when batched, as everywhere in the book.
"""

from __future__ import annotations

import hashlib
import io
import json
import tokenize
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import check_choice, check_int, check_real, describe

__all__ = [
    "DATA_DIRECTORY",
    "UNKNOWN",
    "SPLITS",
    "SourceFile",
    "Corpus",
    "load_python_source",
    "Vocabulary",
    "NGramModel",
    "NGramTuning",
    "tune_ngram",
    "bits_per_character",
    "perplexity",
    "stream_segments",
    "pad_sequences",
    "length_mask",
    "next_char_probabilities",
    "FEATURES",
    "code_features",
]

DATA_DIRECTORY = Path(__file__).resolve().parent / "data"
"""Where the package keeps its data files (the corpus, its manifest and its licence)."""

UNKNOWN = "\N{REPLACEMENT CHARACTER}"
"""The symbol (id 0) that stands for every character the vocabulary does not know."""

SPLITS = ("train", "validation", "test")


# --------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """One module of the corpus: its name, split and place in the text (character offsets)."""

    name: str
    split: str
    start: int
    end: int
    sha256: str


@dataclass(frozen=True)
class Corpus:
    """The corpus: the whole text, its files, and the Python version it was copied from.

    ``corpus.split("train")`` is the training text, the concatenation of its files in
    order; ``corpus.files_in("test")`` lists the test files.
    """

    text: str
    files: tuple[SourceFile, ...]
    python_version: str

    def files_in(self, split: str) -> tuple[SourceFile, ...]:
        """The files of one split, in order."""
        check_choice("split", split, SPLITS)
        return tuple(f for f in self.files if f.split == split)

    def split(self, split: str) -> str:
        """The text of one split: its files concatenated in order."""
        return "".join(self.text[f.start:f.end] for f in self.files_in(split))

    def file_text(self, name: str) -> str:
        """The text of one file, by name (e.g. ``"textwrap.py"``)."""
        for f in self.files:
            if f.name == name:
                return self.text[f.start:f.end]
        raise ValueError(f"name must be one of the corpus's files "
                         f"{[f.name for f in self.files]}, got {name!r}")


def load_python_source(directory: str | Path | None = None, *, verify: bool = True) -> Corpus:
    """Load the shipped Python source corpus (``data/python_source.txt`` and its manifest).

    Parameters
    ----------
    directory : path, optional
        Where the files are; the package's own ``data/`` by default.
    verify : bool
        Check every file's SHA-256 against the manifest (a few milliseconds), so a damaged
        or edited copy fails loudly instead of training on other text.

    Returns
    -------
    Corpus
    """
    directory = DATA_DIRECTORY if directory is None else Path(directory)
    manifest_path = directory / "python_source.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"the corpus manifest {manifest_path} is missing; was the "
                                "package installed without its data files?")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    with open(directory / manifest["text_file"], encoding="utf-8", newline="") as handle:
        text = handle.read()
    if len(text) != manifest["characters"]:
        raise ValueError(f"the corpus text has {len(text)} characters, its manifest says "
                         f"{manifest['characters']}")
    files = tuple(SourceFile(f["name"], f["split"], f["start"], f["end"], f["sha256"])
                  for f in manifest["files"])
    if verify:
        for f in files:
            digest = hashlib.sha256(text[f.start:f.end].encode("utf-8")).hexdigest()
            if digest != f.sha256:
                raise ValueError(f"the text of {f.name} in the corpus does not match its "
                                 "SHA-256 in the manifest: the data file was changed")
    return Corpus(text, files, manifest["python_version"])


# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------


class Vocabulary:
    """Characters to ids and back. Id 0 is ``UNKNOWN``; the others are sorted characters.

    Build it from the training text only (``Vocabulary.from_text``), so that nothing about
    the validation or test text leaks into the model: a character that is not in the
    vocabulary is encoded as the unknown symbol.
    """

    def __init__(self, symbols: Sequence[str]) -> None:
        symbols = tuple(symbols)
        if not symbols or symbols[0] != UNKNOWN:
            raise ValueError(f"symbols must start with the unknown symbol {UNKNOWN!r}, got "
                             f"{symbols[:3]!r}")
        if any(not isinstance(s, str) or len(s) != 1 for s in symbols):
            raise ValueError("symbols must be single characters")
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must not repeat")
        self.symbols = symbols
        self.index = {symbol: i for i, symbol in enumerate(symbols)}
        self._table = {ord(s): i for i, s in enumerate(symbols)}

    @classmethod
    def from_text(cls, text: str, *, min_count: int = 1) -> Vocabulary:
        """The characters that occur at least ``min_count`` times in ``text``, plus UNKNOWN."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"text must be a non-empty string, got {describe(text)}")
        min_count = check_int("min_count", min_count, minimum=1)
        counts = Counter(text)
        kept = sorted(c for c, n in counts.items() if n >= min_count and c != UNKNOWN)
        return cls((UNKNOWN, *kept))

    def __len__(self) -> int:
        return len(self.symbols)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} symbols)"

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text``: int64 array (len(text),); unknown ones are 0."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {describe(text)}")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        lookup = np.zeros(max(max(self._table), int(codes.max(initial=0))) + 1, dtype=np.int64)
        lookup[list(self._table)] = list(self._table.values())
        return lookup[codes]

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of ``ids`` (UNKNOWN for id 0)."""
        ids = np.asarray(list(ids) if not hasattr(ids, "__array__") else ids).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in 0 .. {len(self) - 1}, got values from "
                             f"{int(ids.min())} to {int(ids.max())}")
        return "".join(self.symbols[int(i)] for i in ids)


def _check_ids(name: str, ids: Any, vocabulary_size: int, *, minimum_length: int = 1
               ) -> np.ndarray:
    array = np.asarray(ids)
    if array.size == 0 and array.ndim == 1:
        array = array.astype(np.int64)  # [] is a float array to numpy
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be a 1-D array of integer ids, got {describe(ids)}")
    if array.size < minimum_length:
        raise ValueError(f"{name} must hold at least {minimum_length} ids, got {array.size}")
    if array.size and (array.min() < 0 or array.max() >= vocabulary_size):
        raise ValueError(f"{name} must hold ids in 0 .. {vocabulary_size - 1}, got values "
                         f"from {int(array.min())} to {int(array.max())}")
    return array.astype(np.int64)


# --------------------------------------------------------------------------------------
# Counting models
# --------------------------------------------------------------------------------------

SMOOTHINGS = ("add_k", "kneser_ney")


class NGramModel:
    r"""A character n-gram model: counts of the training text, smoothed.

    The model predicts x_t from the n - 1 characters before it (its *context*; at the very
    start of a text the missing characters are a padding symbol). With counts c(.) of the
    training text:

    ``"add_k"`` (Lidstone; add-one, Laplace's rule, for k = 1)
        p(w | u) = (c(u w) + k) / (c(u) + k V), where c(u) = sum over w of c(u w).

    ``"kneser_ney"`` (interpolated, one discount D in (0, 1] for every order)
        p_m(w | u) = max(c_m(u w) - D, 0) / c_m(u) + D N_m(u) / c_m(u) p_{m-1}(w | u'),
        where u' drops the oldest character of u, N_m(u) is the number of distinct w with
        c_m(u w) > 0, and p_{m-1} is used alone when c_m(u) = 0. The highest order (m = n)
        uses the counts of the text; every lower order uses *continuation* counts, the
        number of distinct characters that precede u w in the text (Kneser & Ney 1995; Chen
        & Goodman 1999). Below the unigram sits the uniform distribution 1/V.

    Both give every symbol a probability above 0 and sum to 1 over the V symbols.

    Parameters
    ----------
    order : int
        n, from 1 (unigram: no context) up to what fits in 63 bits, (V + 1) ** n < 2 ** 62.
    vocabulary_size : int
        V.
    smoothing : {"add_k", "kneser_ney"}
    k : float
        The pseudo-count of add-k smoothing (> 0).
    discount : float
        D of Kneser-Ney, in (0, 1].
    """

    def __init__(self, order: int, vocabulary_size: int, *, smoothing: str = "kneser_ney",
                 k: float = 1.0, discount: float = 0.75) -> None:
        self.order = check_int("order", order, minimum=1)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size, minimum=2)
        self.smoothing = check_choice("smoothing", smoothing, SMOOTHINGS)
        self.k = check_real("k", k, positive=True)
        self.discount = check_real("discount", discount, positive=True)
        if self.discount > 1:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.base = self.vocabulary_size + 1  # digit 0 pads, digit w + 1 is symbol w
        if self.base ** self.order >= 2 ** 62:
            raise ValueError(f"order {order} is too high for V = {vocabulary_size}: the "
                             f"n-gram keys need (V + 1) ** n < 2 ** 62")
        self.tables: dict[str, list[dict[str, np.ndarray]]] = {"raw": [], "continuation": []}
        self.fitted = False

    def __repr__(self) -> str:
        setting = f"k={self.k:g}" if self.smoothing == "add_k" else f"D={self.discount:g}"
        return f"NGramModel(order={self.order}, {self.smoothing}, {setting})"

    def _keys(self, ids: np.ndarray, history: np.ndarray | None = None) -> list[np.ndarray]:
        """keys[m - 1][t]: the m-gram ending at x_t, digits base V + 1, x_t the lowest."""
        n = self.order
        context = self._context_codes(history)
        codes = np.concatenate([context, ids + 1])
        keys, key = [], np.zeros(len(ids), dtype=np.int64)
        for m in range(1, n + 1):
            start = n - 1 - (m - 1)  # the character m - 1 places before x_t
            key = key + codes[start:start + len(ids)] * self.base ** (m - 1)
            keys.append(key.copy())
        return keys

    def _context_codes(self, history: np.ndarray | None) -> np.ndarray:
        """The digits of the n - 1 characters before a text: its history, padded with 0."""
        n = self.order
        history = np.zeros(0, dtype=np.int64) if history is None else history
        tail = history[max(len(history) - (n - 1), 0):] + 1 if n > 1 else history[:0]
        return np.concatenate([np.zeros(n - 1 - len(tail), dtype=np.int64), tail])

    def fit(self, ids: Any) -> NGramModel:
        """Count the training ids (a 1-D integer array). Returns the model itself.

        Keeps, for every m = 1 .. n, the counts of m-grams and, for m < n, their
        continuation counts, so that ``with_settings`` can score lower orders and other
        smoothing values without counting again.
        """
        ids = _check_ids("ids", ids, self.vocabulary_size)
        keys = self._keys(ids)
        self.tables = {"raw": [], "continuation": []}
        for m in range(1, self.order + 1):
            self.tables["raw"].append(self._table(*np.unique(keys[m - 1], return_counts=True)))
            if m < self.order:  # distinct left neighbours of each m-gram
                longer = np.unique(keys[m])
                self.tables["continuation"].append(
                    self._table(*np.unique(longer % self.base ** m, return_counts=True)))
        self.fitted = True
        return self

    def _table(self, grams: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Counts of sorted m-grams, and per context: the total count and distinct next ids."""
        contexts = grams // self.base
        starts = np.flatnonzero(np.r_[True, contexts[1:] != contexts[:-1]])
        return {"grams": grams, "counts": counts.astype(np.float64),
                "contexts": contexts[starts],
                "totals": np.add.reduceat(counts, starts).astype(np.float64),
                "types": np.diff(np.r_[starts, len(grams)]).astype(np.float64)}

    def with_settings(self, *, order: int | None = None, smoothing: str | None = None,
                      k: float | None = None, discount: float | None = None) -> NGramModel:
        """A model that shares these counts, with other settings (a lower order, another
        smoothing, k or D): nothing is counted again. Used to tune them on validation text."""
        self._require_fitted()
        order = self.order if order is None else check_int("order", order, minimum=1)
        if order > self.order:
            raise ValueError(f"order must be at most the fitted order {self.order}, got {order}")
        other = NGramModel(order, self.vocabulary_size,
                           smoothing=self.smoothing if smoothing is None else smoothing,
                           k=self.k if k is None else k,
                           discount=self.discount if discount is None else discount)
        other.tables = {"raw": self.tables["raw"][:order],
                        "continuation": self.tables["continuation"][:order - 1]}
        other.fitted = True
        return other

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """values at the positions of ``queries`` in ``sorted_keys``; 0 where absent."""
        if not len(sorted_keys):
            return np.zeros(len(queries))
        where = np.clip(np.searchsorted(sorted_keys, queries), 0, len(sorted_keys) - 1)
        return np.where(sorted_keys[where] == queries, values[where], 0.0)

    def _found(self, keys: list[np.ndarray]) -> list[dict[str, tuple[np.ndarray, ...]]]:
        """For every order m: (count, context total, context types) of each queried m-gram,
        in the raw and in the continuation tables."""
        found = []
        for m, gram in enumerate(keys[:self.order], start=1):
            context = gram // self.base
            entry = {}
            for kind in ("raw", "continuation"):
                if m - 1 < len(self.tables[kind]):
                    table = self.tables[kind][m - 1]
                    entry[kind] = (self._lookup(table["grams"], table["counts"], gram),
                                   self._lookup(table["contexts"], table["totals"], context),
                                   self._lookup(table["contexts"], table["types"], context))
            found.append(entry)
        return found

    def _combine(self, found: list[dict[str, tuple[np.ndarray, ...]]]) -> np.ndarray:
        """The probabilities of the queried m-grams under this model's settings."""
        V, n = self.vocabulary_size, self.order
        if self.smoothing == "add_k":
            count, total, _ = found[n - 1]["raw"]
            return (count + self.k) / (total + self.k * V)
        D = self.discount
        p = np.full(len(found[0]["raw"][0]), 1.0 / V)
        for m in range(1, n + 1):
            count, total, types = found[m - 1]["raw" if m == n else "continuation"]
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            p = np.where(seen, np.maximum(count - D, 0.0) / safe + D * types / safe * p, p)
        return p

    def _probabilities(self, keys: list[np.ndarray]) -> np.ndarray:
        return self._combine(self._found(keys))

    def log2_probabilities(self, ids: Any, history: Any = None) -> np.ndarray:
        """log2 p(x_t | context) for every x_t of ``ids`` (float64, shape (len(ids),)).

        The first characters' contexts reach back into ``history`` (ids that come before
        ``ids``), or into padding when there is none, as at the start of training.
        """
        self._require_fitted()
        ids = _check_ids("ids", ids, self.vocabulary_size)
        if history is not None:
            history = _check_ids("history", history, self.vocabulary_size, minimum_length=0)
        return np.log2(self._probabilities(self._keys(ids, history)))

    def distribution(self, context: Any = ()) -> np.ndarray:
        """p(w | context) for every symbol w: float64 array (V,), summing to 1.

        ``context`` holds the ids before the prediction (the last n - 1 are used; fewer
        are padded as at the start of a text).
        """
        self._require_fitted()
        history = _check_ids("context", context, self.vocabulary_size, minimum_length=0)
        codes = self._context_codes(history)  # (n - 1,), the oldest first
        candidates = np.arange(self.vocabulary_size, dtype=np.int64) + 1
        keys, context_key = [], 0
        for m in range(1, self.order + 1):
            keys.append(context_key * self.base + candidates)
            if m < self.order:  # one character older for the next order
                context_key += int(codes[self.order - 1 - m]) * self.base ** (m - 1)
        return self._probabilities(keys)

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("the model has no counts yet: call fit(training_ids) first")


@dataclass
class NGramTuning:
    """What ``tune_ngram`` found: validation scores of every setting, and the best model.

    Attributes
    ----------
    smoothing : str
    orders : tuple of int
    values : tuple of float
        The k (add-k) or D (Kneser-Ney) tried.
    validation_bits : ndarray (len(orders), len(values))
        Bits per character on the validation text of every (order, value).
    best_order, best_value
        The setting with the fewest bits.
    model : NGramModel
        The best model (its counts come from the training text only).
    """

    smoothing: str
    orders: tuple[int, ...]
    values: tuple[float, ...]
    validation_bits: np.ndarray
    best_order: int
    best_value: float
    model: NGramModel


def tune_ngram(train_ids: Any, validation_ids: Any, vocabulary_size: int, *,
               smoothing: str = "kneser_ney", orders: Sequence[int] = tuple(range(1, 9)),
               values: Sequence[float] = (0.6, 0.8, 0.9, 1.0)) -> NGramTuning:
    """Choose the order and the smoothing value that score best on validation text.

    The counts come from ``train_ids`` once (at the highest order); every setting is
    scored on ``validation_ids[1:]``, each character predicted from those before it (the
    first character is context only, as for the networks).
    """
    orders = tuple(check_int("orders[i]", n, minimum=1) for n in orders)
    values = tuple(check_real("values[i]", v, positive=True) for v in values)
    if not orders or not values:
        raise ValueError("orders and values must not be empty")
    validation_ids = _check_ids("validation_ids", validation_ids, vocabulary_size,
                                minimum_length=2)
    full = NGramModel(max(orders), vocabulary_size, smoothing=smoothing).fit(train_ids)
    found = full._found(full._keys(validation_ids[1:], validation_ids[:1]))
    scores = np.empty((len(orders), len(values)))
    for i, n in enumerate(orders):
        for j, value in enumerate(values):
            model = full.with_settings(order=n, k=value, discount=value)
            scores[i, j] = -np.log2(model._combine(found[:n])).mean()
    i, j = np.unravel_index(np.argmin(scores), scores.shape)
    best = full.with_settings(order=orders[i], k=values[j], discount=values[j])
    return NGramTuning(smoothing, orders, values, scores, orders[i], values[j], best)


# --------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------


def bits_per_character(log2_probabilities: Any) -> float:
    """-mean log2 p(x_t | x_<t): the average number of bits a model needs per character.

    Parameters
    ----------
    log2_probabilities : array-like of float
        log2 of the probability the model gave each character that occurred.
    """
    values = np.asarray(log2_probabilities, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("log2_probabilities must not be empty")
    if np.any(values > 1e-12) or not np.all(np.isfinite(values)):
        raise ValueError("log2_probabilities must be finite and at most 0 (probabilities in "
                         f"(0, 1]), got values from {values.min()} to {values.max()}")
    return float(-values.mean())


def perplexity(bits: float) -> float:
    """2 ** bits: the number of equally likely choices that would cost as many bits."""
    bits = check_real("bits", bits)
    if bits < 0:
        raise ValueError(f"bits must be >= 0 (a cross-entropy), got {bits}")
    return float(2.0 ** bits)


# --------------------------------------------------------------------------------------
# Batches: a stream cut into segments, and lines of different lengths
# --------------------------------------------------------------------------------------


def stream_segments(ids: Any, batch_size: int, length: int, *, offset: int = 0) -> np.ndarray:
    """Cut a long text into B parallel streams and consecutive segments of T characters.

    The ids (after dropping the first ``offset``) are laid out as B rows, each a contiguous
    stretch of the text; segment s holds characters s T .. (s + 1) T of every row and, one
    character further, their targets. Segment s + 1 continues exactly where segment s ends
    in every row, so a model may carry its hidden state from one segment to the next
    (stateful truncated BPTT).

    Parameters
    ----------
    ids : 1-D integer array
    batch_size : int
        B, the number of parallel streams.
    length : int
        T, the characters per segment.
    offset : int
        Characters dropped at the start (a different offset gives other segment borders).

    Returns
    -------
    ndarray of int64, shape (S, T + 1, B)
        ``segments[s, :-1]`` are the inputs (T, B) and ``segments[s, 1:]`` the targets of
        segment s; ``segments[s, -1]`` equals ``segments[s + 1, 0]``.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be a 1-D array of integer ids, got {describe(ids)}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    length = check_int("length", length, minimum=1)
    offset = check_int("offset", offset, minimum=0)
    usable = len(ids) - offset
    row = (usable - 1) // batch_size  # every row needs one character more than it scores
    count = row // length
    if count < 1:
        raise ValueError(f"ids hold {len(ids)} characters, too few for B = {batch_size} "
                         f"streams of at least one segment of T = {length} (offset {offset})")
    rows = ids[offset:offset + batch_size * row].reshape(batch_size, row)
    rows = np.concatenate([rows, ids[offset + 1:offset + batch_size * row + 1]
                           .reshape(batch_size, row)[:, -1:]], axis=1)
    starts = np.arange(count) * length
    window = starts[:, None] + np.arange(length + 1)[None, :]  # (S, T + 1)
    return np.ascontiguousarray(rows[:, window].transpose(1, 2, 0)).astype(np.int64)


def pad_sequences(sequences: Sequence[Any], *, padding_id: int = 0) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Stack sequences of different lengths into one time-major array, padded at the end.

    Returns
    -------
    padded : ndarray of int64, shape (T_max, B)
        Column b holds sequence b, then ``padding_id``.
    lengths : ndarray of int64, shape (B,)
    """
    if not len(sequences):
        raise ValueError("sequences must hold at least one sequence")
    arrays = [np.asarray(s) for s in sequences]
    for index, array in enumerate(arrays):
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer) or not array.size:
            raise ValueError(f"sequences[{index}] must be a non-empty 1-D integer array, got "
                             f"{describe(array)}")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    padded = np.full((int(lengths.max()), len(arrays)), padding_id, dtype=np.int64)
    for b, array in enumerate(arrays):
        padded[:len(array), b] = array
    return padded, lengths


def length_mask(lengths: Any, total_length: int | None = None) -> np.ndarray:
    """mask[t, b] is True when step t is inside sequence b (t < lengths[b]): (T, B) bool."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or lengths.min() < 1:
        raise ValueError(f"lengths must be a 1-D array of positive integers, got "
                         f"{describe(lengths)}")
    total = int(lengths.max()) if total_length is None else check_int(
        "total_length", total_length, minimum=int(lengths.max()))
    return np.arange(total)[:, None] < lengths[None, :]


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------


def next_char_probabilities(logits: Any, temperature: float = 1.0,
                            top_k: int | None = None) -> np.ndarray:
    r"""The distribution a sampler draws the next character from, in float64.

    p_w = exp(z_w / tau) / sum_v exp(z_v / tau) over the k largest logits z (all V when
    ``top_k`` is None), and 0 for the others; tau is the temperature. Computed stably, by
    subtracting the largest logit first. Ties at the k-th largest logit are all kept.

    Parameters
    ----------
    logits : array (..., V)
    temperature : float
        tau > 0: below 1 sharpens the distribution towards the most likely character,
        above 1 flattens it towards uniform.
    top_k : int, optional
        Keep only the k most likely characters (1 <= k <= V).

    Returns
    -------
    ndarray of float64, shape (..., V)
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim < 1 or z.shape[-1] < 1 or not np.all(np.isfinite(z)):
        raise ValueError(f"logits must be a finite array (..., V), got {describe(logits)}")
    temperature = check_real("temperature", temperature, positive=True)
    z = z / temperature
    if top_k is not None:
        top_k = check_int("top_k", top_k, minimum=1)
        if top_k > z.shape[-1]:
            raise ValueError(f"top_k must be at most V = {z.shape[-1]}, got {top_k}")
        kth = np.sort(z, axis=-1)[..., -top_k][..., None]
        z = np.where(z >= kth, z, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------
# What a character is inside Python source
# --------------------------------------------------------------------------------------

FEATURES = ("in string", "in comment", "bracket depth", "indentation", "column")
"""The properties ``code_features`` measures for every character."""

_OPENING, _CLOSING = "([{", ")]}"


def code_features(source: str) -> dict[str, np.ndarray]:
    """Measure, for every character of Python source, where it stands.

    The source is read by Python's own tokenizer, so strings and comments are found
    exactly (docstrings, f-strings and brackets inside strings included).

    Returns
    -------
    dict of ndarray, each of shape (len(source),)
        ``"in string"`` (0/1): the character belongs to a string literal, its quotes
        included. ``"in comment"`` (0/1): it belongs to a comment. ``"bracket depth"``:
        the number of brackets ``( [ {`` open after this character (brackets in strings and
        comments do not count). ``"indentation"``: the number of spaces that begin the
        character's line, divided by 4. ``"column"``: the character's position in its
        line, from 0 (the newline that ends a line has the line's length).
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f"source must be a non-empty string, got {describe(source)}")
    lines = source.splitlines(keepends=True)
    line_starts = np.cumsum([0] + [len(line) for line in lines])
    n = len(source)
    in_string, in_comment = np.zeros(n), np.zeros(n)
    depth_change = np.zeros(n + 1)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise ValueError(f"source must be valid Python that tokenizes: {error}") from None
    for token in tokens:
        (row0, col0), (row1, col1) = token.start, token.end
        if row0 < 1 or row0 > len(lines):
            continue
        start = line_starts[row0 - 1] + col0
        end = line_starts[row1 - 1] + col1 if row1 <= len(lines) else n
        if token.type == tokenize.STRING:
            in_string[start:end] = 1
        elif token.type == tokenize.COMMENT:
            in_comment[start:end] = 1
        elif token.type == tokenize.OP and token.string in _OPENING:
            depth_change[start] += 1
        elif token.type == tokenize.OP and token.string in _CLOSING:
            depth_change[start] -= 1
    column = np.zeros(n)
    indentation = np.zeros(n)
    for line, start in zip(lines, line_starts[:-1], strict=True):
        column[start:start + len(line)] = np.arange(len(line))
        indentation[start:start + len(line)] = (len(line) - len(line.lstrip(" "))) / 4
    return {"in string": in_string, "in comment": in_comment,
            "bracket depth": np.cumsum(depth_change[:n]), "indentation": indentation,
            "column": column}

