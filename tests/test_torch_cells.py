"""throughtime.torch_cells against torch.nn: same weights, same numbers, same gradients.

Every comparison here is with ``torch.nn`` (forward values and its autograd gradients),
with the other implementation of the same layer, or with finite differences
(``torch.autograd.gradcheck``). All in float64 unless a test says otherwise.
"""

from __future__ import annotations

import random
import re

import pytest
import torch
from torch import nn

from throughtime import torch_cells as tc

DTYPE = torch.float64
FORWARD_TOLERANCE = 1e-10
GRADIENT_TOLERANCE = 1e-9

# (T, B, I, H): the edge cases of size one on every axis, then random shapes (seeded).
_shape_generator = random.Random(2024)
SHAPES = [
    (1, 1, 1, 1),
    (1, 3, 2, 4),
    (5, 1, 3, 2),
    (4, 2, 1, 3),
    (6, 3, 4, 1),
] + [
    (_shape_generator.randint(1, 12), _shape_generator.randint(1, 6),
     _shape_generator.randint(1, 7), _shape_generator.randint(1, 9))
    for _ in range(5)
]
# Layers: torch.nn class, our class, extra constructor arguments.
LAYERS = {
    "rnn_tanh": (nn.RNN, tc.RNN, {}),
    "rnn_relu": (nn.RNN, tc.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, tc.LSTM, {}),
    "gru": (nn.GRU, tc.GRU, {}),
}
CELLS = {
    "rnn_tanh": (nn.RNNCell, tc.RNNCell, {}),
    "rnn_relu": (nn.RNNCell, tc.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, tc.LSTMCell, {}),
    "gru": (nn.GRUCell, tc.GRUCell, {}),
}
IMPLEMENTATIONS = ["fast", "autograd"]


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected| (the denominator kept away from zero)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()


def is_lstm(kind: str) -> bool:
    return kind == "lstm"


def make_layers(kind: str, input_size: int, hidden_size: int, *, bias: bool = True,
                batch_first: bool = False, implementation: str = "fast",
                seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """A torch.nn layer with random weights and our layer holding the same weights."""
    reference_class, our_class, extra = LAYERS[kind]
    torch.manual_seed(seed)
    reference = reference_class(input_size, hidden_size, bias=bias, batch_first=batch_first,
                                dtype=DTYPE, **extra)
    with torch.no_grad():  # wider than the default init, to exercise the nonlinearities
        for parameter in reference.parameters():
            parameter.uniform_(-1, 1)
    ours = our_class(input_size, hidden_size, bias=bias, batch_first=batch_first, dtype=DTYPE,
                     implementation=implementation, **extra)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def make_cells(kind: str, input_size: int, hidden_size: int, *, bias: bool = True,
               seed: int = 0) -> tuple[nn.Module, nn.Module]:
    reference_class, our_class, extra = CELLS[kind]
    torch.manual_seed(seed)
    ours = our_class(input_size, hidden_size, bias=bias, dtype=DTYPE, **extra)
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.uniform_(-1, 1)
    reference = reference_class(input_size, hidden_size, bias=bias, dtype=DTYPE, **extra)
    reference.load_state_dict(ours.state_dict())  # this direction, for the cells
    return reference, ours


def random_state(kind: str, shape: tuple[int, ...], generator: torch.Generator):
    """A random initial state of ``shape`` (a pair for the LSTM), requiring gradients."""
    def one() -> torch.Tensor:
        return torch.randn(shape, dtype=DTYPE, generator=generator).requires_grad_()
    return (one(), one()) if is_lstm(kind) else one()


def as_list(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def loss_and_gradients(module: nn.Module, input: torch.Tensor, state, generator_seed: int):
    """Run ``module``; return its outputs and the gradients of a random linear loss with
    respect to the input, the initial state (if given) and every parameter."""
    result = module(input, state) if state is not None else module(input)
    if module_is_layer(module):
        output, final_state = result
        results = [output, *as_list(final_state)]
    else:
        results = as_list(result)
    generator = torch.Generator().manual_seed(generator_seed)
    loss = sum((result * torch.randn(result.shape, dtype=DTYPE, generator=generator)).sum()
               for result in results)
    wrt = [input, *(as_list(state) if state is not None else []), *module.parameters()]
    return [result.detach() for result in results], torch.autograd.grad(loss, wrt)


def module_is_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.RNNBase, tc.RNN, tc.LSTM, tc.GRU))


def assert_all_close(actual, expected, tolerance: float, what: str) -> None:
    assert len(actual) == len(expected)
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        error = relative_error(a, e)
        assert error <= tolerance, f"{what} #{index}: relative error {error:.2e} > {tolerance}"


# --------------------------------------------------------------------------------------
# Parameters: names, shapes, initialisation, state dicts
# --------------------------------------------------------------------------------------

PAIRS = [
    (nn.RNNCell, tc.RNNCell, {}),
    (nn.RNNCell, tc.RNNCell, {"nonlinearity": "relu"}),
    (nn.LSTMCell, tc.LSTMCell, {}),
    (nn.GRUCell, tc.GRUCell, {}),
    (nn.RNN, tc.RNN, {}),
    (nn.LSTM, tc.LSTM, {}),
    (nn.GRU, tc.GRU, {}),
]


@pytest.mark.parametrize("reference_class, our_class, extra", PAIRS,
                         ids=lambda value: getattr(value, "__name__", None))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_seed_gives_same_initial_weights(reference_class, our_class, extra, bias, dtype):
    torch.manual_seed(123)
    reference = reference_class(5, 7, bias=bias, dtype=dtype, **extra)
    after_reference = torch.rand(3)
    torch.manual_seed(123)
    ours = our_class(5, 7, bias=bias, dtype=dtype, **extra)
    after_ours = torch.rand(3)
    expected, actual = reference.state_dict(), ours.state_dict()
    assert list(actual) == list(expected)
    for name in expected:
        assert actual[name].dtype == expected[name].dtype
        assert torch.equal(actual[name], expected[name]), name
    # Both consumed the random stream by the same amount.
    assert torch.equal(after_ours, after_reference)
    # And reset_parameters draws the same way.
    torch.manual_seed(7)
    reference.reset_parameters()
    torch.manual_seed(7)
    ours.reset_parameters()
    for name, value in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name


@pytest.mark.parametrize("reference_class, our_class, extra", PAIRS,
                         ids=lambda value: getattr(value, "__name__", None))
def test_state_dicts_load_both_ways(reference_class, our_class, extra):
    reference = reference_class(3, 4, dtype=DTYPE, **extra)
    ours = our_class(3, 4, dtype=DTYPE, **extra)
    ours.load_state_dict(reference.state_dict())  # strict by default
    for name, value in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value)
    fresh = our_class(3, 4, dtype=DTYPE, **extra)
    reference.load_state_dict(fresh.state_dict())
    for name, value in fresh.state_dict().items():
        assert torch.equal(reference.state_dict()[name], value)
    for (name, parameter), (our_name, ours_parameter) in zip(
            reference.named_parameters(), ours.named_parameters(), strict=True):
        assert name == our_name and parameter.shape == ours_parameter.shape


def test_attributes_and_repr_match_torch():
    layer = tc.LSTM(3, 4)
    assert (layer.input_size, layer.hidden_size, layer.num_layers) == (3, 4, 1)
    assert (layer.bias, layer.batch_first, layer.bidirectional) == (True, False, False)
    assert repr(layer) == "LSTM(3, 4)"
    assert repr(tc.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
    assert "nonlinearity='relu'" in repr(tc.RNN(3, 4, 1, "relu"))  # torch's positional order
    assert tc.RNN(3, 4, 1, "relu").nonlinearity == "relu"


# --------------------------------------------------------------------------------------
# Layers equal torch.nn: values and gradients
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("with_state", [True, False], ids=["hx", "no_hx"])
def test_layer_equals_torch(kind, implementation, shape, with_state):
    steps, batch, input_size, hidden_size = shape
    seed = 100 * list(LAYERS).index(kind) + 10 * steps + batch + input_size + hidden_size
    reference, ours = make_layers(kind, input_size, hidden_size,
                                  implementation=implementation, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, input_size, dtype=DTYPE, generator=generator)
    x.requires_grad_()
    state = random_state(kind, (1, batch, hidden_size), generator) if with_state else None
    expected, expected_gradients = loss_and_gradients(reference, x, state, seed)
    actual, actual_gradients = loss_and_gradients(ours, x, state, seed)
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_layer_without_bias_equals_torch(kind, implementation):
    reference, ours = make_layers(kind, 3, 5, bias=False, implementation=implementation)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 3, dtype=DTYPE, generator=generator).requires_grad_()
    state = random_state(kind, (1, 2, 5), generator)
    expected, expected_gradients = loss_and_gradients(reference, x, state, 1)
    actual, actual_gradients = loss_and_gradients(ours, x, state, 1)
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_layer_batch_first_equals_torch(kind, implementation):
    reference, ours = make_layers(kind, 3, 4, batch_first=True, implementation=implementation)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 3, dtype=DTYPE, generator=generator).requires_grad_()  # (B, T, I)
    state = random_state(kind, (1, 2, 4), generator)
    expected, expected_gradients = loss_and_gradients(reference, x, state, 2)
    actual, actual_gradients = loss_and_gradients(ours, x, state, 2)
    assert actual[0].shape == (2, 5, 4)
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("with_state", [True, False], ids=["hx", "no_hx"])
def test_layer_unbatched_sequence_equals_torch(kind, with_state):
    reference, ours = make_layers(kind, 3, 4)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, dtype=DTYPE, generator=generator).requires_grad_()  # (T, I)
    state = random_state(kind, (1, 4), generator) if with_state else None
    expected, expected_gradients = loss_and_gradients(reference, x, state, 3)
    actual, actual_gradients = loss_and_gradients(ours, x, state, 3)
    assert [a.shape for a in actual] == [e.shape for e in expected]
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_final_state_is_last_output(kind):
    _, ours = make_layers(kind, 2, 3)
    output, state = ours(torch.randn(4, 5, 2, dtype=DTYPE))
    h_n = state[0] if is_lstm(kind) else state
    assert output.shape == (4, 5, 3) and h_n.shape == (1, 5, 3)
    assert torch.equal(h_n[0], output[-1])
    if is_lstm(kind):
        assert state[1].shape == (1, 5, 3)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_fast_equals_autograd_loop(kind):
    _, fast = make_layers(kind, 4, 6, implementation="fast", seed=5)
    slow = LAYERS[kind][1](4, 6, dtype=DTYPE, implementation="autograd",
                           **LAYERS[kind][2])
    slow.load_state_dict(fast.state_dict())
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(12, 3, 4, dtype=DTYPE, generator=generator).requires_grad_()
    state = random_state(kind, (1, 3, 6), generator)
    expected, expected_gradients = loss_and_gradients(slow, x, state, 5)
    actual, actual_gradients = loss_and_gradients(fast, x, state, 5)
    assert_all_close(actual, expected, 1e-12, "output")
    assert_all_close(actual_gradients, expected_gradients, 1e-11, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_float32_close_to_torch(kind):
    reference_class, our_class, extra = LAYERS[kind]
    torch.manual_seed(4)
    reference = reference_class(8, 16, **extra)
    ours = our_class(8, 16, **extra)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(20, 4, 8, requires_grad=True)
    (expected, _), (actual, _) = reference(x), ours(x)
    assert actual.dtype == torch.float32
    assert relative_error(actual.detach(), expected.detach()) < 1e-5
    (expected_gradient,) = torch.autograd.grad(expected.sum(), x)
    (actual_gradient,) = torch.autograd.grad(actual.sum(), x)
    assert relative_error(actual_gradient, expected_gradient) < 1e-4


def gradcheck_layer(layer: nn.Module, x: torch.Tensor, state) -> bool:
    """gradcheck with respect to the input, the initial state and every parameter."""
    names = [name for name, _ in layer.named_parameters()]
    states = as_list(state)

    def run(x, *rest):
        state_values, parameter_values = rest[: len(states)], rest[len(states):]
        hx = tuple(state_values) if len(states) == 2 else state_values[0]
        output, final = torch.func.functional_call(
            layer, dict(zip(names, parameter_values, strict=True)), (x, hx))
        return (output, *as_list(final))

    inputs = (x, *states, *(p.detach().clone().requires_grad_() for p in layer.parameters()))
    return torch.autograd.gradcheck(run, inputs)


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_layer_gradcheck(kind, implementation, bias):
    _, layer = make_layers(kind, 2, 3, bias=bias, implementation=implementation, seed=6)
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(4, 2, 2, dtype=DTYPE, generator=generator).requires_grad_()
    assert gradcheck_layer(layer, x, random_state(kind, (1, 2, 3), generator))


def test_gradients_when_only_some_inputs_need_them():
    # The fast path skips the gradients nobody asked for; the others must stay right.
    reference, ours = make_layers("lstm", 3, 4, seed=8)
    x = torch.randn(5, 2, 3, dtype=DTYPE)
    for module in (reference, ours):
        module.bias_ih_l0.requires_grad_(False)
        module.weight_hh_l0.requires_grad_(False)
    expected = torch.autograd.grad(reference(x)[0].pow(2).sum(), reference.weight_ih_l0)
    actual = torch.autograd.grad(ours(x)[0].pow(2).sum(), ours.weight_ih_l0)
    assert relative_error(actual[0], expected[0]) <= GRADIENT_TOLERANCE


@pytest.mark.parametrize("kind", list(LAYERS))
def test_backward_twice_with_retain_graph_gives_the_same_gradients(kind):
    # The hand-written backward must not overwrite what the forward saved.
    _, layer = make_layers(kind, 3, 4, seed=9)
    x = torch.randn(6, 2, 3, dtype=DTYPE, requires_grad=True)
    loss = layer(x)[0].pow(2).sum()
    first = torch.autograd.grad(loss, [x, *layer.parameters()], retain_graph=True)
    second = torch.autograd.grad(loss, [x, *layer.parameters()])
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_fast_path_refuses_double_backward(kind):
    _, layer = make_layers(kind, 3, 4, seed=9)
    x = torch.randn(6, 2, 3, dtype=DTYPE, requires_grad=True)
    (gradient,) = torch.autograd.grad(layer(x)[0].pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        gradient.sum().backward()


@pytest.mark.parametrize("kind", list(LAYERS))
def test_modifying_the_output_in_place_is_caught(kind):
    # As with torch.nn.LSTM: the output is saved for backward, so autograd must refuse.
    _, layer = make_layers(kind, 3, 4, seed=9)
    output = layer(torch.randn(6, 2, 3, dtype=DTYPE, requires_grad=True))[0]
    output.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        output.sum().backward()


# --------------------------------------------------------------------------------------
# Cells equal torch.nn
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 3, 2), (4, 1, 3), (3, 5, 4)],
                         ids=lambda s: "B{}I{}H{}".format(*s))
@pytest.mark.parametrize("with_state", [True, False], ids=["hx", "no_hx"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_equals_torch(kind, shape, with_state, bias):
    batch, input_size, hidden_size = shape
    reference, ours = make_cells(kind, input_size, hidden_size, bias=bias, seed=batch)
    generator = torch.Generator().manual_seed(10 + batch)
    x = torch.randn(batch, input_size, dtype=DTYPE, generator=generator).requires_grad_()
    state = random_state(kind, (batch, hidden_size), generator) if with_state else None
    expected, expected_gradients = loss_and_gradients(reference, x, state, 11)
    actual, actual_gradients = loss_and_gradients(ours, x, state, 11)
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("with_state", [True, False], ids=["hx", "no_hx"])
def test_cell_unbatched_equals_torch(kind, with_state):
    reference, ours = make_cells(kind, 3, 4)
    generator = torch.Generator().manual_seed(12)
    x = torch.randn(3, dtype=DTYPE, generator=generator).requires_grad_()  # (I,)
    state = random_state(kind, (4,), generator) if with_state else None
    expected, expected_gradients = loss_and_gradients(reference, x, state, 12)
    actual, actual_gradients = loss_and_gradients(ours, x, state, 12)
    assert [a.shape for a in actual] == [torch.Size([4])] * len(expected)
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_gradcheck(kind):
    _, cell = make_cells(kind, 2, 3, seed=13)
    generator = torch.Generator().manual_seed(13)
    x = torch.randn(2, 2, dtype=DTYPE, generator=generator).requires_grad_()
    states = as_list(random_state(kind, (2, 3), generator))
    names = [name for name, _ in cell.named_parameters()]

    def run(x, *rest):
        hx = tuple(rest[:2]) if is_lstm(kind) else rest[0]
        parameters = dict(zip(names, rest[len(states):], strict=True))
        return torch.func.functional_call(cell, parameters, (x, hx))

    parameters = (p.detach().clone().requires_grad_() for p in cell.parameters())
    assert torch.autograd.gradcheck(run, (x, *states, *parameters))


# --------------------------------------------------------------------------------------
# Built from tensor operations only, reproducible
# --------------------------------------------------------------------------------------


def test_never_calls_torch_recurrent_kernels(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a torch recurrent kernel was called")

    for name in ["rnn_tanh", "rnn_relu", "lstm", "gru", "rnn_tanh_cell", "rnn_relu_cell",
                 "lstm_cell", "gru_cell"]:
        monkeypatch.setattr(torch._VF, name, forbidden)
    x = torch.randn(3, 2, 4)
    layers = [layer_class(4, 5, implementation=implementation)
              for layer_class in (tc.RNN, tc.LSTM, tc.GRU)
              for implementation in ("fast", "autograd")]
    for module in layers:
        output = module(x)[0]
        output.sum().backward()
    for cell in [tc.RNNCell(4, 5), tc.LSTMCell(4, 5), tc.GRUCell(4, 5)]:
        cell(x[0])
    with pytest.raises(AssertionError):  # the patch works: torch.nn itself now fails
        nn.LSTM(4, 5)(x)


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_deterministic_given_the_seed(kind, implementation):
    def run() -> list[torch.Tensor]:
        torch.manual_seed(21)
        layer = LAYERS[kind][1](3, 8, implementation=implementation, **LAYERS[kind][2])
        x = torch.randn(7, 4, 3)
        output = layer(x)[0]
        output.square().sum().backward()
        return [output.detach(), *(p.grad for p in layer.parameters())]

    first, second = run(), run()
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_implementation_can_be_switched_after_construction():
    torch.manual_seed(0)
    layer = tc.GRU(3, 4, dtype=DTYPE)
    x = torch.randn(5, 2, 3, dtype=DTYPE)
    fast = layer(x)[0]
    layer.implementation = "autograd"
    assert relative_error(layer(x)[0], fast) < 1e-12
    layer.implementation = "turbo"
    with pytest.raises(ValueError, match="implementation"):
        layer(x)


# --------------------------------------------------------------------------------------
# Bad input: clear messages naming the argument
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, call, error, pattern",
    [
        (lambda: tc.LSTM(3, 4), lambda m: m(torch.randn(3)), ValueError,
         r"input must be 3-D \(T, B, I\).*got 1-D shape \(3,\)"),
        (lambda: tc.GRU(3, 4, batch_first=True), lambda m: m(torch.randn(2, 3, 3, 3)),
         ValueError, r"input must be 3-D \(B, T, I\).*got 4-D"),
        (lambda: tc.RNN(3, 4), lambda m: m(torch.randn(5, 2, 7)), ValueError,
         r"input's last axis must be input_size = 3, got shape \(5, 2, 7\)"),
        (lambda: tc.LSTM(3, 4), lambda m: m(torch.randn(0, 2, 3)), ValueError,
         r"input has an empty axis"),
        (lambda: tc.LSTM(3, 4), lambda m: m([[1.0, 2.0, 3.0]]), TypeError,
         r"input must be a torch.Tensor, got list"),
        (lambda: tc.LSTM(3, 4, dtype=DTYPE), lambda m: m(torch.randn(5, 2, 3)), TypeError,
         r"input has dtype torch.float32 but the parameters have dtype torch.float64"),
        (lambda: tc.GRU(3, 4), lambda m: m(torch.ones(5, 2, 3, dtype=torch.long)), TypeError,
         r"input has dtype torch.int64"),
        (lambda: tc.GRU(3, 4), lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 3, 4)),
         ValueError, r"hx must have shape \(num_layers, B, H\) = \(1, 2, 4\), got \(1, 3, 4\)"),
        (lambda: tc.RNN(3, 4), lambda m: m(torch.randn(5, 2, 3), torch.randn(2, 4)),
         ValueError, r"hx must have shape \(num_layers, B, H\) = \(1, 2, 4\), got \(2, 4\)"),
        (lambda: tc.RNN(3, 4), lambda m: m(torch.randn(5, 3), torch.randn(1, 1, 4)),
         ValueError, r"hx must have shape \(num_layers, H\) .* = \(1, 4\), got \(1, 1, 4\)"),
        (lambda: tc.GRU(3, 4),
         lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 4, dtype=DTYPE)),
         TypeError, r"hx has dtype torch.float64 but the parameters have dtype torch.float32"),
        (lambda: tc.LSTM(3, 4), lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 4)),
         TypeError, r"hx must be a tuple \(h_0, c_0\) of two tensors, got Tensor"),
        (lambda: tc.LSTM(3, 4),
         lambda m: m(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 5))),
         ValueError, r"hx\[1\] \(c_0\) must have shape .* = \(1, 2, 4\), got \(1, 2, 5\)"),
        (lambda: tc.LSTM(3, 4, device="meta"), lambda m: m(torch.randn(5, 2, 3)), ValueError,
         r"input is on device cpu but the parameters are on meta"),
        (lambda: tc.LSTMCell(3, 4), lambda m: m(torch.randn(2, 2, 3)), ValueError,
         r"input must be 2-D \(B, I\) or 1-D \(I,\).*got 3-D"),
        (lambda: tc.RNNCell(3, 4), lambda m: m(torch.randn(2, 3), torch.randn(4)), ValueError,
         r"hx must have shape \(B, H\) = \(2, 4\), got \(4,\)"),
        (lambda: tc.GRUCell(3, 4), lambda m: m(torch.randn(3), torch.randn(1, 4)), ValueError,
         r"hx must have shape \(H,\) for a 1-D input = \(4,\), got \(1, 4\)"),
        (lambda: tc.LSTMCell(3, 4), lambda m: m(torch.randn(2, 3), torch.randn(2, 4)),
         TypeError, r"hx must be a tuple \(h, c\)"),
        (lambda: tc.LSTMCell(3, 4),
         lambda m: m(torch.randn(2, 3), (torch.randn(2, 4), torch.randn(2, 4).double())),
         TypeError, r"hx\[1\] \(c\) has dtype torch.float64"),
        (lambda: tc.GRUCell(3, 4), lambda m: m(torch.randn(2, 5)), ValueError,
         r"input's last axis must be input_size = 3"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(make, call, error, pattern):
    module = make()
    with pytest.raises(error, match=pattern) as raised:
        call(module)
    assert str(raised.value).startswith(type(module).__name__ + ":")


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        (lambda: tc.LSTM(3, 4, num_layers=2), ValueError, r"num_layers=2 is not supported"),
        (lambda: tc.GRU(3, 4, bidirectional=True), ValueError,
         r"bidirectional=True is not supported"),
        (lambda: tc.RNN(3, 4, dropout=0.5), ValueError, r"dropout=0.5 is not supported"),
        (lambda: tc.LSTM(3, 4, proj_size=2), ValueError, r"proj_size=2 is not supported"),
        (lambda: tc.RNN(3, 4, nonlinearity="sigmoid"), ValueError, r"nonlinearity"),
        (lambda: tc.RNNCell(3, 4, nonlinearity="sigmoid"), ValueError, r"nonlinearity"),
        (lambda: tc.LSTM(3, 4, implementation="cudnn"), ValueError, r"implementation"),
        (lambda: tc.GRU(0, 4), ValueError, r"input_size must be an integer >= 1, got 0"),
        (lambda: tc.GRUCell(3, 2.5), TypeError, r"hidden_size must be an integer"),
        (lambda: tc.LSTMCell(3, 4, bias="yes"), TypeError, r"bias must be True or False"),
        (lambda: tc.GRU(3, 4, batch_first=1), TypeError, r"batch_first must be True or False"),
    ],
)
def test_bad_constructor_arguments_are_rejected(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_message_names_what_was_expected_and_received():
    with pytest.raises(ValueError) as raised:
        tc.LSTM(3, 4)(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(2, 4)))
    message = str(raised.value)
    assert re.search(r"hx\[1\] \(c_0\)", message)
    assert "(1, 2, 4)" in message and "got (2, 4)" in message


# --------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)
# --------------------------------------------------------------------------------------

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="no CUDA device: torch.cuda.is_available() is False")


@requires_cuda
@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_layer_on_cuda_equals_cpu(kind, implementation):
    reference, ours = make_layers(kind, 3, 5, implementation=implementation, seed=30)
    generator = torch.Generator().manual_seed(30)
    x = torch.randn(7, 4, 3, dtype=DTYPE, generator=generator).requires_grad_()
    state = random_state(kind, (1, 4, 5), generator)
    expected, expected_gradients = loss_and_gradients(reference, x, state, 30)
    ours = ours.cuda()
    x_cuda = x.detach().cuda().requires_grad_()
    state_cuda = (tuple(s.detach().cuda().requires_grad_() for s in state) if is_lstm(kind)
                  else state.detach().cuda().requires_grad_())
    actual, actual_gradients = loss_and_gradients(ours, x_cuda, state_cuda, 30)
    assert all(a.is_cuda for a in actual)
    assert_all_close([a.cpu() for a in actual], expected, FORWARD_TOLERANCE, "output")
    assert_all_close([g.cpu() for g in actual_gradients], expected_gradients,
                     GRADIENT_TOLERANCE, "gradient")


@requires_cuda
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_gradcheck_on_cuda(kind):
    _, layer = make_layers(kind, 2, 3, seed=31)
    layer = layer.cuda()
    generator = torch.Generator().manual_seed(31)
    x = torch.randn(4, 2, 2, dtype=DTYPE, generator=generator).cuda().requires_grad_()
    state = random_state(kind, (1, 2, 3), generator)
    state = (tuple(s.detach().cuda().requires_grad_() for s in state) if is_lstm(kind)
             else state.detach().cuda().requires_grad_())
    assert gradcheck_layer(layer, x, state)


@requires_cuda
def test_cuda_input_with_cpu_parameters_is_rejected():
    with pytest.raises(ValueError, match=r"input is on device cuda:0 but the parameters"):
        tc.GRU(3, 4)(torch.randn(5, 2, 3, device="cuda"))
