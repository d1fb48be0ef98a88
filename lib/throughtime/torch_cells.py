r"""Recurrent cells and layers written from scratch in PyTorch, drop-in for ``torch.nn``.

The classes here hold the same parameters as their ``torch.nn`` namesakes (names, shapes,
gate order, initialisation) and return the same values, so ``load_state_dict`` moves
weights between them in both directions. They never call ``torch.nn.LSTM`` and friends:
every equation is written with tensor operations.

- ``RNNCell``, ``LSTMCell``, ``GRUCell``: one time step, computed by the small step
  functions ``rnn_step``, ``lstm_step`` and ``gru_step``; autograd differentiates them.
- ``RNN``, ``LSTM``, ``GRU``: one layer over a whole sequence, time-major (T, B, I).

The layers have two implementations of backpropagation through time (BPTT):

``implementation="autograd"``
    A Python loop over the step functions. Autograd records every small operation of
    every step and replays the graph backwards. The clearest code, but each of the
    thousands of recorded operations costs Python and bookkeeping time.

``implementation="fast"`` (the default)
    The whole layer is one ``torch.autograd.Function`` (``RNNRecurrence``,
    ``LSTMRecurrence``, ``GRURecurrence``). Its forward computes the input projections
    :math:`x_t W_{ih}^\top + b` of all T steps with one matrix product, then runs the
    recurrence. Its backward is the hand-derived BPTT: one matrix product per step back
    through time, then the gradients of :math:`W_{ih}` and :math:`W_{hh}` for all steps at
    once, one product each. It gives first derivatives only (double backward raises).

Both give the same numbers; the tests check them against ``torch.nn``, against each other
and with ``torch.autograd.gradcheck``. Notation: T time steps, B sequences in a batch,
I input features, H hidden units; :math:`\sigma` is the logistic sigmoid and
:math:`\odot` the elementwise product.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional

from throughtime._validate import check_choice, check_int

__all__ = [
    "rnn_step",
    "lstm_step",
    "gru_step",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "RNNRecurrence",
    "LSTMRecurrence",
    "GRURecurrence",
    "RNN",
    "LSTM",
    "GRU",
]

Implementation = Literal["fast", "autograd"]
IMPLEMENTATIONS = ("fast", "autograd")
NONLINEARITIES = ("tanh", "relu")

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
# Input checks shared by the modules
# --------------------------------------------------------------------------------------


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _check_tensor(owner: str, name: str, value: Any, parameter: Tensor) -> Tensor:
    """Check that ``value`` is a tensor with the parameters' dtype and device."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype != parameter.dtype:
        raise TypeError(
            f"{owner}: {name} has dtype {value.dtype} but the parameters have dtype "
            f"{parameter.dtype}; convert one of them (for example {name}.to({parameter.dtype}) "
            f"or module.to({value.dtype}))"
        )
    if value.device != parameter.device:
        raise ValueError(
            f"{owner}: {name} is on device {value.device} but the parameters are on "
            f"{parameter.device}; move one of them (for example {name}.to('{parameter.device}'))"
        )
    return value


def _check_shape(owner: str, name: str, value: Tensor, expected: tuple[int, ...],
                 dims: str) -> Tensor:
    """Check that ``value`` has shape ``expected`` (named ``dims``, such as "(B, H)")."""
    if _shape(value) != expected:
        raise ValueError(f"{owner}: {name} must have shape {dims} = {expected}, "
                         f"got {_shape(value)}")
    return value


def _check_module_arguments(input_size: Any, hidden_size: Any, bias: Any) -> tuple[int, int]:
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be True or False, got {bias!r}")
    return input_size, hidden_size


def _reset_uniform(module: nn.Module, hidden_size: int) -> None:
    """``torch.nn``'s initialisation: every parameter U(-1/sqrt(H), 1/sqrt(H)).

    The parameters are visited in registration order (weight_ih, weight_hh, bias_ih,
    bias_hh), the order ``torch.nn`` uses, so the same seed gives the same weights.
    """
    bound = 1.0 / math.sqrt(hidden_size)
    for parameter in module.parameters():
        nn.init.uniform_(parameter, -bound, bound)


# --------------------------------------------------------------------------------------
# Cells: one time step
# --------------------------------------------------------------------------------------


class _CellBase(nn.Module):
    """Parameters, initialisation and input checks shared by the three cells."""

    gate_count = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        input_size, hidden_size = _check_module_arguments(input_size, hidden_size, bias)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        factory = {"device": device, "dtype": dtype}
        rows = self.gate_count * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **factory))
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
        if not self.bias:
            text += ", bias=False"
        return text

    def _check_input(self, input: Any) -> tuple[Tensor, bool]:
        """Return ``input`` as (B, I) and whether it was batched."""
        owner = type(self).__name__
        _check_tensor(owner, "input", input, self.weight_ih)
        if input.dim() not in (1, 2):
            raise ValueError(f"{owner}: input must be 2-D (B, I) or 1-D (I,) for one sample, "
                             f"got {input.dim()}-D shape {_shape(input)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: input's last axis must be input_size = "
                             f"{self.input_size}, got shape {_shape(input)}")
        batched = input.dim() == 2
        return (input if batched else input.unsqueeze(0)), batched

    def _check_state(self, name: str, value: Any, batch: int, batched: bool) -> Tensor:
        """Return the state ``value`` as (B, H), checking it against the input."""
        owner = type(self).__name__
        _check_tensor(owner, name, value, self.weight_ih)
        if batched:
            return _check_shape(owner, name, value, (batch, self.hidden_size), "(B, H)")
        _check_shape(owner, name, value, (self.hidden_size,), "(H,) for a 1-D input")
        return value.unsqueeze(0)


class RNNCell(_CellBase):
    r"""Elman RNN cell, a from-scratch twin of ``torch.nn.RNNCell``.

    .. math::

        h' = f(W_{ih} x + b_{ih} + W_{hh} h + b_{hh}), \qquad f = \tanh \text{ or ReLU}.

    The parameters ``weight_ih`` (H, I) and ``weight_hh`` (H, H) start, like the biases,
    uniform in :math:`(-1/\sqrt{H}, 1/\sqrt{H})`.

    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    bias : bool
        Whether to learn ``bias_ih`` and ``bias_hh`` (shape (H,) each).
    nonlinearity : {"tanh", "relu"}
        The function f.
    device, dtype
        Where and in which precision to create the parameters.
    """

    gate_count = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity='relu'"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step: ``input`` (B, I) or (I,), ``hx`` (B, H) or (H,) (zeros if ``None``).

        Returns
        -------
        Tensor
            The next hidden state, (B, H) or (H,).
        """
        x, batched = self._check_input(input)
        h = (x.new_zeros(x.shape[0], self.hidden_size) if hx is None
             else self._check_state("hx", hx, x.shape[0], batched))
        h_next = rnn_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                          self.nonlinearity)
        return h_next if batched else h_next.squeeze(0)


class LSTMCell(_CellBase):
    r"""LSTM cell, a from-scratch twin of ``torch.nn.LSTMCell`` (gate order i, f, g, o).

    Computes ``lstm_step``: :math:`c' = f \odot c + i \odot g`, :math:`h' = o \odot
    \tanh(c')`, with :math:`i, f, o` sigmoid gates and :math:`g` a tanh candidate, each an
    affine function of :math:`x` and :math:`h`.

    ``weight_ih`` (4H, I) stacks :math:`W_{ii}, W_{if}, W_{ig}, W_{io}`; ``weight_hh``
    (4H, H) stacks :math:`W_{hi}, W_{hf}, W_{hg}, W_{ho}`. All parameters start uniform in
    :math:`(-1/\sqrt{H}, 1/\sqrt{H})`, so the forget gate starts near 0.5.

    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    bias : bool
        Whether to learn ``bias_ih`` and ``bias_hh`` (shape (4H,) each).
    device, dtype
        Where and in which precision to create the parameters.
    """

    gate_count = 4

    def forward(self, input: Tensor,
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """One step: ``input`` (B, I) or (I,), ``hx = (h, c)`` each (B, H) or (H,).

        ``hx=None`` means zeros. Returns ``(h', c')`` with the shape of ``h``.
        """
        x, batched = self._check_input(input)
        if hx is None:
            h = c = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTMCell: hx must be a tuple (h, c) of two tensors, got "
                                f"{type(hx).__name__}")
            h = self._check_state("hx[0] (h)", hx[0], x.shape[0], batched)
            c = self._check_state("hx[1] (c)", hx[1], x.shape[0], batched)
        h_next, c_next = lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih,
                                   self.bias_hh)
        if batched:
            return h_next, c_next
        return h_next.squeeze(0), c_next.squeeze(0)


class GRUCell(_CellBase):
    r"""GRU cell, a from-scratch twin of ``torch.nn.GRUCell`` (gate order r, z, n).

    Computes ``gru_step``: :math:`n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h +
    b_{hn}))` and :math:`h' = (1 - z) \odot n + z \odot h`, with sigmoid gates r and z.

    ``weight_ih`` (3H, I) stacks :math:`W_{ir}, W_{iz}, W_{in}`; ``weight_hh`` (3H, H)
    stacks :math:`W_{hr}, W_{hz}, W_{hn}`; all start uniform in
    :math:`(-1/\sqrt{H}, 1/\sqrt{H})`.

    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    bias : bool
        Whether to learn ``bias_ih`` and ``bias_hh`` (shape (3H,) each).
    device, dtype
        Where and in which precision to create the parameters.
    """

    gate_count = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step: ``input`` (B, I) or (I,), ``hx`` (B, H) or (H,) (zeros if ``None``).

        Returns
        -------
        Tensor
            The next hidden state, (B, H) or (H,).
        """
        x, batched = self._check_input(input)
        h = (x.new_zeros(x.shape[0], self.hidden_size) if hx is None
             else self._check_state("hx", hx, x.shape[0], batched))
        h_next = gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h_next if batched else h_next.squeeze(0)


# --------------------------------------------------------------------------------------
# Whole sequences, with hand-derived BPTT
# --------------------------------------------------------------------------------------
# Each Function's forward computes the input projection a_t = x_t W_ih^T + b of every
# step at once (one matrix product), then runs the recurrence step by step, writing into
# preallocated buffers (``out=``). Its backward first computes, for all steps at once, the
# local derivatives that do not depend on the incoming gradient; then walks back through
# time with one matrix product per step; then forms each weight gradient with one product.


def _project(input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The input projection of every step, x_t W^T + b: (T, B, I) -> (T, B, G)."""
    steps, batch, features = input.shape
    flat = input.reshape(steps * batch, features)
    projection = flat @ weight.t() if bias is None else torch.addmm(bias, flat, weight.t())
    return projection.view(steps, batch, -1)


def _sum_of_outer_products(delta: Tensor, states: Tensor) -> Tensor:
    """The sum over steps of delta_t^T s_t, for ``delta`` (T, B, G) and ``states`` (T, B, K).

    This is the gradient of a weight matrix (G, K) that multiplied ``states`` at every
    step. It is computed as (s^T delta)^T over the T B rows: the same numbers, but CPU
    BLAS is several times faster this way round when K is small (K = I = 8, say).
    """
    flat_delta = delta.reshape(-1, delta.shape[-1])
    flat_states = states.reshape(-1, states.shape[-1])
    return (flat_states.t() @ flat_delta).t()


def _project_backward(delta: Tensor, input: Tensor, weight_ih: Tensor,
                      needs: tuple[bool, bool, bool]) -> tuple[Tensor | None, ...]:
    """Gradients of ``input``, ``weight_ih`` and the bias of ``_project``, given
    ``delta`` = dL/da (T, B, G); ``needs`` says which ones are wanted."""
    grad_input = None
    if needs[0]:
        grad_input = (delta.reshape(-1, delta.shape[-1]) @ weight_ih).view(input.shape)
    grad_weight_ih = _sum_of_outer_products(delta, input) if needs[1] else None
    grad_bias = delta.sum(dim=(0, 1)) if needs[2] else None
    return grad_input, grad_weight_ih, grad_bias


class RNNRecurrence(torch.autograd.Function):
    r"""A whole Elman RNN layer, :math:`h_t = f(x_t W_{ih}^\top + b + h_{t-1} W_{hh}^\top)`,
    with its BPTT.

    ``apply(input, h0, weight_ih, weight_hh, bias, nonlinearity)``: ``input`` (T, B, I),
    ``h0`` (B, H), ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias`` (H,) (that is
    ``bias_ih + bias_hh``) or ``None``, ``nonlinearity`` ``"tanh"`` or ``"relu"``. Returns
    the hidden states :math:`h_1 \ldots h_T`, shape (T, B, H).

    Backward, with :math:`\bar h_t = \partial L / \partial h_t` (the gradient from the
    loss plus the one flowing back from step t + 1) and :math:`\delta_t` the gradient of
    the pre-activation:

    .. math::

        \delta_t = \bar h_t \odot f'_t, \qquad
        \bar h_{t-1} \mathrel{+}= \delta_t W_{hh}, \qquad
        \frac{\partial L}{\partial W_{hh}} = \sum_t \delta_t^\top h_{t-1}, \qquad
        \frac{\partial L}{\partial W_{ih}} = \sum_t \delta_t^\top x_t,

    with :math:`f'_t = 1 - h_t^2` for tanh and :math:`[h_t > 0]` for ReLU.
    """

    @staticmethod
    def forward(ctx: Any, input: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias: Tensor | None, nonlinearity: str) -> Tensor:
        """Run the layer; returns the hidden states, shape (T, B, H)."""
        projection = _project(input, weight_ih, bias)  # a_t for every t, (T, B, H)
        h = torch.empty_like(projection)  # h[t] holds h_{t+1}: the output
        weight_hh_t = weight_hh.t()
        h_previous = h0
        for projection_t, h_t in zip(projection.unbind(0), h.unbind(0), strict=True):
            torch.addmm(projection_t, h_previous, weight_hh_t, out=h_t)
            if nonlinearity == "tanh":
                h_t.tanh_()
            else:
                h_t.relu_()
            h_previous = h_t
        ctx.nonlinearity = nonlinearity
        ctx.save_for_backward(input, h0, weight_ih, weight_hh, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        """BPTT; returns the gradients of the arguments of ``forward``."""
        input, h0, weight_ih, weight_hh, h = ctx.saved_tensors
        steps = h.shape[0]
        if ctx.nonlinearity == "tanh":
            delta = torch.addcmul(torch.ones_like(h0), h, h, value=-1)  # 1 - h^2
        else:
            delta = (h > 0).to(h.dtype)
        # delta[t] holds f'_t; the loop multiplies it, in place, by the gradient of h_t.
        grad_h = grad_output[steps - 1]
        for t in reversed(range(steps)):
            delta[t].mul_(grad_h)
            grad_h = torch.addmm(grad_output[t - 1], delta[t], weight_hh) if t > 0 else None
        grad_h0 = delta[0] @ weight_hh if ctx.needs_input_grad[1] else None
        grad_weight_hh = None
        if ctx.needs_input_grad[3]:
            h_previous = torch.cat([h0.unsqueeze(0), h[:-1]])  # h_0 ... h_{T-1}
            grad_weight_hh = _sum_of_outer_products(delta, h_previous)
        needs = ctx.needs_input_grad
        grad_input, grad_weight_ih, grad_bias = _project_backward(
            delta, input, weight_ih, (needs[0], needs[2], needs[4]))
        return grad_input, grad_h0, grad_weight_ih, grad_weight_hh, grad_bias, None


class LSTMRecurrence(torch.autograd.Function):
    r"""A whole LSTM layer (gate order i, f, g, o) with its BPTT.

    ``apply(input, h0, c0, weight_ih, weight_hh, bias)``: ``input`` (T, B, I), ``h0`` and
    ``c0`` (B, H), ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias`` (4H,) (that is
    ``bias_ih + bias_hh``) or ``None``. Returns the hidden states, shape (T, B, H), and
    the last cell state :math:`c_T`, shape (B, H). Forward, for every step, with
    :math:`a_t = x_t W_{ih}^\top + b` computed for all steps at once:
    :math:`[i, f, g, o] = [\sigma, \sigma, \tanh, \sigma](a_t + h_{t-1} W_{hh}^\top)`,
    :math:`c_t = f \odot c_{t-1} + i \odot g`, :math:`h_t = o \odot \tanh(c_t)`.

    Backward: :math:`\bar h_t` and :math:`\bar c_t` are the gradients arriving at
    :math:`h_t` and :math:`c_t` (from the loss and from step t + 1), and
    :math:`\delta_t` is the gradient of the four pre-activations:

    .. math::

        \begin{aligned}
        \bar c_t &\mathrel{+}= \bar h_t \odot o \odot (1 - \tanh^2 c_t), \\
        \delta_t &= \big[\bar c_t \odot g \odot i (1 - i),\;
                        \bar c_t \odot c_{t-1} \odot f (1 - f),\;
                        \bar c_t \odot i \odot (1 - g^2),\;
                        \bar h_t \odot \tanh c_t \odot o (1 - o)\big], \\
        \bar c_{t-1} &= \bar c_t \odot f, \qquad
        \bar h_{t-1} \mathrel{+}= \delta_t W_{hh}, \\
        \frac{\partial L}{\partial W_{hh}} &= \sum_t \delta_t^\top h_{t-1}, \qquad
        \frac{\partial L}{\partial W_{ih}} = \sum_t \delta_t^\top x_t, \qquad
        \frac{\partial L}{\partial b} = \sum_t \delta_t.
        \end{aligned}

    The factors in brackets do not depend on the gradient, so they are computed for all
    steps at once, before the backward loop. The forward evaluates tanh as
    :math:`\tanh(x) = 2\sigma(2x) - 1`, so that one sigmoid call computes all four gates.
    """

    @staticmethod
    def forward(ctx: Any, input: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor,
                weight_hh: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor]:
        """Run the layer; returns the hidden states (T, B, H) and :math:`c_T` (B, H)."""
        hidden_size = weight_hh.shape[1]
        # tanh(x) = 2 sigmoid(2x) - 1. With the g rows of the weights and of the bias
        # doubled, one sigmoid call computes all four gates; sigmoid is also cheaper than
        # tanh on a CPU. The backward pass uses the true weights and the true g.
        g_rows = slice(2 * hidden_size, 3 * hidden_size)
        weight_ih_2g, weight_hh_2g = weight_ih.clone(), weight_hh.clone()
        weight_ih_2g[g_rows] *= 2
        weight_hh_2g[g_rows] *= 2
        bias_2g = None if bias is None else bias.clone()
        if bias_2g is not None:
            bias_2g[g_rows] *= 2
        gates = _project(input, weight_ih_2g, bias_2g)  # a_t; overwritten below by i, f, g, o
        steps, batch, _ = gates.shape
        h = gates.new_empty(steps, batch, hidden_size)  # h[t] holds h_{t+1}: the output
        c = torch.empty_like(h)  # c[t] holds c_{t+1}
        tanh_c = torch.empty_like(h)
        weight_hh_2g_t = weight_hh_2g.t()
        # The views of every step are made once, before the loop: each slice taken inside
        # the loop would cost an operator call per step.
        i, f, g, o = gates.chunk(4, dim=2)
        per_step = zip(gates.unbind(0), i.unbind(0), f.unbind(0), g.unbind(0), o.unbind(0),
                       h.unbind(0), c.unbind(0), tanh_c.unbind(0), strict=True)
        h_previous, c_previous = h0, c0
        for gates_t, i_t, f_t, g_t, o_t, h_t, c_t, tanh_c_t in per_step:
            torch.addmm(gates_t, h_previous, weight_hh_2g_t, out=gates_t).sigmoid_()
            g_t.mul_(2).sub_(1)  # 2 sigmoid(2 a) - 1 = tanh(a)
            torch.mul(f_t, c_previous, out=c_t).addcmul_(i_t, g_t)
            torch.mul(c_t, 2, out=tanh_c_t).sigmoid_().mul_(2).sub_(1)  # tanh(c_t)
            torch.mul(o_t, tanh_c_t, out=h_t)
            h_previous, c_previous = h_t, c_t
        ctx.save_for_backward(input, h0, c0, weight_ih, weight_hh, gates, h, c, tanh_c)
        return h, c[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor,
                 grad_c_last: Tensor) -> tuple[Tensor | None, ...]:
        """BPTT; returns the gradients of the arguments of ``forward``."""
        input, h0, c0, weight_ih, weight_hh, gates, h, c, tanh_c = ctx.saved_tensors
        steps, batch, four_h = gates.shape
        hidden_size = four_h // 4
        i, f, g, o = gates.chunk(4, dim=2)
        h_previous = torch.cat([h0.unsqueeze(0), h[:-1]])  # h_0 ... h_{T-1}
        c_previous = torch.cat([c0.unsqueeze(0), c[:-1]])
        # The factors in brackets, for all steps at once, built in place in one buffer:
        # start from the sigmoid derivative s (1 - s) of every gate, then finish each slot.
        factors = torch.addcmul(gates, gates, gates, value=-1)
        factor_i, factor_f, factor_g, factor_o = factors.chunk(4, dim=2)
        factor_i.mul_(g)  # g i (1 - i)
        factor_f.mul_(c_previous)  # c_{t-1} f (1 - f)
        torch.addcmul(i, i * g, g, value=-1, out=factor_g)  # i (1 - g^2)
        factor_o.mul_(tanh_c)  # tanh(c_t) o (1 - o)
        dc_from_h = torch.addcmul(o, o * tanh_c, tanh_c, value=-1)  # o (1 - tanh^2 c_t)
        delta = factors  # overwritten step by step, from the last, by the gradient
        delta_i_f_g = delta[:, :, : 3 * hidden_size].unflatten(2, (3, hidden_size)).unbind(0)
        delta_o = delta[:, :, 3 * hidden_size:].unbind(0)
        grad_c = grad_c_last.clone(memory_format=torch.contiguous_format)
        grad_h = grad_output[steps - 1]
        for t in reversed(range(steps)):
            grad_c.addcmul_(grad_h, dc_from_h[t])
            delta_i_f_g[t].mul_(grad_c.unsqueeze(1))  # the i, f, g slots all scale by grad_c
            delta_o[t].mul_(grad_h)
            grad_c.mul_(f[t])
            grad_h = torch.addmm(grad_output[t - 1], delta[t], weight_hh) if t > 0 else None
        needs = ctx.needs_input_grad
        grad_h0 = delta[0] @ weight_hh if needs[1] else None
        grad_c0 = grad_c if needs[2] else None
        grad_weight_hh = _sum_of_outer_products(delta, h_previous) if needs[4] else None
        grad_input, grad_weight_ih, grad_bias = _project_backward(
            delta, input, weight_ih, (needs[0], needs[3], needs[5]))
        return grad_input, grad_h0, grad_c0, grad_weight_ih, grad_weight_hh, grad_bias


class GRURecurrence(torch.autograd.Function):
    r"""A whole GRU layer (gate order r, z, n) with its BPTT.

    ``apply(input, h0, weight_ih, weight_hh, bias_ih, bias_hh)``: ``input`` (T, B, I),
    ``h0`` (B, H), ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), biases (3H,) or ``None``.
    Returns the hidden states, shape (T, B, H). Forward, with :math:`a_t = x_t W_{ih}^\top
    + b_{ih}` (computed for all steps at once) and :math:`u_t = h_{t-1} W_{hh}^\top +
    b_{hh}`, each split into r, z, n parts: :math:`r = \sigma(a^r_t + u^r_t)`,
    :math:`z = \sigma(a^z_t + u^z_t)`, :math:`n = \tanh(a^n_t + r \odot u^n_t)`,
    :math:`h_t = (1 - z) \odot n + z \odot h_{t-1}`.

    Backward: :math:`\bar h_t` is the gradient arriving at :math:`h_t`;
    :math:`\delta^a_t` and :math:`\delta^u_t` are the gradients of :math:`a_t` and
    :math:`u_t`:

    .. math::

        \begin{aligned}
        \delta^n &= \bar h_t \odot (1 - z)(1 - n^2), \qquad
        \delta^z = \bar h_t \odot (h_{t-1} - n)\, z (1 - z), \qquad
        \delta^r = \delta^n \odot u^n_t\, r (1 - r), \\
        \delta^a_t &= [\delta^r, \delta^z, \delta^n], \qquad
        \delta^u_t = [\delta^r, \delta^z, \delta^n \odot r], \qquad
        \bar h_{t-1} \mathrel{+}= \bar h_t \odot z + \delta^u_t W_{hh}, \\
        \frac{\partial L}{\partial W_{hh}} &= \sum_t (\delta^u_t)^\top h_{t-1}, \qquad
        \frac{\partial L}{\partial b_{hh}} = \sum_t \delta^u_t, \qquad
        \frac{\partial L}{\partial W_{ih}} = \sum_t (\delta^a_t)^\top x_t, \qquad
        \frac{\partial L}{\partial b_{ih}} = \sum_t \delta^a_t.
        \end{aligned}
    """

    @staticmethod
    def forward(ctx: Any, input: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor:
        """Run the layer; returns the hidden states, shape (T, B, H)."""
        gates = _project(input, weight_ih, bias_ih)  # a_t; overwritten below by r, z, n
        steps, batch, three_h = gates.shape
        hidden_size = three_h // 3
        u = torch.empty_like(gates)  # u[t] holds u_t = h_{t-1} W_hh^T + b_hh
        h = gates.new_empty(steps, batch, hidden_size)  # h[t] holds h_{t+1}: the output
        weight_hh_t = weight_hh.t()
        # The views of every step are made once, before the loop (see LSTMRecurrence).
        sizes = [2 * hidden_size, hidden_size]  # [r, z], n
        r_z, n = gates.split(sizes, dim=2)
        u_r_z, u_n = u.split(sizes, dim=2)
        per_step = zip(u.unbind(0), r_z.unbind(0), n.unbind(0), u_r_z.unbind(0),
                       u_n.unbind(0), h.unbind(0), strict=True)
        h_previous = h0
        for u_t, r_z_t, n_t, u_r_z_t, u_n_t, h_t in per_step:
            if bias_hh is None:
                torch.mm(h_previous, weight_hh_t, out=u_t)
            else:
                torch.addmm(bias_hh, h_previous, weight_hh_t, out=u_t)
            r_z_t.add_(u_r_z_t).sigmoid_()
            r_t, z_t = r_z_t.chunk(2, dim=1)
            n_t.addcmul_(r_t, u_n_t).tanh_()
            torch.lerp(n_t, h_previous, z_t, out=h_t)  # n + z (h - n) = (1 - z) n + z h
            h_previous = h_t
        ctx.save_for_backward(input, h0, weight_ih, weight_hh, gates, u, h)
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        """BPTT; returns the gradients of the arguments of ``forward``."""
        input, h0, weight_ih, weight_hh, gates, u, h = ctx.saved_tensors
        steps, batch, three_h = gates.shape
        hidden_size = three_h // 3
        r, z, n = gates.chunk(3, dim=2)
        h_previous = torch.cat([h0.unsqueeze(0), h[:-1]])  # h_0 ... h_{T-1}
        # The local derivatives, for all steps at once. One buffer starts as the sigmoid
        # derivative s (1 - s) of r and z; its n slot takes (1 - z)(1 - n^2).
        delta_u = torch.addcmul(gates, gates, gates, value=-1)
        sigmoid_r, sigmoid_z, factor_n = delta_u.chunk(3, dim=2)
        factors_r_z = torch.empty_like(gates[:, :, : 2 * hidden_size])
        factor_r, factor_z = factors_r_z.chunk(2, dim=2)
        torch.mul(u[:, :, 2 * hidden_size:], sigmoid_r, out=factor_r)  # u^n r (1 - r)
        torch.sub(h_previous, n, out=factor_z).mul_(sigmoid_z)  # (h_{t-1} - n) z (1 - z)
        torch.addcmul(torch.ones_like(h0), n, n, value=-1, out=factor_n)  # 1 - n^2
        factor_n.addcmul_(factor_n, z, value=-1)  # (1 - z)(1 - n^2)
        # The loop overwrites delta_u[t], slot by slot after reading it, with
        # [d_r, d_z, d_n r], the gradient of u_t; delta_n keeps d_n.
        delta_n = torch.empty_like(h)
        r_slot, z_slot = slice(0, hidden_size), slice(hidden_size, 2 * hidden_size)
        n_slot = slice(2 * hidden_size, three_h)
        grad_h = grad_output[steps - 1]
        for t in reversed(range(steps)):
            torch.mul(grad_h, factor_n[t], out=delta_n[t])
            torch.mul(grad_h, factor_z[t], out=delta_u[t, :, z_slot])
            torch.mul(delta_n[t], factor_r[t], out=delta_u[t, :, r_slot])
            torch.mul(delta_n[t], r[t], out=delta_u[t, :, n_slot])
            grad_through_z = (torch.addcmul(grad_output[t - 1], grad_h, z[t]) if t > 0
                              else grad_h * z[t])
            grad_h = torch.addmm(grad_through_z, delta_u[t], weight_hh)
        needs = ctx.needs_input_grad
        grad_h0 = grad_h if needs[1] else None
        grad_weight_hh = _sum_of_outer_products(delta_u, h_previous) if needs[3] else None
        grad_bias_hh = delta_u.sum(dim=(0, 1)) if ctx.has_bias[1] and needs[5] else None
        delta_u[:, :, n_slot] = delta_n  # now the gradient of a_t: [d_r, d_z, d_n]
        grad_input, grad_weight_ih, grad_bias_ih = _project_backward(
            delta_u, input, weight_ih, (needs[0], needs[2], ctx.has_bias[0] and needs[4]))
        return grad_input, grad_h0, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh


# --------------------------------------------------------------------------------------
# Layers: one layer over a whole sequence
# --------------------------------------------------------------------------------------


class _LayerBase(nn.Module):
    """Parameters, initialisation and input checks shared by the three layers."""

    gate_count = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool, device: Any,
                 dtype: torch.dtype | None, implementation: str) -> None:
        super().__init__()
        owner = type(self).__name__
        input_size, hidden_size = _check_module_arguments(input_size, hidden_size, bias)
        if num_layers != 1:
            raise ValueError(f"{owner}: num_layers={num_layers!r} is not supported; this layer "
                             f"has exactly one layer (stack several, or use torch.nn.{owner})")
        if bidirectional is not False:
            raise ValueError(f"{owner}: bidirectional={bidirectional!r} is not supported; "
                             f"only one direction (use torch.nn.{owner} for two)")
        if dropout != 0:
            raise ValueError(f"{owner}: dropout={dropout!r} is not supported; dropout acts "
                             "between stacked layers and this layer has only one")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first must be True or False, got {batch_first!r}")
        self.implementation = check_choice("implementation", implementation, IMPLEMENTATIONS)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.num_layers, self.batch_first = 1, batch_first
        self.dropout, self.bidirectional = 0.0, False
        factory = {"device": device, "dtype": dtype}
        rows = self.gate_count * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size, **factory))
        if bias:
            self.bias_ih_l0 = nn.Parameter(torch.empty(rows, **factory))
            self.bias_hh_l0 = nn.Parameter(torch.empty(rows, **factory))
        else:
            self.register_parameter("bias_ih_l0", None)
            self.register_parameter("bias_hh_l0", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/sqrt(H), 1/sqrt(H)), in ``torch.nn``'s order."""
        _reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.implementation != "fast":
            text += f", implementation={self.implementation!r}"
        return text

    def _time_major_input(self, input: Any) -> tuple[Tensor, bool]:
        """Check ``input``; return it as (T, B, I) and whether it was batched."""
        owner = type(self).__name__
        check_choice("implementation", self.implementation, IMPLEMENTATIONS)
        _check_tensor(owner, "input", input, self.weight_ih_l0)
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if input.dim() not in (2, 3):
            raise ValueError(f"{owner}: input must be 3-D {layout} or 2-D (T, I) for one "
                             f"sequence, got {input.dim()}-D shape {_shape(input)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: input's last axis must be input_size = "
                             f"{self.input_size}, got shape {_shape(input)}")
        if 0 in input.shape:
            raise ValueError(f"{owner}: input has an empty axis, shape {_shape(input)}; "
                             "every axis needs size >= 1")
        if input.dim() == 2:
            return input.unsqueeze(1), False
        return (input.transpose(0, 1) if self.batch_first else input), True

    def _initial_state(self, name: str, value: Any, batch: int, batched: bool) -> Tensor:
        """Check an initial state (1, B, H), or (1, H) for one sequence; return it as (B, H)."""
        owner = type(self).__name__
        _check_tensor(owner, name, value, self.weight_ih_l0)
        if batched:
            expected, dims = (1, batch, self.hidden_size), "(num_layers, B, H)"
        else:
            expected, dims = (1, self.hidden_size), "(num_layers, H) for a 2-D input"
        return _check_shape(owner, name, value, expected, dims).reshape(batch, self.hidden_size)

    def _output(self, output: Tensor, batched: bool) -> Tensor:
        """Turn the time-major (T, B, H) output back into the caller's layout."""
        if not batched:
            return output.squeeze(1)
        return output.transpose(0, 1) if self.batch_first else output

    def _state(self, state: Tensor, batched: bool) -> Tensor:
        """A final state (B, H) as ``torch.nn`` returns it: (1, B, H), or (1, H) unbatched."""
        return state.unsqueeze(0) if batched else state


class RNN(_LayerBase):
    r"""One-layer Elman RNN over a sequence, a from-scratch twin of ``torch.nn.RNN``.

    For t = 1..T: :math:`h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`, with
    f tanh or ReLU.

    Parameters ``weight_ih_l0`` (H, I), ``weight_hh_l0`` (H, H) and the biases start uniform
    in :math:`(-1/\sqrt{H}, 1/\sqrt{H})`, drawn in the order ``torch.nn.RNN`` draws them.

    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    num_layers : int
        Must be 1 (stacked layers are not supported).
    nonlinearity : {"tanh", "relu"}
        The function f.
    bias : bool
        Whether to learn ``bias_ih_l0`` and ``bias_hh_l0`` (H,).
    batch_first : bool
        If True, ``input`` and ``output`` are (B, T, ·) instead of (T, B, ·).
    dropout : float
        Must be 0.
    bidirectional : bool
        Must be False.
    device, dtype
        Where and in which precision to create the parameters.
    implementation : {"fast", "autograd"}
        ``"fast"``: one input projection for all steps and ``RNNRecurrence`` (hand-derived
        BPTT); ``"autograd"``: a Python loop of ``rnn_step`` differentiated by autograd.
    """

    gate_count = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None, *,
                 implementation: Implementation = "fast") -> None:
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, implementation)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity='relu'"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the layer over ``input``.

        Parameters
        ----------
        input : Tensor
            (T, B, I), or (B, T, I) with ``batch_first``, or (T, I) for one sequence.
        hx : Tensor, optional
            Initial hidden state (1, B, H), or (1, H) for one sequence; zeros if ``None``.

        Returns
        -------
        output : Tensor
            Every hidden state :math:`h_1 \\ldots h_T`, laid out like ``input``, H features.
        h_n : Tensor
            The last hidden state, (1, B, H) or (1, H).
        """
        xs, batched = self._time_major_input(input)
        batch = xs.shape[1]
        h0 = (xs.new_zeros(batch, self.hidden_size) if hx is None
              else self._initial_state("hx", hx, batch, batched))
        if self.implementation == "fast":
            bias = self.bias_ih_l0 + self.bias_hh_l0 if self.bias else None
            output = RNNRecurrence.apply(xs, h0, self.weight_ih_l0, self.weight_hh_l0, bias,
                                         self.nonlinearity)
        else:
            h, states = h0, []
            for x in xs:
                h = rnn_step(x, h, self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0,
                             self.bias_hh_l0, self.nonlinearity)
                states.append(h)
            output = torch.stack(states)
        return self._output(output, batched), self._state(output[-1], batched)


class LSTM(_LayerBase):
    r"""One-layer LSTM over a sequence, a from-scratch twin of ``torch.nn.LSTM``.

    For t = 1..T, ``lstm_step`` with gate order i, f, g, o:
    :math:`c_t = f_t \odot c_{t-1} + i_t \odot g_t`, :math:`h_t = o_t \odot \tanh(c_t)`.

    Parameters ``weight_ih_l0`` (4H, I), ``weight_hh_l0`` (4H, H) and the biases start
    uniform in :math:`(-1/\sqrt{H}, 1/\sqrt{H})`, drawn in the order ``torch.nn.LSTM`` draws
    them. The effective bias of each gate is ``bias_ih_l0 + bias_hh_l0``.

    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    num_layers : int
        Must be 1 (stacked layers are not supported).
    bias : bool
        Whether to learn ``bias_ih_l0`` and ``bias_hh_l0`` (4H,).
    batch_first : bool
        If True, ``input`` and ``output`` are (B, T, ·) instead of (T, B, ·).
    dropout : float
        Must be 0.
    bidirectional : bool
        Must be False.
    proj_size : int
        Must be 0 (projected LSTMs are not supported).
    device, dtype
        Where and in which precision to create the parameters.
    implementation : {"fast", "autograd"}
        ``"fast"``: one input projection for all steps and ``LSTMRecurrence`` (hand-derived
        BPTT); ``"autograd"``: a Python loop of ``lstm_step`` differentiated by autograd.
    """

    gate_count = 4

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: torch.dtype | None = None, *,
                 implementation: Implementation = "fast") -> None:
        if proj_size != 0:
            raise ValueError(f"LSTM: proj_size={proj_size!r} is not supported; it must be 0 "
                             "(use torch.nn.LSTM for a projected LSTM)")
        self.proj_size = 0
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, implementation)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the layer over ``input``.

        Parameters
        ----------
        input : Tensor
            (T, B, I), or (B, T, I) with ``batch_first``, or (T, I) for one sequence.
        hx : tuple of Tensor, optional
            ``(h_0, c_0)``, each (1, B, H), or (1, H) for one sequence; zeros if ``None``.

        Returns
        -------
        output : Tensor
            Every hidden state :math:`h_1 \\ldots h_T`, laid out like ``input``, H features.
        (h_n, c_n) : tuple of Tensor
            The last hidden and cell states, each (1, B, H) or (1, H).
        """
        xs, batched = self._time_major_input(input)
        batch = xs.shape[1]
        if hx is None:
            h0 = c0 = xs.new_zeros(batch, self.hidden_size)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0) of two tensors, got "
                                f"{type(hx).__name__}")
            h0 = self._initial_state("hx[0] (h_0)", hx[0], batch, batched)
            c0 = self._initial_state("hx[1] (c_0)", hx[1], batch, batched)
        if self.implementation == "fast":
            bias = self.bias_ih_l0 + self.bias_hh_l0 if self.bias else None
            output, c_n = LSTMRecurrence.apply(xs, h0, c0, self.weight_ih_l0, self.weight_hh_l0,
                                               bias)
        else:
            h, c, states = h0, c0, []
            for x in xs:
                h, c = lstm_step(x, h, c, self.weight_ih_l0, self.weight_hh_l0,
                                 self.bias_ih_l0, self.bias_hh_l0)
                states.append(h)
            output, c_n = torch.stack(states), c
        state = (self._state(output[-1], batched), self._state(c_n, batched))
        return self._output(output, batched), state


class GRU(_LayerBase):
    r"""One-layer GRU over a sequence, a from-scratch twin of ``torch.nn.GRU``.

    For t = 1..T, ``gru_step`` with gate order r, z, n:
    :math:`n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))`,
    :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`.

    Parameters ``weight_ih_l0`` (3H, I), ``weight_hh_l0`` (3H, H) and the biases start
    uniform in :math:`(-1/\sqrt{H}, 1/\sqrt{H})`, drawn in the order ``torch.nn.GRU`` draws
    them.

    Parameters
    ----------
    input_size : int
        Features per input, I.
    hidden_size : int
        Hidden units, H.
    num_layers : int
        Must be 1 (stacked layers are not supported).
    bias : bool
        Whether to learn ``bias_ih_l0`` and ``bias_hh_l0`` (3H,).
    batch_first : bool
        If True, ``input`` and ``output`` are (B, T, ·) instead of (T, B, ·).
    dropout : float
        Must be 0.
    bidirectional : bool
        Must be False.
    device, dtype
        Where and in which precision to create the parameters.
    implementation : {"fast", "autograd"}
        ``"fast"``: one input projection for all steps and ``GRURecurrence`` (hand-derived
        BPTT); ``"autograd"``: a Python loop of ``gru_step`` differentiated by autograd.
    """

    gate_count = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None, *,
                 implementation: Implementation = "fast") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, implementation)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the layer over ``input``.

        Parameters
        ----------
        input : Tensor
            (T, B, I), or (B, T, I) with ``batch_first``, or (T, I) for one sequence.
        hx : Tensor, optional
            Initial hidden state (1, B, H), or (1, H) for one sequence; zeros if ``None``.

        Returns
        -------
        output : Tensor
            Every hidden state :math:`h_1 \\ldots h_T`, laid out like ``input``, H features.
        h_n : Tensor
            The last hidden state, (1, B, H) or (1, H).
        """
        xs, batched = self._time_major_input(input)
        batch = xs.shape[1]
        h0 = (xs.new_zeros(batch, self.hidden_size) if hx is None
              else self._initial_state("hx", hx, batch, batched))
        if self.implementation == "fast":
            output = GRURecurrence.apply(xs, h0, self.weight_ih_l0, self.weight_hh_l0,
                                         self.bias_ih_l0, self.bias_hh_l0)
        else:
            h, states = h0, []
            for x in xs:
                h = gru_step(x, h, self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0,
                             self.bias_hh_l0)
                states.append(h)
            output = torch.stack(states)
        return self._output(output, batched), self._state(output[-1], batched)
