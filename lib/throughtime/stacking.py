r"""Stacked and bidirectional recurrent networks from the book's cells, and a task that needs both.

A *stacked* (deep) recurrent network feeds the hidden states of one layer to the next as its
inputs: layer 1 reads :math:`x_1 \dots x_T`, layer 2 reads layer 1's states
:math:`h^{(1)}_1 \dots h^{(1)}_T`, and so on; the last layer's states are the output. A
*bidirectional* layer runs two recurrences over the same inputs, one from :math:`t = 1` to
:math:`T` and one from :math:`T` down to 1 (the second is an ordinary layer run on the
reversed sequence, whose states are reversed back), and concatenates their states at every
step, :math:`[\overrightarrow{h}_t ; \overleftarrow{h}_t]`. ``torch.nn.LSTM(num_layers=L,
bidirectional=True)`` combines the two: the layer above reads both directions' states.

- ``layer_params_from_torch``: the weights of a multi-layer or bidirectional ``torch.nn``
  layer (or ``torch_cells`` layer) as one ``numpy_cells`` parameter dict per layer and
  direction.
- ``bidirectional_layer``: one bidirectional layer from ``numpy_cells``' sequence functions.
- ``stacked_forward``: layers on top of each other, each one- or two-directional; returns
  ``(output, h_n)`` (and ``c_n`` for the LSTM) laid out as ``torch.nn`` lays them out.
- ``neighbour_xor_task``: bits in, and at every inner step the XOR of the two neighbours,
  :math:`y_t = x_{t-1} \oplus x_{t+1}`. A unidirectional network cannot know
  :math:`x_{t+1}` at step t; a one-layer bidirectional network with a linear read-out adds
  a function of the left part to a function of the right part and cannot express the XOR
  of one bit from each; two bidirectional layers can.
- ``next_bit_task``: fair coin flips and, at every step, the next flip as the target. No
  honest predictor beats 1/2; a bidirectional one reads the answer from its backward
  direction.
- ``SequenceTagger`` and ``train_tagger``: a recurrent layer with a linear read-out at every
  step, trained on one of the two tasks (the experiment of the chapter and its seed study).

Sequences are time-major, (T, B, ·); parameters use PyTorch's names and gate orders.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import numpy_cells, torch_cells
from ._validate import check_choice, check_float_array, check_int, describe
from .tasks import _generator, _to_output
from .training import train_steps

__all__ = [
    "IGNORE_INDEX",
    "layer_params_from_torch",
    "bidirectional_layer",
    "stacked_forward",
    "neighbour_xor_task",
    "next_bit_task",
    "TAGGING_TASKS",
    "SequenceTagger",
    "tagging_loss",
    "tagging_accuracy",
    "TaggerResult",
    "train_tagger",
    "best_additive_accuracy",
]

IGNORE_INDEX = -100
"""The target of a step that has no answer (``torch.nn.functional.cross_entropy``'s default
``ignore_index``)."""

KINDS = ("rnn", "lstm", "gru")


# --------------------------------------------------------------------------------------
# Weights of a deep torch layer, as numpy dicts
# --------------------------------------------------------------------------------------


def layer_params_from_torch(module: Any) -> list[list[dict[str, np.ndarray]]]:
    """The weights of a stacked and/or bidirectional RNN, LSTM or GRU, per layer and direction.

    Parameters
    ----------
    module : torch.nn.RNN, LSTM or GRU, or the ``torch_cells`` twin
        With ``bias=True`` and no projection.

    Returns
    -------
    list of lists of dict
        ``layers[k][d]`` holds ``weight_ih``, ``weight_hh``, ``bias_ih`` and ``bias_hh`` of
        layer k (from 0) and direction d (0 forward, 1 backward, the ``_reverse`` suffix)
        as new numpy arrays, the dicts that ``numpy_cells`` reads.
    """
    names = {name for name, _ in getattr(module, "named_parameters", lambda: [])()}
    if not isinstance(module, nn.Module) or "weight_ih_l0" not in names:
        raise TypeError("module must be a torch.nn.RNN, LSTM or GRU (or a torch_cells layer), "
                        f"got {describe(module)}")
    if getattr(module, "proj_size", 0) or not getattr(module, "bias", True):
        raise ValueError("module must have bias=True and no projection (proj_size=0), got "
                         f"bias={module.bias}, proj_size={getattr(module, 'proj_size', 0)}")
    layers = []
    for layer in range(module.num_layers):
        directions = []
        for suffix in ("", "_reverse")[:2 if module.bidirectional else 1]:
            directions.append({name: getattr(module, f"{name}_l{layer}{suffix}")
                               .detach().cpu().numpy().copy()
                               for name in numpy_cells.PARAM_NAMES})
        layers.append(directions)
    return layers


# --------------------------------------------------------------------------------------
# From the book's cells: one direction, both directions, layers on top of each other
# --------------------------------------------------------------------------------------


def _one_direction(kind: str, xs: np.ndarray, params: Mapping[str, np.ndarray],
                   h0: np.ndarray | None, c0: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """The states (T, B, H) of one layer in one direction, and its cell states (LSTM)."""
    if kind == "lstm":
        hs, cs, _ = numpy_cells.lstm_forward(xs, h0, c0, params)
        return hs, cs
    if kind == "gru":
        return numpy_cells.gru_forward(xs, h0, params)[0], None
    return numpy_cells.rnn_forward(xs, h0, params)[0], None


def bidirectional_layer(kind: str, xs: np.ndarray, forward_params: Mapping[str, np.ndarray],
                        backward_params: Mapping[str, np.ndarray],
                        h0: np.ndarray | None = None, c0: np.ndarray | None = None
                        ) -> tuple[np.ndarray, ...]:
    r"""One bidirectional layer from the book's cells (``numpy_cells``).

    .. math::

        \overrightarrow{h}_t = \text{cell}(x_t, \overrightarrow{h}_{t-1}), \quad
        \overleftarrow{h}_t = \text{cell}'(x_t, \overleftarrow{h}_{t+1}), \quad
        y_t = [\overrightarrow{h}_t ; \overleftarrow{h}_t]

    with :math:`\overrightarrow{h}_0` and :math:`\overleftarrow{h}_{T+1}` the initial states.
    The backward direction is an ordinary layer run on the reversed sequence
    ``xs[::-1]``; its states are reversed back, so that row t of the output holds both
    directions' states at step t.

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
    xs : ndarray, shape (T, B, I)
    forward_params, backward_params : dict
        ``numpy_cells`` parameter dicts of the two directions.
    h0, c0 : ndarray, shape (2, B, H), optional
        Initial states, forward direction first (as ``torch.nn``'s ``h_0``); zeros if
        omitted. ``c0`` only for the LSTM.

    Returns
    -------
    output : ndarray, shape (T, B, 2H)
        ``output[t] = [forward state after x_t, backward state after x_t]``.
    h_n : ndarray, shape (2, B, H)
        The last state of each direction: the forward one after x_T, the backward one after
        x_1.
    c_n : ndarray, shape (2, B, H)
        The last cell states, for the LSTM only.
    """
    kind = check_choice("kind", kind, KINDS)
    xs = check_float_array("xs", xs, ndim=3, dims=("T", "B", "I"))
    initial = [_initial_pair(name, value, xs) for name, value in (("h0", h0), ("c0", c0))]
    if c0 is not None and kind != "lstm":
        raise ValueError(f"c0 is only for kind='lstm', got kind={kind!r}")
    forward_hs, forward_cs = _one_direction(kind, xs, forward_params, initial[0][0],
                                            initial[1][0])
    backward_hs, backward_cs = _one_direction(kind, xs[::-1], backward_params, initial[0][1],
                                              initial[1][1])
    output = np.concatenate([forward_hs, backward_hs[::-1]], axis=2)
    h_n = np.stack([forward_hs[-1], backward_hs[-1]])
    if kind != "lstm":
        return output, h_n
    return output, h_n, np.stack([forward_cs[-1], backward_cs[-1]])


def _initial_pair(name: str, value: np.ndarray | None, xs: np.ndarray) -> tuple[Any, Any]:
    if value is None:
        return None, None
    value = check_float_array(name, value, ndim=3, dims=("D", "B", "H"))
    if value.shape[0] != 2 or value.shape[1] != xs.shape[1]:
        raise ValueError(f"{name} must have shape (2, B, H) with B = {xs.shape[1]} (one state "
                         f"per direction, forward first), got {value.shape}")
    return value[0], value[1]


def stacked_forward(kind: str, xs: np.ndarray,
                    layers: Sequence[Sequence[Mapping[str, np.ndarray]]],
                    h0: np.ndarray | None = None,
                    c0: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    r"""A stack of recurrent layers from the book's cells, as ``torch.nn`` runs it.

    Layer 1 reads ``xs``; layer k > 1 reads the output of layer k - 1 (in a bidirectional
    stack, both directions' states concatenated, 2H features):

    .. math::

        h^{(1)}_t = \text{cell}^{(1)}(x_t, h^{(1)}_{t-1}), \qquad
        h^{(k)}_t = \text{cell}^{(k)}(h^{(k-1)}_t, h^{(k)}_{t-1}).

    No dropout between the layers (``torch.nn``'s ``dropout=0``, or ``eval()`` mode).

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
    xs : ndarray, shape (T, B, I)
    layers : sequence of sequences of dict
        ``layers[k]`` holds one parameter dict (a unidirectional layer) or two (forward,
        backward), as ``layer_params_from_torch`` returns them; every layer has the same
        number of directions D.
    h0, c0 : ndarray, shape (L D, B, H), optional
        Initial states in ``torch.nn``'s layout: layer by layer, forward direction first.

    Returns
    -------
    output : ndarray, shape (T, B, D H)
        The last layer's states.
    h_n : ndarray, shape (L D, B, H)
        Every layer's and direction's last state.
    c_n : ndarray, shape (L D, B, H)
        Their last cell states, for the LSTM only.
    """
    kind = check_choice("kind", kind, KINDS)
    xs = check_float_array("xs", xs, ndim=3, dims=("T", "B", "I"))
    if not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers must be a non-empty list of per-layer lists of parameter "
                         f"dicts, got {describe(layers)}")
    directions = {len(layer) if isinstance(layer, Sequence) else -1 for layer in layers}
    if len(directions) != 1 or directions.pop() not in (1, 2):
        raise ValueError("every entry of layers must be a list of one parameter dict "
                         "(unidirectional) or two (forward, backward), the same for every "
                         f"layer; got {[describe(layer) for layer in layers]}")
    if c0 is not None and kind != "lstm":
        raise ValueError(f"c0 is only for kind='lstm', got kind={kind!r}")
    count = len(layers) * len(layers[0])
    states = {}
    for name, value in (("h0", h0), ("c0", c0)):
        if value is not None:
            value = check_float_array(name, value, ndim=3, dims=("L D", "B", "H"))
            if value.shape[:2] != (count, xs.shape[1]):
                raise ValueError(f"{name} must have shape (L D, B, H) = ({count}, {xs.shape[1]},"
                                 f" H): one state per layer and direction, got {value.shape}")
        states[name] = value
    layer_input, last_h, last_c = xs, [], []
    for k, layer in enumerate(layers):
        rows = slice(k * len(layer), (k + 1) * len(layer))
        h_k = None if states["h0"] is None else states["h0"][rows]
        c_k = None if states["c0"] is None else states["c0"][rows]
        if len(layer) == 2:
            results = bidirectional_layer(kind, layer_input, layer[0], layer[1], h_k, c_k)
        else:
            hs, cs = _one_direction(kind, layer_input, layer[0],
                                    None if h_k is None else h_k[0],
                                    None if c_k is None else c_k[0])
            results = (hs, hs[-1:]) + (() if cs is None else (cs[-1:],))
        layer_input = results[0]
        last_h.append(results[1])
        if kind == "lstm":
            last_c.append(results[2])
    if kind != "lstm":
        return layer_input, np.concatenate(last_h)
    return layer_input, np.concatenate(last_h), np.concatenate(last_c)


# --------------------------------------------------------------------------------------
# Two tasks on bits
# --------------------------------------------------------------------------------------


def neighbour_xor_task(T: int, batch_size: int, rng: np.random.Generator | int, *,
                       as_torch: bool = False) -> tuple[Any, Any]:
    r"""Fair random bits, and at every inner step the XOR of its two neighbours.

    ::

        step:    0    1    2   ...  T-2   T-1
        input:   x_0  x_1  x_2 ...  x_T-2 x_T-1
        target:  -    x_0^x_2  ...  x_T-3^x_T-1   -

    :math:`y_t = x_{t-1} \oplus x_{t+1}` for t = 1 .. T-2; the first and last steps have no
    target (``IGNORE_INDEX``). A network that reads the bits from left to right has not
    seen :math:`x_{t+1}` when it must answer at step t, and :math:`y_t` is a fair coin given
    everything before it, so no such network beats accuracy 1/2 in expectation.

    Parameters
    ----------
    T : int
        Steps per sequence, at least 3.
    batch_size : int
    rng : numpy.random.Generator or int
    as_torch : bool

    Returns
    -------
    bits : ndarray or Tensor of int64, shape (T, B)
    targets : ndarray or Tensor of int64, shape (T, B)
        0 or 1 at steps 1 .. T-2, ``IGNORE_INDEX`` at steps 0 and T-1.
    """
    T = check_int("T", T, minimum=3)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    bits = _generator(rng).integers(0, 2, size=(T, batch_size), dtype=np.int64)
    targets = np.full_like(bits, IGNORE_INDEX)
    targets[1:-1] = bits[:-2] ^ bits[2:]
    return _to_output((bits, targets), as_torch)


def next_bit_task(T: int, batch_size: int, rng: np.random.Generator | int, *,
                  as_torch: bool = False) -> tuple[Any, Any]:
    """Fair coin flips, and at every step the next flip as the target (next-step prediction).

    ``targets[t] = bits[t + 1]`` for t = 0 .. T-2; the last step has no target
    (``IGNORE_INDEX``). The flips are independent, so the best accuracy of any predictor
    that reads only the past is 1/2.

    Parameters
    ----------
    T : int
        Steps per sequence, at least 2.
    batch_size : int
    rng : numpy.random.Generator or int
    as_torch : bool

    Returns
    -------
    bits, targets : ndarray or Tensor of int64, shape (T, B)
    """
    T = check_int("T", T, minimum=2)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    bits = _generator(rng).integers(0, 2, size=(T, batch_size), dtype=np.int64)
    targets = np.full_like(bits, IGNORE_INDEX)
    targets[:-1] = bits[1:]
    return _to_output((bits, targets), as_torch)


TAGGING_TASKS = {"neighbour_xor": neighbour_xor_task, "next_bit": next_bit_task}
"""The tasks ``train_tagger`` knows, by name."""


# --------------------------------------------------------------------------------------
# A tagger: a recurrent layer and a linear read-out at every step
# --------------------------------------------------------------------------------------


class SequenceTagger(nn.Module):
    r"""Bits in, two logits out at every step: ``torch_cells.LSTM`` and a linear read-out.

    .. math:: \text{logits}_t = W_{out}\, y_t + b_{out}, \qquad
              y_t = \text{the last layer's output at step } t

    (:math:`y_t = [\overrightarrow{h}_t ; \overleftarrow{h}_t]` when bidirectional).

    Parameters
    ----------
    hidden_size : int
        H per direction.
    num_layers : int
    bidirectional : bool

    Input: bits, int64 (T, B), read as one feature (0.0 or 1.0); output: logits (T, B, 2).
    """

    def __init__(self, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False) -> None:
        super().__init__()
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        num_layers = check_int("num_layers", num_layers, minimum=1)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional must be True or False, got {describe(bidirectional)}")
        self.rnn = torch_cells.LSTM(1, hidden_size, num_layers=num_layers,
                                    bidirectional=bidirectional)
        self.readout = nn.Linear(hidden_size * (2 if bidirectional else 1), 2)

    def forward(self, bits: torch.Tensor) -> torch.Tensor:
        """Bits (T, B) -> logits (T, B, 2)."""
        if not isinstance(bits, torch.Tensor) or bits.dim() != 2:
            raise ValueError(f"bits must be a (T, B) tensor of 0s and 1s, got {describe(bits)}")
        features = bits.to(self.readout.weight.dtype).unsqueeze(-1)
        return self.readout(self.rnn(features)[0])


def tagging_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the steps that have a target: logits (T, B, 2), targets (T, B)."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                       ignore_index=IGNORE_INDEX)


def tagging_accuracy(model: nn.Module, bits: torch.Tensor, targets: torch.Tensor) -> float:
    """The share of steps with a target that ``model`` answers right (argmax of its logits)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(bits.to(device)).argmax(-1).cpu()
    model.train(was_training)
    answered = targets != IGNORE_INDEX
    return float((predictions[answered] == targets[answered]).double().mean())


@dataclass
class TaggerResult:
    """One run of ``train_tagger``.

    Attributes
    ----------
    accuracy : float
        Test accuracy after training (steps with a target).
    parameters : int
        Trainable parameters of the model.
    losses : ndarray
        The training loss at every step.
    seconds : float
        CPU time of this process spent training (``time.process_time``).
    model : SequenceTagger
        The trained model.
    """

    accuracy: float
    parameters: int
    losses: np.ndarray
    seconds: float
    model: SequenceTagger


def train_tagger(task: str, *, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, seed: int = 0, steps: int = 150,
                 length: int = 10, batch_size: int = 32, lr: float = 0.02,
                 test_size: int = 1000, test_seed: int = 12_345,
                 device: torch.device | str = "cpu") -> TaggerResult:
    """Train a ``SequenceTagger`` on ``neighbour_xor_task`` or ``next_bit_task``.

    Adam with learning rate ``lr`` on ``steps`` fresh batches, the gradient clipped to
    global norm 1 (``training.train_steps``). ``torch.manual_seed(seed)`` sets the initial
    weights and ``numpy.random.default_rng([seed, 1])`` draws the batches; the test set
    (``test_size`` sequences of the same length) comes from ``test_seed`` and is the same
    for every model and seed.

    Returns
    -------
    TaggerResult
    """
    make = TAGGING_TASKS[check_choice("task", task, tuple(TAGGING_TASKS))]
    steps = check_int("steps", steps, minimum=1)
    torch.manual_seed(check_int("seed", seed, minimum=0))
    model = SequenceTagger(hidden_size, num_layers, bidirectional).to(device)
    batches = np.random.default_rng([seed, 1])
    test = make(length, test_size, test_seed, as_torch=True)
    start = time.process_time()
    history = train_steps(model, lambda: make(length, batch_size, batches, as_torch=True),
                          steps=steps, lr=lr, max_norm=1.0, loss_fn=tagging_loss)
    seconds = time.process_time() - start
    if history.diverged_at is not None:
        raise FloatingPointError(f"training diverged at step {history.diverged_at} "
                                 f"(task={task!r}, seed={seed})")
    return TaggerResult(accuracy=tagging_accuracy(model, *test),
                        parameters=sum(p.numel() for p in model.parameters()),
                        losses=history.losses, seconds=seconds, model=model)


def best_additive_accuracy() -> float:
    r"""The best accuracy on :math:`y = l \oplus r` of any rule "answer 1 iff a(l) + b(r) > 0".

    A one-layer bidirectional network with a linear read-out computes
    :math:`w^\top [\overrightarrow{h}_t ; \overleftarrow{h}_t] + b`, a function of the left
    part of the sequence plus a function of the right part. For fixed other bits, the four
    cases (l, r) of its two neighbours are equally likely, and no threshold of a sum a(l) +
    b(r) gets all four right (the XOR is not linearly separable), so it answers at most 3
    of 4. This enumerates every sign pattern that a sum a(l) + b(r) can produce on the four
    cases, and returns the best share of right answers: 3/4.
    """
    best = 0.0
    cases = [(0, 0), (0, 1), (1, 0), (1, 1)]
    # A grid of values for a(0), a(1), b(0), b(1) produces every pattern of signs that a
    # sum a(l) + b(r) can have on the four cases (14 of the 16; the tests check it).
    grid = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
    for a0 in grid:
        for a1 in grid:
            for b0 in grid:
                for b1 in grid:
                    a, b = (a0, a1), (b0, b1)
                    right = sum((a[l] + b[r] > 0) == bool(l ^ r) for l, r in cases)
                    best = max(best, right / 4)
    return best

