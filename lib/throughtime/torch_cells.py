r"""Recurrent cells written from scratch in PyTorch, drop-in for ``torch.nn``'s cells.

The classes here hold the same parameters as their ``torch.nn`` namesakes (names, shapes,
gate order, initialisation) and return the same values, so ``load_state_dict`` moves
weights between them in both directions. They never call ``torch.nn.LSTMCell`` and
friends: every equation is written with tensor operations.

- ``rnn_step``, ``lstm_step``, ``gru_step``: one time step as plain tensor operations;
  autograd differentiates them.
- ``RNNCell``, ``LSTMCell``, ``GRUCell``: the modules that compute one step with them.
- ``RecurrentInputError``, ``RecurrentDtypeError``: the errors for an input or a state
  that does not fit, shared with the layers.

The layers over whole sequences (``RNN``, ``LSTM``, ``GRU``, and the hand-derived BPTT of
their ``"fast"`` implementation) are ``throughtime.torch_layers``; they can be imported
from here too (``torch_cells.LSTM``). Notation: B sequences in a batch, I input features,
H hidden units; :math:`\sigma` is the logistic sigmoid and :math:`\odot` the elementwise
product.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from throughtime._validate import describe

__all__ = [
    "rnn_step",
    "lstm_step",
    "gru_step",
    "RecurrentInputError",
    "RecurrentDtypeError",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
]

_LAYER_NAMES = ("RNNRecurrence", "LSTMRecurrence", "GRURecurrence", "RNN", "LSTM", "GRU")

Implementation = Literal["fast", "autograd"]
IMPLEMENTATIONS = ("fast", "autograd")
NONLINEARITIES = ("tanh", "relu")


class RecurrentInputError(RuntimeError, ValueError):
    """An input or a state whose size, shape or device does not fit the module.

    ``torch.nn`` raises a ``RuntimeError`` for these mistakes, and this error is one; it
    is also a ``ValueError`` (an argument of the right type with a wrong value), so that
    code catching either keeps working.
    """


class RecurrentDtypeError(TypeError, ValueError, RuntimeError):
    """An input or a state whose dtype is not the parameters' dtype.

    ``torch.nn``'s layers raise a ``ValueError`` for this and its cells a
    ``RuntimeError``; this error is both, and a ``TypeError``, the kind of error the
    rest of the library raises for a wrong dtype.
    """


# --------------------------------------------------------------------------------------
# One time step, as plain tensor operations (autograd differentiates them)
# --------------------------------------------------------------------------------------


def rnn_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
             nonlinearity: str = "tanh") -> Tensor:
    r"""One step of the Elman RNN: :math:`h' = f(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})`.

    ``f`` is tanh or ReLU. Shapes: ``x`` (B, I), ``h`` (B, H), ``weight_ih`` (H, I),
    ``weight_hh`` (H, H), biases (H,) or ``None``; returns ``h'`` of shape (B, H).
    No input checks: the modules check their inputs before calling it.
    """
    pre_activation = functional.linear(x, weight_ih, bias_ih) + functional.linear(
        h, weight_hh, bias_hh)
    return torch.tanh(pre_activation) if nonlinearity == "tanh" else torch.relu(pre_activation)


def lstm_step(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None,
              bias_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""One LSTM step (``torch.nn.LSTMCell``), gate order i, f, g, o.

    .. math::

        \begin{aligned}
        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}), &
        f &= \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}), \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}), &
        o &= \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}), \\
        c' &= f \odot c + i \odot g, &
        h' &= o \odot \tanh(c').
        \end{aligned}

    Shapes: ``x`` (B, I), ``h`` and ``c`` (B, H), ``weight_ih`` (4H, I), ``weight_hh``
    (4H, H), biases (4H,) or ``None``; returns ``(h', c')``, each (B, H).
    No input checks: the modules check their inputs before calling it.
    """
    gates = functional.linear(x, weight_ih, bias_ih) + functional.linear(h, weight_hh, bias_hh)
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def gru_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    r"""One GRU step (``torch.nn.GRUCell``), gate order r, z, n.

    .. math::

        \begin{aligned}
        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}), \\
        z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}), \\
        n &= \tanh\big(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})\big), \\
        h' &= (1 - z) \odot n + z \odot h.
        \end{aligned}

    The reset gate multiplies :math:`W_{hn} h + b_{hn}`, after the matrix product (Cho et
    al. apply it before). Shapes: ``x`` (B, I), ``h`` (B, H), ``weight_ih`` (3H, I),
    ``weight_hh`` (3H, H), biases (3H,) or ``None``; returns ``h'`` (B, H).
    No input checks: the modules check their inputs before calling it.
    """
    x_r, x_z, x_n = functional.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = functional.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


# --------------------------------------------------------------------------------------
# Checks shared by the modules. The messages contain torch.nn's own message for the same
# mistake (code that matches on it keeps working) and add what was expected.
# --------------------------------------------------------------------------------------


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _check_type(owner: str, name: str, value: Any, expected: type, description: str) -> Any:
    """``torch.nn``'s constructor type check (``bool`` is not accepted as an ``int``)."""
    wrong_bool = expected is not bool and isinstance(value, bool)
    allowed = (int, np.integer) if expected is int else expected
    if wrong_bool or not isinstance(value, allowed):
        raise TypeError(f"{owner}: {name} should be of type {expected.__name__}, got: "
                        f"{type(value).__name__} ({description}, got {value!r})")
    return int(value) if expected is int else value


def _check_size(owner: str, name: str, value: Any, *, minimum: int) -> int:
    """A size argument: an integer (not a bool) of at least ``minimum``."""
    value = _check_type(owner, name, value, int, f"{name} is a number of features")
    if value < minimum:
        relation = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{owner}: {name} must be {relation}, got {value}")
    return value


def _check_nonlinearity(owner: str, nonlinearity: Any) -> str:
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{owner}: Unknown nonlinearity {nonlinearity!r}. Select from "
                         "'tanh' or 'relu'.")
    return nonlinearity


def _check_tensor(owner: str, name: str, value: Any, parameter: Tensor,
                  accepted: str = "a torch.Tensor") -> Tensor:
    """Check that ``value`` is a tensor of the parameters' dtype and device."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: {name} must be {accepted}, got {describe(value)}")
    if value.dtype != parameter.dtype:
        what = "RNN input" if name == "input" else name
        raise RecurrentDtypeError(
            f"{owner}: {what} dtype ({value.dtype}) does not match weight dtype "
            f"({parameter.dtype}). Convert input: input.to({parameter.dtype}), or convert "
            f"model: model.to({value.dtype})")
    if value.device != parameter.device:
        raise RecurrentInputError(
            f"{owner}: Input and parameter tensors are not at the same device, found "
            f"{name} at {value.device} and parameter tensor at {parameter.device}; move one "
            f"of them (for example {name}.to('{parameter.device}'))")
    return value


def _combined_bias(bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor | None:
    """``b_ih + b_hh``: in the RNN and the LSTM the two biases only appear as their sum."""
    return None if bias_ih is None else bias_ih + bias_hh


def _reset_uniform(module: nn.Module, hidden_size: int) -> None:
    """``torch.nn``'s initialisation: every parameter U(-1/sqrt(H), 1/sqrt(H)).

    The parameters are visited in registration order (weight_ih, weight_hh, bias_ih,
    bias_hh, then weight_hr for a projected LSTM, layer by layer and direction by
    direction), the order ``torch.nn`` uses, so the same seed gives the same weights.
    """
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for parameter in module.parameters():
        nn.init.uniform_(parameter, -bound, bound)


def _script_refusal(module: nn.Module) -> RuntimeError:
    name = type(module).__name__
    return RuntimeError(
        f"{name}: torch.jit.script cannot compile throughtime.torch_cells.{name}: its code "
        "uses Python features that TorchScript lacks, and its fast layers use a "
        "torch.autograd.Function, which TorchScript cannot compile (PyTorch 2.13 also "
        f"deprecates TorchScript). Use torch.compile, or load the weights into "
        f"torch.nn.{name} with load_state_dict and script that.")


# --------------------------------------------------------------------------------------
# Cells: one time step
# --------------------------------------------------------------------------------------


class _CellBase(nn.Module):
    """Parameters, initialisation, input checks and the forward pass of the three cells.

    A subclass sets ``gate_count`` and ``state_count`` (1, or 2 for the LSTM's (h, c))
    and implements ``_step(x, states) -> next states``.
    """

    gate_count = 1
    state_count = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        owner = type(self).__name__
        # torch.nn's cells accept zero sizes (the layers do not).
        self.input_size = _check_size(owner, "input_size", input_size, minimum=0)
        self.hidden_size = _check_size(owner, "hidden_size", hidden_size, minimum=0)
        self.bias = _check_type(owner, "bias", bias, bool, "bias must be True or False")
        factory = {"device": device, "dtype": dtype}
        rows = self.gate_count * self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, self.input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(rows, self.hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows, **factory))
            self.bias_hh = nn.Parameter(torch.empty(rows, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/sqrt(H), 1/sqrt(H)), in ``torch.nn``'s order."""
        _reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        return text

    def __prepare_scriptable__(self) -> nn.Module:
        raise _script_refusal(self)

    def _step(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def _state_labels(self) -> list[tuple[str, str, str]]:
        """For each state: its name here, torch.nn's name and its C++ name (messages)."""
        if self.state_count == 1:
            return [("hx", "hidden", "hidden0")]
        return [("hx[0] (h)", "hx[0]", "hidden0"), ("hx[1] (c)", "hx[1]", "hidden1")]

    def _forward(self, input: Any, hx: Any) -> tuple[Tensor, ...]:
        """Check the input and states, take one step, return the next states."""
        owner = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{owner}: input must be a torch.Tensor, got {describe(input)}")
        if input.dim() not in (1, 2):
            raise ValueError(f"{owner}: Expected input to be 1D or 2D, got {input.dim()}D "
                             f"instead: input must be (B, I), or (I,) for one sample; got "
                             f"shape {_shape(input)}")
        if input.shape[-1] != self.input_size:
            raise RecurrentInputError(
                f"{owner}: input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size} (the last axis of input holds the I = {self.input_size} "
                f"features; got shape {_shape(input)})")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        batch = x.shape[0]
        if hx is None:
            zeros = x.new_zeros(batch, self.hidden_size)
            states = (zeros,) * self.state_count
        else:
            if self.state_count == 2 and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                raise TypeError(f"{owner}: hx must be a tuple (h, c) of two tensors, got "
                                f"{describe(hx)}")
            values = tuple(hx) if self.state_count == 2 else (hx,)
            states = tuple(self._check_state(label, value, input, batch, batched)
                           for label, value in zip(self._state_labels(), values, strict=True))
        # The sizes first, then the dtypes and devices: torch.nn's order.
        _check_tensor(owner, "input", input, self.weight_ih)
        if hx is not None:
            for (name, _, _), state in zip(self._state_labels(), states, strict=True):
                _check_tensor(owner, name, state, self.weight_ih)
        next_states = self._step(x, states)
        return next_states if batched else tuple(state.squeeze(0) for state in next_states)

    def _check_state(self, label: tuple[str, str, str], value: Any, input: Tensor, batch: int,
                     batched: bool) -> Tensor:
        """Check one state against the input; return it as (B, H)."""
        owner = type(self).__name__
        name, torch_name, cpp_name = label
        if not isinstance(value, Tensor):
            raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {describe(value)}")
        if value.dim() not in (1, 2):
            raise ValueError(f"{owner}: Expected {torch_name} to be 1D or 2D, got "
                             f"{value.dim()}D instead: {name} must be (B, H), or (H,) for a "
                             f"1-D input; got shape {_shape(value)}")
        hidden = self.hidden_size
        if not batched:
            if _shape(value) != (hidden,):
                raise RecurrentInputError(f"{owner}: {name} must have shape (H,) = ({hidden},) "
                                          f"for a 1-D input, got {_shape(value)}")
            return value.unsqueeze(0)
        if value.dim() != 2 or value.shape[0] != batch:
            raise RecurrentInputError(
                f"{owner}: Input batch size {batch} doesn't match {cpp_name} batch size "
                f"{value.shape[0]}: {name} must have shape (B, H) = ({batch}, {hidden}), got "
                f"{_shape(value)}")
        if value.shape[1] != hidden:
            raise RecurrentInputError(
                f"{owner}: {cpp_name} has inconsistent hidden_size: got {value.shape[1]}, "
                f"expected {hidden}: {name} must have shape (B, H) = ({batch}, {hidden}), "
                f"got {_shape(value)}")
        return value


def _cell_docstring(gates: str, call: str, extra: str = "") -> str:
    """The call, Parameters and Notes sections shared by the three cells' docstrings."""
    return rf"""
    {call}

    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    bias : bool
        Whether to learn ``bias_ih`` and ``bias_hh`` (shape ({gates}H,) each).
    {extra}device, dtype
        Where and in which precision to create the parameters.
""" + _CELL_DIFFERENCES


_CELL_DIFFERENCES = r"""
    Notes
    -----
    Differences from ``torch.nn``: the sizes and ``bias`` are checked when the cell is
    built (``TypeError`` or ``ValueError``); a wrong input or state raises
    ``RecurrentInputError`` (a ``RuntimeError``, as in ``torch.nn``, and a
    ``ValueError``) or ``RecurrentDtypeError``, whose messages contain ``torch.nn``'s own
    and add the expected shape. ``torch.jit.script`` refuses the cell with a clear
    ``RuntimeError`` (``torch.jit.trace`` works).
"""


class RNNCell(_CellBase):
    r"""Elman RNN cell, a from-scratch twin of ``torch.nn.RNNCell``.

    .. math::

        h' = f(W_{ih} x + b_{ih} + W_{hh} h + b_{hh}), \qquad f = \tanh \text{ or ReLU}.

    The parameters ``weight_ih`` (H, I) and ``weight_hh`` (H, H) start, like the biases,
    uniform in :math:`(-1/\sqrt{H}, 1/\sqrt{H})`.
    """

    gate_count = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        self.nonlinearity = _check_nonlinearity(type(self).__name__, nonlinearity)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity={self.nonlinearity}"

    def _step(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (rnn_step(x, states[0], self.weight_ih, self.weight_hh, self.bias_ih,
                         self.bias_hh, self.nonlinearity),)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state ``h'`` for ``input`` and ``hx``: see the class docstring."""
        return self._forward(input, hx)[0]


class LSTMCell(_CellBase):
    r"""LSTM cell, a from-scratch twin of ``torch.nn.LSTMCell`` (gate order i, f, g, o).

    Computes ``lstm_step``: :math:`c' = f \odot c + i \odot g`, :math:`h' = o \odot
    \tanh(c')`, with :math:`i, f, o` sigmoid gates and :math:`g` a tanh candidate, each an
    affine function of :math:`x` and :math:`h`.

    ``weight_ih`` (4H, I) stacks :math:`W_{ii}, W_{if}, W_{ig}, W_{io}`; ``weight_hh``
    (4H, H) stacks :math:`W_{hi}, W_{hf}, W_{hg}, W_{ho}`. All parameters start uniform in
    :math:`(-1/\sqrt{H}, 1/\sqrt{H})`, so the forget gate starts near 0.5.
    """

    gate_count = 4
    state_count = 2

    def _step(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return lstm_step(x, states[0], states[1], self.weight_ih, self.weight_hh,
                         self.bias_ih, self.bias_hh)

    def forward(self, input: Tensor,
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """The next states ``(h', c')`` for ``input`` and ``hx``: see the class docstring."""
        h_next, c_next = self._forward(input, hx)
        return h_next, c_next


class GRUCell(_CellBase):
    r"""GRU cell, a from-scratch twin of ``torch.nn.GRUCell`` (gate order r, z, n).

    Computes ``gru_step``: :math:`n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h +
    b_{hn}))` and :math:`h' = (1 - z) \odot n + z \odot h`, with sigmoid gates r and z.

    ``weight_ih`` (3H, I) stacks :math:`W_{ir}, W_{iz}, W_{in}`; ``weight_hh`` (3H, H)
    stacks :math:`W_{hr}, W_{hz}, W_{hn}`; all start uniform in
    :math:`(-1/\sqrt{H}, 1/\sqrt{H})`.
    """

    gate_count = 3

    def _step(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (gru_step(x, states[0], self.weight_ih, self.weight_hh, self.bias_ih,
                         self.bias_hh),)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state ``h'`` for ``input`` and ``hx``: see the class docstring."""
        return self._forward(input, hx)[0]


_CALL_ONE_STATE_CELL = """Call ``cell(input, hx)``: ``input`` is (B, I), or (I,) for one sample, and
    ``hx``, the hidden state h, is (B, H), or (H,) (zeros if omitted); the call returns the
    next hidden state h', shaped like ``hx``."""
RNNCell.__doc__ += _cell_docstring("", _CALL_ONE_STATE_CELL, (
    'nonlinearity : {"tanh", "relu"}\n        The function f; an unknown name raises '
    "``ValueError`` here (``torch.nn`` raises a\n        ``RuntimeError`` at the first "
    "forward pass).\n    "))
_CALL_LSTM_CELL = """Call ``cell(input, hx)``: ``input`` is (B, I), or (I,) for one sample, and
    ``hx = (h, c)``, the hidden and cell states, are each (B, H), or (H,) (zeros if
    omitted); the call returns the next states ``(h', c')``, shaped like ``h``."""
LSTMCell.__doc__ += _cell_docstring("4", _CALL_LSTM_CELL)
GRUCell.__doc__ += _cell_docstring("3", _CALL_ONE_STATE_CELL)


def __getattr__(name: str) -> Any:
    """The layers (``torch_layers``) under this module's name too: ``torch_cells.LSTM``.

    Looked up when first asked for, because ``torch_layers`` builds on this module.
    """
    if name in _LAYER_NAMES:
        from . import torch_layers

        return getattr(torch_layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
