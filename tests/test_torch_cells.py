"""throughtime.torch_cells against torch.nn: same weights, same numbers, same gradients.

Every comparison here is with ``torch.nn`` (forward values and its autograd gradients),
with the other implementation of the same layer, or with finite differences
(``torch.autograd.gradcheck``). All in float64 unless a test says otherwise. Derivatives
beyond the first, vmap and ``torch.func`` are in ``test_torch_cells_autodiff.py``;
PyTorch's own tests of its recurrent modules, run on these classes, in
``test_pytorch_*.py``.
"""

from __future__ import annotations

import copy
import io
import pickle
import random
import re
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations
from torch.nn.utils import rnn as rnn_utils

from throughtime import torch_cells as tc

DTYPE = torch.float64
FORWARD_TOLERANCE = 1e-10
GRADIENT_TOLERANCE = 1e-9

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


def _random_configurations(count: int, seed: int) -> list[dict]:
    """Random layer configurations: sizes, stacking, directions, layout, projection."""
    draw = random.Random(seed)
    configurations = []
    for _ in range(count):
        hidden = draw.randint(1, 7)
        configurations.append({
            "steps": draw.randint(1, 9), "batch": draw.randint(1, 5),
            "input_size": draw.randint(1, 6), "hidden_size": hidden,
            "num_layers": draw.randint(1, 3), "bidirectional": draw.random() < 0.5,
            "batch_first": draw.random() < 0.3, "bias": draw.random() < 0.8,
            # a projection for the LSTM only, and only when it is smaller than H
            "proj_size": draw.randint(1, hidden - 1) if hidden > 1 and draw.random() < 0.4 else 0,
        })
    return configurations


# The edge cases of size one on every axis, then random configurations (seeded).
CONFIGURATIONS = [
    {"steps": 1, "batch": 1, "input_size": 1, "hidden_size": 1, "num_layers": 1,
     "bidirectional": False, "batch_first": False, "bias": True, "proj_size": 0},
    {"steps": 1, "batch": 3, "input_size": 2, "hidden_size": 4, "num_layers": 2,
     "bidirectional": True, "batch_first": True, "bias": True, "proj_size": 2},
    {"steps": 5, "batch": 1, "input_size": 3, "hidden_size": 2, "num_layers": 1,
     "bidirectional": True, "batch_first": False, "bias": False, "proj_size": 1},
] + _random_configurations(9, seed=2024)


def configuration_id(configuration: dict) -> str:
    c = configuration
    text = f"T{c['steps']}B{c['batch']}I{c['input_size']}H{c['hidden_size']}L{c['num_layers']}"
    text += "bi" if c["bidirectional"] else ""
    text += "bf" if c["batch_first"] else ""
    text += "" if c["bias"] else "nobias"
    return text + (f"P{c['proj_size']}" if c["proj_size"] else "")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected| (the denominator kept away from zero)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if actual.numel() == 0:
        return 0.0
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()


def is_lstm(kind: str) -> bool:
    return kind == "lstm"


def layer_arguments(kind: str, configuration: dict) -> dict:
    arguments = {key: configuration[key] for key in
                 ("num_layers", "bidirectional", "batch_first", "bias")}
    if is_lstm(kind):
        arguments["proj_size"] = configuration["proj_size"]
    return arguments | LAYERS[kind][2]


def make_layers(kind: str, input_size: int, hidden_size: int, *,
                implementation: str = "fast", seed: int = 0,
                **arguments) -> tuple[nn.Module, nn.Module]:
    """A torch.nn layer with random weights and our layer holding the same weights."""
    reference_class, our_class, extra = LAYERS[kind]
    arguments = extra | arguments
    torch.manual_seed(seed)
    reference = reference_class(input_size, hidden_size, dtype=DTYPE, **arguments)
    with torch.no_grad():  # wider than the default init, to exercise the nonlinearities
        for parameter in reference.parameters():
            parameter.uniform_(-1, 1)
    ours = our_class(input_size, hidden_size, dtype=DTYPE, implementation=implementation,
                     **arguments)
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


def random_state(kind: str, shape: tuple[int, ...], generator: torch.Generator,
                 h_features: int | None = None):
    """A random initial state of ``shape`` (a pair for the LSTM), requiring gradients.

    ``h_features`` replaces the last axis of h (an LSTM with a projection)."""
    def one(size: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(size, dtype=DTYPE, generator=generator).requires_grad_()
    if not is_lstm(kind):
        return one(shape)
    h_shape = shape if h_features is None else (*shape[:-1], h_features)
    return one(h_shape), one(shape)


def as_list(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def module_is_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.RNNBase, tc.RNN, tc.LSTM, tc.GRU))


def loss_and_gradients(module: nn.Module, input, state, generator_seed: int, wrt=None):
    """Run ``module``; return its outputs and the gradients of a random linear loss with
    respect to the input, the initial state (if given) and every parameter."""
    result = module(input, state) if state is not None else module(input)
    if module_is_layer(module):
        output, final_state = result
        if isinstance(output, rnn_utils.PackedSequence):
            output = output.data
        results = [output, *as_list(final_state)]
    else:
        results = as_list(result)
    generator = torch.Generator().manual_seed(generator_seed)
    loss = sum((result * torch.randn(result.shape, dtype=DTYPE, generator=generator)).sum()
               for result in results)
    if wrt is None:
        wrt = [input, *(as_list(state) if state is not None else [])]
    wrt = [*wrt, *module.parameters()]
    return [result.detach() for result in results], torch.autograd.grad(loss, wrt,
                                                                         retain_graph=True)


def assert_all_close(actual, expected, tolerance: float, what: str) -> None:
    assert len(actual) == len(expected)
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        error = relative_error(a, e)
        assert error <= tolerance, f"{what} #{index}: relative error {error:.2e} > {tolerance}"


# --------------------------------------------------------------------------------------
# Parameters: names, shapes, initialisation, state dicts, attributes
# --------------------------------------------------------------------------------------

PAIRS = [
    (nn.RNNCell, tc.RNNCell, {}),
    (nn.RNNCell, tc.RNNCell, {"nonlinearity": "relu"}),
    (nn.LSTMCell, tc.LSTMCell, {}),
    (nn.GRUCell, tc.GRUCell, {}),
    (nn.RNN, tc.RNN, {}),
    (nn.RNN, tc.RNN, {"num_layers": 3, "bidirectional": True, "nonlinearity": "relu"}),
    (nn.LSTM, tc.LSTM, {}),
    (nn.LSTM, tc.LSTM, {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
    (nn.GRU, tc.GRU, {}),
    (nn.GRU, tc.GRU, {"num_layers": 2, "bidirectional": True}),
]


def pair_id(value) -> str | None:
    if isinstance(value, dict):
        return "-".join(f"{k}={v}" for k, v in value.items()) or "default"
    return getattr(value, "__name__", None)


@pytest.mark.parametrize("reference_class, our_class, extra", PAIRS, ids=pair_id)
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


@pytest.mark.parametrize("reference_class, our_class, extra", PAIRS, ids=pair_id)
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


@pytest.mark.parametrize("reference_class, our_class, extra",
                         [pair for pair in PAIRS if pair[0] in (nn.RNN, nn.LSTM, nn.GRU)],
                         ids=pair_id)
def test_layer_attributes_match_torch(reference_class, our_class, extra):
    reference = reference_class(3, 4, batch_first=True, **extra)
    ours = our_class(3, 4, batch_first=True, **extra)
    for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                 "bidirectional", "proj_size", "mode", "_flat_weights_names", "_all_weights"):
        assert getattr(ours, name) == getattr(reference, name), name
    expected_repr = repr(reference)
    if getattr(ours, "nonlinearity", "tanh") == "relu":  # torch.nn's RNN does not show it
        expected_repr = expected_repr[:-1] + ", nonlinearity=relu)"
    assert repr(ours) == expected_repr
    assert [[w.shape for w in layer] for layer in ours.all_weights] == [
        [w.shape for w in layer] for layer in reference.all_weights]
    assert all(w is p for w, p in zip(ours._flat_weights, ours.parameters(), strict=True))
    assert ours.flatten_parameters() is None  # accepted, and nothing to do


def test_repr_matches_torch():
    assert repr(tc.LSTM(3, 4)) == repr(nn.LSTM(3, 4)) == "LSTM(3, 4)"
    assert repr(tc.GRUCell(3, 4, bias=False)) == repr(nn.GRUCell(3, 4, bias=False))
    assert repr(tc.RNNCell(3, 4, nonlinearity="relu")) == repr(
        nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    arguments = {"num_layers": 2, "dropout": 0.5, "bidirectional": True, "proj_size": 2,
                 "batch_first": True, "bias": False}
    assert repr(tc.LSTM(3, 4, **arguments)) == repr(nn.LSTM(3, 4, **arguments))
    # Where torch.nn says nothing: the ReLU of an RNN layer, the implementation.
    assert repr(tc.RNN(3, 4, 1, "relu")) == "RNN(3, 4, nonlinearity=relu)"
    assert tc.RNN(3, 4, 1, "relu").nonlinearity == "relu"  # torch's positional order
    assert repr(tc.GRU(3, 4, implementation="autograd")) == (
        "GRU(3, 4, implementation='autograd')")


# --------------------------------------------------------------------------------------
# Layers equal torch.nn: values and gradients, on random configurations
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=configuration_id)
@pytest.mark.parametrize("with_state", [True, False], ids=["hx", "no_hx"])
def test_layer_equals_torch(kind, implementation, configuration, with_state):
    c = configuration
    arguments = layer_arguments(kind, c)
    seed = 100 * list(LAYERS).index(kind) + 10 * c["steps"] + c["batch"] + c["hidden_size"]
    reference, ours = make_layers(kind, c["input_size"], c["hidden_size"],
                                  implementation=implementation, seed=seed, **arguments)
    generator = torch.Generator().manual_seed(seed)
    shape = (c["batch"], c["steps"]) if c["batch_first"] else (c["steps"], c["batch"])
    x = torch.randn(*shape, c["input_size"], dtype=DTYPE, generator=generator)
    x.requires_grad_()
    count = c["num_layers"] * (2 if c["bidirectional"] else 1)
    state = None
    if with_state:
        state = random_state(kind, (count, c["batch"], c["hidden_size"]), generator,
                             arguments.get("proj_size") or None)
    expected, expected_gradients = loss_and_gradients(reference, x, state, seed)
    actual, actual_gradients = loss_and_gradients(ours, x, state, seed)
    assert [a.shape for a in actual] == [e.shape for e in expected]
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("configuration", CONFIGURATIONS[1:6], ids=configuration_id)
@pytest.mark.parametrize("with_state", [True, False], ids=["hx", "no_hx"])
def test_layer_on_one_sequence_equals_torch(kind, implementation, configuration, with_state):
    # Unbatched input (T, I), and states without their batch axis.
    c = configuration
    arguments = layer_arguments(kind, c)
    reference, ours = make_layers(kind, c["input_size"], c["hidden_size"],
                                  implementation=implementation, seed=3, **arguments)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(c["steps"], c["input_size"], dtype=DTYPE, generator=generator)
    x.requires_grad_()
    count = c["num_layers"] * (2 if c["bidirectional"] else 1)
    state = (random_state(kind, (count, c["hidden_size"]), generator,
                          arguments.get("proj_size") or None) if with_state else None)
    expected, expected_gradients = loss_and_gradients(reference, x, state, 3)
    actual, actual_gradients = loss_and_gradients(ours, x, state, 3)
    assert [a.shape for a in actual] == [e.shape for e in expected]
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_sequences_equal_torch(kind, implementation, enforce_sorted):
    arguments = {"num_layers": 2, "bidirectional": True} | (
        {"proj_size": 2} if is_lstm(kind) else {})
    reference, ours = make_layers(kind, 3, 4, implementation=implementation, seed=11,
                                  **arguments)
    lengths = [6, 6, 3, 1] if enforce_sorted else [3, 6, 1, 5]
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(6, 4, 3, dtype=DTYPE, generator=generator).requires_grad_()
    packed = rnn_utils.pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    state = random_state(kind, (4, 4, 4), generator, 2 if is_lstm(kind) else None)
    expected, expected_gradients = loss_and_gradients(reference, packed, state, 11, wrt=[x])
    actual, actual_gradients = loss_and_gradients(ours, packed, state, 11, wrt=[x])
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")
    output = ours(packed)[0]
    assert isinstance(output, rnn_utils.PackedSequence)
    assert torch.equal(output.batch_sizes, packed.batch_sizes)
    for ours_index, packed_index in ((output.sorted_indices, packed.sorted_indices),
                                     (output.unsorted_indices, packed.unsorted_indices)):
        assert (ours_index is None and packed_index is None) or torch.equal(ours_index,
                                                                           packed_index)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_fast_equals_autograd_loop(kind):
    arguments = {"num_layers": 2, "bidirectional": True} | (
        {"proj_size": 3} if is_lstm(kind) else {})
    _, fast = make_layers(kind, 4, 6, implementation="fast", seed=5, **arguments)
    slow = copy.deepcopy(fast)
    slow.implementation = "autograd"
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(12, 3, 4, dtype=DTYPE, generator=generator).requires_grad_()
    state = random_state(kind, (4, 3, 6), generator, 3 if is_lstm(kind) else None)
    expected, expected_gradients = loss_and_gradients(slow, x, state, 5)
    actual, actual_gradients = loss_and_gradients(fast, x, state, 5)
    assert_all_close(actual, expected, 1e-12, "output")
    assert_all_close(actual_gradients, expected_gradients, 1e-11, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_float32_close_to_torch(kind):
    reference_class, our_class, extra = LAYERS[kind]
    torch.manual_seed(4)
    reference = reference_class(8, 16, num_layers=2, bidirectional=True, **extra)
    ours = our_class(8, 16, num_layers=2, bidirectional=True, **extra)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(20, 4, 8, requires_grad=True)
    (expected, _), (actual, _) = reference(x), ours(x)
    assert actual.dtype == torch.float32
    assert relative_error(actual.detach(), expected.detach()) < 1e-5
    (expected_gradient,) = torch.autograd.grad(expected.sum(), x)
    (actual_gradient,) = torch.autograd.grad(actual.sum(), x)
    assert relative_error(actual_gradient, expected_gradient) < 1e-4


@pytest.mark.parametrize("kind", list(LAYERS))
def test_batch_of_zero_sequences_works_like_torch(kind):
    reference, ours = make_layers(kind, 3, 4, num_layers=2)
    x = torch.zeros(5, 0, 3, dtype=DTYPE, requires_grad=True)
    expected, actual = reference(x), ours(x)
    assert actual[0].shape == expected[0].shape == (5, 0, 4)
    assert [s.shape for s in as_list(actual[1])] == [s.shape for s in as_list(expected[1])]
    actual[0].sum().backward()
    assert x.grad.shape == x.shape


def test_cells_with_no_hidden_unit_work_like_torch():
    for our_class, reference_class in ((tc.RNNCell, nn.RNNCell), (tc.GRUCell, nn.GRUCell)):
        x, h = torch.randn(3, 10), torch.randn(3, 0)
        assert our_class(10, 0)(x, h).shape == reference_class(10, 0)(x, h).shape == (3, 0)


# --------------------------------------------------------------------------------------
# Dropout between layers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_of_one_or_in_eval_mode_equals_torch(kind):
    # p = 1 zeros every input of layer 2 in training; eval mode applies no dropout.
    for probability, training in ((1.0, True), (0.5, False), (0.0, True)):
        reference, ours = make_layers(kind, 3, 4, num_layers=3, dropout=probability, seed=2)
        reference.train(training)
        ours.train(training)
        generator = torch.Generator().manual_seed(2)
        x = torch.randn(5, 2, 3, dtype=DTYPE, generator=generator).requires_grad_()
        expected, expected_gradients = loss_and_gradients(reference, x, None, 2)
        actual, actual_gradients = loss_and_gradients(ours, x, None, 2)
        assert_all_close(actual, expected, FORWARD_TOLERANCE, f"output p={probability}")
        assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE,
                         f"gradient p={probability}")


def test_dropout_in_training_is_random_and_scaled():
    # Each output of layer 1 is dropped with probability p, the rest scaled by 1/(1 - p):
    # with an identity-like second layer the kept fraction shows in layer 2's input.
    torch.manual_seed(0)
    layer = tc.RNN(1, 2000, num_layers=2, dropout=0.25, nonlinearity="relu", bias=False)
    with torch.no_grad():
        layer.weight_ih_l0.fill_(1)
        layer.weight_hh_l0.zero_()
        layer.weight_ih_l1.copy_(torch.eye(2000))
        layer.weight_hh_l1.zero_()
    x = torch.ones(1, 1, 1)
    first, second = layer(x)[0], layer(x)[0]
    assert not torch.equal(first, second)  # a new mask at every call
    kept = (first > 0).double().mean().item()
    assert abs(kept - 0.75) < 0.04, kept
    assert torch.allclose(first[first > 0], torch.tensor(1 / 0.75))
    layer.eval()
    assert torch.equal(layer(x)[0], torch.ones(1, 1, 2000))


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        tc.GRU(3, 4, dropout=0.5)


# --------------------------------------------------------------------------------------
# Drop-in behaviour: outputs, in-place edits, weights utilities, serialisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_final_state_is_its_own_tensor(kind, implementation, batch_first):
    _, ours = make_layers(kind, 2, 3, implementation=implementation, batch_first=batch_first)
    output, state = ours(torch.randn(4, 5, 2, dtype=DTYPE))
    h_n = state[0] if is_lstm(kind) else state
    last = output[:, -1] if batch_first else output[-1]
    assert h_n.shape == (1, 4 if batch_first else 5, 3)
    assert torch.equal(h_n[0], last)
    before = h_n.clone()
    with torch.no_grad():
        output.add_(1)
    assert torch.equal(h_n, before), "editing the output must not change h_n"


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_editing_outputs_in_place_keeps_backward_right(kind, implementation):
    # As torch.nn (in float64, and RNN and GRU in any dtype): the output and the final
    # states may be edited in place before backward; the gradients follow the edit.
    def edited_gradients(module, x):
        output, state = module(x)
        output.mul_(2)
        for s in as_list(state):
            s.add_(1)
        loss = output.pow(2).sum() + sum(s.pow(2).sum() for s in as_list(state))
        return torch.autograd.grad(loss, [x, *module.parameters()])

    reference, ours = make_layers(kind, 3, 4, implementation=implementation, num_layers=2)
    x = torch.randn(6, 2, 3, dtype=DTYPE, requires_grad=True)
    assert_all_close(edited_gradients(ours, x), edited_gradients(reference, x),
                     GRADIENT_TOLERANCE, "gradient after an in-place edit")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_weight_norm_works_like_on_torch(kind):
    # torch.nn.utils.weight_norm replaces a weight by a computed tensor before each call;
    # _flat_weights must follow, and the layer must compute with the new weight.
    for name in ("weight_ih_l0", "weight_hh_l1"):
        reference, ours = make_layers(kind, 3, 4, num_layers=2)
        count = len(list(ours.parameters()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # weight_norm is deprecated
            reference = nn.utils.weight_norm(reference, name=name)
            ours = nn.utils.weight_norm(ours, name=name)
        assert sum(isinstance(w, nn.Parameter) for w in ours._flat_weights) == count - 1
        x = torch.randn(5, 2, 3, dtype=DTYPE, requires_grad=True)
        expected, expected_gradients = loss_and_gradients(reference, x, None, 0)
        actual, actual_gradients = loss_and_gradients(ours, x, None, 0)
        assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
        assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")
        ours = nn.utils.remove_weight_norm(ours, name=name)
        assert sum(isinstance(w, nn.Parameter) for w in ours._flat_weights) == count


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_parametrizations_work_like_on_torch(kind):
    reference, ours = make_layers(kind, 3, 4)
    for module in (reference, ours):
        parametrizations.weight_norm(module, name="weight_hh_l0")
        parametrizations.spectral_norm(module, name="weight_ih_l0")
    reference.load_state_dict(ours.state_dict())
    reference.eval()
    ours.eval()  # spectral norm's power iteration runs in training only
    x = torch.randn(5, 2, 3, dtype=DTYPE, requires_grad=True)
    expected, expected_gradients = loss_and_gradients(reference, x, None, 0)
    actual, actual_gradients = loss_and_gradients(ours, x, None, 0)
    assert_all_close(actual, expected, FORWARD_TOLERANCE, "output")
    assert_all_close(actual_gradients, expected_gradients, GRADIENT_TOLERANCE, "gradient")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_pickle_deepcopy_and_save_keep_the_function(kind):
    _, ours = make_layers(kind, 3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3, dtype=DTYPE)
    expected = ours(x)[0]
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    for copied in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours),
                   torch.load(buffer, weights_only=False)):
        assert torch.equal(copied(x)[0], expected)


def test_functional_call_uses_the_given_weights():
    reference, ours = make_layers("lstm", 3, 4, num_layers=2)
    weights = {name: torch.randn_like(p) for name, p in reference.named_parameters()}
    x = torch.randn(5, 2, 3, dtype=DTYPE)
    expected = torch.func.functional_call(reference, weights, (x,))[0]
    actual = torch.func.functional_call(ours, weights, (x,))[0]
    assert relative_error(actual, expected) < FORWARD_TOLERANCE


@pytest.mark.parametrize("module", [tc.LSTM(3, 4), tc.GRU(3, 4, implementation="autograd"),
                                    tc.RNNCell(3, 4), tc.LSTMCell(3, 4)],
                         ids=lambda module: repr(module))
def test_torchscript_refuses_with_a_clear_error(module):
    name = type(module).__name__
    with pytest.raises(RuntimeError, match=rf"{name}: torch.jit.script cannot compile"):
        torch.jit.script(module)


def test_tracing_a_layer_refuses_and_tracing_a_cell_works():
    with pytest.raises(RuntimeError, match=r"GRU: torch.jit.trace cannot record this layer"):
        torch.jit.trace(tc.GRU(3, 4), torch.randn(5, 2, 3))
    cell = tc.GRUCell(3, 4)
    traced = torch.jit.trace(cell, torch.randn(2, 3))
    x = torch.randn(6, 3)
    assert torch.equal(traced(x), cell(x))


# --------------------------------------------------------------------------------------
# Accuracy: torch.tanh, not 2 sigmoid(2x) - 1
# --------------------------------------------------------------------------------------


def _lstm_with_tanh_from_sigmoid(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The LSTM with tanh(a) computed as 2 sigmoid(2a) - 1 (a negative control)."""
    def tanh(a: torch.Tensor) -> torch.Tensor:
        return 2 * torch.sigmoid(2 * a) - 1

    h = c = x.new_zeros(x.shape[1], layer.hidden_size)
    outputs = []
    for x_t in x:
        gates = (x_t @ layer.weight_ih_l0.t() + layer.bias_ih_l0 + h @ layer.weight_hh_l0.t()
                 + layer.bias_hh_l0)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * tanh(g)
        h = torch.sigmoid(o) * tanh(c)
        outputs.append(h)
    return torch.stack(outputs)


@pytest.mark.parametrize("dtype, slack", [(torch.float32, 4.0), (torch.bfloat16, 1.5)])
def test_lstm_is_as_accurate_as_torch_near_zero(dtype, slack):
    # Tiny pre-activations make g, c and h tiny: there, 2 sigmoid(2x) - 1 loses its
    # relative precision (a difference of two numbers near 1), and tanh does not.
    torch.manual_seed(0)
    reference = nn.LSTM(4, 8, dtype=dtype)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.mul_(1e-3)
    ours = tc.LSTM(4, 8, dtype=dtype)
    ours.load_state_dict(reference.state_dict())
    truth_layer = nn.LSTM(4, 8, dtype=torch.float64)
    truth_layer.load_state_dict(reference.state_dict())  # the same (rounded) weights
    x = torch.randn(10, 3, 4, dtype=dtype) * 1e-3
    with torch.no_grad():
        truth = truth_layer(x.double())[0]
        assert truth.abs().max() < 1e-3, "the test needs near-zero hidden values"

        def error(output: torch.Tensor) -> float:
            return ((output.double() - truth).abs() / truth.abs()).max().item()

        ours_error, torch_error = error(ours(x)[0]), error(reference(x)[0])
        control_error = error(_lstm_with_tanh_from_sigmoid(reference, x))
    bound = slack * max(torch_error, torch.finfo(dtype).eps)
    assert ours_error <= bound, (ours_error, torch_error)
    assert control_error > bound, "the negative control should fail the bound"


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_layers_are_at_least_as_accurate_as_torch(kind, dtype):
    # In bfloat16 and float16 the recurrence runs in float32 and only its results are
    # rounded: the median error against float64 is no larger than torch.nn's.
    reference_class, our_class, extra = LAYERS[kind]
    torch.manual_seed(1)
    reference = reference_class(8, 32, num_layers=2, dtype=dtype, **extra)
    ours = our_class(8, 32, num_layers=2, dtype=dtype, **extra)
    ours.load_state_dict(reference.state_dict())
    truth_layer = reference_class(8, 32, num_layers=2, dtype=DTYPE, **extra)
    truth_layer.load_state_dict(reference.state_dict())
    x = torch.randn(40, 4, 8).to(dtype)
    with torch.no_grad():
        truth = truth_layer(x.double())[0]

        def median_error(output: torch.Tensor) -> float:
            return ((output.double() - truth).abs() / truth.abs()).median().item()

        ours_error, torch_error = median_error(ours(x)[0]), median_error(reference(x)[0])
    assert ours(x)[0].dtype == dtype
    assert ours_error <= torch_error * 1.05, (ours_error, torch_error)


def test_lstm_computes_tanh_with_tanh():
    # Each step takes one tanh of the candidate and one of the cell state.
    counts = torch.zeros(2)

    class Counter(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (torch.tanh, torch.Tensor.tanh, torch.Tensor.tanh_):
                counts[0] += 1
            if func in (torch.sigmoid, torch.Tensor.sigmoid, torch.Tensor.sigmoid_):
                counts[1] += 1
            return func(*args, **(kwargs or {}))

    layer = tc.LSTM(3, 4)
    with torch.no_grad(), Counter():
        layer(torch.randn(7, 2, 3))
    assert counts.tolist() == [14, 14]  # per step: 2 tanh, sigmoid of [i, f] and of o


# --------------------------------------------------------------------------------------
# Cells equal torch.nn
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 3, 2), (4, 1, 3), (3, 5, 4), (0, 2, 3)],
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
    layers = [layer_class(4, 5, num_layers=2, bidirectional=True,
                          implementation=implementation)
              for layer_class in (tc.RNN, tc.LSTM, tc.GRU)
              for implementation in ("fast", "autograd")]
    for module in layers:
        output = module(x)[0]
        output.sum().backward()
        module(rnn_utils.pack_padded_sequence(x, [3, 1]))
    for cell in [tc.RNNCell(4, 5), tc.LSTMCell(4, 5), tc.GRUCell(4, 5)]:
        cell(x[0])
    with pytest.raises(AssertionError):  # the patch works: torch.nn itself now fails
        nn.LSTM(4, 5)(x)


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_deterministic_given_the_seed(kind, implementation):
    def run() -> list[torch.Tensor]:
        torch.manual_seed(21)
        layer = LAYERS[kind][1](3, 8, num_layers=2, dropout=0.3,
                                implementation=implementation, **LAYERS[kind][2])
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
# Bad input: clear messages naming the argument, with torch.nn's text and error types
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, call, error, pattern",
    [
        (lambda: tc.LSTM(3, 4), lambda m: m(torch.randn(3)), ValueError,
         r"Expected input to be 2D or 3D, got 1D instead: input must be \(T, B, I\).*"
         r"got shape \(3,\)"),
        (lambda: tc.GRU(3, 4, batch_first=True), lambda m: m(torch.randn(2, 3, 3, 3)),
         ValueError, r"Expected input to be 2D or 3D, got 4D instead: input must be "
                     r"\(B, T, I\)"),
        (lambda: tc.RNN(3, 4), lambda m: m(torch.randn(5, 2, 7)), RuntimeError,
         r"input.size\(-1\) must be equal to input_size. Expected 3, got 7 .*\(5, 2, 7\)"),
        (lambda: tc.LSTM(3, 4), lambda m: m(torch.randn(0, 2, 3)), RuntimeError,
         r"Expected sequence length to be larger than 0 in RNN"),
        (lambda: tc.LSTM(3, 4), lambda m: m([[1.0, 2.0, 3.0]]), TypeError,
         r"input must be a torch.Tensor or a PackedSequence, got a list of length 1"),
        (lambda: tc.LSTM(3, 4, dtype=DTYPE), lambda m: m(torch.randn(5, 2, 3)), TypeError,
         r"RNN input dtype \(torch.float32\) does not match weight dtype \(torch.float64\)"),
        (lambda: tc.GRU(3, 4), lambda m: m(torch.ones(5, 2, 3, dtype=torch.long)), ValueError,
         r"input dtype \(torch.int64\)"),
        (lambda: tc.GRU(3, 4), lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 3, 4)),
         RuntimeError, r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]: hx must have "
                       r"shape \(num_layers \* num_directions, B, H\) = \(1, 2, 4\)"),
        (lambda: tc.GRU(3, 4, num_layers=2, bidirectional=True),
         lambda m: m(torch.randn(5, 2, 3), torch.randn(2, 2, 4)), RuntimeError,
         r"Expected hidden size \(4, 2, 4\), got \[2, 2, 4\]"),
        (lambda: tc.RNN(3, 4), lambda m: m(torch.randn(5, 2, 3), torch.randn(2, 4)),
         RuntimeError, r"For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
        (lambda: tc.RNN(3, 4), lambda m: m(torch.randn(5, 3), torch.randn(1, 1, 4)),
         RuntimeError, r"For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
        (lambda: tc.GRU(3, 4),
         lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 4, dtype=DTYPE)),
         TypeError, r"hx dtype \(torch.float64\) does not match weight dtype \(torch.float32\)"),
        (lambda: tc.LSTM(3, 4), lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 4)),
         TypeError, r"hx must be a tuple \(h_0, c_0\) of two tensors, got a "
                    r"torch.Tensor of shape \(1, 2, 4\)"),
        (lambda: tc.LSTM(3, 4),
         lambda m: m(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 5))),
         RuntimeError, r"Expected hidden\[1\] size \(1, 2, 4\), got \[1, 2, 5\]: hx\[1\] "
                       r"\(c_0\) must have shape"),
        (lambda: tc.LSTM(3, 5, proj_size=2),
         lambda m: m(torch.randn(4, 2, 3), (torch.randn(1, 2, 5), torch.randn(1, 2, 5))),
         RuntimeError, r"Expected hidden\[0\] size \(1, 2, 2\), got \[1, 2, 5\]: hx\[0\] "
                       r"\(h_0\) must have shape \(num_layers \* num_directions, B, "
                       r"proj_size\)"),
        (lambda: tc.LSTM(3, 4),
         lambda m: m(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(2, 4))),
         RuntimeError, r"hx and cx should also be 3-D but got \(3-D, 2-D\) tensors"),
        (lambda: tc.LSTM(3, 4, device="meta"), lambda m: m(torch.randn(5, 2, 3)),
         RuntimeError, r"Input and parameter tensors are not at the same device, found "
                       r"input at cpu and parameter tensor at meta"),
        (lambda: tc.LSTMCell(3, 4), lambda m: m(torch.randn(2, 2, 3)), ValueError,
         r"LSTMCell: Expected input to be 1D or 2D, got 3D instead"),
        (lambda: tc.RNNCell(3, 4), lambda m: m(torch.randn(2, 3), torch.randn(4)),
         RuntimeError, r"Input batch size 2 doesn't match hidden0 batch size 4: hx must have "
                       r"shape \(B, H\) = \(2, 4\), got \(4,\)"),
        (lambda: tc.GRUCell(3, 4), lambda m: m(torch.randn(3), torch.randn(1, 4)),
         RuntimeError, r"hx must have shape \(H,\) = \(4,\) for a 1-D input, got \(1, 4\)"),
        (lambda: tc.GRUCell(3, 4), lambda m: m(torch.randn(2, 3), torch.randn(2, 5)),
         RuntimeError, r"hidden0 has inconsistent hidden_size: got 5, expected 4"),
        (lambda: tc.LSTMCell(3, 4), lambda m: m(torch.randn(2, 3), torch.randn(2, 4)),
         TypeError, r"hx must be a tuple \(h, c\)"),
        (lambda: tc.LSTMCell(3, 4),
         lambda m: m(torch.randn(2, 3), (torch.randn(2, 4), torch.randn(2, 4).double())),
         RuntimeError, r"hx\[1\] \(c\) dtype \(torch.float64\) does not match"),
        (lambda: tc.GRUCell(3, 4), lambda m: m(torch.randn(2, 5)), RuntimeError,
         r"input has inconsistent input_size: got 5 expected 3"),
        (lambda: tc.RNNCell(3, 4), lambda m: m(torch.randn(2, 3), torch.randn(1, 1, 2, 4)),
         ValueError, r"Expected hidden to be 1D or 2D, got 4D instead"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(make, call, error, pattern):
    module = make()
    with pytest.raises(error, match=pattern) as raised:
        call(module)
    assert str(raised.value).startswith(type(module).__name__ + ":")


def test_input_errors_are_both_what_torch_raises_and_value_errors():
    # torch.nn raises RuntimeError for wrong sizes, ValueError (layers) or RuntimeError
    # (cells) for a wrong dtype; the library's errors are those and more.
    assert issubclass(tc.RecurrentInputError, RuntimeError)
    assert issubclass(tc.RecurrentInputError, ValueError)
    for kind in (TypeError, ValueError, RuntimeError):
        assert issubclass(tc.RecurrentDtypeError, kind)
    for module, x in ((nn.GRU(3, 4), torch.randn(5, 2, 7)), (tc.GRU(3, 4), torch.randn(5, 2, 7)),
                      (nn.GRUCell(3, 4), torch.randn(2, 7)), (tc.GRUCell(3, 4), torch.randn(2, 7))):
        with pytest.raises(RuntimeError):
            module(x)


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        (lambda: tc.LSTM(3, 4, num_layers=0), ValueError, r"num_layers must be greater than zero"),
        (lambda: tc.LSTM(3, 4, num_layers=1.5), TypeError,
         r"num_layers should be of type int, got: float"),
        (lambda: tc.GRU(3, 4, bidirectional=1), TypeError,
         r"bidirectional should be of type bool, got: int"),
        (lambda: tc.RNN(3, 4, dropout=1.5), ValueError,
         r"dropout should be a number in range \[0, 1\]"),
        (lambda: tc.RNN(3, 4, dropout=True), ValueError, r"dropout should be a number"),
        (lambda: tc.LSTM(3, 4, proj_size=4), ValueError,
         r"proj_size has to be smaller than hidden_size, got proj_size=4 and hidden_size=4"),
        (lambda: tc.LSTM(3, 4, proj_size=-1), ValueError,
         r"proj_size should be a positive integer or zero"),
        (lambda: tc.GRU(3, 4, proj_size=2), ValueError,
         r"proj_size argument is only supported for LSTM, not RNN or GRU"),
        (lambda: tc.RNN(3, 4, proj_size=0), ValueError, r"proj_size argument is only supported"),
        (lambda: tc.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
         r"Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'"),
        (lambda: tc.RNNCell(3, 4, nonlinearity="sigmoid"), ValueError, r"Unknown nonlinearity"),
        (lambda: tc.LSTM(3, 4, implementation="cudnn"), ValueError, r"implementation"),
        (lambda: tc.GRU(0, 4), ValueError, r"input_size must be greater than zero, got 0"),
        (lambda: tc.GRU(3, 0), ValueError, r"hidden_size must be greater than zero, got 0"),
        (lambda: tc.GRUCell(3, 2.5), TypeError, r"hidden_size should be of type int, got: float"),
        (lambda: tc.GRUCell(-1, 2), ValueError, r"input_size must be at least 0, got -1"),
        (lambda: tc.LSTMCell(3, 4, bias="yes"), TypeError,
         r"bias should be of type bool, got: str"),
        (lambda: tc.GRUCell(10, 20, "relu"), TypeError, r"bias should be of type bool, got: str"),
        (lambda: tc.GRU(3, 4, batch_first=1), TypeError,
         r"batch_first should be of type bool, got: int"),
    ],
)
def test_bad_constructor_arguments_are_rejected(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_cells_refuse_the_error_inputs_torch_refuses():
    # torch 2.13's error inputs of nn.RNNCell and nn.GRUCell (PyTorch's module tests),
    # those that build the cell with a bool bias; the library refuses the other one,
    # RNNCell(10, 20, 'relu') (bias='relu'), when the cell is built (see above).
    cases = [
        ((3, 11), (3, 20), RuntimeError, "input has inconsistent input_size: got 11 expected 10"),
        ((3, 10), (3, 21), RuntimeError, "hidden0 has inconsistent hidden_size: got 21, "
                                         "expected 20"),
        ((3, 10), (5, 20), RuntimeError, "Input batch size 3 doesn't match hidden0 batch size 5"),
        ((3, 10), (3, 1, 1, 20), ValueError, "Expected hidden to be 1D or 2D, got 4D instead"),
    ]
    for cell_class in (tc.RNNCell, tc.GRUCell):
        for arguments in ((10, 20), (10, 20, True)):
            for input_shape, state_shape, error, pattern in cases:
                cell = cell_class(*arguments)
                with pytest.raises(error, match=re.escape(pattern)):
                    cell(torch.randn(input_shape), torch.randn(state_shape))
    cell = tc.RNNCell(10, 20, nonlinearity="relu")
    with pytest.raises(RuntimeError, match="hidden0 has inconsistent hidden_size: got 21"):
        cell(torch.randn(3, 10), torch.randn(3, 21))


# --------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)
# --------------------------------------------------------------------------------------

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="no CUDA device: torch.cuda.is_available() is False")


@requires_cuda
@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_layer_on_cuda_equals_cpu(kind, implementation):
    arguments = {"num_layers": 2, "bidirectional": True}
    reference, ours = make_layers(kind, 3, 5, implementation=implementation, seed=30,
                                  **arguments)
    generator = torch.Generator().manual_seed(30)
    x = torch.randn(7, 4, 3, dtype=DTYPE, generator=generator).requires_grad_()
    state = random_state(kind, (4, 4, 5), generator)
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
def test_cuda_input_with_cpu_parameters_is_rejected():
    with pytest.raises(RuntimeError, match=r"Input and parameter tensors are not at the same "
                                           r"device, found input at cuda:0"):
        tc.GRU(3, 4)(torch.randn(5, 2, 3, device="cuda"))
