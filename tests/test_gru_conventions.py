"""gru_conventions: the three GRU conventions, checked against torch.nn and written-out math.

References are independent of the code under test: ``torch.nn.GRUCell`` / ``torch.nn.GRU``
with weights copied by hand, and the papers' equations written out here in torch.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from throughtime import gru_conventions as conventions
from throughtime import numpy_cells
from throughtime.gates import gate_rows

SHAPES = [(1, 1, 1), (3, 2, 4), (5, 4, 3), (2, 7, 6)]  # (B, I, H)


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def random_params(input_size: int, hidden_size: int, rng: np.random.Generator,
                  scale: float = 1.0, dtype=np.float64) -> dict[str, np.ndarray]:
    shapes = {"weight_ih": (3 * hidden_size, input_size),
              "weight_hh": (3 * hidden_size, hidden_size),
              "bias_ih": (3 * hidden_size,), "bias_hh": (3 * hidden_size,)}
    return {k: (scale * rng.normal(size=s)).astype(dtype) for k, s in shapes.items()}


def random_inputs(batch: int, input_size: int, hidden_size: int, rng: np.random.Generator,
                  dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    return (rng.normal(size=(batch, input_size)).astype(dtype),
            rng.uniform(-1, 1, size=(batch, hidden_size)).astype(dtype))


def paper_step(convention: str, x: np.ndarray, h: np.ndarray, p: dict) -> np.ndarray:
    """The papers' equations, written out block by block in torch (float64)."""
    H = h.shape[1]
    t = {k: torch.from_numpy(v) for k, v in p.items()}
    x, h = torch.from_numpy(x), torch.from_numpy(h)

    def block(name, k):
        return t[name][k * H:(k + 1) * H]

    W_ir, W_iz, W_in = (block("weight_ih", k) for k in range(3))
    W_hr, W_hz, W_hn = (block("weight_hh", k) for k in range(3))
    b_ir, b_iz, b_in = (block("bias_ih", k) for k in range(3))
    b_hr, b_hz, b_hn = (block("bias_hh", k) for k in range(3))
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    if convention == "pytorch":
        n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
        return ((1 - z) * n + z * h).numpy()
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    if convention == "cho":
        return (z * h + (1 - z) * n).numpy()
    return ((1 - z) * h + z * n).numpy()


def torch_gru_cell(p: dict) -> torch.nn.GRUCell:
    hidden, inputs = p["weight_hh"].shape[1], p["weight_ih"].shape[1]
    cell = torch.nn.GRUCell(inputs, hidden, dtype=torch.float64)
    with torch.no_grad():
        for name, value in p.items():
            getattr(cell, name).copy_(torch.from_numpy(value))
    return cell


# --------------------------------------------------------------------------------------
# The step functions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_pytorch_convention_equals_torch_gru_cell(shape):
    B, I, H = shape
    rng = _rng("cell", shape)
    p = random_params(I, H, rng)
    x, h = random_inputs(B, I, H, rng)
    ours, _ = conventions.gru_step_pytorch(x, h, p)
    with torch.no_grad():
        theirs = torch_gru_cell(p)(torch.from_numpy(x), torch.from_numpy(h)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-13)
    assert conventions.step_function("pytorch") is numpy_cells.gru_step


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("convention", conventions.CONVENTIONS)
def test_each_step_follows_its_papers_equations(convention, shape):
    B, I, H = shape
    rng = _rng("paper", convention, shape)
    p = random_params(I, H, rng)
    x, h = random_inputs(B, I, H, rng)
    h_next, cache = conventions.step_function(convention)(x, h, p)
    np.testing.assert_allclose(h_next, paper_step(convention, x, h, p), rtol=0, atol=1e-13)
    for name in ("r", "z", "n"):
        assert cache[name].shape == (B, H)
    assert np.all((cache["z"] > 0) & (cache["z"] < 1))


@pytest.mark.parametrize("convention", ["cho", "chung"])
def test_steps_keep_float32(convention):
    rng = _rng("float32", convention)
    p = random_params(3, 4, rng, dtype=np.float32)
    x, h = random_inputs(2, 3, 4, rng, dtype=np.float32)
    h_next, _ = conventions.step_function(convention)(x, h, p)
    assert h_next.dtype == np.float32
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    expected = paper_step(convention, x.astype(np.float64), h.astype(np.float64), p64)
    np.testing.assert_allclose(h_next, expected, rtol=0, atol=1e-6)


def test_the_three_conventions_are_different_functions_on_random_weights():
    rng = _rng("differ")
    p = random_params(3, 5, rng)
    x, h = random_inputs(50, 3, 5, rng)
    outputs = {c: conventions.step_function(c)(x, h, p)[0] for c in conventions.CONVENTIONS}
    for a, b in (("pytorch", "cho"), ("pytorch", "chung"), ("cho", "chung")):
        assert np.abs(outputs[a] - outputs[b]).max() > 0.05, (a, b)


def test_reset_placement_is_the_only_difference_when_z_agrees():
    # With the reset gate saturated at 1 (huge r bias), r * (W h + b) = W (r * h) + b.
    rng = _rng("saturated")
    p = random_params(3, 4, rng)
    p["bias_ih"][gate_rows("GRU", "r", 4)] = 60.0
    x, h = random_inputs(6, 3, 4, rng)
    np.testing.assert_allclose(conventions.gru_step_cho(x, h, p)[0],
                               conventions.gru_step_pytorch(x, h, p)[0], rtol=0, atol=1e-13)


def test_one_unit_without_b_hn_makes_cho_and_pytorch_equal():
    # For H = 1, r * (w h) = w * (r h): the placement matters only through b_hn and mixing.
    rng = _rng("one unit")
    p = random_params(2, 1, rng)
    p["bias_hh"][gate_rows("GRU", "n", 1)] = 0.0
    x, h = random_inputs(8, 2, 1, rng)
    np.testing.assert_allclose(conventions.gru_step_cho(x, h, p)[0],
                               conventions.gru_step_pytorch(x, h, p)[0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("convention", conventions.CONVENTIONS)
def test_sequence_runs_the_step_and_pytorch_equals_torch_gru(convention):
    rng = _rng("sequence", convention)
    T, B, I, H = 6, 3, 2, 4
    p = random_params(I, H, rng, scale=0.5)
    xs = rng.normal(size=(T, B, I))
    h0 = rng.uniform(-1, 1, size=(B, H))
    hs = conventions.gru_forward_convention(xs, h0, p, convention)
    h = h0
    for t in range(T):
        h = paper_step(convention, xs[t], h, p)
        np.testing.assert_allclose(hs[t], h, rtol=0, atol=1e-13)
    if convention == "pytorch":
        layer = torch.nn.GRU(I, H, dtype=torch.float64)
        with torch.no_grad():
            for name, value in p.items():
                getattr(layer, name + "_l0").copy_(torch.from_numpy(value))
            out, _ = layer(torch.from_numpy(xs), torch.from_numpy(h0)[None])
        np.testing.assert_allclose(hs, out.numpy(), rtol=0, atol=1e-13)
    zeros = conventions.gru_forward_convention(xs, None, p, convention)
    np.testing.assert_array_equal(zeros, conventions.gru_forward_convention(xs, np.zeros((B, H)), p,
                                                                   convention))


# --------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------


def test_flip_update_gate_negates_exactly_the_z_blocks_and_is_an_involution():
    rng = _rng("flip")
    p = random_params(3, 4, rng)
    flipped = conventions.flip_update_gate(p)
    z = gate_rows("GRU", "z", 4)
    for name in numpy_cells.PARAM_NAMES:
        np.testing.assert_array_equal(flipped[name][z], -p[name][z])
        keep = np.ones(12, dtype=bool)
        keep[z] = False
        np.testing.assert_array_equal(flipped[name][keep], p[name][keep])
        assert flipped[name] is not p[name]
    back = conventions.flip_update_gate(flipped)
    for name in numpy_cells.PARAM_NAMES:
        np.testing.assert_array_equal(back[name], p[name])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("source, target", [("cho", "chung"), ("chung", "cho"),
                                            ("pytorch", "pytorch"), ("cho", "cho")])
def test_exact_conversions_give_the_same_function(source, target, shape):
    B, I, H = shape
    rng = _rng("convert", source, target, shape)
    p = random_params(I, H, rng, scale=2.0)
    x, h = random_inputs(B, I, H, rng)
    converted = conventions.convert_params(p, source, target)
    expected = paper_step(source, x, h, p)
    got = conventions.step_function(target)(x, h, converted)[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
    assert all(converted[k] is not p[k] for k in p)


def test_the_z_flip_alone_does_not_convert_pytorch_to_chung():
    rng = _rng("no flip")
    p = random_params(3, 5, rng)
    x, h = random_inputs(50, 3, 5, rng)
    flipped = conventions.flip_update_gate(p)
    difference = (conventions.gru_step_chung(x, h, flipped)[0]
                  - conventions.gru_step_pytorch(x, h, p)[0])
    assert np.abs(difference).max() > 0.05


@pytest.mark.parametrize("source, target", [("pytorch", "cho"), ("cho", "pytorch"),
                                            ("pytorch", "chung"), ("chung", "pytorch")])
def test_convert_refuses_a_change_of_reset_placement(source, target):
    p = random_params(2, 3, _rng("refuse"))
    with pytest.raises(ValueError, match="no exact conversion.*best_fit"):
        conventions.convert_params(p, source, target)


def test_best_fit_finds_an_exact_conversion_from_an_unconverted_start():
    rng = _rng("fit exact")
    p = numpy_cells.init_params("gru", 3, 4, rng)
    result = conventions.best_fit(p, "cho", "chung", np.random.default_rng(1), start=p,
                                  iterations=20)
    assert result.start_rms > 0.05
    assert result.rms < 1e-12 and result.max_error < 1e-11
    x, h = random_inputs(20, 3, 4, rng)
    np.testing.assert_allclose(conventions.gru_step_chung(x, h, result.params)[0],
                               conventions.gru_step_cho(x, h, p)[0], rtol=0, atol=1e-11)


def test_best_fit_cannot_make_pytorch_equal_cho():
    rng = _rng("fit inexact")
    p = numpy_cells.init_params("gru", 3, 4, rng)
    result = conventions.best_fit(p, "cho", "pytorch", np.random.default_rng(2), iterations=20)
    assert result.rms < result.start_rms
    assert result.rms > 1e-3, "reset placement should not be convertible for these weights"
    assert set(result.params) == set(numpy_cells.PARAM_NAMES)
    assert result.params["weight_hh"].shape == (12, 4)


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def test_bad_input_is_rejected_with_a_clear_message():
    rng = _rng("bad")
    p = random_params(3, 4, rng)
    x, h = random_inputs(2, 3, 4, rng)
    lstm = numpy_cells.init_params("lstm", 3, 4, rng)
    with pytest.raises(ValueError, match="convention must be one of"):
        conventions.step_function("keras")
    with pytest.raises(ValueError, match="kind 'gru'.*looks like parameters for kind 'lstm'"):
        conventions.gru_step_cho(x, h, lstm)
    with pytest.raises(ValueError, match="x must have shape"):
        conventions.gru_step_chung(x[:, :2], h, p)
    with pytest.raises(ValueError, match="h must have shape"):
        conventions.gru_step_cho(x, h[:1], p)
    with pytest.raises(ValueError, match="kind 'gru'"):
        conventions.flip_update_gate(lstm)
    with pytest.raises(ValueError, match="target must be one of"):
        conventions.convert_params(p, "cho", "Cho")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        conventions.best_fit(p, "cho", "pytorch", 0)
    with pytest.raises(ValueError, match="start must have the shapes of params"):
        conventions.best_fit(p, "cho", "pytorch", rng, start=random_params(2, 4, rng))
    with pytest.raises(ValueError, match="xs must have shape"):
        conventions.gru_forward_convention(np.zeros((3, 2, 5)), None, p, "cho")
