r"""Sequence to sequence: an encoder, a decoder, additive attention, greedy and beam decoding.

The task is to reverse a string of digits: "3871" in, "1783" out. The reader can check every
answer by eye, the output's length is the input's, and the whole input must reach the
decoder, which is what makes the fixed-size context measurable.

Tokens: the digits 0-9 are ids 0-9; ``PAD`` (10) fills sequences up to the batch's longest,
``START`` (11) is the decoder's first input and ``END`` (12) the decoder's last output.

- ``reversal_batch``, ``reversal_test_set``: batches of random digit strings of random or
  given lengths, padded, with the decoder's inputs and targets for teacher forcing.
- ``Encoder``: embedding and a ``torch_cells.LSTM`` that reads a padded batch packed
  (``pack_padded_sequence``), so each sequence's final state is taken at its own last digit.
- ``AdditiveAttention``: Bahdanau, Cho & Bengio's (2015) score
  :math:`e_{j} = v^\top \tanh(W_q s + b + W_k h_j)`, weights
  :math:`\alpha = \mathrm{softmax}(e)` over the real (unpadded) positions, context
  :math:`\sum_j \alpha_j h_j`.
- ``Seq2Seq``: the encoder and an LSTM decoder that starts from the encoder's final state,
  with or without attention. Without attention, that state is all the decoder knows of the
  input (the *context*, of fixed size H, whatever the input's length). With attention the
  decoder also reads, at every step, a context computed from all the encoder's states and
  its own previous state, and feeds it into its recurrence and its read-out, as Bahdanau et
  al. do.
- ``sequence_loss``: the teacher-forced cross-entropy; ``sequence_log_prob``: the model's
  log-probability of a given output.
- ``greedy_decode``, ``beam_step``, ``beam_search``: decoding without teacher.
- ``exact_match``, ``accuracy_by_length``, ``position_accuracy``: how often the output is
  right, by length and by position.
- ``train_reverser``: one training run (model, seed, budget) and ``decode_report`` for the
  chapter's explorer.

Shapes are time-major: a source is (T, B), decoder inputs and targets (U, B), logits
(U, B, V) with V = ``VOCABULARY_SIZE``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import torch_cells
from ._validate import check_int, check_real, describe
from .tasks import _generator

__all__ = [
    "PAD",
    "START",
    "END",
    "VOCABULARY_SIZE",
    "TOKEN_TEXT",
    "ReversalBatch",
    "reversal_batch",
    "reversal_test_set",
    "source_from_text",
    "tokens_to_text",
    "Encoder",
    "AdditiveAttention",
    "Seq2Seq",
    "parameter_count",
    "sequence_loss",
    "sequence_log_prob",
    "greedy_decode",
    "beam_step",
    "BeamResult",
    "beam_search",
    "exact_match",
    "accuracy_by_length",
    "position_accuracy",
    "ReverserResult",
    "train_reverser",
    "decode_report",
]

PAD, START, END = 10, 11, 12
VOCABULARY_SIZE = 13
TOKEN_TEXT = tuple("0123456789") + ("·", "^", "$")
"""How each token id is printed: the digits, then PAD, START and END."""


# --------------------------------------------------------------------------------------
# The task: reverse a digit string
# --------------------------------------------------------------------------------------


@dataclass
class ReversalBatch:
    """A padded batch of the reversal task (time-major, int64).

    Attributes
    ----------
    source : Tensor, shape (T, B)
        The digits, then ``PAD`` up to T, the longest length in the batch.
    lengths : Tensor, shape (B,)
        The number of digits of each source.
    decoder_input : Tensor, shape (T + 1, B)
        ``START`` and the reversed digits (teacher forcing: the true previous output).
    target : Tensor, shape (T + 1, B)
        The reversed digits and ``END``; ``PAD`` after it.
    """

    source: Tensor
    lengths: Tensor
    decoder_input: Tensor
    target: Tensor

    def to(self, device: torch.device | str) -> ReversalBatch:
        """The batch on ``device`` (``lengths`` stay on the CPU, where packing wants them)."""
        return ReversalBatch(self.source.to(device), self.lengths, self.decoder_input.to(device),
                             self.target.to(device))


def _batch_from_digits(strings: list[np.ndarray]) -> ReversalBatch:
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    longest, count = int(lengths.max()), len(strings)
    source = np.full((longest, count), PAD, dtype=np.int64)
    decoder_input = np.full((longest + 1, count), PAD, dtype=np.int64)
    target = np.full((longest + 1, count), PAD, dtype=np.int64)
    for b, digits in enumerate(strings):
        n = len(digits)
        source[:n, b] = digits
        decoder_input[0, b] = START
        decoder_input[1:n + 1, b] = digits[::-1]
        target[:n, b] = digits[::-1]
        target[n, b] = END
    return ReversalBatch(*(torch.from_numpy(a) for a in (source, lengths, decoder_input, target)))


def reversal_batch(batch_size: int, rng: np.random.Generator | int, *, max_length: int,
                   min_length: int = 1) -> ReversalBatch:
    """``batch_size`` random digit strings, lengths uniform in ``min_length`` .. ``max_length``.

    Example: the source "3871" has ``decoder_input`` "^1783" and ``target`` "1783$".
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    min_length = check_int("min_length", min_length, minimum=1)
    max_length = check_int("max_length", max_length, minimum=min_length)
    rng = _generator(rng)
    lengths = rng.integers(min_length, max_length + 1, size=batch_size)
    return _batch_from_digits([rng.integers(0, 10, size=n) for n in lengths])


def reversal_test_set(lengths: range | list[int], per_length: int,
                      seed: int = 2024) -> dict[int, ReversalBatch]:
    """A fixed test set: ``per_length`` strings of every length in ``lengths``, one batch each."""
    per_length = check_int("per_length", per_length, minimum=1)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    return {int(n): _batch_from_digits([rng.integers(0, 10, size=int(n))
                                        for _ in range(per_length)]) for n in lengths}


def source_from_text(text: str) -> tuple[Tensor, Tensor]:
    """A one-sequence source from a string of digits: (T, 1) ids and lengths (1,)."""
    if not isinstance(text, str) or not text or not text.isdigit() or not text.isascii():
        raise ValueError(f"text must be a non-empty string of the digits 0-9, got {text!r}")
    digits = torch.tensor([int(c) for c in text], dtype=torch.int64)
    return digits.unsqueeze(1), torch.tensor([len(text)])


def tokens_to_text(tokens: Any) -> str:
    """The text of one output (1-D token ids), up to and including the first ``END``."""
    ids = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
    if END in ids:
        ids = ids[:ids.index(END) + 1]
    return "".join(TOKEN_TEXT[i] for i in ids)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """Embedding and ``torch_cells.LSTM`` over a padded source, packed by length.

    ``forward(source (T, B), lengths (B,))`` returns the states (T, B, H), zero at padded
    steps, and ``(h_n, c_n)``, each (1, B, H), taken at each sequence's last digit.
    """

    def __init__(self, hidden_size: int, embedding_size: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCABULARY_SIZE, embedding_size)
        self.rnn = torch_cells.LSTM(embedding_size, hidden_size)

    def forward(self, source: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        packed = pack_padded_sequence(self.embedding(source), lengths.cpu(), enforce_sorted=False)
        outputs, final = self.rnn(packed)
        states, _ = pad_packed_sequence(outputs, total_length=source.shape[0])
        return states, final


class AdditiveAttention(nn.Module):
    r"""Additive attention (Bahdanau, Cho & Bengio 2015).

    .. math::

        e_j = v^\top \tanh(W_q s + b + W_k h_j), \qquad
        \alpha_j = \frac{\exp e_j}{\sum_{k \text{ real}} \exp e_k}, \qquad
        \text{context} = \sum_j \alpha_j h_j

    over the real positions j of each sequence (padded ones get weight 0). Parameters:
    ``query`` (:math:`W_q`, (A, Q), and b), ``key`` (:math:`W_k`, (A, K)), ``score``
    (:math:`v`, (1, A)).
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, attention_size)
        self.key = nn.Linear(key_size, attention_size, bias=False)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor,
                mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, Q), keys = ``self.key(values)`` (T, B, A), values (T, B, K), mask (T, B)
        True at real positions -> context (B, K), weights (T, B)."""
        energies = self.score(torch.tanh(keys + self.query(query))).squeeze(-1)
        weights = torch.softmax(energies.masked_fill(~mask, -math.inf), dim=0)
        return (weights.unsqueeze(-1) * values).sum(0), weights


class Seq2Seq(nn.Module):
    r"""An encoder-decoder for the reversal task, with or without additive attention.

    Both decoders are LSTMs that start from the encoder's final state :math:`(h_n, c_n)` and
    read the previous output token :math:`y_{t-1}` (``START`` first). Without attention:

    .. math:: s_t = \mathrm{LSTM}(E[y_{t-1}], s_{t-1}), \qquad
              \text{logits}_t = W_{out} s_t + b_{out}.

    With attention, a context :math:`a_t` over the encoder's states :math:`h_1 \dots h_T`
    (``AdditiveAttention`` queried with :math:`s_{t-1}`) enters the recurrence and the
    read-out:

    .. math:: s_t = \mathrm{LSTM}([E[y_{t-1}]; a_t], s_{t-1}), \qquad
              \text{logits}_t = W_{out} [s_t; a_t] + b_{out}.

    ``forward(source, lengths, decoder_input)`` gives the teacher-forced logits (U, B, V).
    Decoding uses ``begin`` (the encoder's pass, returning the decoder's state) and ``step``
    (one token for each sequence -> logits and the next state). The state is a dict of
    tensors whose axis 1 is the batch, so that beam search can reorder it.

    Parameters
    ----------
    hidden_size : int
        H of the encoder and the decoder.
    attention : bool
    embedding_size : int
        E, for the encoder's and the decoder's embeddings (one each).
    attention_size : int, optional
        A, H by default.

    """

    def __init__(self, hidden_size: int, *, attention: bool, embedding_size: int = 16,
                 attention_size: int | None = None) -> None:
        super().__init__()
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        if not isinstance(attention, bool):
            raise TypeError(f"attention must be True or False, got {describe(attention)}")
        self.attention_used = attention
        self.encoder = Encoder(hidden_size, embedding_size)
        self.embedding = nn.Embedding(VOCABULARY_SIZE, embedding_size)
        if attention:
            size = hidden_size if attention_size is None else check_int(
                "attention_size", attention_size, minimum=1)
            self.attention = AdditiveAttention(hidden_size, hidden_size, size)
            self.cell = torch_cells.LSTMCell(embedding_size + hidden_size, hidden_size)
            self.readout = nn.Linear(2 * hidden_size, VOCABULARY_SIZE)
        else:
            self.rnn = torch_cells.LSTM(embedding_size, hidden_size)
            self.readout = nn.Linear(hidden_size, VOCABULARY_SIZE)

    def begin(self, source: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """Encode ``source``; the decoder's first state (every entry has the batch on axis 1)."""
        states, (h, c) = self.encoder(source, lengths)
        state = {"h": h, "c": c}
        if self.attention_used:
            steps = torch.arange(source.shape[0], device=source.device).unsqueeze(1)
            state |= {"memory": states, "keys": self.attention.key(states),
                      "mask": steps < lengths.to(source.device).unsqueeze(0)}
        return state

    def step(self, tokens: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """One decoder step: tokens (B,) -> logits (B, V) and the next state.

        With attention the next state also holds ``"weights"`` (T, B), the attention weights
        of this step.
        """
        embedded = self.embedding(tokens)
        if not self.attention_used:
            output, (h, c) = self.rnn(embedded.unsqueeze(0), (state["h"], state["c"]))
            return self.readout(output[0]), {"h": h, "c": c}
        context, weights = self.attention(state["h"][0], state["keys"], state["memory"],
                                          state["mask"])
        h, c = self.cell(torch.cat([embedded, context], dim=-1), (state["h"][0], state["c"][0]))
        logits = self.readout(torch.cat([h, context], dim=-1))
        return logits, state | {"h": h.unsqueeze(0), "c": c.unsqueeze(0), "weights": weights}

    def forward(self, source: Tensor, lengths: Tensor, decoder_input: Tensor, *,
                return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Teacher-forced logits (U, B, V) for ``decoder_input`` (U, B); with
        ``return_weights`` (attention only) also the weights (U, T, B)."""
        state = self.begin(source, lengths)
        if not self.attention_used:
            if return_weights:
                raise ValueError("return_weights needs a model with attention")
            outputs, _ = self.rnn(self.embedding(decoder_input), (state["h"], state["c"]))
            return self.readout(outputs)
        logits, weights = [], []
        for tokens in decoder_input:
            step_logits, state = self.step(tokens, state)
            logits.append(step_logits)
            weights.append(state["weights"])
        logits = torch.stack(logits)
        return (logits, torch.stack(weights)) if return_weights else logits


def parameter_count(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------
# Losses and scores
# --------------------------------------------------------------------------------------


def sequence_loss(logits: Tensor, target: Tensor) -> Tensor:
    r"""Teacher-forced cross-entropy, the mean of :math:`-\ln p(y_t \mid y_{<t}, x)` over the
    target tokens that are not ``PAD``: logits (U, B, V), target (U, B)."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                       ignore_index=PAD)


def _shifted(outputs: Tensor) -> Tensor:
    """The decoder inputs that produce ``outputs`` (U, B): ``START`` then outputs[:-1], with
    ``END`` fed as ``PAD`` (nothing is scored after it)."""
    previous = outputs[:-1].masked_fill(outputs[:-1] == END, PAD)
    return torch.cat([torch.full_like(outputs[:1], START), previous])


@torch.no_grad()
def sequence_log_prob(model: Seq2Seq, source: Tensor, lengths: Tensor,
                      outputs: Tensor) -> Tensor:
    r"""The model's :math:`\ln p(y_1 \dots y_U \mid x)` of each output (U, B), summed over its
    tokens up to and including its first ``END`` (what follows it is not scored); returns
    (B,). The scores of ``greedy_decode`` and ``beam_search`` are these numbers."""
    was_training = model.training
    model.eval()
    log_probs = torch.log_softmax(model(source, lengths, _shifted(outputs)), dim=-1)
    model.train(was_training)
    picked = log_probs.gather(2, outputs.unsqueeze(-1)).squeeze(-1)
    ended = (outputs == END).long()
    scored = torch.cumsum(ended, 0) - ended == 0  # no END before this token
    return (picked * scored).sum(0)


# --------------------------------------------------------------------------------------
# Decoding: greedy and beam search
# --------------------------------------------------------------------------------------


def _continue_finished(log_probs: Tensor, finished: Tensor) -> Tensor:
    """A finished hypothesis can only add ``PAD``, at no cost: its score stays the same."""
    frozen = torch.full_like(log_probs, -math.inf)
    frozen[..., PAD] = 0.0
    return torch.where(finished.unsqueeze(-1), frozen, log_probs)


@torch.no_grad()
def greedy_decode(model: Seq2Seq, source: Tensor, lengths: Tensor,
                  max_length: int) -> tuple[Tensor, Tensor]:
    """Feed back the most likely token at every step, until ``END`` or ``max_length`` tokens.

    Returns
    -------
    tokens : Tensor of int64, shape (max_length, B)
        ``PAD`` after each sequence's ``END``.
    scores : Tensor, shape (B,)
        The log-probability of each output (up to and including its ``END``).
    """
    max_length = check_int("max_length", max_length, minimum=1)
    was_training = model.training
    model.eval()
    state = model.begin(source, lengths)
    batch = source.shape[1]
    token = torch.full((batch,), START, dtype=torch.int64, device=source.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=source.device)
    scores = torch.zeros(batch, device=source.device)
    tokens = []
    for _ in range(max_length):
        logits, state = model.step(token, state)
        log_probs = _continue_finished(torch.log_softmax(logits, dim=-1), finished)
        best, token = log_probs.max(dim=-1)
        scores = scores + best
        finished = finished | (token == END)
        tokens.append(token)
        if finished.all():
            break
    model.train(was_training)
    tokens = torch.stack(tokens)
    padding = torch.full((max_length - len(tokens), batch), PAD, dtype=torch.int64,
                         device=source.device)
    return torch.cat([tokens, padding]), scores


def beam_step(scores: np.ndarray, log_probs: np.ndarray,
              beam_width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""One step of beam search for one input: keep the ``beam_width`` best extensions.

    Every hypothesis k (score :math:`S_k = \ln p(y_1 \dots y_t)`) extended by every token v
    is a candidate with score :math:`S_k + \ln p(v \mid y_1 \dots y_t)`; the step keeps the
    ``beam_width`` candidates with the highest scores, over all hypotheses and tokens
    together (ties: the lower index k V + v first).

    Parameters
    ----------
    scores : ndarray, shape (K,)
        The scores of the K current hypotheses.
    log_probs : ndarray, shape (K, V)
        ``log_probs[k, v]``: the log-probability of token v after hypothesis k.
    beam_width : int
        How many candidates to keep, at most K V.

    Returns
    -------
    new_scores : ndarray, shape (beam_width,)
        The kept candidates' scores, best first.
    parents : ndarray of int64, shape (beam_width,)
        The hypothesis k each kept candidate extends.
    tokens : ndarray of int64, shape (beam_width,)
        The token v it adds.
    """
    if not isinstance(scores, np.ndarray) or scores.ndim != 1:
        raise ValueError(f"scores must be a 1-D array (K,), got {describe(scores)}")
    if not isinstance(log_probs, np.ndarray) or log_probs.ndim != 2 \
            or log_probs.shape[0] != scores.shape[0]:
        raise ValueError(f"log_probs must be a 2-D array (K, V) with K = {scores.shape[0]}, "
                         f"got {describe(log_probs)}")
    beam_width = check_int("beam_width", beam_width, minimum=1)
    vocabulary = log_probs.shape[1]
    if beam_width > log_probs.size:
        raise ValueError(f"beam_width must be at most K V = {log_probs.size}, got {beam_width}")
    candidates = (scores[:, None] + log_probs).ravel()
    best = np.argsort(-candidates, kind="stable")[:beam_width]
    return candidates[best], best // vocabulary, best % vocabulary


@dataclass
class BeamResult:
    """What ``beam_search`` found.

    Attributes
    ----------
    tokens : Tensor of int64, shape (max_length, B)
        The best output of each input (``PAD`` after its ``END``).
    scores : Tensor, shape (B,)
        Its log-probability.
    beams : Tensor of int64, shape (max_length, B, K)
        All K final hypotheses of each input, best first.
    beam_scores : Tensor, shape (B, K)
        Their log-probabilities.
    """

    tokens: Tensor
    scores: Tensor
    beams: Tensor
    beam_scores: Tensor


@torch.no_grad()
def beam_search(model: Seq2Seq, source: Tensor, lengths: Tensor, *, beam_width: int,
                max_length: int) -> BeamResult:
    """Beam search for every input of a batch at once (``beam_step`` on B inputs in parallel).

    Each input starts with one hypothesis, ``START``. At every step, every live hypothesis is
    extended by every token, the ``beam_width`` best candidates of each input are kept, and
    the decoder's states are reordered to follow their parents. A hypothesis that has
    produced ``END`` is finished: it stays in the beam with its score and competes with the
    others until the end. The search stops when every kept hypothesis is finished or after
    ``max_length`` tokens; the output is the hypothesis with the highest log-probability
    (no length normalisation). With ``beam_width=1`` it is greedy decoding.
    """
    beam_width = check_int("beam_width", beam_width, minimum=1)
    max_length = check_int("max_length", max_length, minimum=1)
    was_training = model.training
    model.eval()
    batch, device = source.shape[1], source.device
    state = model.begin(source, lengths)
    expand = torch.arange(batch, device=device).repeat_interleave(beam_width)
    state = {name: value.index_select(1, expand) for name, value in state.items()}
    scores = torch.full((batch, beam_width), -math.inf, device=device)
    scores[:, 0] = 0.0  # one live hypothesis per input at the start
    finished = torch.zeros(batch, beam_width, dtype=torch.bool, device=device)
    history = torch.empty(0, batch, beam_width, dtype=torch.int64, device=device)
    token = torch.full((batch * beam_width,), START, dtype=torch.int64, device=device)
    rows = torch.arange(batch, device=device).unsqueeze(1)
    for _ in range(max_length):
        logits, state = model.step(token, state)
        log_probs = torch.log_softmax(logits, dim=-1).view(batch, beam_width, -1)
        log_probs = _continue_finished(log_probs, finished)
        candidates = (scores.unsqueeze(-1) + log_probs).view(batch, -1)
        ordered, index = torch.sort(candidates, dim=1, descending=True, stable=True)
        scores, index = ordered[:, :beam_width], index[:, :beam_width]
        parents, tokens = index // VOCABULARY_SIZE, index % VOCABULARY_SIZE
        history = torch.cat([history[:, rows, parents], tokens.unsqueeze(0)])
        finished = finished[rows, parents] | (tokens == END)
        flat_parents = (rows * beam_width + parents).reshape(-1)
        state = {name: value.index_select(1, flat_parents) for name, value in state.items()}
        token = tokens.reshape(-1)
        if finished.all():
            break
    model.train(was_training)
    padding = torch.full((max_length - len(history), batch, beam_width), PAD,
                         dtype=torch.int64, device=device)
    beams = torch.cat([history, padding])
    return BeamResult(tokens=beams[:, :, 0], scores=scores[:, 0], beams=beams,
                      beam_scores=scores)


# --------------------------------------------------------------------------------------
# How often the answer is right
# --------------------------------------------------------------------------------------


def _decode(model: Seq2Seq, batch: ReversalBatch, beam_width: int) -> Tensor:
    device = next(model.parameters()).device
    batch = batch.to(device)
    length = batch.target.shape[0]  # enough for the right answer and its END
    if beam_width == 1:
        return greedy_decode(model, batch.source, batch.lengths, length)[0]
    return beam_search(model, batch.source, batch.lengths, beam_width=beam_width,
                       max_length=length).tokens


def exact_match(model: Seq2Seq, batch: ReversalBatch, *, beam_width: int = 1) -> Tensor:
    """Whether each decoded output equals its target exactly, ``END`` included: bool (B,)."""
    decoded = _decode(model, batch, check_int("beam_width", beam_width, minimum=1))
    return (decoded.cpu() == batch.target).all(dim=0)


def accuracy_by_length(model: Seq2Seq, test_set: dict[int, ReversalBatch], *,
                       beam_width: int = 1) -> dict[int, float]:
    """The share of exactly right outputs at each length of ``test_set``."""
    return {length: float(exact_match(model, batch, beam_width=beam_width).double().mean())
            for length, batch in test_set.items()}


def position_accuracy(model: Seq2Seq, batch: ReversalBatch, *, beam_width: int = 1) -> np.ndarray:
    """The share of right tokens at each output position (``END`` last): (U,) for a batch
    of one length."""
    decoded = _decode(model, batch, check_int("beam_width", beam_width, minimum=1)).cpu()
    return (decoded == batch.target).double().mean(dim=1).numpy()


# --------------------------------------------------------------------------------------
# Training and the explorer
# --------------------------------------------------------------------------------------


@dataclass
class ReverserResult:
    """One run of ``train_reverser``.

    Attributes
    ----------
    model : Seq2Seq
        The trained model.
    losses : ndarray
        The teacher-forced training loss of every step.
    parameters : int
    seconds : float
        CPU time of this process spent training (``time.process_time``).
    """

    model: Seq2Seq
    losses: np.ndarray
    parameters: int
    seconds: float


def train_reverser(*, attention: bool, hidden_size: int, seed: int = 0, steps: int = 400,
                   batch_size: int = 32, lr: float = 0.01, max_length: int = 8,
                   min_length: int = 1, max_norm: float = 1.0, embedding_size: int = 16,
                   device: torch.device | str = "cpu") -> ReverserResult:
    """Train a ``Seq2Seq`` to reverse digit strings, with teacher forcing.

    ``torch.manual_seed(seed)`` sets the initial weights; ``numpy.random.default_rng([seed,
    1])`` draws the batches (lengths uniform in ``min_length`` .. ``max_length``), so a model
    with and one without attention see the same batches under one seed. Each step: the
    teacher-forced ``sequence_loss``, backpropagation, the gradient clipped to global norm
    ``max_norm``, one Adam update with learning rate ``lr``.
    """
    steps = check_int("steps", steps, minimum=1)
    lr = check_real("lr", lr, positive=True)
    torch.manual_seed(check_int("seed", seed, minimum=0))
    model = Seq2Seq(hidden_size, attention=attention, embedding_size=embedding_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = np.random.default_rng([seed, 1])
    losses = []
    start = time.process_time()
    model.train()
    for _ in range(steps):
        batch = reversal_batch(batch_size, batches, max_length=max_length,
                               min_length=min_length).to(device)
        loss = sequence_loss(model(batch.source, batch.lengths, batch.decoder_input),
                             batch.target)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"training diverged at step {len(losses)} (seed={seed})")
    return ReverserResult(model=model, losses=np.array(losses), parameters=parameter_count(model),
                          seconds=time.process_time() - start)


def decode_report(model: Seq2Seq, text: str, beam_width: int = 1) -> dict[str, Any]:
    """What the chapter's explorer shows for one input string: a pure function of its inputs.

    Returns
    -------
    dict
        ``"input"`` and ``"expected"`` (the reversal), ``"outputs"``: the final beam as a
        list of (text, log-probability), best first (one entry for ``beam_width=1``, the
        greedy output), ``"correct"``: whether the best equals the expected output, and
        ``"weights"``: for a model with attention the weights (U, T) of the best output
        (row t: where step t looked), else ``None``.
    """
    source, lengths = source_from_text(text)
    beam_width = check_int("beam_width", beam_width, minimum=1)
    device = next(model.parameters()).device
    source = source.to(device)
    result = beam_search(model, source, lengths, beam_width=beam_width,
                         max_length=len(text) + 1)
    outputs = [(tokens_to_text(result.beams[:, 0, k]), float(result.beam_scores[0, k]))
               for k in range(beam_width) if math.isfinite(float(result.beam_scores[0, k]))]
    expected = text[::-1] + TOKEN_TEXT[END]
    weights = None
    if model.attention_used:
        best = result.tokens
        produced = len(tokens_to_text(best[:, 0]))
        was_training = model.training
        model.eval()
        with torch.no_grad():
            _, all_weights = model(source, lengths, _shifted(best), return_weights=True)
        model.train(was_training)
        weights = all_weights[:produced, :, 0].cpu().numpy()
    return {"input": text, "expected": expected, "outputs": outputs,
            "correct": outputs[0][0] == expected, "weights": weights}
