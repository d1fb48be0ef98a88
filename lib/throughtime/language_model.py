r"""Character-level language models: embedding, recurrent layer, linear read-out.

A language model gives the probability of a text one character at a time,
p(x_1 .. x_N) = prod_t p(x_t | x_1 .. x_{t-1}). The recurrent model reads x_{t-1}, updates
its hidden state and outputs *logits* z_t (one score per symbol); a softmax turns them into
p(x_t | x_<t). Training minimises the cross-entropy, the mean of -log p(x_t | x_<t) over
the training text, with the true previous characters as inputs (teacher forcing).

- ``CharModel``: ``torch.nn.Embedding(V, E)`` -> ``torch.nn.<kind>(E, H)`` ->
  ``torch.nn.Linear(H, V)``; accepts a time-major batch of ids (T, B) or a
  ``PackedSequence`` of lines of different lengths.
- ``CharModelEnsemble``: K such models of one kind, one per seed, packed into one wide
  layer with block-diagonal weights, so that K seeds train at the cost of about one call
  per step (the idea of ``ensembles.Ensemble``, with an embedding per model).
- ``train_on_stream``: stateful truncated backpropagation through time over the segments
  of ``text.stream_segments``: the hidden state is carried from one segment to the next
  and detached, so the gradient stops at the segment border.
- ``evaluate_bits``: bits per character on a text, reading it as one stream (the state
  carried throughout) or in independent pieces (the state reset every ``reset_every``).
- ``sample_next`` and ``generate``: free-running generation with temperature and top-k.
- ``record_states`` and ``unit_correlations``: every unit's value at every character, and
  its correlation with properties of the text (``text.code_features``).

Shapes: V symbols, E embedding size, H hidden units, K models; sequences time-major.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ._validate import check_choice, check_int, check_real, describe
from .measure import GATES, KINDS, hidden_size_for_budget, model_parameter_count
from .text import Vocabulary

__all__ = [
    "KINDS",
    "CharModel",
    "CharModelEnsemble",
    "char_model_parameters",
    "matched_hidden_sizes",
    "detach_state",
    "StreamHistory",
    "train_on_stream",
    "SeedRuns",
    "stream_offset",
    "train_seeds",
    "log2_probabilities",
    "windowed_log2_probabilities",
    "evaluate_bits",
    "sampling_probabilities",
    "sample_next",
    "generate",
    "record_states",
    "unit_correlations",
    "strongest_units",
    "current_character_correlation",
]


def char_model_parameters(kind: str, vocabulary_size: int, embedding_size: int,
                          hidden_size: int) -> int:
    """Parameters of a ``CharModel``: V E + G H (E + H + 2) + V (H + 1)."""
    check_choice("kind", kind, KINDS)
    vocabulary_size = check_int("vocabulary_size", vocabulary_size, minimum=1)
    embedding_size = check_int("embedding_size", embedding_size, minimum=1)
    return vocabulary_size * embedding_size + model_parameter_count(
        kind, embedding_size, hidden_size, vocabulary_size)


def matched_hidden_sizes(vocabulary_size: int, embedding_size: int,
                         lstm_hidden_size: int) -> dict[str, int]:
    """Hidden sizes that give every kind about the parameters of an LSTM ``CharModel``."""
    budget = char_model_parameters("LSTM", vocabulary_size, embedding_size, lstm_hidden_size)
    layer_budget = budget - vocabulary_size * embedding_size  # the embedding does not vary
    return {kind: lstm_hidden_size if kind == "LSTM" else
            hidden_size_for_budget(kind, layer_budget, embedding_size, vocabulary_size)
            for kind in KINDS}


def detach_state(state: Any) -> Any:
    """The hidden state without its history: gradients will not flow back through it."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


class CharModel(nn.Module):
    """Embedding -> recurrent layer -> linear read-out: logits for the next character.

    z_t = W_hy h_t + b_y, with h_t the state of ``torch.nn.<kind>`` after reading the
    embedding e(x_t) of the t-th input character; softmax(z_t) is the model's
    p(x_{t+1} | x_1 .. x_t).

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
        The recurrent layer (tanh RNN, LSTM, GRU), with PyTorch's initialisation.
    vocabulary_size, embedding_size, hidden_size : int
        V, E and H.
    forget_bias : float or None
        For an LSTM, the effective forget-gate bias b_if + b_hf
        (``gates.set_forget_bias``); ``None`` keeps PyTorch's.
    seed : int or None
        Seed the initial weights (``torch.manual_seed(seed)`` before they are drawn).
    """

    def __init__(self, kind: str, vocabulary_size: int, embedding_size: int, hidden_size: int,
                 *, forget_bias: float | None = 1.0, seed: int | None = None) -> None:
        super().__init__()
        self.kind = check_choice("kind", kind, KINDS)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size, minimum=2)
        self.embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.members = 1
        if seed is not None:
            torch.manual_seed(check_int("seed", seed, minimum=0))
        self.embedding = nn.Embedding(vocabulary_size, embedding_size)
        self.rnn = getattr(nn, kind)(embedding_size, hidden_size)
        self.readout = nn.Linear(hidden_size, vocabulary_size)
        if kind == "LSTM" and forget_bias is not None:
            from .gates import set_forget_bias

            set_forget_bias(self.rnn, check_real("forget_bias", forget_bias))

    def forward(self, inputs: torch.Tensor | PackedSequence, state: Any = None
                ) -> tuple[torch.Tensor | PackedSequence, Any]:
        """Logits for every step, and the final state.

        Parameters
        ----------
        inputs : LongTensor (T, B) of ids, or a PackedSequence of ids
        state : the recurrent layer's state, optional (zeros when None)

        Returns
        -------
        logits : Tensor (T, B, V), or a PackedSequence of (N, V) logits for packed inputs
        state : h_T (1, B, H), or (h_T, c_T) for an LSTM
        """
        if isinstance(inputs, PackedSequence):
            embedded = inputs._replace(data=self.embedding(inputs.data))
            outputs, state = self.rnn(embedded, state)
            return outputs._replace(data=self.readout(outputs.data)), state
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 2 or \
                inputs.dtype != torch.long:
            raise TypeError(f"inputs must be a LongTensor (T, B) of ids or a PackedSequence, "
                            f"got {describe(inputs)}")
        outputs, state = self.rnn(self.embedding(inputs), state)
        return self.readout(outputs), state

    def clip_gradients(self, max_norm: float) -> torch.Tensor:
        """Clip the gradient by its global norm (``clip_grad_norm_``); the norm before, (1,)."""
        norm = nn.utils.clip_grad_norm_(self.parameters(), max_norm)
        return norm.reshape(1)


class CharModelEnsemble(nn.Module):
    """K ``CharModel`` s of one kind, one per seed, trained side by side as one network.

    Model k is ``CharModel(kind, V, E, H, seed=seeds[k])``. The ensemble holds an embedding
    (V, K E) whose columns k E .. (k + 1) E - 1 are model k's, one ``torch.nn.<kind>(K E,
    K H)`` whose weights are block-diagonal inside every gate block (model k reads its own
    embedding and owns hidden units k H .. (k + 1) H - 1), and a read-out per model. The
    weights between models are zero and stay zero (``mask_gradients``), and each model's
    gradient is clipped by its own norm (``clip_gradients``). Trained with Adam on the sum
    of the K models' losses, each model then follows the same path as when trained alone,
    up to rounding: one call of the layer per step instead of K.
    """

    def __init__(self, kind: str, seeds: Sequence[int], vocabulary_size: int,
                 embedding_size: int, hidden_size: int, *,
                 forget_bias: float | None = 1.0) -> None:
        super().__init__()
        seeds = [check_int("seeds[k]", s, minimum=0) for s in seeds]
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one per model)")
        models = [CharModel(kind, vocabulary_size, embedding_size, hidden_size,
                            forget_bias=forget_bias, seed=s) for s in seeds]
        self.kind, self.seeds, self.members = kind, tuple(seeds), len(seeds)
        self.forget_bias = forget_bias
        self.vocabulary_size, self.embedding_size, self.hidden_size = (
            vocabulary_size, embedding_size, hidden_size)
        K, V, E, H = self.members, vocabulary_size, embedding_size, hidden_size
        self.embedding = nn.Parameter(torch.cat([m.embedding.weight.detach() for m in models],
                                                dim=1))  # (V, K E)
        self.rnn = getattr(nn, kind)(K * E, K * H)
        self.readout_weight = nn.Parameter(torch.stack(
            [m.readout.weight.detach() for m in models]))  # (K, V, H)
        self.readout_bias = nn.Parameter(torch.stack(
            [m.readout.bias.detach() for m in models]))  # (K, V)
        with torch.no_grad():
            for name, wide in self.rnn.named_parameters():
                wide.zero_()
                for k, model in enumerate(models):
                    wide[self._block(name, k)] = model.rnn.get_parameter(name)
        owners = {"embedding": torch.arange(K).repeat_interleave(E).expand(V, K * E),
                  "readout_weight": torch.arange(K)[:, None, None].expand(K, V, H),
                  "readout_bias": torch.arange(K)[:, None].expand(K, V)}
        for name, wide in self.rnn.named_parameters():
            owner = torch.full(wide.shape, K, dtype=torch.long)
            for k in range(K):
                owner[self._block(name, k)] = k
            owners[f"rnn.{name}"] = owner
        for name, owner in owners.items():  # which model owns each entry (K: none)
            self.register_buffer(f"_owner_{name.replace('.', '_')}", owner.contiguous(),
                                 persistent=False)

    def _block(self, name: str, k: int) -> tuple[Any, ...]:
        """Model k's entries in the wide layer's parameter ``name``."""
        K, E, H = self.members, self.embedding_size, self.hidden_size
        rows = torch.cat([torch.arange(g * K * H + k * H, g * K * H + (k + 1) * H)
                          for g in range(GATES[self.kind])])
        if name.startswith("weight_ih"):
            return rows[:, None], torch.arange(k * E, (k + 1) * E)[None, :]
        if name.startswith("weight_hh"):
            return rows[:, None], torch.arange(k * H, (k + 1) * H)[None, :]
        return (rows,)

    def _owner(self, name: str) -> torch.Tensor:
        return getattr(self, f"_owner_{name.replace('.', '_')}")

    def member(self, k: int) -> CharModel:
        """Model k as a standalone ``CharModel`` (a copy, on the CPU)."""
        k = check_int("k", k, minimum=0)
        if k >= self.members:
            raise ValueError(f"k must be in 0 .. {self.members - 1}, got {k}")
        E = self.embedding_size
        model = CharModel(self.kind, self.vocabulary_size, E, self.hidden_size,
                          forget_bias=None).to(self.readout_bias.dtype)
        with torch.no_grad():
            model.embedding.weight.copy_(self.embedding[:, k * E:(k + 1) * E])
            for name, value in model.rnn.named_parameters():
                value.copy_(self.rnn.get_parameter(name).detach().cpu()[self._block(name, k)])
            model.readout.weight.copy_(self.readout_weight[k])
            model.readout.bias.copy_(self.readout_bias[k])
        return model

    def forward(self, inputs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Run the K models, each on its own ids.

        Parameters
        ----------
        inputs : LongTensor (T, B, K), model k reading ``inputs[..., k]``, or (T, B), read
            by every model
        state : the wide layer's state, optional

        Returns
        -------
        logits : Tensor (T, B, K, V)
        state : the wide layer's state (h of shape (1, B, K H), and c for an LSTM)
        """
        K, V, E = self.members, self.vocabulary_size, self.embedding_size
        if not isinstance(inputs, torch.Tensor) or inputs.dtype != torch.long or \
                inputs.dim() not in (2, 3) or (inputs.dim() == 3 and inputs.shape[2] != K):
            raise TypeError(f"inputs must be a LongTensor of ids (T, B) or (T, B, K = {K}), "
                            f"got {describe(inputs)}")
        if inputs.dim() == 2:
            inputs = inputs[..., None].expand(*inputs.shape, K)
        T, B = inputs.shape[:2]
        table = self.embedding.view(V, K, E)
        embedded = table[inputs, torch.arange(K, device=inputs.device)]  # (T, B, K, E)
        outputs, state = self.rnn(embedded.reshape(T, B, K * E), state)
        hidden = outputs.view(T, B, K, self.hidden_size)
        logits = torch.einsum("tbkh,kvh->tbkv", hidden, self.readout_weight) + self.readout_bias
        return logits, state

    def mask_gradients(self) -> None:
        """Zero the gradients of the weights between models, so that they stay exactly 0."""
        for name, parameter in self.rnn.named_parameters():
            if parameter.grad is not None and parameter.dim() == 2:
                parameter.grad.masked_fill_(self._owner(f"rnn.{name}") == self.members, 0.0)

    def clip_gradients(self, max_norm: float) -> torch.Tensor:
        """Mask the gradients, then clip each model's by its own global norm.

        Model k's gradient is multiplied by min(1, max_norm / (||g_k|| + 1e-6)), the factor
        ``torch.nn.utils.clip_grad_norm_`` applies to a model trained alone.

        Returns
        -------
        Tensor (K,)
            Every model's gradient norm before clipping.
        """
        max_norm = check_real("max_norm", max_norm, positive=True)
        self.mask_gradients()
        named = [(name, p) for name, p in self.named_parameters() if p.grad is not None]
        device = named[0][1].device
        squares = torch.zeros(self.members + 1, dtype=torch.float64, device=device)
        for name, parameter in named:
            squares.index_add_(0, self._owner(name).reshape(-1),
                               parameter.grad.reshape(-1).double().square())
        norms = squares[:-1].sqrt()
        factors = torch.ones(self.members + 1, dtype=torch.float64, device=device)
        factors[:-1] = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
        for name, parameter in named:
            parameter.grad.mul_(factors[self._owner(name)].to(parameter.dtype))
        return norms


def _member_nats(logits: torch.Tensor, targets: torch.Tensor, members: int) -> torch.Tensor:
    """Mean cross-entropy (natural log) of every model: (K,). logits (T, B[, K], V)."""
    V = logits.shape[-1]
    logits = logits.reshape(*targets.shape[:2], members, V)
    if targets.dim() == 2:
        targets = targets[..., None].expand(*targets.shape, members)
    nats = nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                                       reduction="none")
    return nats.view(-1, members).mean(dim=0)


@dataclass
class StreamHistory:
    """What ``train_on_stream`` recorded.

    Attributes
    ----------
    bits : ndarray (steps, K)
        Every model's training loss in bits per character at every step, before the update.
    grad_norms : ndarray (steps, K)
        Every model's gradient norm before clipping.
    seconds : float
        CPU time of the training (``time.process_time``).
    """

    bits: np.ndarray
    grad_norms: np.ndarray
    seconds: float


def train_on_stream(model: CharModel | CharModelEnsemble, segments: Any, *, steps: int,
                    lr: float = 0.01, max_norm: float = 1.0,
                    carry_state: bool = True) -> StreamHistory:
    """Train with truncated backpropagation through time on consecutive segments.

    Step s reads segment s mod S of ``segments`` (from ``text.stream_segments``): inputs
    x = segment[:-1] (T, B), targets y = segment[1:]. With ``carry_state`` the hidden
    state at the end of one segment is the initial state of the next, detached: the forward
    pass sees the text before the segment, the gradient stops at its border (truncated
    BPTT, the BPTT chapter's ``k1 = k2 = T``). The state restarts at zero when the segments
    start over. Adam, and clipping of every model's gradient by its global norm.

    Parameters
    ----------
    model : CharModel or CharModelEnsemble
        Trained in place, on the device of its parameters.
    segments : LongTensor or int array (S, T + 1, B), or (S, T + 1, B, K) for an ensemble
        whose models read different streams.
    steps : int
    lr : float
    max_norm : float
    carry_state : bool
        False resets the state to zero at every segment (no context beyond T characters).

    Returns
    -------
    StreamHistory
    """
    if not isinstance(model, (CharModel, CharModelEnsemble)):
        raise TypeError(f"model must be a CharModel or a CharModelEnsemble, got "
                        f"{describe(model)}")
    steps = check_int("steps", steps, minimum=1)
    lr = check_real("lr", lr, positive=True)
    max_norm = check_real("max_norm", max_norm, positive=True)
    device = next(model.parameters()).device
    segments = torch.as_tensor(np.asarray(segments), dtype=torch.long)
    if segments.dim() not in (3, 4) or segments.shape[1] < 2:
        raise ValueError(f"segments must have shape (S, T + 1, B) or (S, T + 1, B, K), got "
                         f"{tuple(segments.shape)}")
    segments = segments.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    bits, norms = [], []
    state = None
    started = time.process_time()
    model.train()
    for step in range(steps):
        segment = segments[step % len(segments)]
        if step % len(segments) == 0 or not carry_state:
            state = None  # a fresh start: zeros
        inputs, targets = segment[:-1], segment[1:]
        logits, state = model(inputs, state)
        state = detach_state(state)  # keep the values, drop the graph: BPTT stops here
        loss = _member_nats(logits, targets, model.members)  # cross-entropy, in nats
        optimizer.zero_grad()
        loss.sum().backward()
        norms.append(model.clip_gradients(max_norm).detach().cpu().numpy())
        optimizer.step()
        bits.append(loss.detach().cpu().numpy() / math.log(2))
    return StreamHistory(np.array(bits), np.array(norms), time.process_time() - started)


@dataclass
class SeedRuns:
    """What ``train_seeds`` returns: one trained ``CharModel`` per seed, and how it went.

    Attributes
    ----------
    kind : str
    seeds : tuple of int
    models : list of CharModel
        In the order of the seeds, on the device they trained on.
    bits : ndarray (steps, K)
        Every model's training loss in bits per character at every step.
    seconds : float
        CPU time of the training, all seeds together.
    """

    kind: str
    seeds: tuple[int, ...]
    models: list[CharModel]
    bits: np.ndarray
    seconds: float


def stream_offset(seed: int, length: int) -> int:
    """Where seed ``seed`` starts reading the training stream: a number in 0 .. T - 1.

    Different seeds then cut the text at different segment borders, so a seed fixes both
    the initial weights and the batches.
    """
    seed = check_int("seed", seed, minimum=0)
    return int(np.random.default_rng([seed, 4_127]).integers(check_int("length", length,
                                                                      minimum=1)))


def train_seeds(kind: str, seeds: Sequence[int], train_ids: Any, *, vocabulary_size: int,
                embedding_size: int, hidden_size: int, batch_size: int, length: int,
                steps: int, lr: float, max_norm: float = 1.0, forget_bias: float | None = 1.0,
                device: torch.device | str = "cpu", group_size: int | None = None) -> SeedRuns:
    """Train one ``CharModel`` per seed on the training stream, as ``train_on_stream`` does.

    Seed s initialises its model with ``CharModel(..., seed=s)`` and reads
    ``text.stream_segments(train_ids, batch_size, length, offset=stream_offset(s,
    length))``. The models train in groups of ``group_size`` packed into one
    ``CharModelEnsemble`` (the same training, up to rounding, in fewer calls): by default
    all together on a GPU, one at a time on a CPU, where a block-diagonal layer wastes more
    arithmetic than it saves in calls at these sizes.
    """
    from .text import stream_segments

    seeds = [check_int("seeds[k]", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    device = torch.device(device)
    if group_size is None:
        group_size = len(seeds) if device.type == "cuda" else 1
    group_size = check_int("group_size", group_size, minimum=1)
    segments = [stream_segments(train_ids, batch_size, length, offset=stream_offset(s, length))
                for s in seeds]
    count = min(len(s) for s in segments)
    models, bits, seconds = [], [], 0.0
    for start in range(0, len(seeds), group_size):
        group = seeds[start:start + group_size]
        stacked = np.stack([segments[start + k][:count] for k in range(len(group))], axis=-1)
        if len(group) == 1:
            model = CharModel(kind, vocabulary_size, embedding_size, hidden_size,
                              forget_bias=forget_bias, seed=group[0]).to(device)
            history = train_on_stream(model, stacked[..., 0], steps=steps, lr=lr,
                                      max_norm=max_norm)
            models.append(model)
        else:
            ensemble = CharModelEnsemble(kind, group, vocabulary_size, embedding_size,
                                         hidden_size, forget_bias=forget_bias).to(device)
            history = train_on_stream(ensemble, stacked, steps=steps, lr=lr, max_norm=max_norm)
            models += [ensemble.member(k).to(device) for k in range(len(group))]
        bits.append(history.bits)
        seconds += history.seconds
    return SeedRuns(kind, tuple(seeds), models, np.concatenate(bits, axis=1), seconds)


def _rows(count: int, stretch: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions read by each row, and which of them are scored.

    The positions 0 .. count - 1 are cut into consecutive stretches of ``stretch`` (the
    last may be shorter), one per row; row b reads its stretch, preceded by up to
    ``warmup`` positions before it (read, not scored). Every position is scored exactly
    once. Returns index (L, B) into the positions (clipped to a valid position where a row
    is shorter) and scored (L, B), bool.
    """
    streams = math.ceil(count / stretch)
    starts = np.arange(streams) * stretch
    reads = np.maximum(starts - warmup, 0)
    length = int((np.minimum(starts + stretch, count) - reads).max())
    index = reads[None, :] + np.arange(length)[:, None]
    scored = (index >= starts[None, :]) & (index < np.minimum(starts + stretch, count)[None, :])
    return np.minimum(index, count - 1), scored


@torch.no_grad()
def log2_probabilities(model: CharModel | CharModelEnsemble, ids: Any, *, streams: int = 32,
                       warmup: int = 512, reset_every: int | None = None) -> np.ndarray:
    """log2 p(x_t | x_<t) of every character after the first, for every model.

    Every character after the first is scored once. To use the hardware well the text is
    read as ``streams`` parallel stretches; each stretch is preceded by the ``warmup``
    characters before it, read but not scored, so that every character is predicted with
    at least ``warmup`` characters of context (or all of the text before it).

    Parameters
    ----------
    model : CharModel or CharModelEnsemble
    ids : 1-D int array, the text
    streams : int
        B, the parallel stretches.
    warmup : int
        Characters of context read before each stretch.
    reset_every : int, optional
        Instead, cut the text into pieces of L characters, each read from a zero state
        (the last one may be shorter): the model never sees more than L characters of
        context. ``streams`` and ``warmup`` are then ignored.

    Returns
    -------
    ndarray (N - 1, K) of float64 (K = 1 for a CharModel), in the order of the text
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) < 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D integer array of at least 2 ids, got "
                         f"{describe(ids)}")
    streams = check_int("streams", streams, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    count = len(ids) - 1  # inputs ids[:-1], targets ids[1:]
    if reset_every is None:
        index, scored = _rows(count, math.ceil(count / streams), warmup)
    else:
        index, scored = _rows(count, check_int("reset_every", reset_every, minimum=1), 0)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    inputs = torch.as_tensor(ids[:-1][index], dtype=torch.long, device=device)
    targets = torch.as_tensor(ids[1:][index], dtype=torch.long, device=device)
    logits, _ = model(inputs)
    V = logits.shape[-1]
    logits = logits.reshape(*index.shape, model.members, V).double()
    chosen = torch.log_softmax(logits, dim=-1).gather(
        -1, targets[..., None, None].expand(*index.shape, model.members, 1))[..., 0]
    model.train(was_training)
    order = torch.as_tensor(scored.T, device=device)  # rows are consecutive stretches
    return (chosen.transpose(0, 1)[order] / math.log(2)).cpu().numpy()


@torch.no_grad()
def windowed_log2_probabilities(model: CharModel | CharModelEnsemble, ids: Any,
                                positions: Any, context: int) -> np.ndarray:
    """log2 p(x_t | the ``context`` characters before x_t), read from a zero state.

    For every t in ``positions`` the model reads ``ids[t - context:t]`` from a zero state
    and predicts ``ids[t]``: exactly L = ``context`` characters of context, nothing older.
    Compared with ``log2_probabilities`` at the same positions (the whole text before t),
    it measures how much the model gets from context older than L.

    Parameters
    ----------
    model : CharModel or CharModelEnsemble
    ids : 1-D int array
    positions : 1-D int array, each at least ``context`` (every position has L characters
        before it)
    context : int
        L >= 1.

    Returns
    -------
    ndarray (len(positions), K) of float64
    """
    ids = np.asarray(ids)
    positions = np.asarray(positions)
    context = check_int("context", context, minimum=1)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D integer array, got {describe(ids)}")
    if positions.ndim != 1 or not len(positions) or not np.issubdtype(positions.dtype,
                                                                       np.integer):
        raise ValueError(f"positions must be a non-empty 1-D integer array, got "
                         f"{describe(positions)}")
    if positions.min() < context or positions.max() >= len(ids):
        raise ValueError(f"positions must lie in {context} .. {len(ids) - 1} (each needs "
                         f"context = {context} characters before it), got {positions.min()} "
                         f"to {positions.max()}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    window = positions[None, :] - context + np.arange(context)[:, None]  # (L, P)
    logits, _ = model(torch.as_tensor(ids[window], dtype=torch.long, device=device))
    last = logits[-1].reshape(len(positions), model.members, -1).double()
    targets = torch.as_tensor(ids[positions], dtype=torch.long, device=device)
    chosen = torch.log_softmax(last, dim=-1).gather(
        -1, targets[:, None, None].expand(len(positions), model.members, 1))[..., 0]
    model.train(was_training)
    return (chosen / math.log(2)).cpu().numpy()


def evaluate_bits(model: CharModel | CharModelEnsemble, ids: Any, *, streams: int = 32,
                  warmup: int = 512, reset_every: int | None = None) -> np.ndarray:
    """Bits per character of every model on a text: -mean log2 p(x_t | x_<t), t = 2 .. N.

    The mean of ``log2_probabilities`` (same arguments), negated: ndarray (K,).
    """
    return -log2_probabilities(model, ids, streams=streams, warmup=warmup,
                               reset_every=reset_every).mean(axis=0)


def sampling_probabilities(logits: torch.Tensor, *, temperature: float = 1.0,
                           top_k: int | None = None) -> torch.Tensor:
    """softmax(logits / temperature) over the k largest logits, 0 elsewhere: (B, V).

    The torch counterpart of ``text.next_char_probabilities`` (same equation, in the
    dtype of ``logits``); ties at the k-th largest logit are all kept.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise TypeError(f"logits must be a Tensor (B, V), got {describe(logits)}")
    temperature = check_real("temperature", temperature, positive=True)
    scaled = logits / temperature
    if top_k is not None:
        top_k = check_int("top_k", top_k, minimum=1)
        if top_k > logits.shape[-1]:
            raise ValueError(f"top_k must be at most V = {logits.shape[-1]}, got {top_k}")
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    return torch.softmax(scaled, dim=-1)


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the next ids from ``sampling_probabilities(logits, temperature, top_k)``.

    Parameters
    ----------
    logits : Tensor (B, V)
    temperature : float
        tau >= 0; 0 picks the most likely id (greedy decoding).
    top_k : int, optional
        Draw only among the k largest logits.
    generator : torch.Generator, optional

    Returns
    -------
    LongTensor (B,)
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise TypeError(f"logits must be a Tensor (B, V), got {describe(logits)}")
    temperature = check_real("temperature", temperature)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probabilities = sampling_probabilities(logits, temperature=temperature, top_k=top_k)
    return torch.multinomial(probabilities, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(model: CharModel, vocabulary: Vocabulary, prefix: str, length: int, *,
             temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
             samples: int = 1) -> list[str]:
    """Free-running generation: read ``prefix``, then feed each drawn character back in.

    Returns ``samples`` continuations of ``length`` characters (the prefix not included),
    drawn with ``sample_next``; the unknown symbol is never drawn.
    """
    if not isinstance(model, CharModel):
        raise TypeError(f"model must be a CharModel, got {describe(model)}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
    length = check_int("length", length, minimum=1)
    samples = check_int("samples", samples, minimum=1)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(check_int("seed", seed, minimum=0))
    was_training = model.training
    model.eval()
    ids = torch.as_tensor(vocabulary.encode(prefix), device=device)[:, None].repeat(1, samples)
    logits, state = model(ids)
    drawn = []
    for _ in range(length):
        last = logits[-1].clone()
        last[:, 0] = -math.inf  # never write the unknown symbol
        following = sample_next(last, temperature=temperature, top_k=top_k,
                                generator=generator)
        drawn.append(following)
        logits, state = model(following[None, :], state)
    model.train(was_training)
    columns = torch.stack(drawn).cpu().numpy()  # (length, samples)
    return [vocabulary.decode(columns[:, b]) for b in range(samples)]


@torch.no_grad()
def record_states(model: CharModel | CharModelEnsemble, ids: Any, *, streams: int = 32,
                  warmup: int = 512) -> dict[str, np.ndarray]:
    """Every unit's state after every character of a text.

    The text is read as in ``evaluate_bits``: ``streams`` parallel stretches, each
    preceded by ``warmup`` characters of context.

    Returns
    -------
    dict
        ``"h"``: float64 (N, K, H), the hidden state after reading ``ids[t]`` (K = 1 for a
        ``CharModel``); for an LSTM also ``"c"``, the cell state, recomputed in float64
        from the gates (c_t = f_t c_{t-1} + i_t g_t, the gates from x_t and h_{t-1}).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not len(ids) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a non-empty 1-D integer array, got {describe(ids)}")
    streams = check_int("streams", streams, minimum=1)
    index, scored = _rows(len(ids), math.ceil(len(ids) / streams),
                          check_int("warmup", warmup, minimum=0))
    device = next(model.parameters()).device
    K, H = model.members, model.hidden_size
    inputs = torch.as_tensor(ids[index], dtype=torch.long, device=device)  # (L, B)
    if isinstance(model, CharModelEnsemble):
        table = model.embedding.view(model.vocabulary_size, K, -1)
        embedded = table[inputs[..., None].expand(*inputs.shape, K),
                         torch.arange(K, device=device)].flatten(2)
    else:
        embedded = model.embedding(inputs)
    outputs, _ = model.rnn(embedded)
    positions = scored.T  # (B, L): a row's positions are consecutive, the rows in order

    def in_text_order(values: np.ndarray) -> np.ndarray:  # (L, B, K H) -> (N, K, H)
        return values.transpose(1, 0, 2)[positions].reshape(len(ids), K, H)

    h = outputs.detach().cpu().numpy()
    recorded = {"h": in_text_order(h).astype(np.float64)}
    if model.kind == "LSTM":
        rnn = model.rnn
        previous = torch.cat([torch.zeros_like(outputs[:1]), outputs[:-1]])
        a = (embedded @ rnn.weight_ih_l0.T + previous @ rnn.weight_hh_l0.T
             + rnn.bias_ih_l0 + rnn.bias_hh_l0)  # the gates' pre-activations, (L, B, 4 K H)
        i, f, g, _ = a.chunk(4, dim=-1)
        forget = torch.sigmoid(f).double().cpu().numpy()
        written = (torch.sigmoid(i) * torch.tanh(g)).double().cpu().numpy()
        c = np.empty_like(written)
        current = np.zeros(written.shape[1:])
        for t in range(len(written)):  # c_t = f_t c_{t-1} + i_t g_t
            current = forget[t] * current + written[t]
            c[t] = current
        recorded["c"] = in_text_order(c)
    return recorded


def unit_correlations(states: Any, features: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Pearson correlation of every unit with every feature, over the characters.

    Parameters
    ----------
    states : array (N, ..., H)
        One row per character (e.g. ``record_states(...)["h"]``, (N, K, H)).
    features : dict of 1-D arrays (N,)
        E.g. ``text.code_features(source)``.

    Returns
    -------
    dict of ndarray, each of the shape of one row of ``states``
        r = cov(unit, feature) / (sd(unit) sd(feature)); 0 for a unit that never changes.
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim < 2 or not np.all(np.isfinite(states)):
        raise ValueError(f"states must be a finite array (N, ..., H), got {describe(states)}")
    centred = states - states.mean(axis=0)
    spread = np.sqrt((centred**2).sum(axis=0))
    result = {}
    for name, values in features.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(states),):
            raise ValueError(f"features[{name!r}] must have shape ({len(states)},), one value "
                             f"per character, got {values.shape}")
        v = values - values.mean()
        scale = np.sqrt((v**2).sum()) * spread
        covariance = np.tensordot(v, centred, axes=(0, 0))
        result[name] = np.where(scale > 0, covariance / np.where(scale > 0, scale, 1.0), 0.0)
    return result


def strongest_units(correlations: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For every feature, the unit with the largest ``|r|`` in each model, and its r.

    Parameters
    ----------
    correlations : dict of arrays (K, H), as ``unit_correlations`` returns for (N, K, H)

    Returns
    -------
    dict
        ``strongest[feature] = (units, r)``, both of shape (K,): the index of the unit and
        its (signed) correlation.
    """
    result = {}
    for name, r in correlations.items():
        r = np.asarray(r, dtype=np.float64)
        if r.ndim != 2:
            raise ValueError(f"correlations[{name!r}] must have shape (K, H), got {r.shape}")
        units = np.abs(r).argmax(axis=1)
        result[name] = (units, r[np.arange(len(r)), units])
    return result


def current_character_correlation(ids: Any, values: Any) -> float:
    """How much of a feature the current character alone explains: a ceiling for inputs.

    The correlation between ``values`` and the mean of ``values`` over all positions that
    hold the same character (computed on this very text, so an optimistic ceiling): what
    the best function of x_t alone, with no memory, could reach.
    """
    ids = np.asarray(ids)
    values = np.asarray(values, dtype=np.float64)
    if ids.ndim != 1 or values.shape != ids.shape or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids and values must be 1-D of the same length, got {describe(ids)} "
                         f"and {describe(values)}")
    sums = np.bincount(ids, weights=values)
    counts = np.bincount(ids)
    prediction = (sums / np.maximum(counts, 1))[ids]
    if prediction.std() == 0 or values.std() == 0:
        return 0.0
    return float(np.corrcoef(prediction, values)[0, 1])

