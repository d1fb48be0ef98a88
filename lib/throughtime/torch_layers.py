r"""Recurrent layers over whole sequences, from scratch in PyTorch, drop-in for ``torch.nn``.

The layers hold the same parameters as their ``torch.nn`` namesakes (names, shapes, gate
order, initialisation) and return the same values, so ``load_state_dict`` moves weights
between them in both directions. Each step is one of ``torch_cells``' step functions;
nothing calls ``torch.nn.LSTM`` and friends.

- ``RNN``, ``LSTM``, ``GRU``: a whole sequence, time-major (T, B, I), with everything
  ``torch.nn``'s layers offer: stacked layers (``num_layers``) with ``dropout`` between
  them, ``bidirectional``, ``batch_first``, unbatched input, ``PackedSequence`` input, and
  ``proj_size`` for the LSTM.

The layers have two implementations of backpropagation through time (BPTT):

``implementation="autograd"``
    A Python loop over the step functions. Autograd records every small operation of
    every step and replays the graph backwards. The clearest code, but each of the
    thousands of recorded operations costs Python and bookkeeping time.

``implementation="fast"`` (the default)
    Each layer and direction is one ``torch.autograd.Function`` (``RNNRecurrence``,
    ``LSTMRecurrence``, ``GRURecurrence``, in ``torch_bptt``). Its forward computes the
    input projections :math:`x_t W_{ih}^\top + b` of all T steps with one matrix product,
    then runs the recurrence. Its backward is the hand-derived BPTT: one matrix product
    per step back through time, then the gradients of :math:`W_{ih}` and :math:`W_{hh}`
    for all steps at once, one product each. The backward is written in differentiable
    operations: when a graph of the gradient is asked for (``create_graph=True``,
    ``torch.func.grad``), it first recomputes the forward states with a graph, so second
    derivatives are exact. It has a ``vmap`` rule, so ``torch.func`` transforms and
    batched gradients work.

Both give the same numbers; the tests check them against ``torch.nn``, against each other
and with ``torch.autograd.gradcheck`` and ``gradgradcheck``; PyTorch's own tests of its
recurrent modules run on these classes too. Notation: T time steps, B sequences in a
batch, I input features, H hidden units; :math:`\sigma` is the logistic sigmoid and
:math:`\odot` the elementwise product.

Where they differ from ``torch.nn``: each class's docstring ends with the list.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from throughtime._validate import check_choice, describe

from .torch_bptt import (  # noqa: F401  (the recurrences, importable from here too)
    GRURecurrence,
    LSTMRecurrence,
    RNNRecurrence,
    _run_steps,
)
from .torch_cells import (
    IMPLEMENTATIONS,
    Implementation,
    RecurrentInputError,
    _check_nonlinearity,
    _check_size,
    _check_tensor,
    _check_type,
    _combined_bias,
    _reset_uniform,
    _script_refusal,
    _shape,
    gru_step,
    lstm_step,
    rnn_step,
)

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
]

# --------------------------------------------------------------------------------------
# Layers: whole sequences, stacked and in both directions
# --------------------------------------------------------------------------------------

_WEIGHT_STEMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


class _LayerBase(nn.Module):
    """Parameters, attributes, input checks and the layer loop shared by the three layers.

    A subclass sets ``gate_count`` and ``state_count`` (1, or 2 for the LSTM's (h, c)) and
    implements ``_fast_recurrence`` and ``_step``, the two implementations of one layer
    in one direction over a time-major sequence.
    """

    gate_count = 1
    state_count = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool,
                 proj_size: int | None, device: Any, dtype: torch.dtype | None,
                 implementation: str) -> None:
        super().__init__()
        owner = type(self).__name__
        if proj_size is not None and self.state_count == 1:  # as torch.nn: even 0
            raise ValueError(f"{owner}: proj_size argument is only supported for LSTM, not "
                             "RNN or GRU")
        # The checks of torch.nn.RNNBase, in its order and with its messages.
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{owner}: dropout should be a number in range [0, 1] "
                             f"representing the probability of an element being zeroed, got "
                             f"{dropout!r}")
        bias = _check_type(owner, "bias", bias, bool, "True or False")
        batch_first = _check_type(owner, "batch_first", batch_first, bool, "True or False")
        input_size = _check_size(owner, "input_size", input_size, minimum=1)
        hidden_size = _check_size(owner, "hidden_size", hidden_size, minimum=1)
        num_layers = _check_size(owner, "num_layers", num_layers, minimum=1)
        bidirectional = _check_type(owner, "bidirectional", bidirectional, bool,
                                    "True or False")
        proj_size = _check_type(owner, "proj_size", proj_size or 0, int,
                                "0 or a number of features")
        if proj_size < 0:
            raise ValueError(f"{owner}: proj_size should be a positive integer or zero to "
                             f"disable projections, got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"{owner}: proj_size has to be smaller than hidden_size, got "
                             f"proj_size={proj_size} and hidden_size={hidden_size}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        self.implementation = check_choice("implementation", implementation, IMPLEMENTATIONS)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        factory = {"device": device, "dtype": dtype}
        rows, out_size = self.gate_count * hidden_size, proj_size or hidden_size
        # Parameters are registered in torch.nn's order, which is also the order of
        # initialisation: layer by layer, direction by direction.
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(self._directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                layer_input = input_size if layer == 0 else out_size * self._directions
                shapes = {"weight_ih": (rows, layer_input), "weight_hh": (rows, out_size)}
                if bias:
                    shapes.update(bias_ih=(rows,), bias_hh=(rows,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                names = [stem + suffix for stem in shapes]
                for name, shape in zip(names, shapes.values(), strict=True):
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
                if not bias:
                    self.register_parameter("bias_ih" + suffix, None)
                    self.register_parameter("bias_hh" + suffix, None)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _flat_weights(self) -> list[Tensor | None]:
        """The weights in ``torch.nn``'s order, read afresh at every access.

        Utilities such as ``torch.nn.utils.weight_norm`` replace a weight by a computed
        tensor; reading the attributes by name always gives the current ones.
        """
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """The weights of each layer and direction, as ``torch.nn``'s ``all_weights``."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Do nothing (accepted for compatibility).

        ``torch.nn`` copies the weights into one block of memory for cuDNN; these layers
        use each weight tensor where it is, so there is nothing to flatten.
        """

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/sqrt(H), 1/sqrt(H)), in ``torch.nn``'s order."""
        _reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.batch_first is not False:
            text += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            text += f", bidirectional={self.bidirectional}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        if self.implementation != "fast":
            text += f", implementation={self.implementation!r}"
        return text

    def __prepare_scriptable__(self) -> nn.Module:
        raise _script_refusal(self)

    def _fast_recurrence(self, sequence: Tensor, initial: tuple[Tensor, ...],
                         weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        """One layer in one direction, by the layer's ``...Recurrence`` Function."""
        raise NotImplementedError

    def _step(self, x: Tensor, state: tuple[Tensor, ...],
              weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        """One time step by the step function: the next state from ``state``."""
        raise NotImplementedError

    def _recurrence(self, sequence: Tensor, initial: tuple[Tensor, ...],
                    weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        """One layer in one direction: the states (T, B, ·) from ``initial`` (B, ·).

        ``weights`` are (weight_ih, weight_hh, bias_ih, bias_hh, weight_hr), absent ones
        ``None``; the states are h, or (h, c) for the LSTM. In bfloat16 and float16 the
        recurrence runs in float32 and its results are rounded, as fused kernels do: the
        errors of the half-precision intermediates would otherwise pile up over time.
        """
        dtype = sequence.dtype
        if dtype in (torch.bfloat16, torch.float16):
            sequence, initial, weights = (
                sequence.float(), tuple(state.float() for state in initial),
                tuple(None if weight is None else weight.float() for weight in weights))
        if self.implementation == "fast":
            states = self._fast_recurrence(sequence, initial, weights)
        else:
            states = _run_steps(lambda x, state: self._step(x, state, weights), sequence,
                                initial)
        return tuple(state.to(dtype) for state in states)

    def _direction_weights(self, index: int) -> tuple[Tensor | None, ...]:
        """(weight_ih, weight_hh, bias_ih, bias_hh, weight_hr) of layer-direction ``index``."""
        layer, direction = divmod(index, self._directions)
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return tuple(getattr(self, stem + suffix, None) for stem in _WEIGHT_STEMS)

    def _forward(self, input: Any, hx: Any) -> tuple[Any, tuple[Tensor, ...]]:
        """Check the arguments, run every layer and direction; (output, final states)."""
        owner = type(self).__name__
        if torch.jit.is_tracing():
            raise RuntimeError(
                f"{owner}: torch.jit.trace cannot record this layer: its fast path is a "
                "torch.autograd.Function, which a trace cannot replay, and its autograd "
                "path would be recorded for one sequence length only. Use torch.compile, or "
                f"load the weights into torch.nn.{owner} with load_state_dict and trace that.")
        check_choice("implementation", self.implementation, IMPLEMENTATIONS)
        weight = self.weight_ih_l0
        lengths = None
        if isinstance(input, PackedSequence):
            _check_tensor(owner, "input", input.data, weight)
            if input.data.dim() != 2 or input.data.shape[-1] != self.input_size:
                raise RecurrentInputError(
                    f"{owner}: input.size(-1) must be equal to input_size. Expected "
                    f"{self.input_size}, got {input.data.shape[-1]} (the packed data has "
                    f"shape {_shape(input.data)})")
            xs, lengths = pad_packed_sequence(input)  # (T, B, I), in the caller's order
            batched = True
        else:
            xs, batched = self._time_major_input(input, weight)
        states = self._initial_states(hx, xs, batched)
        output, final = self._run_layers(xs, states, lengths)
        if lengths is not None:
            output = _pack_like(output, lengths, input)
        elif not batched:
            output, final = output.squeeze(1), tuple(state.squeeze(1) for state in final)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, final

    def _time_major_input(self, input: Any, weight: Tensor) -> tuple[Tensor, bool]:
        """Check ``input``; return it as (T, B, I) and whether it was batched."""
        owner = type(self).__name__
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if not isinstance(input, Tensor):
            raise TypeError(f"{owner}: input must be a torch.Tensor or a PackedSequence, got "
                            f"{describe(input)}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{owner}: Expected input to be 2D or 3D, got {input.dim()}D "
                             f"instead: input must be {layout}, or (T, I) for one sequence; "
                             f"got shape {_shape(input)}")
        _check_tensor(owner, "input", input, weight)
        if input.shape[-1] != self.input_size:
            raise RecurrentInputError(
                f"{owner}: input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {input.shape[-1]} (input has shape {_shape(input)}; "
                f"its last axis holds the features)")
        batched = input.dim() == 3
        if not batched:
            xs = input.unsqueeze(1)  # batch_first does not apply to one sequence
        else:
            xs = input.transpose(0, 1) if self.batch_first else input
        if xs.shape[0] == 0:
            raise RecurrentInputError(f"{owner}: Expected sequence length to be larger than 0 "
                                      f"in RNN: input has shape {_shape(input)}, no time step")
        return xs, batched

    def _initial_states(self, hx: Any, xs: Tensor, batched: bool) -> tuple[Tensor, ...]:
        """Check ``hx``; return each initial state as (num_layers * directions, B, ·)."""
        owner = type(self).__name__
        count, batch = self.num_layers * self._directions, xs.shape[1]
        sizes = (self.proj_size or self.hidden_size, self.hidden_size)[: self.state_count]
        if hx is None:
            return tuple(xs.new_zeros(count, batch, size) for size in sizes)
        if self.state_count == 2:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{owner}: hx must be a tuple (h_0, c_0) of two tensors, got "
                                f"{describe(hx)}")
            values, labels = tuple(hx), ("hx[0] (h_0)", "hx[1] (c_0)")
            torch_labels = ("hidden[0]", "hidden[1]")
        else:
            values, labels, torch_labels = (hx,), ("hx",), ("hidden",)
        for value, label in zip(values, labels, strict=True):
            if not isinstance(value, Tensor):
                raise TypeError(f"{owner}: {label} must be a torch.Tensor, got "
                                f"{describe(value)}")
        ndim = 3 if batched else 2
        if any(value.dim() != ndim for value in values):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            found = ", ".join(f"{value.dim()}-D" for value in values)
            states = "hx" if len(values) == 1 else "hx and cx"
            found = f"{found} tensor" if len(values) == 1 else f"({found}) tensors"
            raise RecurrentInputError(f"{owner}: For {kind} input, {states} should also be "
                                      f"{ndim}-D but got {found}")
        states = []
        for value, label, torch_label, size in zip(values, labels, torch_labels, sizes,
                                                   strict=True):
            _check_tensor(owner, label, value, self.weight_ih_l0)
            expected = (count, batch, size) if batched else (count, size)
            if _shape(value) != expected:
                symbol = "proj_size" if size != self.hidden_size else "H"
                dims = (f"(num_layers * num_directions, B, {symbol})" if batched
                        else f"(num_layers * num_directions, {symbol}) for one sequence")
                raise RecurrentInputError(
                    f"{owner}: Expected {torch_label} size {expected}, got "
                    f"{list(value.shape)}: {label} must have shape {dims} = {expected}")
            states.append(value if batched else value.unsqueeze(1))
        return tuple(states)

    def _run_layers(self, xs: Tensor, states: tuple[Tensor, ...],
                    lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Every layer and direction; the last layer's output and the final states.

        With ``lengths`` (packed input), the sequences are padded: the reverse direction
        reads each sequence backwards from its own last step, and a final state is the
        state at the sequence's last step.
        """
        reverse_index = None if lengths is None else _reverse_index(lengths, xs)
        layer_input, final = xs, [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions):
                index = layer * self._directions + direction
                initial = tuple(state[index] for state in states)
                sequence = layer_input if direction == 0 else _reverse(layer_input, reverse_index)
                sequences = self._recurrence(sequence, initial, self._direction_weights(index))
                for states_of_kind, states_over_time in zip(final, sequences, strict=True):
                    states_of_kind.append(_last_step(states_over_time, lengths))
                output = sequences[0]
                outputs.append(output if direction == 0 else _reverse(output, reverse_index))
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
            if self.dropout > 0 and layer < self.num_layers - 1 and self.training:
                layer_input = functional.dropout(layer_input, self.dropout, training=True)
        if self.implementation == "fast" and self._directions == 1:
            # The fast path saves its output for the backward pass: hand out a copy, so
            # that editing the output in place leaves the backward pass intact.
            layer_input = layer_input.clone()
        return layer_input, tuple(torch.stack(states_of_kind) for states_of_kind in final)


def _reverse_index(lengths: Tensor, xs: Tensor) -> Tensor:
    """(T, B) indices that reverse each padded sequence within its own length."""
    steps = torch.arange(xs.shape[0], device=xs.device).unsqueeze(1)
    lengths = lengths.to(xs.device).unsqueeze(0)
    return torch.where(steps < lengths, lengths - 1 - steps, steps)


def _reverse(sequence: Tensor, reverse_index: Tensor | None) -> Tensor:
    """A (T, B, ·) sequence backwards in time (each padded sequence within its length)."""
    if reverse_index is None:
        return sequence.flip(0)
    return sequence.gather(0, reverse_index.unsqueeze(2).expand_as(sequence))


def _last_step(states: Tensor, lengths: Tensor | None) -> Tensor:
    """The state at each sequence's last step: (T, B, ·) -> (B, ·)."""
    if lengths is None:
        return states[-1]
    batch = torch.arange(states.shape[1], device=states.device)
    return states[lengths.to(states.device) - 1, batch]


def _pack_like(output: Tensor, lengths: Tensor, packed: PackedSequence) -> PackedSequence:
    """The padded (T, B, ·) output packed in the layout of the ``packed`` input."""
    if packed.sorted_indices is not None:
        output = output.index_select(1, packed.sorted_indices)
        lengths = lengths[packed.sorted_indices.cpu()]
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                          packed.unsorted_indices)


def _layer_parameters(gates: str, extra: str = "") -> str:
    """The Parameters section shared by the three layers' docstrings."""
    return rf"""
    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    num_layers : int
        Layers stacked on top of each other; layer k > 0 reads the outputs of layer k - 1
        (both directions, concatenated).
    {extra}bias : bool
        Whether to learn ``bias_ih_l{{k}}`` and ``bias_hh_l{{k}}``, ({gates}H,) each.
    batch_first : bool
        If True, ``input`` and ``output`` are (B, T, ·) instead of (T, B, ·) (the states
        stay (num_layers * num_directions, B, H)).
    dropout : float
        Probability of zeroing each output of every layer but the last, while training
        (``torch.nn.functional.dropout``).
    bidirectional : bool
        If True, each layer also reads the sequence backwards, with its own parameters
        (suffix ``_reverse``); its outputs are concatenated to the forward ones."""


_NAMES = r"""
    Parameters are named as in ``torch.nn`` (``weight_ih_l{k}``, ``weight_hh_l{k}``,
    ``bias_ih_l{k}``, ``bias_hh_l{k}``, with the suffix ``_reverse`` for the backward
    direction) and start uniform in :math:`(-1/\sqrt{H}, 1/\sqrt{H})`, drawn in
    ``torch.nn``'s order, so the same seed gives the same weights and ``load_state_dict``
    works in both directions.
"""
_CALL_ONE_STATE = r"""
    Call ``layer(input, hx)``. ``input`` is (T, B, I), or (B, T, I) with ``batch_first``,
    or (T, I) for one sequence, or a ``torch.nn.utils.rnn.PackedSequence``; ``hx``, the
    initial hidden states, is (num_layers D, B, H), or (num_layers D, H) for one sequence
    (zeros if omitted), with D = 2 directions if ``bidirectional``, else 1. The call
    returns ``(output, h_n)``: the last layer's hidden states :math:`h_1 \ldots h_T`, laid
    out like ``input``, with D H features (the two directions concatenated), and every
    layer's and direction's last hidden state, laid out like ``hx``.
""" + _NAMES
_CALL_LSTM = r"""
    Call ``layer(input, hx)``. ``input`` is (T, B, I), or (B, T, I) with ``batch_first``,
    or (T, I) for one sequence, or a ``torch.nn.utils.rnn.PackedSequence``;
    ``hx = (h_0, c_0)``, the initial hidden and cell states, are (num_layers D, B, P) and
    (num_layers D, B, H), without the B axis for one sequence (zeros if omitted), with
    D = 2 directions if ``bidirectional``, else 1. The call returns
    ``(output, (h_n, c_n))``: the last layer's hidden states :math:`h_1 \ldots h_T`, laid
    out like ``input``, with D P features (the two directions concatenated), and every
    layer's and direction's last hidden and cell states, laid out like ``hx``.
""" + _NAMES

_LAYER_ARGUMENTS = r"""
    device, dtype
        Where and in which precision to create the parameters.
    implementation : {"fast", "autograd"}
        ``"fast"``: one input projection for all steps and the ``...Recurrence`` Function
        (hand-derived BPTT) per layer and direction; ``"autograd"``: a Python loop of the
        step function, differentiated by autograd.

    Notes
    -----
    Differences from ``torch.nn``:

    - Errors: a wrong input or state raises ``RecurrentInputError`` (a ``RuntimeError``,
      as in ``torch.nn``, and a ``ValueError``) or ``RecurrentDtypeError`` (``TypeError``,
      ``ValueError`` and ``RuntimeError``); each message contains ``torch.nn``'s own and
      adds the expected shape. ``num_layers``, ``bidirectional`` and ``proj_size`` are
      type-checked (``torch.nn`` accepts any value that works).
    - TorchScript: ``torch.jit.script`` and ``torch.jit.trace`` refuse these layers with a
      ``RuntimeError`` saying why (PyTorch 2.13 deprecates TorchScript).
    - ``flatten_parameters()`` does nothing; ``_flat_weights`` and ``all_weights`` are
      read from the attributes at every access, so they are never stale.
    - The output and the final states never share memory, and editing them in place
      leaves ``backward`` working (``torch.nn.LSTM`` in float32 on a CPU refuses an edit
      of its output).
    - Dropout between layers draws other random numbers than ``torch.nn`` (whose kernels
      draw their own masks): same distribution, different masks.
    - Second derivatives: with ``implementation="fast"`` a backward pass with
      ``create_graph=True`` first recomputes the forward states with a graph (one more
      forward pass). Forward-mode AD (``torch.func.jvp``, ``jacfwd``) needs
      ``implementation="autograd"``.
    - ``vmap`` over the weights themselves (an ensemble of layers) runs one layer call per
      mapped slice.
    - ``repr`` adds ``nonlinearity=relu`` for a ReLU RNN (``torch.nn`` omits it) and the
      implementation when it is not ``"fast"``.
    - In bfloat16 and float16 the recurrence runs in float32 and its results are rounded
      to the layer's dtype: on a CPU this is more accurate than ``torch.nn``
      (``make bench`` prints both errors against float64).
    - Speed and memory: on a CPU a float32 training step takes about as long as
      ``torch.nn``'s, and keeps more memory for the backward pass (the gate activations
      and a copy of the output; ``make bench`` measures both); on a GPU the loop over
      time runs in Python, where ``torch.nn`` uses cuDNN.
"""


class RNN(_LayerBase):
    r"""Elman RNN over a sequence, a from-scratch twin of ``torch.nn.RNN``.

    For t = 1..T: :math:`h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`, with
    f tanh or ReLU; ``weight_ih_l{k}`` is (H, I) for the first layer, (H, D H) above it
    (D = 2 directions or 1), ``weight_hh_l{k}`` (H, H).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None, *,
                 implementation: Implementation = "fast", proj_size: int | None = None) -> None:
        self.nonlinearity = _check_nonlinearity("RNN", nonlinearity)
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, implementation)

    def _fast_recurrence(self, sequence: Tensor, initial: tuple[Tensor, ...],
                         weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        weight_ih, weight_hh, bias_ih, bias_hh, _ = weights
        bias = _combined_bias(bias_ih, bias_hh)
        return (RNNRecurrence.apply(sequence, *initial, weight_ih, weight_hh, bias,
                                    self.nonlinearity),)

    def _step(self, x: Tensor, state: tuple[Tensor, ...],
              weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        return (rnn_step(x, *state, *weights[:4], self.nonlinearity),)

    def forward(self, input: Tensor | PackedSequence,
                hx: Tensor | None = None) -> tuple[Tensor | PackedSequence, Tensor]:
        """``(output, h_n)`` for ``input`` and ``hx``: see the class docstring."""
        output, (h_n,) = self._forward(input, hx)
        return output, h_n


class LSTM(_LayerBase):
    r"""LSTM over a sequence, a from-scratch twin of ``torch.nn.LSTM``.

    For t = 1..T, ``lstm_step`` with gate order i, f, g, o:
    :math:`c_t = f_t \odot c_{t-1} + i_t \odot g_t`, :math:`h_t = o_t \odot \tanh(c_t)`,
    and with ``proj_size`` = P > 0, :math:`h_t = W_{hr} (o_t \odot \tanh(c_t))`.
    ``weight_ih_l{k}`` is (4H, I) for the first layer, (4H, D P) above it (D = 2
    directions or 1, P = H without projection), ``weight_hh_l{k}`` (4H, P),
    ``weight_hr_l{k}`` (P, H). The effective bias of each gate is ``bias_ih + bias_hh``.
    """

    gate_count = 4
    state_count = 2
    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: torch.dtype | None = None, *,
                 implementation: Implementation = "fast") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, implementation)

    def _fast_recurrence(self, sequence: Tensor, initial: tuple[Tensor, ...],
                         weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        weight_ih, weight_hh, bias_ih, bias_hh, weight_hr = weights
        bias = _combined_bias(bias_ih, bias_hh)
        h, c, _, _ = LSTMRecurrence.apply(sequence, *initial, weight_ih, weight_hh, bias,
                                          weight_hr)
        return h, c

    def _step(self, x: Tensor, state: tuple[Tensor, ...],
              weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        h, c = lstm_step(x, *state, *weights[:4])
        weight_hr = weights[4]
        return (h if weight_hr is None else functional.linear(h, weight_hr)), c

    def forward(self, input: Tensor | PackedSequence,
                hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        """``(output, (h_n, c_n))`` for ``input`` and ``hx``: see the class docstring."""
        output, (h_n, c_n) = self._forward(input, hx)
        return output, (h_n, c_n)


class GRU(_LayerBase):
    r"""GRU over a sequence, a from-scratch twin of ``torch.nn.GRU``.

    For t = 1..T, ``gru_step`` with gate order r, z, n:
    :math:`n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))`,
    :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`. ``weight_ih_l{k}`` is (3H, I)
    for the first layer, (3H, D H) above it (D = 2 directions or 1), ``weight_hh_l{k}``
    (3H, H).
    """

    gate_count = 3
    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None, *,
                 implementation: Implementation = "fast", proj_size: int | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, implementation)

    def _fast_recurrence(self, sequence: Tensor, initial: tuple[Tensor, ...],
                         weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        h, _, _ = GRURecurrence.apply(sequence, *initial, *weights[:4])
        return (h,)

    def _step(self, x: Tensor, state: tuple[Tensor, ...],
              weights: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        return (gru_step(x, *state, *weights[:4]),)

    def forward(self, input: Tensor | PackedSequence,
                hx: Tensor | None = None) -> tuple[Tensor | PackedSequence, Tensor]:
        """``(output, h_n)`` for ``input`` and ``hx``: see the class docstring."""
        output, (h_n,) = self._forward(input, hx)
        return output, h_n


_NONLINEARITY = 'nonlinearity : {"tanh", "relu"}\n        The function f.\n    '
RNN.__doc__ += _CALL_ONE_STATE + _layer_parameters("", _NONLINEARITY) + _LAYER_ARGUMENTS
LSTM.__doc__ += _CALL_LSTM + _layer_parameters("4") + r"""
    proj_size : int
        If P > 0, each layer's hidden state is projected to P features,
        :math:`h_t = W_{hr} m_t`; ``h_0`` and the output have P features.""" + _LAYER_ARGUMENTS
GRU.__doc__ += _CALL_ONE_STATE + _layer_parameters("3") + _LAYER_ARGUMENTS
