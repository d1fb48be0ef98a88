"""gates: gate slices, the effective gate biases and gate recordings, checked against torch."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from throughtime import numpy_cells, torch_cells
from throughtime.gates import (
    GATE_ORDER,
    RECORDED,
    draw_state,
    effective_forget_bias,
    gate_rows,
    memory_unit,
    record_gates,
    set_forget_bias,
    set_update_bias,
    state_at,
)
from throughtime.tasks import adding_problem

I, H, B, T = 3, 4, 2, 6


def torch_sigmoid(value: float) -> float:
    return torch.sigmoid(torch.tensor(value, dtype=torch.float64)).item()


def lstm_modules() -> list[torch.nn.Module]:
    kwargs = {"dtype": torch.float64}
    return [torch.nn.LSTM(I, H, **kwargs), torch.nn.LSTMCell(I, H, **kwargs),
            torch_cells.LSTM(I, H, **kwargs), torch_cells.LSTMCell(I, H, **kwargs)]


def biases(module: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    suffix = "_l0" if hasattr(module, "bias_ih_l0") else ""
    return getattr(module, "bias_ih" + suffix), getattr(module, "bias_hh" + suffix)


def one_step(module: torch.nn.Module, x: torch.Tensor, h: torch.Tensor,
             c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step (h', c') of a cell or of a layer run on a length-1 sequence."""
    if hasattr(module, "bias_ih_l0"):
        _, (h_next, c_next) = module(x[None], (h[None], c[None]))
        return h_next[0], c_next[0]
    return module(x, (h, c))


# --------------------------------------------------------------------------------------
# gate_rows
# --------------------------------------------------------------------------------------


def test_gate_rows_are_pytorchs_blocks_i_f_g_o():
    assert [gate_rows("LSTM", gate, 5) for gate in GATE_ORDER["LSTM"]] == [
        slice(0, 5), slice(5, 10), slice(10, 15), slice(15, 20)]


def test_gates_from_the_slices_reproduce_torch_lstm_cell():
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(I, H, dtype=torch.float64)
    x = torch.randn(B, I, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    c = torch.randn(B, H, dtype=torch.float64)
    with torch.no_grad():
        rows = {gate: gate_rows("LSTM", gate, H) for gate in GATE_ORDER["LSTM"]}
        pre = {gate: x @ cell.weight_ih[rows[gate]].T + cell.bias_ih[rows[gate]]
               + h @ cell.weight_hh[rows[gate]].T + cell.bias_hh[rows[gate]]
               for gate in GATE_ORDER["LSTM"]}
        i, f, o = (torch.sigmoid(pre[gate]) for gate in "ifo")
        g = torch.tanh(pre["g"])
        c_next = f * c + i * g
        h_next = o * torch.tanh(c_next)
        h_torch, c_torch = cell(x, (h, c))
    torch.testing.assert_close(c_next, c_torch, rtol=0, atol=1e-14)
    torch.testing.assert_close(h_next, h_torch, rtol=0, atol=1e-14)


def test_gate_rows_are_the_gru_blocks_r_z_n():
    assert [gate_rows("GRU", g, 5) for g in GATE_ORDER["GRU"]] == [slice(0, 5), slice(5, 10),
                                                                 slice(10, 15)]


@pytest.mark.parametrize("kind, gate, hidden_size, error, match", [
    ("LSTM", "z", 4, ValueError, "gate must be one of"),
    ("GRU", "f", 4, ValueError, "gate must be one of"),
    ("LSTM", "F", 4, ValueError, "gate must be one of"),
    ("LSTM", "f", 0, ValueError, "hidden_size"),
    ("LSTM", "f", 2.0, TypeError, "hidden_size"),
    ("RNN", "h", 4, ValueError, "kind must be one of"),
])
def test_gate_rows_rejects_bad_arguments(kind, gate, hidden_size, error, match):
    with pytest.raises(error, match=match):
        gate_rows(kind, gate, hidden_size)


# --------------------------------------------------------------------------------------
# set_forget_bias and effective_forget_bias
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", lstm_modules(), ids=lambda m: type(m).__module__ + "."
                         + type(m).__name__)
@pytest.mark.parametrize("value", [1.0, -0.5, 3])
def test_set_forget_bias_makes_the_sum_of_the_two_biases_equal_value(module, value):
    bias_ih, bias_hh = biases(module)
    before_ih, before_hh = bias_ih.detach().clone(), bias_hh.detach().clone()
    assert set_forget_bias(module, value) is module
    rows = gate_rows("LSTM", "f", H)
    effective = bias_ih[rows] + bias_hh[rows]
    torch.testing.assert_close(effective, torch.full((H,), float(value), dtype=torch.float64),
                               rtol=0, atol=0)
    assert torch.equal(bias_hh[rows], torch.zeros(H, dtype=torch.float64))
    torch.testing.assert_close(effective_forget_bias(module), effective.detach())
    # The other gates' biases are untouched.
    others = torch.ones(4 * H, dtype=torch.bool)
    others[rows] = False
    assert torch.equal(bias_ih[others], before_ih[others])
    assert torch.equal(bias_hh[others], before_hh[others])


@pytest.mark.parametrize("module", lstm_modules(), ids=lambda m: type(m).__module__ + "."
                         + type(m).__name__)
def test_the_forget_gate_torch_computes_is_sigmoid_of_value(module):
    """With zero weights and a zero candidate, torch's own step gives c' = sigmoid(b) c."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
    set_forget_bias(module, 1.0)
    x = torch.randn(B, I, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    c = torch.randn(B, H, dtype=torch.float64)
    with torch.no_grad():
        _, c_next = one_step(module, x, h, c)
    torch.testing.assert_close(c_next, torch_sigmoid(1.0) * c, rtol=1e-15, atol=0)


def test_setting_both_slices_to_one_gives_an_effective_bias_of_two():
    """The trap the helper avoids: b_if = b_hf = 1 means the forget gate sees 2."""
    cell = torch.nn.LSTMCell(I, H, dtype=torch.float64)
    rows = gate_rows("LSTM", "f", H)
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.zero_()
        cell.bias_ih[rows] = 1.0
        cell.bias_hh[rows] = 1.0
        c = torch.randn(B, H, dtype=torch.float64)
        _, c_next = cell(torch.zeros(B, I, dtype=torch.float64),
                         (torch.zeros(B, H, dtype=torch.float64), c))
    torch.testing.assert_close(effective_forget_bias(cell), torch.full((H,), 2.0,
                                                                        dtype=torch.float64))
    torch.testing.assert_close(c_next, torch_sigmoid(2.0) * c, rtol=1e-15, atol=0)


def test_set_forget_bias_sets_every_layer_and_direction():
    lstm = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    set_forget_bias(lstm, 1.0)
    for layer in (0, 1):
        for reverse in (False, True):
            effective = effective_forget_bias(lstm, layer=layer, reverse=reverse)
            assert torch.equal(effective, torch.ones(H))
    with pytest.raises(ValueError, match="bias_ih_l2"):
        effective_forget_bias(lstm, layer=2)
    with pytest.raises(ValueError, match="layer must be 0"):
        effective_forget_bias(torch.nn.LSTMCell(I, H), layer=1)
    with pytest.raises(TypeError, match="reverse"):
        effective_forget_bias(lstm, reverse=1)


@pytest.mark.parametrize("module, error, match", [
    (torch.nn.GRU(I, H), ValueError, "is GRU an LSTM"),
    (torch.nn.RNN(I, H), ValueError, "is RNN an LSTM"),
    (torch.nn.LSTM(I, H, bias=False), ValueError, "bias=False"),
    (torch.nn.Linear(I, H), TypeError, "hidden_size"),
    ("lstm", TypeError, "torch.nn.Module"),
])
def test_set_forget_bias_rejects_modules_that_are_not_lstms_with_biases(module, error, match):
    with pytest.raises(error, match=match):
        set_forget_bias(module, 1.0)


@pytest.mark.parametrize("value, error", [(float("nan"), ValueError), ("1", TypeError),
                                          (True, TypeError)])
def test_set_forget_bias_rejects_bad_values(value, error):
    with pytest.raises(error, match="value"):
        set_forget_bias(torch.nn.LSTMCell(I, H), value)


# --------------------------------------------------------------------------------------
# set_update_bias: the GRU's update gate
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: torch.nn.GRU(3, 4, dtype=torch.float64),
    lambda: torch.nn.GRUCell(3, 4, dtype=torch.float64),
    lambda: torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64),
])
def test_set_update_bias_sets_the_effective_z_bias_only(make):
    module = make()
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    assert set_update_bias(module, 1.5) is module
    z = slice(4, 8)
    for name, p in module.named_parameters():
        if name.startswith("bias_ih"):
            partner = dict(module.named_parameters())["bias_hh" + name[len("bias_ih"):]]
            torch.testing.assert_close(p[z] + partner[z], torch.full((4,), 1.5,
                                                                     dtype=torch.float64))
        keep = torch.ones_like(p, dtype=torch.bool)
        if name.startswith("bias"):
            keep[z] = False
        torch.testing.assert_close(p[keep], before[name][keep])


def test_update_bias_makes_z_about_sigmoid_of_the_bias():
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(2, 5, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.zero_()
    set_update_bias(cell, 1.0)
    p = numpy_cells.params_from_torch(cell)
    _, cache = numpy_cells.gru_step(np.ones((1, 2)), np.zeros((1, 5)), p)
    np.testing.assert_allclose(cache["z"], 1 / (1 + np.exp(-1.0)), rtol=0, atol=1e-15)


@pytest.mark.parametrize("module, error, match", [
    ({"bias_ih": np.zeros(12)}, TypeError, "module must be a torch.nn.Module"),
    (torch.nn.LSTM(3, 4), ValueError, "must have shape \\(3\\*H,\\)"),
    (torch.nn.GRU(3, 4, bias=False), ValueError, "no bias_ih/bias_hh"),
])
def test_set_update_bias_rejects_modules_that_are_not_grus_with_biases(module, error, match):
    with pytest.raises(error, match=match):
        set_update_bias(module, 1.0)


# --------------------------------------------------------------------------------------
# record_gates
# --------------------------------------------------------------------------------------


@pytest.fixture
def sequence() -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    params = numpy_cells.init_params("lstm", I, H, rng)
    xs = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((B, H))
    c0 = rng.standard_normal((B, H))
    return xs, params, h0, c0


def test_record_gates_equals_torch_gates_and_states(sequence):
    xs, params, h0, c0 = sequence
    recording = record_gates(xs, params, h0, c0)
    assert set(recording) == set(RECORDED)
    for name in RECORDED:
        assert recording[name].shape == (T, B, H) and recording[name].dtype == np.float64

    cell = numpy_cells.load_into_torch(params, torch.nn.LSTMCell(I, H, dtype=torch.float64))
    layer = numpy_cells.load_into_torch(params, torch.nn.LSTM(I, H, dtype=torch.float64))
    h, c = torch.tensor(h0), torch.tensor(c0)
    with torch.no_grad():
        output, _ = layer(torch.tensor(xs), (h[None], c[None]))
        for t in range(T):
            x = torch.tensor(xs[t])
            pre = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih) \
                + torch.nn.functional.linear(h, cell.weight_hh, cell.bias_hh)
            a_i, a_f, a_g, a_o = pre.chunk(4, dim=1)
            expected = {"i": torch.sigmoid(a_i), "f": torch.sigmoid(a_f), "g": torch.tanh(a_g),
                        "o": torch.sigmoid(a_o)}
            h, c = cell(x, (h, c))
            expected |= {"c": c, "h": h}
            for name, value in expected.items():
                np.testing.assert_allclose(recording[name][t], value.numpy(), rtol=0,
                                           atol=1e-14, err_msg=f"{name} at step {t}")
    np.testing.assert_allclose(recording["h"], output.numpy(), rtol=0, atol=1e-14)


def test_record_gates_equals_lstm_forward_and_obeys_the_cell_update(sequence):
    xs, params, h0, c0 = sequence
    recording = record_gates(xs, params, h0, c0)
    hs, cs, _ = numpy_cells.lstm_forward(xs, h0, c0, params)
    np.testing.assert_array_equal(recording["h"], hs)
    np.testing.assert_array_equal(recording["c"], cs)
    previous = np.concatenate([c0[None], recording["c"][:-1]])
    i, f, g, o, c = (recording[name] for name in "ifgoc")
    np.testing.assert_allclose(c, f * previous + i * g, rtol=0, atol=1e-15)
    np.testing.assert_allclose(recording["h"], o * np.tanh(c), rtol=0, atol=1e-15)
    assert ((0 < i) & (i < 1) & (0 < f) & (f < 1) & (0 < o) & (o < 1)).all()


def test_record_gates_keeps_float32_and_checks_its_inputs(sequence):
    xs, params, _, _ = sequence
    params32 = {name: value.astype(np.float32) for name, value in params.items()}
    recording = record_gates(xs.astype(np.float32), params32)
    assert all(recording[name].dtype == np.float32 for name in RECORDED)
    with pytest.raises(ValueError, match="xs"):
        record_gates(xs[..., :2], params)
    with pytest.raises(ValueError, match="weight_hh"):
        record_gates(xs, numpy_cells.init_params("gru", I, H, np.random.default_rng(0)))


# --------------------------------------------------------------------------------------
# state_at and draw_state (the live explorer's callback)
# --------------------------------------------------------------------------------------


def test_state_at_returns_copies_of_one_step(sequence):
    xs, params, h0, c0 = sequence
    recording = record_gates(xs, params, h0, c0)
    state = state_at(recording, 4, batch_index=1)
    for name in RECORDED:
        np.testing.assert_array_equal(state[name], recording[name][4, 1])
    state["c"][:] = 0.0
    assert np.any(recording["c"][4, 1] != 0.0), "state_at must return copies"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"t": T}, ValueError, "t must be a step index in 0 .. 5"),
    ({"t": -1}, ValueError, "t must be"),
    ({"t": 1.0}, TypeError, "t must be an integer"),
    ({"t": 0, "batch_index": B}, ValueError, "batch_index must be in 0 .. 1"),
])
def test_state_at_rejects_bad_steps(sequence, kwargs, error, match):
    xs, params, h0, c0 = sequence
    with pytest.raises(error, match=match):
        state_at(record_gates(xs, params, h0, c0), **kwargs)


def test_state_at_rejects_something_that_is_not_a_recording(sequence):
    xs, params, h0, c0 = sequence
    with pytest.raises(TypeError, match="record_gates"):
        state_at({"i": np.zeros((T, B, H))}, 0)
    recording = record_gates(xs, params, h0, c0)
    recording["c"] = recording["c"][:, :, :2]
    with pytest.raises(ValueError, match="recording\\['c'\\]"):
        state_at(recording, 0)


def test_draw_state_shows_step_t_of_the_chosen_sequence(sequence):
    xs, params, h0, c0 = sequence
    recording = record_gates(xs, params, h0, c0)
    figure = draw_state(recording, 2, batch_index=1, marked=[0, 3])
    try:
        gates_ax, cells_ax, heat_ax = figure.axes[:3]
        shown = heat_ax.images[0].get_array()
        state = state_at(recording, 2, batch_index=1)
        scale = np.abs(recording["c"][:, 1]).max(axis=0)
        expected = np.column_stack([state["i"], state["f"], state["g"], state["o"],
                                    state["c"] / scale])
        np.testing.assert_allclose(np.asarray(shown), expected)
        assert heat_ax.get_title() == "step $t$ = 3"
        for ax in (gates_ax, cells_ax):
            cursors = [line for line in ax.lines if list(line.get_xdata()) == [3, 3]]
            assert len(cursors) == 1, "one vertical line at the chosen step"
            assert len(ax.patches) == 2, "one shaded band per marked step"
        # The bright part of the cell-state lines stops at the chosen step (t = 3, 1-based).
        bright = [line for line in cells_ax.lines if line.get_alpha() is None
                  and len(line.get_xdata()) != 2]
        assert len(bright) == H and all(line.get_xdata()[-1] == 3 for line in bright)
        np.testing.assert_allclose(bright[0].get_ydata(), recording["c"][:3, 1, 0])
    finally:
        plt.close(figure)


def test_draw_state_follows_one_unit(sequence):
    xs, params, h0, c0 = sequence
    recording = record_gates(xs, params, h0, c0)
    figure = draw_state(recording, T - 1, batch_index=0, unit=2)
    try:
        gates_ax, cells_ax = figure.axes[:2]
        bright = {line.get_label(): line for line in gates_ax.lines
                  if line.get_alpha() is None and len(line.get_xdata()) == T}
        np.testing.assert_allclose(bright["$i_t$, unit 3"].get_ydata(), recording["i"][:, 0, 2])
        np.testing.assert_allclose(bright["$f_t$, unit 3"].get_ydata(), recording["f"][:, 0, 2])
        followed = [line for line in cells_ax.lines if line.get_alpha() is None
                    and len(line.get_xdata()) == T]
        assert len(followed) == 1 and cells_ax.get_ylabel() == "$c_t$, unit 3"
        np.testing.assert_allclose(followed[0].get_ydata(), recording["c"][:, 0, 2])
    finally:
        plt.close(figure)
    figure = draw_state(recording, 0)
    try:
        means = [line for line in figure.axes[0].lines if line.get_label() == "mean $f_t$"]
        np.testing.assert_allclose(means[0].get_ydata(), recording["f"][:1, 0].mean(axis=1))
    finally:
        plt.close(figure)


def test_draw_state_rejects_steps_outside_the_recording(sequence):
    xs, params, h0, c0 = sequence
    recording = record_gates(xs, params, h0, c0)
    open_before = plt.get_fignums()
    with pytest.raises(ValueError, match="t must be"):
        draw_state(recording, T)
    with pytest.raises(ValueError, match="t must be"):
        draw_state(recording, 0, marked=[T + 2])
    with pytest.raises(ValueError, match="unit must be in 0 .. 3"):
        draw_state(recording, 0, unit=H)
    assert plt.get_fignums() == open_before, "a rejected call leaves no figure open"


# --------------------------------------------------------------------------------------
# memory_unit
# --------------------------------------------------------------------------------------


def _marked_recording():
    """Two sequences of T = 6, H = 3, marks at steps 1 and 4 (0-based), built by hand.

    Unit 0 opens its input gate most at the marks (0.95) but forgets (f = 0.5); unit 1 opens
    less (0.8) and holds (f = 1); unit 2 does nothing special.
    """
    T, B, H = 6, 2, 3
    recording = {name: np.full((T, B, H), 0.5) for name in ("i", "f", "g", "o", "c", "h")}
    marked = np.zeros((T, B), dtype=bool)
    marked[[1, 4]] = True
    recording["i"][:, :, :2] = 0.05
    recording["i"][marked, 0] = 0.95
    recording["i"][marked, 1] = 0.8
    recording["f"][:, :, 1] = 1.0
    # Unit 1's cell: 0 before the first mark, 0.4 after it, 0.7 after the second.
    recording["c"][:, :, 1] = np.array([0.0, 0.4, 0.4, 0.4, 0.7, 0.7])[:, None]
    return recording, marked


def test_memory_unit_follows_the_unit_that_keeps_what_it_wrote():
    recording, marked = _marked_recording()
    found = memory_unit(recording, marked)
    assert found["unit"] == 1
    # Kept shares: unit 0 writes 0.95 and forgets twice by 0.5 (steps 2 and 3): 0.2375;
    # unit 1 writes 0.8 and holds: 0.8; unit 2: 0.5 * 0.5 * 0.5 = 0.125.
    np.testing.assert_allclose(found["kept"], [0.2375, 0.8, 0.125])
    np.testing.assert_allclose(found["response"], [0.9, 0.75, 0.0])
    assert found["input_marked"] == pytest.approx(0.8)
    assert found["input_unmarked"] == pytest.approx(0.05)
    assert found["forget_between"] == 1.0 and found["forget_between_min"] == 1.0
    # |c_t - c_{t-1}| with c_0 = 0: 0.4 and 0.3 at the marks, 0 at the four other steps.
    assert found["change_marked"] == pytest.approx(0.35)
    assert found["change_unmarked"] == pytest.approx(0.0)
    assert found["forget_all"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_memory_unit_finds_the_adding_problem_memory_of_a_hand_built_lstm():
    # One LSTM unit that writes the value at a marker (input gate open only there), holds
    # it (forget gate 1), and a second unit that ignores everything.
    H, big = 2, 30.0
    params = {"weight_ih": np.zeros((4 * H, 2)), "weight_hh": np.zeros((4 * H, H)),
              "bias_ih": np.zeros(4 * H), "bias_hh": np.zeros(4 * H)}
    params["weight_ih"][0, 1], params["bias_ih"][0] = 2 * big, -big  # i_0: open at a marker
    params["bias_ih"][H] = big  # f_0 = 1
    params["weight_ih"][2 * H, 0] = 1.0  # g_0 = tanh(value)
    params["bias_ih"][1], params["bias_ih"][H + 1] = -big, -big  # unit 1 writes nothing, forgets
    xs, _ = adding_problem(12, 16, 3, dtype=np.float64)
    marked = xs[:, :, 1] == 1
    found = memory_unit(record_gates(xs, params), marked)
    assert found["unit"] == 0
    assert found["input_marked"] > 0.99 and found["input_unmarked"] < 1e-6
    assert found["forget_between_min"] > 0.99


@pytest.mark.parametrize("marked, match", [
    (np.zeros((6, 2), dtype=bool), "at least two steps"),
    (np.ones((6, 2), dtype=bool), "unmarked"),
    (np.zeros((6, 2)), "boolean array of shape"),
    (np.zeros((5, 2), dtype=bool), "boolean array of shape"),
])
def test_memory_unit_rejects_bad_marks(marked, match):
    recording, _ = _marked_recording()
    with pytest.raises(ValueError, match=match):
        memory_unit(recording, marked)
