"""throughtime.text_views: the sampling explorer's callback and the figures of text."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy.special import softmax  # noqa: E402

from throughtime import language_model as lm  # noqa: E402
from throughtime import text as tx  # noqa: E402
from throughtime import text_views  # noqa: E402


@pytest.fixture
def model_and_vocabulary():
    vocabulary = tx.Vocabulary.from_text("def f(x):\n    return x + 1\n")
    model = lm.CharModel("GRU", len(vocabulary), 4, 6, seed=3)
    return model, vocabulary


def test_explore_sampling_shows_the_distribution_it_samples_from(model_and_vocabulary):
    model, vocabulary = model_and_vocabulary
    shown = text_views.explore_sampling(model, vocabulary, "def ", temperature=0.7, length=50,
                                        seed=4)
    with torch.no_grad():
        logits = model(torch.as_tensor(vocabulary.encode("def "))[:, None])[0][-1, 0].double()
    logits[0] = -math.inf  # the unknown symbol is excluded
    expected = softmax(logits.numpy() / 0.7)
    np.testing.assert_allclose(shown["probabilities"], expected, rtol=1e-6, atol=1e-12)
    assert shown["probabilities"][0] == 0
    assert shown["sample"] == lm.generate(model, vocabulary, "def ", 50, temperature=0.7,
                                          seed=4)[0]
    top = text_views.explore_sampling(model, vocabulary, "def ", top_k=2, length=30, seed=4)
    assert np.count_nonzero(top["probabilities"]) == 2
    assert set(top["sample"]) <= {vocabulary.symbols[i]
                                  for i in np.flatnonzero(top["probabilities"])} | set(
        vocabulary.symbols)
    with pytest.raises(ValueError, match="prefix"):
        text_views.explore_sampling(model, vocabulary, "")


def test_draw_activation_text_places_every_character(model_and_vocabulary):
    text = "ab\ncde\n"
    values = np.array([1.0, -1.0, 0.5, 0.0, 2.0, -2.0, 0.25])
    fig, ax = plt.subplots()
    image = text_views.draw_activation_text(ax, text, values)
    grid = image.get_array()
    assert grid.shape == (2, 4)
    np.testing.assert_array_equal(grid[0, :3], [1.0, -1.0, 0.5])
    np.testing.assert_array_equal(grid[1], [0.0, 2.0, -2.0, 0.25])
    assert np.ma.is_masked(grid[0, 3]) or np.isnan(grid[0, 3])
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["a", "b", "\u21b5", "c", "d", "e", "\u21b5"]
    assert image.get_clim() == (-2.0, 2.0)
    with pytest.raises(ValueError, match="values"):
        text_views.draw_activation_text(ax, text, values[:3])
    plt.close(fig)


def test_static_counterpart_and_explorer_build(model_and_vocabulary):
    model, vocabulary = model_and_vocabulary
    fig = text_views.sampling_small_multiples(model, vocabulary, "def ",
                                              temperatures=(0.5, 2.0), length=40)
    assert len(fig.axes) == 4
    bars = [len(ax.patches) for ax in fig.axes[:2]]
    assert bars == [8, 8]
    plt.close(fig)
    box = text_views.sampling_explorer(model, vocabulary)
    assert type(box).__name__ == "VBox"
    assert text_views.printable("\n") == "\u21b5" and text_views.printable("a") == "a"
