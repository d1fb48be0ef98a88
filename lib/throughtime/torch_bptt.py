r"""The hand-derived BPTT of the PyTorch layers: one ``torch.autograd.Function`` per cell.

``RNNRecurrence``, ``LSTMRecurrence`` and ``GRURecurrence`` run one layer in one direction
over a whole sequence: the forward computes the input projections
:math:`x_t W_{ih}^\top + b` of all T steps with one matrix product, then the recurrence;
the backward is BPTT derived by hand, one matrix product per step back through time and
one product each for the gradients of :math:`W_{ih}` and :math:`W_{hh}` over all steps.
When a graph of the gradient is asked for (``create_graph=True``, ``torch.func.grad``)
the backward recomputes the forward states with a graph, so second derivatives are exact;
a ``vmap`` rule makes ``torch.func`` transforms and batched gradients work. They are the
``implementation="fast"`` of ``torch_layers``' ``RNN``, ``LSTM`` and ``GRU``, and can be
imported from there (and from ``torch_cells``) too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional

__all__ = [
    "RNNRecurrence",
    "LSTMRecurrence",
    "GRURecurrence",
]


# --------------------------------------------------------------------------------------
# Whole sequences, with hand-derived BPTT
# --------------------------------------------------------------------------------------
# Each Function's forward computes the input projection a_t = x_t W_ih^T + b of every
# step at once (one matrix product), then runs the recurrence step by step, writing into
# preallocated buffers (out= and in-place operations: nothing is recorded there). Besides
# the states it returns the internal values its backward needs (the gate activations),
# as outputs marked non-differentiable.
#
# The backward is the hand-derived BPTT, also written with in-place operations for speed.
# Two uses of a backward pass cannot run it: a graph of the gradient (create_graph=True,
# or torch.func.grad, for second derivatives), which needs operations autograd can
# record, and batched gradients (vmap: is_grads_batched, jacobian(vectorize=True),
# torch.func.vmap), which need operations vmap can batch. For those, the backward
# recomputes the forward pass out of place (the ``_..._states`` functions, the same
# arithmetic) and lets autograd differentiate that: exact, one forward pass dearer.
# Forward-mode derivatives (jvp) use the same recomputation.


def _project(input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The input projection of every step, x_t W^T + b: (T, B, I) -> (T, B, G)."""
    steps, batch, features = input.shape
    flat = input.reshape(steps * batch, features)
    projection = flat @ weight.t() if bias is None else torch.addmm(bias, flat, weight.t())
    return projection.reshape(steps, batch, weight.shape[0])


def _sum_of_outer_products(delta: Tensor, states: Tensor) -> Tensor:
    """The sum over steps of delta_t^T s_t, for ``delta`` (T, B, G) and ``states`` (T, B, K).

    This is the gradient of a weight matrix (G, K) that multiplied ``states`` at every
    step. It is computed as (s^T delta)^T over the T B rows: the same numbers, but CPU
    BLAS is several times faster this way round when K is small (K = I = 8, say). The
    transpose is then copied into a contiguous (G, K) matrix, the layout of the weight.
    """
    flat_delta = delta.reshape(-1, delta.shape[-1])
    flat_states = states.reshape(-1, states.shape[-1])
    return (flat_states.t() @ flat_delta).t().contiguous()


def _project_backward(delta: Tensor, input: Tensor, weight_ih: Tensor,
                      needs: tuple[bool, bool, bool]) -> tuple[Tensor | None, ...]:
    """Gradients of ``input``, ``weight_ih`` and the bias of ``_project``, given
    ``delta`` = dL/da (T, B, G); ``needs`` says which ones are wanted."""
    grad_input = None
    if needs[0]:
        grad_input = (delta.reshape(-1, delta.shape[-1]) @ weight_ih).reshape(input.shape)
    grad_weight_ih = _sum_of_outer_products(delta, input) if needs[1] else None
    grad_bias = delta.sum(dim=(0, 1)) if needs[2] else None
    return grad_input, grad_weight_ih, grad_bias


def _previous(initial: Tensor, states: Tensor) -> Tensor:
    """The states one step earlier, s_0 ... s_{T-1}, from s_0 (B, K) and s_1 ... s_T."""
    return torch.cat([initial.unsqueeze(0), states[:-1]])


def _vmap_by_folding(function: type[torch.autograd.Function], info: Any,
                     in_dims: Sequence[int | None], args: Sequence[Any],
                     layout: Sequence[str]) -> tuple[Any, Any]:
    """The vmap rule of a recurrence: fold the mapped axis into the batch axis.

    ``layout`` names each argument of ``forward``: ``"sequence"`` (T, B, ·),
    ``"state"`` (B, ·) or ``"weight"``. A vmap over inputs and states (per-sample
    gradients, batched gradients) becomes one call on a batch of V B sequences; every
    output is (T, B, ·) and is unfolded back. A vmap over the weights themselves (an
    ensemble of layers) cannot be folded: it makes one call per mapped slice.
    """
    size = info.batch_size
    if any(dim is not None for dim, kind in zip(in_dims, layout, strict=True) if kind == "weight"):
        per_slice = []
        for index in range(size):
            sliced = [arg if dim is None else arg.select(dim, index)
                      for arg, dim in zip(args, in_dims, strict=True)]
            result = function.apply(*sliced)
            per_slice.append(result if isinstance(result, tuple) else (result,))
        outputs = tuple(torch.stack(parts) for parts in zip(*per_slice, strict=True))
        dims: tuple[int, ...] = (0,) * len(outputs)
    else:
        folded = []
        for arg, dim, kind in zip(args, in_dims, layout, strict=True):
            if kind != "weight":
                axis = 1 if kind == "sequence" else 0  # the batch axis
                if dim is None:
                    arg = arg.unsqueeze(axis).expand(*arg.shape[:axis], size, *arg.shape[axis:])
                else:
                    arg = arg.movedim(dim, axis)
                arg = arg.flatten(axis, axis + 1)
            folded.append(arg)
        batch = folded[0].shape[1] // size
        result = function.apply(*folded)
        result = result if isinstance(result, tuple) else (result,)
        outputs = tuple(output.unflatten(1, (size, batch)) for output in result)
        dims = (1,) * len(outputs)
    if len(outputs) == 1:
        return outputs[0], dims[0]
    return outputs, dims


def _run_steps(step: Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]],
               inputs: Tensor, initial: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Apply ``step`` at every time step, out of place (autograd records every operation).

    ``step(x_t, state)`` returns the next state, a tuple whose leading values are what the
    following step reads (``initial`` gives them for the first step) and whose further
    values are only recorded. Returns each value stacked over time, (T, ...).
    """
    state, history = initial, []
    for x in inputs.unbind(0):
        state = step(x, state)
        history.append(state)
    return tuple(torch.stack(values) for values in zip(*history, strict=True))


def _as_function_of(states: Callable[..., Any], inputs: tuple[Any, ...],
                    positions: list[int], count: int) -> Callable[..., tuple[Tensor, ...]]:
    """``states`` as a function of its arguments at ``positions`` only (the others fixed
    to ``inputs``), returning its first ``count`` outputs."""
    def run(*values: Tensor) -> tuple[Tensor, ...]:
        arguments = list(inputs)
        for index, value in zip(positions, values, strict=True):
            arguments[index] = value
        outputs = states(*arguments)
        return (outputs if isinstance(outputs, tuple) else (outputs,))[:count]
    return run


def _never(value: Any) -> bool:
    return False


# torch's tests for the tensors that vmap and torch.func wrap (private, hence the defaults).
_is_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", _never)
_is_legacy_batched = getattr(torch._C._functorch, "is_legacy_batchedtensor", _never)


def _hand_derived_backward_applies(*grads: Tensor | None) -> bool:
    """Whether the in-place hand-derived BPTT can compute these gradients (see above)."""
    if torch.is_grad_enabled():  # create_graph=True, or a torch.func transform
        return False
    return not any(grad is not None and (_is_wrapped(grad) or _is_legacy_batched(grad))
                   for grad in grads)


def _is_functorch_tensor(value: Any) -> bool:
    return isinstance(value, Tensor) and _is_wrapped(value)


def _gradients_by_autograd(ctx: Any, states: Callable[..., Any], inputs: tuple[Any, ...],
                           grads: tuple[Tensor | None, ...]) -> tuple[Tensor | None, ...]:
    """The gradients of a recurrence by autograd through a recomputation of its forward.

    ``states`` is the out-of-place twin of the Function's forward, ``inputs`` the
    arguments of ``forward`` (the saved tensors) and ``grads`` the gradients of its
    outputs (None for an output that received none). The result can itself be
    differentiated (it is built with ``create_graph`` when a graph is being recorded) and
    batched by vmap. Inside a ``torch.func`` transform, ``torch.func.vjp`` differentiates
    the recomputation; elsewhere ``torch.autograd.grad``, which is cheaper.
    """
    needs = ctx.needs_input_grad
    positions = [index for index, need in enumerate(needs) if need]
    run = _as_function_of(states, inputs, positions, len(grads))
    wrt = tuple(inputs[index] for index in positions)
    if any(_is_functorch_tensor(value) for value in (*wrt, *grads)):
        outputs, vjp = torch.func.vjp(run, *wrt)
        found = vjp(tuple(torch.zeros_like(output) if grad is None else grad
                          for output, grad in zip(outputs, grads, strict=True)))
    else:
        record = torch.is_grad_enabled()
        with torch.enable_grad():
            leaves = tuple(value if value.requires_grad else value.detach().requires_grad_()
                           for value in wrt)
            outputs = run(*leaves)
        pairs = [(output, grad) for output, grad in zip(outputs, grads, strict=True)
                 if grad is not None]
        found = torch.autograd.grad([output for output, _ in pairs], leaves,
                                    [grad for _, grad in pairs], create_graph=record,
                                    allow_unused=True)
        found = tuple(torch.zeros_like(value) if gradient is None else gradient
                      for value, gradient in zip(wrt, found, strict=True))
    found = iter(found)
    return tuple(next(found) if need else None for need in needs)


def _tangents_by_recomputation(states: Callable[..., Any], inputs: tuple[Any, ...],
                               tangents: tuple[Tensor | None, ...], differentiable: int,
                               internal: int) -> Any:
    """Forward-mode derivatives (jvp) of a recurrence, through its out-of-place twin.

    ``J v`` is computed as the vector-Jacobian product of the linear map
    ``u -> J^T u`` (two reverse passes), which, unlike a nested forward-mode pass, also
    works inside ``torch.autograd.forward_ad``. The first ``differentiable`` outputs get
    a tangent, the ``internal`` values after them None.
    """
    positions = [index for index, value in enumerate(inputs) if isinstance(value, Tensor)]
    run = _as_function_of(states, inputs, positions, differentiable)
    outputs, vjp = torch.func.vjp(run, *(inputs[index] for index in positions))
    _, transpose = torch.func.vjp(vjp, tuple(torch.zeros_like(output) for output in outputs))
    directions = tuple(torch.zeros_like(inputs[index]) if tangents[index] is None
                       else tangents[index] for index in positions)
    (output_tangents,) = transpose(directions)
    if differentiable + internal == 1:
        return output_tangents[0]
    return tuple(output_tangents) + (None,) * internal


class _Recurrence(torch.autograd.Function):
    """What the three recurrences share: their vmap rule and their forward-mode rule.

    A subclass names its out-of-place twin (``states``), how each argument of ``forward``
    is laid out for vmap (``layout``) and how many of its outputs are differentiable and
    how many are internal values (``outputs``); its ``setup_context`` saves the tensor
    arguments with ``save_for_forward`` and the others in ``ctx.constants``.
    """

    layout: tuple[str, ...] = ()
    outputs: tuple[int, int] = (1, 0)

    @staticmethod
    def states(*arguments: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def jvp(cls, ctx: Any, *tangents: Tensor | None) -> Any:
        return _tangents_by_recomputation(cls.states, (*ctx.saved_tensors, *ctx.constants),
                                          tangents, *cls.outputs)

    @classmethod
    def vmap(cls, info: Any, in_dims: Sequence[int | None], *args: Any) -> tuple[Any, Any]:
        return _vmap_by_folding(cls, info, in_dims, args, cls.layout[: len(args)])


def _rnn_states(input: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias: Tensor | None, nonlinearity: str) -> Tensor:
    """``RNNRecurrence``'s forward in out-of-place operations (autograd can record it)."""
    activation = torch.tanh if nonlinearity == "tanh" else torch.relu

    def step(projection_t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (activation(torch.addmm(projection_t, state[0], weight_hh.t())),)

    return _run_steps(step, _project(input, weight_ih, bias), (h0,))[0]


class RNNRecurrence(_Recurrence):
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

    layout = ("sequence", "state", "weight", "weight", "weight", "weight")
    states = staticmethod(_rnn_states)

    @staticmethod
    def forward(input: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias: Tensor | None, nonlinearity: str) -> Tensor:
        """Run the layer; returns the hidden states, shape (T, B, H)."""
        projection = _project(input, weight_ih, bias)  # a_t for every t, (T, B, H)
        h = torch.empty_like(projection)  # h[t] holds h_{t+1}
        weight_hh_t = weight_hh.t()
        h_previous = h0
        for projection_t, h_t in zip(projection.unbind(0), h.unbind(0), strict=True):
            torch.addmm(projection_t, h_previous, weight_hh_t, out=h_t)
            if nonlinearity == "tanh":
                h_t.tanh_()
            else:
                h_t.relu_()
            h_previous = h_t
        return h

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        """Save what ``backward`` and forward-mode differentiation read."""
        input, h0, weight_ih, weight_hh, bias, nonlinearity = inputs
        ctx.nonlinearity, ctx.constants = nonlinearity, (nonlinearity,)
        ctx.save_for_backward(input, h0, weight_ih, weight_hh, bias, output)
        ctx.save_for_forward(input, h0, weight_ih, weight_hh, bias)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        """BPTT; returns the gradients of the arguments of ``forward``."""
        input, h0, weight_ih, weight_hh, bias, h = ctx.saved_tensors
        if not _hand_derived_backward_applies(grad_output):  # see the comment above
            return _gradients_by_autograd(
                ctx, _rnn_states, (input, h0, weight_ih, weight_hh, bias, ctx.nonlinearity),
                (grad_output,))
        steps = h.shape[0]
        if ctx.nonlinearity == "tanh":
            delta = torch.addcmul(torch.ones_like(h0), h, h, value=-1)  # 1 - h^2
        else:
            delta = (h > 0).to(h.dtype)
        # delta[t] holds f'_t; the loop multiplies it, in place, by the gradient of h_t.
        grad_h = grad_output[steps - 1]
        for t in reversed(range(steps)):
            delta[t].mul_(grad_h)
            grad_h = (torch.addmm(grad_output[t - 1], delta[t], weight_hh) if t > 0
                      else delta[t] @ weight_hh)
        needs = ctx.needs_input_grad
        grad_h0 = grad_h if needs[1] else None
        grad_weight_hh = _sum_of_outer_products(delta, _previous(h0, h)) if needs[3] else None
        grad_input, grad_weight_ih, grad_bias = _project_backward(
            delta, input, weight_ih, (needs[0], needs[2], needs[4]))
        return grad_input, grad_h0, grad_weight_ih, grad_weight_hh, grad_bias, None


def _lstm_states(input: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                 bias: Tensor | None,
                 weight_hr: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``LSTMRecurrence``'s forward in out-of-place operations (autograd can record it)."""
    hidden_size = weight_hh.shape[0] // 4

    def step(projection_t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        h, c = state[:2]
        i_f, g, o = torch.addmm(projection_t, h, weight_hh.t()).split(
            [2 * hidden_size, hidden_size, hidden_size], dim=1)
        gates = torch.cat([i_f.sigmoid(), g.tanh(), o.sigmoid()], dim=1)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.addcmul(f * c, i, g)
        tanh_c = c.tanh()
        h = o * tanh_c if weight_hr is None else (o * tanh_c) @ weight_hr.t()
        return h, c, gates, tanh_c

    h, c, gates, tanh_c = _run_steps(step, _project(input, weight_ih, bias), (h0, c0))
    return h, c, gates, tanh_c


class LSTMRecurrence(_Recurrence):
    r"""A whole LSTM layer (gate order i, f, g, o) with its BPTT.

    ``apply(input, h0, c0, weight_ih, weight_hh, bias, weight_hr)``: ``input`` (T, B, I),
    ``h0`` (B, P), ``c0`` (B, H), ``weight_ih`` (4H, I), ``weight_hh`` (4H, P), ``bias``
    (4H,) (that is ``bias_ih + bias_hh``) or ``None``, ``weight_hr`` (P, H) for a projected
    LSTM or ``None`` (then P = H). Forward, for every step, with
    :math:`a_t = x_t W_{ih}^\top + b` computed for all steps at once:
    :math:`[i, f, g, o] = [\sigma, \sigma, \tanh, \sigma](a_t + h_{t-1} W_{hh}^\top)`,
    :math:`c_t = f \odot c_{t-1} + i \odot g`, :math:`m_t = o \odot \tanh(c_t)` and
    :math:`h_t = m_t` (or :math:`m_t W_{hr}^\top`). Returns the hidden states (T, B, P),
    the cell states (T, B, H), and two internal values for the backward, the gate
    activations (T, B, 4H) and :math:`\tanh(c_t)` (T, B, H).

    Backward: :math:`\bar h_t`, :math:`\bar m_t` and :math:`\bar c_t` are the gradients
    arriving at :math:`h_t`, :math:`m_t` and :math:`c_t` (from the loss and from step
    t + 1), and :math:`\delta_t` is the gradient of the four pre-activations:

    .. math::

        \begin{aligned}
        \bar m_t &= \bar h_t \;(\text{or } \bar h_t W_{hr}), \qquad
        \bar c_t \mathrel{+}= \bar m_t \odot o \odot (1 - \tanh^2 c_t), \\
        \delta_t &= \big[\bar c_t \odot g \odot i (1 - i),\;
                        \bar c_t \odot c_{t-1} \odot f (1 - f),\;
                        \bar c_t \odot i \odot (1 - g^2),\;
                        \bar m_t \odot \tanh c_t \odot o (1 - o)\big], \\
        \bar c_{t-1} &\mathrel{+}= \bar c_t \odot f, \qquad
        \bar h_{t-1} \mathrel{+}= \delta_t W_{hh}, \\
        \frac{\partial L}{\partial W_{hh}} &= \sum_t \delta_t^\top h_{t-1}, \qquad
        \frac{\partial L}{\partial W_{ih}} = \sum_t \delta_t^\top x_t, \qquad
        \frac{\partial L}{\partial b} = \sum_t \delta_t, \qquad
        \frac{\partial L}{\partial W_{hr}} = \sum_t \bar h_t^\top m_t.
        \end{aligned}

    The factors in brackets do not depend on the gradient, so they are computed for all
    steps at once, before the backward loop.
    """

    layout = ("sequence", "state", "state", "weight", "weight", "weight", "weight")
    outputs = (2, 2)
    states = staticmethod(_lstm_states)

    @staticmethod
    def forward(input: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias: Tensor | None,
                weight_hr: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run the layer; returns h (T, B, P), c (T, B, H), the gates and tanh(c)."""
        hidden_size = weight_hh.shape[0] // 4
        gates = _project(input, weight_ih, bias)  # a_t; overwritten below by i, f, g, o
        steps, batch, _ = gates.shape
        h = gates.new_empty(steps, batch, weight_hh.shape[1])  # h[t] holds h_{t+1}
        c = gates.new_empty(steps, batch, hidden_size)  # c[t] holds c_{t+1}
        tanh_c = torch.empty_like(c)
        m = h if weight_hr is None else torch.empty_like(c)  # o tanh(c), before projection
        weight_hh_t = weight_hh.t()
        weight_hr_t = None if weight_hr is None else weight_hr.t()
        # The views of every step are made once, before the loop: each slice taken inside
        # the loop would cost an operator call per step.
        i_f, g, o = gates.split([2 * hidden_size, hidden_size, hidden_size], dim=2)
        i, f = i_f.chunk(2, dim=2)
        per_step = zip(gates.unbind(0), i_f.unbind(0), i.unbind(0), f.unbind(0), g.unbind(0),
                       o.unbind(0), c.unbind(0), tanh_c.unbind(0), m.unbind(0), h.unbind(0),
                       strict=True)
        h_previous, c_previous = h0, c0
        for gates_t, i_f_t, i_t, f_t, g_t, o_t, c_t, tanh_c_t, m_t, h_t in per_step:
            gates_t.addmm_(h_previous, weight_hh_t)
            i_f_t.sigmoid_()
            g_t.tanh_()
            o_t.sigmoid_()
            torch.mul(f_t, c_previous, out=c_t).addcmul_(i_t, g_t)
            torch.tanh(c_t, out=tanh_c_t)
            torch.mul(o_t, tanh_c_t, out=m_t)
            if weight_hr_t is not None:
                torch.mm(m_t, weight_hr_t, out=h_t)
            h_previous, c_previous = h_t, c_t
        return h, c, gates, tanh_c

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        """Save what ``backward`` and forward-mode differentiation read."""
        input, h0, c0, weight_ih, weight_hh, bias, *rest = inputs
        weight_hr = rest[0] if rest else None
        h, c, gates, tanh_c = output
        ctx.mark_non_differentiable(gates, tanh_c)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, h0, c0, weight_ih, weight_hh, bias, weight_hr, h, c,
                              gates, tanh_c)
        ctx.save_for_forward(*inputs)
        ctx.constants = ()

    @staticmethod
    def backward(ctx: Any, grad_hs: Tensor | None, grad_cs: Tensor | None,
                 *_: Any) -> tuple[Tensor | None, ...]:
        """BPTT; returns the gradients of the arguments of ``forward``."""
        input, h0, c0, weight_ih, weight_hh, bias, weight_hr, h, c, gates, tanh_c = (
            ctx.saved_tensors)
        inputs = (input, h0, c0, weight_ih, weight_hh, bias, weight_hr)[: len(ctx.needs_input_grad)]
        if not _hand_derived_backward_applies(grad_hs, grad_cs):  # see the comment above
            return _gradients_by_autograd(ctx, _lstm_states, inputs, (grad_hs, grad_cs))
        steps, _, hidden_size = c.shape
        i, f, g, o = gates.chunk(4, dim=2)
        # The factors in brackets, for all steps at once, built in place in one buffer:
        # start from the sigmoid derivative s (1 - s) of every gate, then finish each slot.
        factors = torch.addcmul(gates, gates, gates, value=-1)
        factor_i, factor_f, factor_g, factor_o = factors.chunk(4, dim=2)
        factor_i.mul_(g)  # g i (1 - i)
        factor_f.mul_(_previous(c0, c))  # c_{t-1} f (1 - f)
        torch.addcmul(i, i * g, g, value=-1, out=factor_g)  # i (1 - g^2)
        factor_o.mul_(tanh_c)  # tanh(c_t) o (1 - o)
        dc_from_m = torch.addcmul(o, o * tanh_c, tanh_c, value=-1)  # o (1 - tanh^2 c_t)
        delta = factors  # overwritten step by step, from the last, by the gradient
        delta_t = delta.unbind(0)
        delta_i_f_g = delta[:, :, : 3 * hidden_size].unflatten(2, (3, hidden_size)).unbind(0)
        delta_o = delta[:, :, 3 * hidden_size:].unbind(0)
        grad_hs = torch.zeros_like(h) if grad_hs is None else grad_hs
        grad_h_arriving = None if weight_hr is None else torch.empty_like(h)  # for W_hr
        grad_c = (h0.new_zeros(h0.shape[0], hidden_size) if grad_cs is None
                  else grad_cs[steps - 1].clone(memory_format=torch.contiguous_format))
        dc_from_m_t, f_t, grad_hs_t = dc_from_m.unbind(0), f.unbind(0), grad_hs.unbind(0)
        grad_h = grad_hs_t[steps - 1]
        for t in reversed(range(steps)):
            if weight_hr is None:
                grad_m = grad_h
            else:
                grad_h_arriving[t] = grad_h
                grad_m = grad_h @ weight_hr
            grad_c.addcmul_(grad_m, dc_from_m_t[t])
            delta_i_f_g[t].mul_(grad_c.unsqueeze(1))  # the i, f, g slots all scale by grad_c
            delta_o[t].mul_(grad_m)
            grad_c.mul_(f_t[t])
            if t > 0:
                if grad_cs is not None:
                    grad_c.add_(grad_cs[t - 1])
                grad_h = torch.addmm(grad_hs_t[t - 1], delta_t[t], weight_hh)
        needs = ctx.needs_input_grad
        grad_h0 = delta_t[0] @ weight_hh if needs[1] else None
        grad_c0 = grad_c if needs[2] else None
        grad_weight_hh = _sum_of_outer_products(delta, _previous(h0, h)) if needs[4] else None
        grad_input, grad_weight_ih, grad_bias = _project_backward(
            delta, input, weight_ih, (needs[0], needs[3], needs[5]))
        grad_weight_hr = None
        if weight_hr is not None and needs[6]:
            grad_weight_hr = _sum_of_outer_products(grad_h_arriving, o * tanh_c)
        grads = (grad_input, grad_h0, grad_c0, grad_weight_ih, grad_weight_hh, grad_bias,
                 grad_weight_hr)
        return grads[: len(needs)]


def _gru_states(input: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor | None,
                bias_hh: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """``GRURecurrence``'s forward in out-of-place operations (autograd can record it)."""
    sizes = [2 * weight_hh.shape[1], weight_hh.shape[1]]  # [r, z], n

    def step(projection_t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        h = state[0]
        u = functional.linear(h, weight_hh, bias_hh)
        a_r_z, a_n = projection_t.split(sizes, dim=1)
        u_r_z, u_n = u.split(sizes, dim=1)
        r_z = torch.sigmoid(a_r_z + u_r_z)
        r, z = r_z.chunk(2, dim=1)
        n = torch.tanh(torch.addcmul(a_n, r, u_n))
        return torch.lerp(n, h, z), torch.cat([r_z, n], dim=1), u

    h, gates, u = _run_steps(step, _project(input, weight_ih, bias_ih), (h0,))
    return h, gates, u


class GRURecurrence(_Recurrence):
    r"""A whole GRU layer (gate order r, z, n) with its BPTT.

    ``apply(input, h0, weight_ih, weight_hh, bias_ih, bias_hh)``: ``input`` (T, B, I),
    ``h0`` (B, H), ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), biases (3H,) or ``None``.
    Forward, with :math:`a_t = x_t W_{ih}^\top + b_{ih}` (computed for all steps at once)
    and :math:`u_t = h_{t-1} W_{hh}^\top + b_{hh}`, each split into r, z, n parts:
    :math:`r = \sigma(a^r_t + u^r_t)`, :math:`z = \sigma(a^z_t + u^z_t)`,
    :math:`n = \tanh(a^n_t + r \odot u^n_t)`, :math:`h_t = (1 - z) \odot n + z \odot
    h_{t-1}`. Returns the hidden states (T, B, H) and two internal values for the
    backward, the gate activations [r, z, n] and :math:`u_t`, each (T, B, 3H).

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

    Every part of :math:`\delta^u_t` and :math:`\delta^a_t` is :math:`\bar h_t` times a
    factor that does not depend on the gradient; the factors are computed for all steps
    at once, so the backward loop scales them and takes one matrix product per step.
    """

    layout = ("sequence", "state", "weight", "weight", "weight", "weight")
    outputs = (1, 2)
    states = staticmethod(_gru_states)

    @staticmethod
    def forward(input: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor | None, bias_hh: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Run the layer; returns the hidden states (T, B, H), the gates and u."""
        gates = _project(input, weight_ih, bias_ih)  # a_t; overwritten below by r, z, n
        steps, batch, three_h = gates.shape
        hidden_size = three_h // 3
        u = torch.empty_like(gates)  # u[t] holds u_t = h_{t-1} W_hh^T + b_hh
        h = gates.new_empty(steps, batch, hidden_size)  # h[t] holds h_{t+1}
        weight_hh_t = weight_hh.t()
        # The views of every step are made once, before the loop (see LSTMRecurrence).
        sizes = [2 * hidden_size, hidden_size]  # [r, z], n
        r_z, n = gates.split(sizes, dim=2)
        r, z = r_z.chunk(2, dim=2)
        u_r_z, u_n = u.split(sizes, dim=2)
        per_step = zip(u.unbind(0), r_z.unbind(0), r.unbind(0), z.unbind(0), n.unbind(0),
                       u_r_z.unbind(0), u_n.unbind(0), h.unbind(0), strict=True)
        h_previous = h0
        for u_t, r_z_t, r_t, z_t, n_t, u_r_z_t, u_n_t, h_t in per_step:
            if bias_hh is None:
                torch.mm(h_previous, weight_hh_t, out=u_t)
            else:
                torch.addmm(bias_hh, h_previous, weight_hh_t, out=u_t)
            r_z_t.add_(u_r_z_t).sigmoid_()
            n_t.addcmul_(r_t, u_n_t).tanh_()
            torch.lerp(n_t, h_previous, z_t, out=h_t)  # n + z (h - n) = (1 - z) n + z h
            h_previous = h_t
        return h, gates, u

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        """Save what ``backward`` and forward-mode differentiation read."""
        h, gates, u = output
        ctx.mark_non_differentiable(gates, u)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*inputs, h, gates, u)
        ctx.save_for_forward(*inputs)
        ctx.constants = ()

    @staticmethod
    def backward(ctx: Any, grad_hs: Tensor | None, *_: Any) -> tuple[Tensor | None, ...]:
        """BPTT; returns the gradients of the arguments of ``forward``."""
        input, h0, weight_ih, weight_hh, bias_ih, bias_hh, h, gates, u = ctx.saved_tensors
        if not _hand_derived_backward_applies(grad_hs):  # see the comment above
            return _gradients_by_autograd(
                ctx, _gru_states, (input, h0, weight_ih, weight_hh, bias_ih, bias_hh),
                (grad_hs,))
        steps, _, hidden_size = h.shape
        r, z, n = gates.chunk(3, dim=2)
        # The factors, for all steps at once, in place: one buffer starts as the sigmoid
        # derivative s (1 - s) of r and z and becomes [factor_r, factor_z, factor_n r];
        # factor_n = (1 - z)(1 - n^2) gets its own buffer.
        delta_u = torch.addcmul(gates, gates, gates, value=-1)
        factor_r, factor_z, factor_n_r = delta_u.chunk(3, dim=2)
        delta_n = torch.addcmul(torch.ones_like(h0), n, n, value=-1)  # 1 - n^2
        delta_n.addcmul_(delta_n, z, value=-1)  # factor_n = (1 - z)(1 - n^2)
        factor_r.mul_(u[:, :, 2 * hidden_size:]).mul_(delta_n)  # factor_n u^n r (1 - r)
        factor_z.mul_(_previous(h0, h).sub_(n))  # (h_{t-1} - n) z (1 - z)
        torch.mul(delta_n, r, out=factor_n_r)  # factor_n r
        # The loop scales each step's factors, in place, by the gradient arriving at h_t:
        # delta_u[t] becomes the gradient of u_t, delta_n[t] that of a^n_t.
        delta_u_steps = delta_u.unflatten(2, (3, hidden_size)).unbind(0)
        delta_u_t, delta_n_t, z_t = delta_u.unbind(0), delta_n.unbind(0), z.unbind(0)
        grad_hs_t = (torch.zeros_like(h) if grad_hs is None else grad_hs).unbind(0)
        grad_h = grad_hs_t[steps - 1]
        for t in reversed(range(steps)):
            delta_u_steps[t].mul_(grad_h.unsqueeze(1))
            delta_n_t[t].mul_(grad_h)
            through_z = (torch.addcmul(grad_hs_t[t - 1], grad_h, z_t[t]) if t > 0
                         else grad_h * z_t[t])
            grad_h = torch.addmm(through_z, delta_u_t[t], weight_hh)
        needs = ctx.needs_input_grad
        grad_h0 = grad_h if needs[1] else None
        grad_weight_hh = _sum_of_outer_products(delta_u, _previous(h0, h)) if needs[3] else None
        grad_bias_hh = delta_u.sum(dim=(0, 1)) if bias_hh is not None and needs[5] else None
        delta_u[:, :, 2 * hidden_size:] = delta_n  # now the gradient of a_t: [d_r, d_z, d_n]
        grad_input, grad_weight_ih, grad_bias_ih = _project_backward(
            delta_u, input, weight_ih, (needs[0], needs[2], bias_ih is not None and needs[4]))
        return grad_input, grad_h0, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh
