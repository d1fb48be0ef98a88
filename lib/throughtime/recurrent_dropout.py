r"""Dropout for recurrent networks: where the masks go, and whether they change over time.

Dropout multiplies activations by a random mask :math:`m` with entries
:math:`m_j = z_j / (1 - p)`, :math:`z_j \sim \text{Bernoulli}(1 - p)`, while training, and
by nothing at evaluation (the scaling keeps the expectation). In a recurrent network there
are two kinds of connections to drop and two ways to draw the masks:

*where*
    ``"between"``: the connections between layers, the inputs :math:`x_t` of the recurrent
    layer and its outputs :math:`h_t` on their way to the next layer (Zaremba, Sutskever &
    Vinyals 2014); ``"recurrent"``: the state :math:`h_{t-1}` where it enters the next
    step's gates, :math:`W_{hh} (m \odot h_{t-1})`. The cell state is never masked.
*when*
    ``"naive"``: a new mask at every time step; ``"variational"``: one mask per sequence,
    the same at every step (Gal & Ghahramani 2016).

- ``DropoutLSTM``: one LSTM layer (``torch_cells.LSTM``'s parameters) with these options. It
  runs ``torch_cells.LSTM`` when no recurrent mask is needed, and a step loop otherwise.
- ``DropoutLanguageModel``: embedding, ``DropoutLSTM``, linear read-out; next-symbol logits.
- ``markov_source``, ``sample_markov``, ``source_cross_entropy``: a random Markov chain of
  known probabilities, so that the best possible loss on held-out text is known exactly.
- ``train_language_model``: train on a small sample of the source (where a network
  over-fits) and record the validation loss over training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import torch_cells
from ._validate import check_choice, check_int, check_real, describe
from .tasks import _generator
from .training import train_steps

__all__ = [
    "PLACEMENTS",
    "MASKS",
    "dropout_mask",
    "DropoutLSTM",
    "DropoutLanguageModel",
    "markov_source",
    "sample_markov",
    "source_cross_entropy",
    "LanguageModelResult",
    "train_language_model",
]

PLACEMENTS = ("none", "between", "recurrent")
"""Where ``DropoutLSTM`` drops: nowhere, between layers (inputs and outputs), or on h_{t-1}."""
MASKS = ("naive", "variational")
"""How masks are drawn: a new one at every step, or one per sequence for all steps."""


def dropout_mask(shape: tuple[int, ...], p: float, *, like: torch.Tensor) -> torch.Tensor:
    """A dropout mask: entries 0 with probability ``p``, else 1 / (1 - p); dtype and device of
    ``like``."""
    p = check_real("p", p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p}")
    keep = torch.rand(shape, dtype=like.dtype, device=like.device) >= p
    return keep.to(like.dtype) / (1.0 - p)


class DropoutLSTM(nn.Module):
    r"""One LSTM layer with dropout between layers or on the recurrent connection.

    .. math::

        \tilde x_t = m^x_t \odot x_t, \quad
        a_t = W_{ih} \tilde x_t + b_{ih} + W_{hh} (m^h_t \odot h_{t-1}) + b_{hh}, \quad
        y_t = m^y_t \odot h_t

    with the gates and states of ``torch_cells.lstm_step`` (order i, f, g, o). With
    ``placement="between"`` the masks :math:`m^x, m^y` are drawn and :math:`m^h = 1`; with
    ``"recurrent"``, :math:`m^h` is drawn and :math:`m^x = m^y = 1`; with ``"none"`` all are 1.
    ``mask="naive"`` draws a new mask at every step t; ``"variational"`` draws one per
    sequence, :math:`m_t = m` for every t. At evaluation (``eval()``) nothing is dropped.

    Parameters
    ----------
    input_size, hidden_size : int
        I and H.
    p : float
        The dropout probability, in [0, 1).
    placement : {"none", "between", "recurrent"}
    mask : {"naive", "variational"}

    The parameters are those of ``self.lstm``, a one-layer ``torch_cells.LSTM`` (names
    ``weight_ih_l0`` ...). Input (T, B, I), output (T, B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, *, p: float = 0.0,
                 placement: str = "none", mask: str = "variational") -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.p = check_real("p", p)
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"p must be in [0, 1), got {p}")
        self.placement = check_choice("placement", placement, PLACEMENTS)
        self.mask = check_choice("mask", mask, MASKS)
        self.lstm = torch_cells.LSTM(input_size, hidden_size)

    def extra_repr(self) -> str:
        return f"p={self.p}, placement={self.placement!r}, mask={self.mask!r}"

    def draw_masks(self, steps: int, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """The masks of one forward pass: ``"input"`` (T, B, I), ``"recurrent"`` and
        ``"output"`` (T, B, H); all ones where nothing is dropped.

        A variational mask is drawn once, (1, B, ·), and repeated over the T steps, so every
        step of a sequence uses the same mask and different sequences use different ones.
        """
        sizes = {"input": self.input_size, "recurrent": self.hidden_size,
                 "output": self.hidden_size}
        dropped = {"none": (), "between": ("input", "output"),
                   "recurrent": ("recurrent",)}[self.placement]
        masks = {}
        for name, size in sizes.items():
            if name in dropped and self.training and self.p > 0:
                rows = steps if self.mask == "naive" else 1
                masks[name] = dropout_mask((rows, batch, size), self.p, like=like).expand(
                    steps, batch, size)
            else:
                masks[name] = torch.ones((), dtype=like.dtype, device=like.device).expand(
                    steps, batch, size)
        return masks

    def forward(self, xs: torch.Tensor,
                masks: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Run the layer: xs (T, B, I) -> outputs (T, B, H).

        ``masks`` (as ``draw_masks`` returns them) replaces the random ones, to check the
        computation by hand; then the step loop runs and applies all three masks. Without
        ``masks``, the step loop runs only when a recurrent mask is in use (training with
        ``placement="recurrent"``), and ``torch_cells.LSTM`` otherwise.
        """
        if not isinstance(xs, torch.Tensor) or xs.dim() != 3 or xs.shape[2] != self.input_size:
            raise ValueError(f"xs must be a (T, B, I) tensor with I = {self.input_size}, got "
                             f"{describe(xs)}")
        steps, batch, _ = xs.shape
        loop = masks is not None or (self.placement == "recurrent" and self.training
                                     and self.p > 0)
        if masks is None:
            masks = self.draw_masks(steps, batch, xs)
        inputs = xs * masks["input"]
        recurrent_mask = masks["recurrent"]
        if not loop:
            outputs, _ = self.lstm(inputs)
        else:
            weights = (self.lstm.weight_ih_l0, self.lstm.weight_hh_l0, self.lstm.bias_ih_l0,
                       self.lstm.bias_hh_l0)
            h = xs.new_zeros(batch, self.hidden_size)
            c = xs.new_zeros(batch, self.hidden_size)
            states = []
            for t in range(steps):
                h, c = torch_cells.lstm_step(inputs[t], recurrent_mask[t] * h, c, *weights)
                states.append(h)
            outputs = torch.stack(states)
        return outputs * masks["output"]


class DropoutLanguageModel(nn.Module):
    r"""Next-symbol logits: an embedding, a ``DropoutLSTM`` and a linear read-out.

    .. math:: \text{logits}_t = W_{out}\, y_t + b_{out}, \qquad
              y_t = \text{DropoutLSTM}(E[x_1], \dots, E[x_t])_t

    Parameters
    ----------
    vocabulary_size : int
        V symbols.
    embedding_size, hidden_size : int
    p, placement, mask
        As for ``DropoutLSTM``.

    Input: symbol ids, int64 (T, B); output: logits (T, B, V).
    """

    def __init__(self, vocabulary_size: int, embedding_size: int, hidden_size: int, *,
                 p: float = 0.0, placement: str = "none", mask: str = "variational") -> None:
        super().__init__()
        vocabulary_size = check_int("vocabulary_size", vocabulary_size, minimum=2)
        self.embedding = nn.Embedding(vocabulary_size, check_int("embedding_size",
                                                                 embedding_size, minimum=1))
        self.rnn = DropoutLSTM(embedding_size, hidden_size, p=p, placement=placement, mask=mask)
        self.readout = nn.Linear(hidden_size, vocabulary_size)

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbol ids (T, B) -> logits (T, B, V)."""
        return self.readout(self.rnn(self.embedding(symbols)))


# --------------------------------------------------------------------------------------
# A source of text whose best possible loss is known
# --------------------------------------------------------------------------------------


def markov_source(symbols: int, order: int, rng: np.random.Generator | int, *,
                  concentration: float = 0.3) -> np.ndarray:
    """A random Markov chain of the given order: the next symbol's probabilities per context.

    Row k of the table is the distribution of the next symbol after the context whose
    symbols (oldest first) are the base-``symbols`` digits of k. Each row is drawn from a
    symmetric Dirichlet distribution with parameter ``concentration`` (below 1: most of the
    probability on a few symbols, so that the source is far from uniform).

    Returns
    -------
    ndarray, shape (symbols ** order, symbols)
    """
    symbols = check_int("symbols", symbols, minimum=2)
    order = check_int("order", order, minimum=1)
    concentration = check_real("concentration", concentration, positive=True)
    return _generator(rng).dirichlet(np.full(symbols, concentration), size=symbols ** order)


def _check_table(table: Any, order: int) -> tuple[np.ndarray, int]:
    order = check_int("order", order, minimum=1)
    if not isinstance(table, np.ndarray) or table.ndim != 2:
        raise ValueError(f"table must be a 2-D array from markov_source, got {describe(table)}")
    symbols = table.shape[1]
    if table.shape[0] != symbols ** order:
        raise ValueError(f"table must have symbols ** order = {symbols}**{order} = "
                         f"{symbols ** order} rows for order={order}, got {table.shape[0]}")
    return table, symbols


def _contexts(sequences: np.ndarray, order: int, symbols: int) -> np.ndarray:
    """The context index of every step t >= order: (T - order, B)."""
    steps = sequences.shape[0]
    index = np.zeros((steps - order, sequences.shape[1]), dtype=np.int64)
    for lag in range(order, 0, -1):
        index = index * symbols + sequences[order - lag:steps - lag]
    return index


def sample_markov(table: np.ndarray, order: int, count: int, length: int,
                  rng: np.random.Generator | int) -> np.ndarray:
    """``count`` sequences of ``length`` symbols from the chain; the first ``order`` uniform.

    Returns
    -------
    ndarray of int64, shape (length, count)
    """
    table, symbols = _check_table(table, order)
    count = check_int("count", count, minimum=1)
    length = check_int("length", length, minimum=order + 1)
    rng = _generator(rng)
    sequences = np.empty((length, count), dtype=np.int64)
    sequences[:order] = rng.integers(0, symbols, size=(order, count))
    cumulative = table.cumsum(axis=1)
    for t in range(order, length):
        context = _contexts(sequences[t - order:t + 1], order, symbols)[0]
        uniform = rng.random((count, 1))
        sequences[t] = np.minimum((uniform > cumulative[context]).sum(axis=1), symbols - 1)
    return sequences


def source_cross_entropy(table: np.ndarray, order: int, sequences: np.ndarray) -> float:
    r"""The source's own loss on ``sequences``: the mean of :math:`-\ln P(x_t \mid
    x_{t-\text{order}} \dots x_{t-1})` over the steps t >= ``order`` (nats per symbol).

    No model can do better in expectation; it is the floor of a trained network's
    validation loss on the same steps.
    """
    table, symbols = _check_table(table, order)
    if not isinstance(sequences, np.ndarray) or sequences.ndim != 2 \
            or sequences.shape[0] <= order:
        raise ValueError(f"sequences must be a (T, B) array of symbol ids with T > order = "
                         f"{order}, got {describe(sequences)}")
    context = _contexts(sequences, order, symbols)
    return float(-np.log(table[context, sequences[order:]]).mean())


# --------------------------------------------------------------------------------------
# The experiment: over-fit a small sample, with and without dropout
# --------------------------------------------------------------------------------------


@dataclass
class LanguageModelResult:
    """One run of ``train_language_model``; losses in nats per symbol.

    Attributes
    ----------
    checkpoints : list of int
        Steps after which the validation loss was measured.
    validation : ndarray
        The validation loss at each checkpoint.
    best : float
        The lowest validation loss (what early stopping would keep).
    final_train : float
        The training loss after the last step, measured without dropout.
    floor : float
        ``source_cross_entropy`` on the validation sequences.
    seconds : float
        CPU time of this process spent training.
    """

    checkpoints: list[int]
    validation: np.ndarray
    best: float
    final_train: float
    floor: float
    seconds: float


def _next_symbol_loss(order: int):
    def loss(logits: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the next symbol, on the steps whose context is complete."""
        predicted = logits[order - 1:-1]
        return nn.functional.cross_entropy(predicted.reshape(-1, predicted.shape[-1]),
                                           symbols[order:].reshape(-1))
    return loss


def train_language_model(*, placement: str, mask: str = "variational", p: float = 0.3,
                         seed: int = 0, steps: int = 80, train_size: int = 64,
                         length: int = 16, hidden_size: int = 64, embedding_size: int = 16,
                         lr: float = 0.01, symbols: int = 6, order: int = 2,
                         source_seed: int = 100, validation_size: int = 512,
                         evaluate_every: int = 5,
                         device: torch.device | str = "cpu") -> LanguageModelResult:
    """Train a ``DropoutLanguageModel`` on a small sample of a Markov source.

    The source is ``markov_source(symbols, order, source_seed)``; the training set is
    ``train_size`` sequences of ``length`` symbols (drawn with seed ``[source_seed, 1]``), the
    validation set ``validation_size`` more (seed ``[source_seed, 2]``), the same for every run.
    Each step is one Adam update on the whole training set (learning rate ``lr``, gradient
    clipped to norm 1); the validation loss (no dropout) is measured every
    ``evaluate_every`` steps. ``torch.manual_seed(seed)`` sets the initial weights and the
    dropout masks.
    """
    table = markov_source(symbols, order, source_seed)
    train = torch.from_numpy(sample_markov(table, order, train_size, length,
                                                   np.random.default_rng([source_seed, 1])))
    validation_array = sample_markov(table, order, validation_size, length,
                                     np.random.default_rng([source_seed, 2]))
    validation = torch.from_numpy(validation_array)
    torch.manual_seed(check_int("seed", seed, minimum=0))
    model = DropoutLanguageModel(symbols, embedding_size, hidden_size, p=p, placement=placement,
                                 mask=mask).to(device)
    loss_fn = _next_symbol_loss(order)
    start = time.process_time()
    history = train_steps(model, lambda: (train, train), steps=steps, lr=lr, max_norm=1.0,
                          loss_fn=loss_fn, test=(validation, validation),
                          checkpoints=range(evaluate_every, steps + 1, evaluate_every))
    seconds = time.process_time() - start
    if history.diverged_at is not None:
        raise FloatingPointError(f"training diverged at step {history.diverged_at}")
    model.eval()
    with torch.no_grad():
        final_train = float(loss_fn(model(train.to(device)), train.to(device)))
    return LanguageModelResult(checkpoints=list(history.checkpoints),
                               validation=history.test_losses,
                               best=float(history.test_losses.min()), final_train=final_train,
                               floor=source_cross_entropy(table, order, validation_array),
                               seconds=seconds)
