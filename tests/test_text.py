"""throughtime.text: the corpus, the vocabulary, counting models, scores, batches, sampling."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import math
import platform
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from throughtime import text as tx

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus():
    return tx.load_python_source()


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_python_source", ROOT / "scripts" / "make_python_source.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The corpus -------------------------------------------------------------------------------


def test_the_splits_are_whole_files_in_the_order_of_the_manifest(corpus):
    names = {split: [f.name for f in corpus.files_in(split)] for split in tx.SPLITS}
    assert names == {split: list(files) for split, files in _script().SPLITS.items()}
    every = [name for split in tx.SPLITS for name in names[split]]
    assert len(every) == len(set(every)), "no file in two splits"
    assert "".join(corpus.split(s) for s in tx.SPLITS) == corpus.text
    assert corpus.files[0].start == 0 and corpus.files[-1].end == len(corpus.text)
    for before, after in zip(corpus.files, corpus.files[1:], strict=False):
        assert before.end == after.start
    for f in corpus.files:
        assert corpus.file_text(f.name).endswith("\n")
        ast.parse(corpus.file_text(f.name))  # each piece is a whole module
    sizes = {s: len(corpus.split(s)) for s in tx.SPLITS}
    assert sizes["train"] > 5 * sizes["validation"] and sizes["test"] > 20_000
    assert len(corpus.text) < 400_000  # a few hundred kilobytes


def test_the_corpus_is_the_standard_library_it_names(corpus):
    manifest = json.loads((tx.DATA_DIRECTORY / "python_source.json").read_text())
    assert corpus.python_version == manifest["python_version"]
    library = Path(sysconfig.get_paths()["stdlib"])
    if platform.python_version() != corpus.python_version:
        pytest.skip(f"this Python is {platform.python_version()}, the corpus "
                    f"{corpus.python_version}")
    for f in corpus.files:
        assert corpus.file_text(f.name) == (library / f.name).read_text(encoding="utf-8")


def test_the_licence_and_attribution_ship_beside_the_text():
    licence = (tx.DATA_DIRECTORY / "PSF_LICENSE.txt").read_text()
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in licence
    readme = (tx.DATA_DIRECTORY / "README.md").read_text()
    assert "Python Software Foundation" in readme and "PSF_LICENSE.txt" in readme


def test_a_changed_corpus_is_refused(tmp_path):
    for name in ("python_source.txt", "python_source.json"):
        shutil.copy(tx.DATA_DIRECTORY / name, tmp_path / name)
    path = tmp_path / "python_source.txt"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("def ", "dfe ", 1), encoding="utf-8", newline="")
    with pytest.raises(ValueError, match="SHA-256"):
        tx.load_python_source(tmp_path)
    assert tx.load_python_source(tmp_path, verify=False).text != text
    with pytest.raises(FileNotFoundError, match="manifest"):
        tx.load_python_source(tmp_path / "nowhere")


def test_the_manifest_hashes_are_those_of_the_text(corpus):
    for f in corpus.files:
        expected = hashlib.sha256(corpus.text[f.start:f.end].encode()).hexdigest()
        assert f.sha256 == expected


# Vocabulary -------------------------------------------------------------------------------


def test_vocabulary_round_trip_and_unknown_symbol(corpus):
    train = corpus.split("train")
    vocabulary = tx.Vocabulary.from_text(train)
    assert vocabulary.symbols[0] == tx.UNKNOWN
    assert list(vocabulary.symbols[1:]) == sorted(set(train))
    ids = vocabulary.encode(train)
    assert ids.dtype == np.int64 and ids.shape == (len(train),) and ids.min() >= 1
    assert vocabulary.decode(ids) == train
    assert list(vocabulary.encode("a\u00e9b")) == [vocabulary.index["a"], 0,
                                                    vocabulary.index["b"]]
    assert vocabulary.decode(vocabulary.encode("x\u2603")) == "x" + tx.UNKNOWN


def test_min_count_drops_rare_characters():
    vocabulary = tx.Vocabulary.from_text("aaabbc", min_count=2)
    assert vocabulary.symbols == (tx.UNKNOWN, "a", "b")
    assert list(vocabulary.encode("cab")) == [0, 1, 2]
    assert len(vocabulary) == 3


def test_vocabulary_rejects_bad_input():
    with pytest.raises(ValueError, match="text"):
        tx.Vocabulary.from_text("")
    with pytest.raises(ValueError, match="unknown symbol"):
        tx.Vocabulary(("a", "b"))
    with pytest.raises(ValueError, match="repeat"):
        tx.Vocabulary((tx.UNKNOWN, "a", "a"))
    with pytest.raises(ValueError, match=r"ids must lie in 0 \.\. 2"):
        tx.Vocabulary((tx.UNKNOWN, "a", "b")).decode([0, 3])
    with pytest.raises(TypeError, match="text must be a string"):
        tx.Vocabulary((tx.UNKNOWN, "a")).encode(b"a")


# Counting models --------------------------------------------------------------------------


def _small_text(seed=0, size=3000, symbols=6):
    rng = np.random.default_rng(seed)
    # A Markov chain, so that contexts matter and some n-grams never occur.
    transition = rng.dirichlet(np.full(symbols, 0.3), size=symbols)
    ids = [0]
    for _ in range(size - 1):
        ids.append(rng.choice(symbols, p=transition[ids[-1]]))
    return np.array(ids)


@pytest.mark.parametrize("smoothing", tx.SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_every_ngram_distribution_sums_to_one(smoothing, order):
    ids = _small_text()
    V = 8  # two symbols never occur in training
    model = tx.NGramModel(order, V, smoothing=smoothing, k=0.3, discount=0.7).fit(ids)
    rng = np.random.default_rng(1)
    contexts = [[], [7], [6, 7, 6, 7], *[rng.integers(0, V, size=order + 2) for _ in range(20)]]
    for context in contexts:
        p = model.distribution(np.array(context, dtype=np.int64))
        assert p.shape == (V,) and np.all(p > 0)
        assert math.isclose(p.sum(), 1.0, rel_tol=0, abs_tol=1e-12), (context, p.sum())


@pytest.mark.parametrize("smoothing", tx.SMOOTHINGS)
def test_log2_probabilities_agree_with_the_distributions(smoothing):
    ids = _small_text(2)
    model = tx.NGramModel(4, 7, smoothing=smoothing, k=0.5, discount=0.8).fit(ids[:2000])
    text = ids[2000:2100]
    scored = model.log2_probabilities(text[5:], history=text[:5])
    for t in range(5, 100):
        p = model.distribution(text[:t])
        assert scored[t - 5] == pytest.approx(np.log2(p[text[t]]), abs=1e-12)
    # No history: the context is padding, as at the start of the training text.
    first = model.log2_probabilities(text[:1])
    assert first[0] == pytest.approx(np.log2(model.distribution([])[text[0]]), abs=1e-12)


def test_add_k_against_counting_by_hand():
    ids = _small_text(3, size=500, symbols=4)
    V, k, n = 5, 0.25, 3
    model = tx.NGramModel(n, V, smoothing="add_k", k=k).fit(ids)
    padded = [None] * (n - 1) + list(ids)
    grams = Counter(tuple(padded[t:t + n]) for t in range(len(ids)))
    contexts = Counter(tuple(padded[t:t + n - 1]) for t in range(len(ids)))
    for context in [(0, 1), (3, 3), (None, 0), (4, 4)]:
        p = model.distribution([c for c in context if c is not None])
        for w in range(V):
            expected = (grams[(*context, w)] + k) / (contexts[context] + k * V)
            assert p[w] == pytest.approx(expected, rel=1e-12)


def _kneser_ney_by_hand(ids, V, n, D, context, w):
    """Interpolated Kneser-Ney written from its definition, with tuples and dicts."""
    padded = [None] * (n - 1) + list(ids)
    grams = [tuple(padded[t:t + n]) for t in range(len(ids))]

    def counts(m):
        if m == n:
            return Counter(g[n - m:] for g in grams)
        # continuation counts: distinct left neighbours of each m-gram
        extended = {g[n - m - 1:] for g in grams}
        return Counter(g[1:] for g in extended)

    def p(m, history, w):
        if m == 0:
            return 1 / V
        c = counts(m)
        u = tuple(history[len(history) - (m - 1):]) if m > 1 else ()
        total = sum(value for gram, value in c.items() if gram[:-1] == u)
        lower = p(m - 1, history, w)
        if total == 0:
            return lower
        types = sum(1 for gram in c if gram[:-1] == u)
        return max(c[(*u, w)] - D, 0) / total + D * types / total * lower

    history = [None] * (n - 1) + list(context)
    return p(n, history[len(history) - (n - 1):] if n > 1 else [], w)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_kneser_ney_against_its_definition(order):
    ids = _small_text(4, size=300, symbols=4)
    V, D = 5, 0.75
    model = tx.NGramModel(order, V, smoothing="kneser_ney", discount=D).fit(ids)
    for context in ([], [1], [2, 0], [3, 3, 1], [4, 4]):
        p = model.distribution(context)
        for w in range(V):
            assert p[w] == pytest.approx(_kneser_ney_by_hand(ids, V, order, D, context, w),
                                         rel=1e-12), (context, w)


def test_with_settings_equals_fitting_again():
    whole = _small_text(5, size=3400)
    ids, test = whole[:3000], whole[3000:]
    big = tx.NGramModel(5, 6, smoothing="kneser_ney").fit(ids)
    for order in (1, 3, 5):
        for smoothing, value in (("kneser_ney", 0.6), ("add_k", 0.1)):
            fresh = tx.NGramModel(order, 6, smoothing=smoothing, k=value,
                                  discount=value).fit(ids)
            shared = big.with_settings(order=order, smoothing=smoothing, k=value,
                                       discount=value)
            np.testing.assert_allclose(shared.log2_probabilities(test),
                                       fresh.log2_probabilities(test), rtol=1e-13)


def test_tune_ngram_scores_every_setting_and_keeps_the_best():
    whole = _small_text(7, size=3600)  # one Markov chain: training and validation parts
    ids, validation = whole[:3000], whole[3000:]
    tuning = tx.tune_ngram(ids, validation, 6, smoothing="kneser_ney", orders=(1, 2, 4),
                           values=(0.5, 0.9))
    for i, order in enumerate(tuning.orders):
        for j, value in enumerate(tuning.values):
            model = tx.NGramModel(order, 6, discount=value).fit(ids)
            bits = tx.bits_per_character(model.log2_probabilities(validation[1:],
                                                                  validation[:1]))
            assert tuning.validation_bits[i, j] == pytest.approx(bits, rel=1e-12)
    i, j = np.unravel_index(np.argmin(tuning.validation_bits), tuning.validation_bits.shape)
    assert (tuning.best_order, tuning.best_value) == (tuning.orders[i], tuning.values[j])
    assert tuning.model.order == tuning.best_order
    assert tuning.best_order > 1, "a Markov chain is predicted better with context"


def test_ngram_rejects_bad_settings():
    with pytest.raises(ValueError, match="too high"):
        tx.NGramModel(12, 98)
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\]"):
        tx.NGramModel(2, 5, discount=1.5)
    with pytest.raises(ValueError, match="smoothing"):
        tx.NGramModel(2, 5, smoothing="good_turing")
    with pytest.raises(RuntimeError, match="fit"):
        tx.NGramModel(2, 5).distribution([])
    with pytest.raises(ValueError, match=r"ids must hold ids in 0 \.\. 4"):
        tx.NGramModel(2, 5).fit(np.array([0, 5]))
    with pytest.raises(ValueError, match="at most the fitted order"):
        tx.NGramModel(2, 5).fit(np.array([0, 1, 2])).with_settings(order=3)


# Scores -----------------------------------------------------------------------------------


def test_bits_and_perplexity_of_a_uniform_model():
    V = 98
    bits = tx.bits_per_character(np.full(1000, -np.log2(V)))
    assert bits == pytest.approx(np.log2(V))
    assert tx.perplexity(bits) == pytest.approx(V)
    # Add-k with an enormous k forgets the counts: it becomes uniform.
    model = tx.NGramModel(2, V, smoothing="add_k", k=1e12).fit(np.arange(50) % V)
    scored = model.log2_probabilities(np.arange(200) % V)
    assert tx.bits_per_character(scored) == pytest.approx(np.log2(V), rel=1e-9)


def test_scores_reject_bad_input():
    with pytest.raises(ValueError, match="at most 0"):
        tx.bits_per_character([-1.0, 0.5])
    with pytest.raises(ValueError, match="empty"):
        tx.bits_per_character([])
    with pytest.raises(ValueError, match="bits must be >= 0"):
        tx.perplexity(-0.1)


# Batches ----------------------------------------------------------------------------------


def test_stream_segments_continue_each_other():
    ids = np.arange(1000) * 7 % 97
    segments = tx.stream_segments(ids, 4, 10, offset=3)
    S = len(segments)
    assert segments.shape == (S, 11, 4) and segments.dtype == np.int64
    np.testing.assert_array_equal(segments[:-1, -1], segments[1:, 0])
    row = (1000 - 3 - 1) // 4
    assert S == row // 10
    for b in range(4):
        stream = np.concatenate([segments[0, :, b]] + [segments[s, 1:, b] for s in range(1, S)])
        start = 3 + b * row
        np.testing.assert_array_equal(stream, ids[start:start + S * 10 + 1])


def test_stream_segments_reject_a_short_text():
    with pytest.raises(ValueError, match="too few"):
        tx.stream_segments(np.arange(20), 4, 10)
    with pytest.raises(TypeError, match="integer ids"):
        tx.stream_segments(np.ones(100), 2, 5)


def test_padding_and_masks():
    padded, lengths = tx.pad_sequences([np.array([1, 2, 3]), np.array([4]), np.array([5, 6])],
                                       padding_id=9)
    np.testing.assert_array_equal(padded, [[1, 4, 5], [2, 9, 6], [3, 9, 9]])
    np.testing.assert_array_equal(lengths, [3, 1, 2])
    mask = tx.length_mask(lengths)
    np.testing.assert_array_equal(mask, padded != 9)
    assert tx.length_mask(lengths, 5).shape == (5, 3)
    with pytest.raises(ValueError, match="positive"):
        tx.length_mask(np.array([0, 2]))
    with pytest.raises(ValueError, match=r"sequences\[1\]"):
        tx.pad_sequences([np.array([1]), np.array([], dtype=int)])


# Sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.25, 0.5, 1.0, 2.0, 7.0])
def test_sampling_distribution_is_softmax_of_scaled_logits(temperature):
    logits = np.random.default_rng(0).normal(0, 3, size=(4, 11))
    p = tx.next_char_probabilities(logits, temperature)
    np.testing.assert_allclose(p, softmax(logits / temperature, axis=-1), rtol=1e-14)
    assert p.dtype == np.float64


def test_top_k_keeps_the_k_largest_and_renormalises():
    logits = np.array([[2.0, -1.0, 0.5, 3.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
    p = tx.next_char_probabilities(logits, 0.5, top_k=2)
    assert np.all(p[0, [1, 2, 4]] == 0) and np.all(p[1, :3] == 0)
    np.testing.assert_allclose(p[0, [0, 3]], softmax(logits[0, [0, 3]] / 0.5), rtol=1e-14)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(tx.next_char_probabilities(logits, 1.0, top_k=5),
                                  tx.next_char_probabilities(logits, 1.0))


def test_sampling_distribution_is_stable_for_large_logits():
    p = tx.next_char_probabilities(np.array([1000.0, 999.0, -1000.0]), 0.01)
    assert np.all(np.isfinite(p)) and p[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        tx.next_char_probabilities(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="top_k must be at most V = 3"):
        tx.next_char_probabilities(np.zeros(3), 1.0, top_k=4)


# Code features ----------------------------------------------------------------------------


def test_code_features_of_a_small_program():
    source = ('def f(a, b=(1, 2)):  # (x\n'
              '    return "(" + g([a,\n'
              '        b])\n')
    features = tx.code_features(source)
    assert all(v.shape == (len(source),) for v in features.values())
    line2 = source.index("return")
    quote = source.index('"(')
    assert features["in string"][quote:quote + 3].tolist() == [1, 1, 1]
    assert features["in string"].sum() == 3
    hash_at = source.index("#")
    assert features["in comment"][hash_at:hash_at + 4].tolist() == [1, 1, 1, 1]
    assert features["in comment"].sum() == len("# (x")
    depth = features["bracket depth"]
    assert depth[source.index("(")] == 1 and depth[source.index("(1")] == 2
    assert depth[source.index("2)") + 1] == 1 and depth[source.index("):")] == 0
    assert depth[quote + 1] == 0, "a bracket inside a string does not count"
    assert depth[hash_at + 2] == 0, "a bracket inside a comment does not count"
    assert depth[source.index("[a")] == 2 and depth[source.index("b]")] == 2
    assert depth[-1] == 0
    assert features["indentation"][line2] == 1 and features["indentation"][0] == 0
    assert features["indentation"][source.index("b]")] == 2
    assert features["column"][line2] == 4 and features["column"][0] == 0
    assert features["column"][source.index("\n")] == source.index("\n")


def test_code_features_of_the_corpus_agree_with_simple_counts(corpus):
    source = corpus.file_text("textwrap.py")
    features = tx.code_features(source)
    assert features["bracket depth"].min() == 0 and features["bracket depth"][-1] == 0
    assert 0.2 < features["in string"].mean() < 0.8  # a module with long docstrings
    lines = source.splitlines(keepends=True)
    assert features["column"].max() == max(len(line) for line in lines) - 1
    with pytest.raises(ValueError, match="valid Python"):
        tx.code_features("def f(:\n  '''\n")


def test_the_wheel_ships_the_corpus(tmp_path):
    """A non-editable install (a wheel, as in Colab) carries the text, manifest and licence."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "lib", source / "lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", "--wheel-dir", str(tmp_path / "wheels"),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheels").glob("throughtime-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in ("python_source.txt", "python_source.json", "PSF_LICENSE.txt", "README.md"):
            assert archive.read(f"throughtime/data/{name}") == (
                tx.DATA_DIRECTORY / name).read_bytes(), name
