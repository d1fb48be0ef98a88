"""The assignment checks: they pass the library's own code and explain known mistakes.

Every wrong implementation below is written out by hand with exactly one mistake, the way
a student would make it; the test asserts that the check fails and that its message names
the wrong output and the intended hint. Other tests feed the checks broken functions
(None returned, wrong shapes and dtypes, exceptions, unfinished stubs) and check that the
message explains the problem without a traceback from inside the checker.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from throughtime import checks, gradients, timeseries
from throughtime import numpy_cells as nc
from throughtime.numpy_cells import sigmoid


def _affine(x, h, p):
    return x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]


def _fails(check, fn, *fragments, **kwargs) -> str:
    """Run ``check(fn)``, expect a CheckFailed (an AssertionError) containing every fragment."""
    with pytest.raises(AssertionError) as caught:
        check(fn, **kwargs)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in the message:\n{message}"
    return message


# --------------------------------------------------------------------------------------
# Every check passes the library's own implementation, with one line of output
# --------------------------------------------------------------------------------------

REFERENCES = [
    (checks.check_rnn_step, nc.rnn_step, {}, "h_next matches"),
    (checks.check_lstm_step, nc.lstm_step, {}, "h_next and c_next match"),
    (checks.check_gru_step, nc.gru_step, {}, "h_next matches"),
    (checks.check_lstm_peephole_step, checks.lstm_peephole_step, {}, "h_next and c_next"),
    (checks.check_rnn_step_backward, nc.rnn_step_backward, {}, "finite differences"),
    (checks.check_rnn_step_backward, nc.rnn_step_backward, {"forward": nc.rnn_step},
     "finite differences"),
    (checks.check_lstm_step_backward, nc.lstm_step_backward, {}, "dx, dh, dc"),
    (checks.check_lstm_step_backward, nc.lstm_step_backward, {"forward": nc.lstm_step},
     "dx, dh, dc"),
    (checks.check_gru_step_backward, nc.gru_step_backward, {}, "finite differences"),
    (checks.check_gru_step_backward, nc.gru_step_backward, {"forward": nc.gru_step},
     "finite differences"),
    (checks.check_rnn_backward, nc.rnn_backward, {}, "summed over time"),
    (checks.check_rnn_backward, nc.rnn_backward, {"forward": nc.rnn_forward},
     "summed over time"),
    (checks.check_clip_by_norm, gradients.clip_by_norm, {}, "total_norm"),
    (checks.check_clip_by_norm, gradients.clip_by_norm,
     {"norm_types": (2.0, 1.0, float("inf"))}, "5 hidden cases"),
    (checks.check_mase, timeseries.mase, {}, "MASE matches"),
]


@pytest.mark.parametrize(("check", "fn", "kwargs", "fragment"), REFERENCES,
                         ids=lambda v: getattr(v, "__name__", None))
def test_reference_passes_with_one_line(check, fn, kwargs, fragment, capsys):
    assert check(fn, **kwargs) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(check.__name__ + ": ") and fragment in lines[0], lines[0]
    assert "hidden cases (max relative error" in lines[0]


def test_documented_cache_keys_are_the_reference_caches_keys():
    rng = np.random.default_rng(0)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    caches = {
        "rnn_step": nc.rnn_step(x, h, nc.init_params("rnn", 3, 4, rng))[1],
        "lstm_step": nc.lstm_step(x, h, c, nc.init_params("lstm", 3, 4, rng))[2],
        "gru_step": nc.gru_step(x, h, nc.init_params("gru", 3, 4, rng))[1],
        "rnn_forward": nc.rnn_forward(x[None], h, nc.init_params("rnn", 3, 4, rng))[1],
    }
    for name, cache in caches.items():
        assert set(cache) == set(checks.CACHE_KEYS[name]), (name, sorted(cache))
        assert cache["kind"] == name.removesuffix("_forward").removesuffix("_step") or \
            cache["kind"] == name


def test_peephole_reference_equals_an_independent_torch_version():
    rng = np.random.default_rng(7)
    batch, inputs, hidden = 3, 2, 5
    params = {k: v.astype(np.float64) for k, v in nc.init_params("lstm", inputs, hidden,
                                                                  rng).items()}
    params.update({name: rng.uniform(-1, 1, hidden) for name in checks.PEEPHOLE_NAMES})
    x, h, c = (rng.standard_normal((batch, n)) for n in (inputs, hidden, hidden))
    t = {k: torch.from_numpy(v) for k, v in params.items()}
    tx, th, tc = (torch.from_numpy(a) for a in (x, h, c))
    w_i, w_f, w_g, w_o = t["weight_ih"].chunk(4)
    u_i, u_f, u_g, u_o = t["weight_hh"].chunk(4)
    b = (t["bias_ih"] + t["bias_hh"]).chunk(4)
    i = torch.sigmoid(tx @ w_i.T + th @ u_i.T + b[0] + t["peephole_i"] * tc)
    f = torch.sigmoid(tx @ w_f.T + th @ u_f.T + b[1] + t["peephole_f"] * tc)
    g = torch.tanh(tx @ w_g.T + th @ u_g.T + b[2])
    c_next = f * tc + i * g
    o = torch.sigmoid(tx @ w_o.T + th @ u_o.T + b[3] + t["peephole_o"] * c_next)
    h_next = o * torch.tanh(c_next)
    mine = checks.lstm_peephole_step(x, h, c, params)
    assert gradients.rel_error(mine[0], h_next.numpy()) < 1e-12
    assert gradients.rel_error(mine[1], c_next.numpy()) < 1e-12
    with pytest.raises(ValueError, match="peephole_o"):
        checks.lstm_peephole_step(x, h, c, {k: v for k, v in params.items()
                                            if k != "peephole_o"})
    with pytest.raises(ValueError, match=r"params\['peephole_i'\]"):
        checks.lstm_peephole_step(x, h, c, {**params, "peephole_i": np.zeros(hidden + 1)})


# --------------------------------------------------------------------------------------
# Forward steps: one deliberate mistake each
# --------------------------------------------------------------------------------------


def rnn_sigmoid(x, h, p):
    return sigmoid(_affine(x, h, p)), None


def rnn_no_bias_hh(x, h, p):
    return np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T), None


def rnn_untransposed(x, h, p):
    return np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"] + p["bias_hh"]), None


def _lstm_gates(x, h, p, order="ifgo"):
    blocks = dict(zip(order, np.split(_affine(x, h, p), 4, axis=1), strict=True))
    return blocks["i"], blocks["f"], blocks["g"], blocks["o"]


def lstm_cs231n_order(x, h, c, p):
    a_i, a_f, a_g, a_o = _lstm_gates(x, h, p, order="ifog")
    c_next = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_next), c_next, None


def lstm_no_forget(x, h, c, p):
    a_i, a_f, a_g, a_o = _lstm_gates(x, h, p)
    c_next = sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_next), c_next, None


def lstm_swapped_activations(x, h, c, p):
    a_i, a_f, a_g, a_o = _lstm_gates(x, h, p)
    c_next = np.tanh(a_f) * c + np.tanh(a_i) * sigmoid(a_g)
    return np.tanh(a_o) * np.tanh(c_next), c_next, None


def lstm_no_bias_hh(x, h, c, p):
    return nc.lstm_step(x, h, c, {**p, "bias_hh": np.zeros_like(p["bias_hh"])})


def _gru(x, h, p, *, flip_z=False, reset_before=False, order="rzn"):
    a_x = dict(zip(order, np.split(x @ p["weight_ih"].T + p["bias_ih"], 3, axis=1),
                   strict=True))
    w = dict(zip(order, np.split(p["weight_hh"], 3), strict=True))
    b = dict(zip(order, np.split(p["bias_hh"], 3), strict=True))
    r = sigmoid(a_x["r"] + h @ w["r"].T + b["r"])
    z = sigmoid(a_x["z"] + h @ w["z"].T + b["z"])
    if reset_before:
        n = np.tanh(a_x["n"] + (r * h) @ w["n"].T + b["n"])
    else:
        n = np.tanh(a_x["n"] + r * (h @ w["n"].T + b["n"]))
    return (z * n + (1 - z) * h if flip_z else (1 - z) * n + z * h), None


FORWARD_MISTAKES = [
    (checks.check_rnn_step, rnn_sigmoid, ["h_next is wrong", "the sigmoid"]),
    (checks.check_rnn_step, rnn_no_bias_hh, ["h_next is wrong", "bias_hh is missing"]),
    (checks.check_rnn_step, rnn_untransposed, ["untransposed"]),
    (checks.check_lstm_step, lstm_cs231n_order,
     ["h_next is wrong", "Also wrong: c_next", "i, f, o, g (CS231n's order)",
      "PyTorch stacks them i, f, g, o"]),
    (checks.check_lstm_step, lstm_no_forget, ["c_next", "the forget gate is missing"]),
    (checks.check_lstm_step, lstm_swapped_activations, ["sigmoid and tanh are swapped"]),
    (checks.check_lstm_step, lstm_no_bias_hh, ["bias_hh is missing"]),
    (checks.check_gru_step, lambda x, h, p: _gru(x, h, p, flip_z=True),
     ["h_next is wrong", "Chung et al. 2014"]),
    (checks.check_gru_step, lambda x, h, p: _gru(x, h, p, reset_before=True),
     ["before the matrix product", "Cho et al."]),
    (checks.check_gru_step, lambda x, h, p: _gru(x, h, p, flip_z=True, reset_before=True),
     ["two conventions differ"]),
    (checks.check_gru_step, lambda x, h, p: _gru(x, h, p, order="zrn"),
     ["in the order z, r, n", "PyTorch stacks them r, z, n"]),
    (checks.check_gru_step,
     lambda x, h, p: nc.gru_step(x, h, {**p, "bias_hh": 0 * p["bias_hh"]}),
     ["bias_hh is missing"]),
]


@pytest.mark.parametrize(("check", "wrong", "fragments"), FORWARD_MISTAKES,
                         ids=lambda v: getattr(v, "__name__", None))
def test_forward_mistakes_are_named(check, wrong, fragments):
    message = _fails(check, wrong, *fragments, "relative error", "hidden case 1 of 3")
    assert message.count("Hint:") == 1


def _peephole(x, h, c, p, *, old_o=False, peepholes=True):
    a_i, a_f, a_g, a_o = _lstm_gates(x, h, p)
    k = 1.0 if peepholes else 0.0
    i = sigmoid(a_i + k * p["peephole_i"] * c)
    f = sigmoid(a_f + k * p["peephole_f"] * c)
    c_next = f * c + i * np.tanh(a_g)
    o = sigmoid(a_o + k * p["peephole_o"] * (c if old_o else c_next))
    return o * np.tanh(c_next), c_next


def test_peephole_check():
    checks.check_lstm_peephole_step(_peephole)  # (h_next, c_next) without a cache is fine
    checks.check_lstm_peephole_step(lambda *a: (*_peephole(*a), {"any": "cache"}))
    _fails(checks.check_lstm_peephole_step, lambda *a: _peephole(*a, old_o=True),
           "h_next is wrong", "The other outputs (c_next) are right", "old cell state")
    _fails(checks.check_lstm_peephole_step, lambda *a: _peephole(*a, peepholes=False),
           "the peepholes are missing")


# --------------------------------------------------------------------------------------
# Backward steps
# --------------------------------------------------------------------------------------


def _rnn_backward(dh_next, cache, *, slope=None, transpose_dw=False, batch_bias=False):
    p = cache["params"]
    da = dh_next * (slope if slope is not None else 1 - cache["h_next"] ** 2)
    d_w_hh = da.T @ cache["h"]
    bias = da if batch_bias else da.sum(axis=0)
    return da @ p["weight_ih"], da @ p["weight_hh"], {
        "weight_ih": da.T @ cache["x"], "weight_hh": d_w_hh.T if transpose_dw else d_w_hh,
        "bias_ih": bias, "bias_hh": bias}


def test_rnn_step_backward_hints():
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: _rnn_backward(dh, cache, slope=1 - cache["a"] ** 2),
           "dx is wrong", "from the pre-activation a as 1 - a^2")
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: _rnn_backward(dh, cache, transpose_dw=True),
           "grads['weight_hh'] (dL/dW_hh) is wrong", "is transposed")
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: _rnn_backward(dh, cache, batch_bias=True),
           "grads['bias_ih']", "sum over the batch axis")

    def dh_transposed(dh, cache):
        dx, _, grads = _rnn_backward(dh, cache)
        da = dh * (1 - cache["h_next"] ** 2)
        return dx, da @ cache["params"]["weight_hh"].T, grads

    _fails(checks.check_rnn_step_backward, dh_transposed, "dh is wrong",
           "dh = da @ weight_hh")

    def missing_key(dh, cache):
        dx, dh_prev, grads = _rnn_backward(dh, cache)
        return dx, dh_prev, {k: v for k, v in grads.items() if k != "bias_hh"}

    _fails(checks.check_rnn_step_backward, missing_key, "missing ['bias_hh']")


def test_backward_check_pairs_with_the_students_own_forward():
    """forward= lets the student's backward read the student's own cache format."""

    def my_forward(x, h, p):
        h_next = np.tanh(_affine(x, h, p))
        return h_next, (x, h, h_next, p)

    def my_backward(dh_next, cache):
        x, h, h_next, p = cache
        da = dh_next * (1 - h_next**2)
        return da @ p["weight_ih"], da @ p["weight_hh"], {
            "weight_ih": da.T @ x, "weight_hh": da.T @ h,
            "bias_ih": da.sum(0), "bias_hh": da.sum(0)}

    checks.check_rnn_step_backward(my_backward, forward=my_forward)
    _fails(checks.check_rnn_step_backward, my_backward, "raised", "my_backward")

    def wrong_forward(x, h, p):
        return sigmoid(_affine(x, h, p)), (x, h, sigmoid(_affine(x, h, p)), p)

    _fails(checks.check_rnn_step_backward, my_backward, "h_next is wrong",
           "your forward function rnn_step", forward=wrong_forward)


def _lstm_backward(dh_next, dc_next, cache, *, use_dc_next=True, order="ifgo", times_f=True,
                   g_slope=None):
    i, f, g, o, tanh_c = (cache[k] for k in ("i", "f", "g", "o", "tanh_c"))
    p = cache["params"]
    dc = (dc_next if use_dc_next else 0) + dh_next * o * (1 - tanh_c**2)
    slopes = {"i": dc * g * i * (1 - i), "f": dc * cache["c"] * f * (1 - f),
              "g": dc * i * (g_slope if g_slope is not None else 1 - g**2),
              "o": dh_next * tanh_c * o * (1 - o)}
    da = np.concatenate([slopes[gate] for gate in order], axis=1)
    return da @ p["weight_ih"], da @ p["weight_hh"], dc * f if times_f else dc, {
        "weight_ih": da.T @ cache["x"], "weight_hh": da.T @ cache["h"],
        "bias_ih": da.sum(0), "bias_hh": da.sum(0)}


def test_lstm_step_backward_hints():
    check = checks.check_lstm_step_backward
    check(_lstm_backward)
    _fails(check, lambda dh, dc, cache: _lstm_backward(dh, dc, cache, use_dc_next=False),
           "dx is wrong", "dc_next is ignored")
    _fails(check, lambda dh, dc, cache: _lstm_backward(dh, dc, cache, order="ifog"),
           "stacks the gate gradients in the order i, f, o, g (CS231n's order)")
    _fails(check, lambda dh, dc, cache: _lstm_backward(dh, dc, cache, times_f=False),
           "dc is wrong", "missing the forget gate")
    _fails(check, lambda dh, dc, cache: _lstm_backward(dh, dc, cache, g_slope=1 - cache["g"]),
           "for the candidate g, tanh' is computed as 1 - t;")
    _fails(check, lambda dh, dc, cache: _lstm_backward(
        dh, dc, cache, g_slope=1 - np.tanh(cache["g"]) ** 2), "already tanh(a)")


def _gru_backward(dh_next, cache, *, flip_z=False, reset_before=False, direct=True):
    r, z, n, h, x = cache["r"], cache["z"], cache["n"], cache["h"], cache["x"]
    p = cache["params"]
    w_r, w_z, w_n = np.split(p["weight_hh"], 3)
    dn = dh_next * (z if flip_z else 1 - z)
    dz = dh_next * ((n - h) if flip_z else (h - n))
    da_n = dn * (1 - n**2)
    da_z = dz * z * (1 - z)
    if reset_before:
        d_rh = da_n @ w_n
        da_r = d_rh * h * r * (1 - r)
        rec_n, rows_n, dh_n = da_n, da_n.T @ (r * h), d_rh * r
    else:
        da_r = da_n * cache["ah_n"] * r * (1 - r)
        rec_n = da_n * r
        rows_n, dh_n = rec_n.T @ h, rec_n @ w_n
    direct_part = dh_next * ((1 - z) if flip_z else z) if direct else 0
    da_x = np.concatenate([da_r, da_z, da_n], axis=1)
    return da_x @ p["weight_ih"], direct_part + da_r @ w_r + da_z @ w_z + dh_n, {
        "weight_ih": da_x.T @ x,
        "weight_hh": np.concatenate([da_r.T @ h, da_z.T @ h, rows_n]),
        "bias_ih": da_x.sum(0),
        "bias_hh": np.concatenate([da_r.sum(0), da_z.sum(0), rec_n.sum(0)])}


def test_gru_step_backward_hints():
    check = checks.check_gru_step_backward
    check(_gru_backward)
    _fails(check, lambda dh, cache: _gru_backward(dh, cache, flip_z=True),
           "differentiates the wrong GRU", "Chung et al. 2014")
    _fails(check, lambda dh, cache: _gru_backward(dh, cache, reset_before=True),
           "differentiates the wrong GRU", "Cho et al. 2014")
    _fails(check, lambda dh, cache: _gru_backward(dh, cache, direct=False),
           "dh is wrong", "The other outputs", "missing the direct path")


# --------------------------------------------------------------------------------------
# Backpropagation through time
# --------------------------------------------------------------------------------------


def _bptt(dhs, cache, *, accumulate=True, carry=True):
    steps = cache["steps"]
    dxs = np.empty((len(steps), *steps[0]["x"].shape))
    grads = {k: np.zeros_like(v) for k, v in steps[0]["params"].items()}
    dh = np.zeros_like(dhs[0])
    for t in reversed(range(len(steps))):
        dxs[t], dh, step = nc.rnn_step_backward(dhs[t] + (dh if carry else 0), steps[t])
        for k in grads:
            grads[k] = grads[k] + step[k] if accumulate else step[k]
    return dxs, dh, grads


def test_rnn_backward_hints():
    checks.check_rnn_backward(_bptt)
    _fails(checks.check_rnn_backward, lambda d, c: _bptt(d, c, accumulate=False),
           "not summed over time", "step 0")
    _fails(checks.check_rnn_backward, lambda d, c: _bptt(d, c, carry=False),
           "from later steps is not added")


def test_rnn_backward_with_the_students_forward():
    def my_forward(xs, h0, p):
        hs, h, inputs = [], h0, []
        for x in xs:
            inputs.append((x, h))
            h = np.tanh(_affine(x, h, p))
            hs.append(h)
        return np.stack(hs), {"inputs": inputs, "hs": hs, "params": p}

    def my_backward(dhs, cache):
        p = cache["params"]
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        dxs, dh = [], np.zeros_like(dhs[0])
        for t in reversed(range(len(dhs))):
            x, h = cache["inputs"][t]
            da = (dhs[t] + dh) * (1 - cache["hs"][t] ** 2)
            dxs.insert(0, da @ p["weight_ih"])
            dh = da @ p["weight_hh"]
            for k, v in (("weight_ih", da.T @ x), ("weight_hh", da.T @ h),
                         ("bias_ih", da.sum(0)), ("bias_hh", da.sum(0))):
                grads[k] += v
        return np.stack(dxs), dh, grads

    checks.check_rnn_backward(my_backward, forward=my_forward)


# --------------------------------------------------------------------------------------
# Clipping and MASE
# --------------------------------------------------------------------------------------


def clip_global(grads, max_norm, norm_type=2.0):
    total = np.linalg.norm([np.linalg.norm(g.ravel(), norm_type) for g in grads.values()],
                           norm_type)
    scale = min(1.0, max_norm / total)  # without torch's 1e-6: accepted
    return {k: g * scale for k, g in grads.items()}, total


def clip_per_tensor(grads, max_norm):
    clipped = {k: g * min(1.0, max_norm / np.linalg.norm(g)) for k, g in grads.items()}
    return clipped, np.sqrt(sum(np.sum(g**2) for g in grads.values()))


def clip_values(grads, max_norm):
    return ({k: np.clip(g, -max_norm, max_norm) for k, g in grads.items()},
            np.sqrt(sum(np.sum(g**2) for g in grads.values())))


def clip_in_place(grads, max_norm):
    total = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    for g in grads.values():
        g *= min(1.0, max_norm / total)
    return grads, total


def clip_two_norm_only(grads, max_norm, norm_type=2.0):
    return clip_global(grads, max_norm)


def test_clip_by_norm_hints():
    check = checks.check_clip_by_norm
    check(clip_global)
    check(clip_global, norm_types=(2.0, 1.0, float("inf")))
    _fails(check, clip_per_tensor, "clipped by its own norm", "global norm")
    _fails(check, clip_values, "hidden case 1 of 3", "clipping by value")
    _fails(check, clip_in_place, "modified the input arrays in place")
    _fails(check, lambda g, m: (clip_global(g, m)[0], clip_global(clip_global(g, m)[0], m)[1]),
           "total_norm is wrong", "norm after clipping")
    _fails(check, clip_two_norm_only, "norm_type is ignored",
           norm_types=(2.0, 1.0, float("inf")))
    _fails(check, lambda g, m: clip_global(g, m)[0], "returned a dict with the keys",
           "it must return a tuple (clipped, total_norm)")


def test_mase_hints():
    def mase(y_true, y_pred, y_train, season, scale_data=None, lag=None):
        base = y_train if scale_data is None else y_true
        lag = season if lag is None else lag
        return np.mean(np.abs(y_true - y_pred)) / np.mean(np.abs(base[lag:] - base[:-lag]))

    checks.check_mase(mase)
    _fails(checks.check_mase, lambda a, b, c, m: mase(a, b, c, m, scale_data="test"),
           "MASE scales by the seasonal naive error on the training part")
    _fails(checks.check_mase, lambda a, b, c, m: mase(a, b, c, m, lag=1), "lag 1")
    _fails(checks.check_mase, lambda a, b, c, m: None, "returned None")


# --------------------------------------------------------------------------------------
# Broken functions: stubs, exceptions, wrong return values
# --------------------------------------------------------------------------------------


def stub(x, h, params):
    raise NotImplementedError("TASK: implement one step of the tanh RNN")


def crashes(x, h, params):
    a = x @ params["weight_hh"].T  # wrong matrix: the shapes do not fit
    return np.tanh(a), None


def test_stub_says_not_implemented_yet():
    _fails(checks.check_rnn_step, stub, "rnn_step is not implemented yet",
           "TASK: implement one step")


def test_exception_names_the_students_line_not_the_checkers():
    message = _fails(checks.check_rnn_step, crashes, "your rnn_step raised ValueError",
                     "test_checks.py", "in crashes", "a = x @ params[\"weight_hh\"].T")
    assert "checks.py" not in message.replace("test_checks.py", "")


def test_failure_traceback_stays_out_of_the_checker():
    with pytest.raises(AssertionError) as caught:
        checks.check_rnn_step(crashes)
    assert isinstance(caught.value, checks.CheckFailed)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    frames = traceback.extract_tb(caught.value.__traceback__)
    inside = [f for f in frames if Path(f.filename).name == "checks.py"]
    assert len(inside) == 1, [f"{f.name}:{f.lineno}" for f in inside]


BROKEN_RETURNS = [
    (lambda x, h, p: None, "returned None; it must return (h_next, cache)"),
    (lambda x, h, p: nc.rnn_step(x, h, p)[0], "it must return a tuple (h_next, cache)"),
    (lambda x, h, p: (*nc.rnn_step(x, h, p), 1), "returned 3 values; it must return 2"),
    (lambda x, h, p: (None, None), "h_next returned by your rnn_step is None"),
    (lambda x, h, p: (nc.rnn_step(x, h, p)[0].T.copy(), None), "(it looks transposed)"),
    (lambda x, h, p: (nc.rnn_step(x, h, p)[0][0], None), "has shape"),
    (lambda x, h, p: (nc.rnn_step(x, h, p)[0].astype(np.float32), None),
     "dtype float32, expected float64"),
    (lambda x, h, p: (nc.rnn_step(x, h, p)[0] * np.nan, None), "NaN"),
    (lambda x, h, p: (torch.from_numpy(nc.rnn_step(x, h, p)[0]), None), "torch tensor"),
    (lambda x, h, p: (nc.rnn_step(x, h, p)[0].tolist(), None), "a list of length"),
]


@pytest.mark.parametrize(("wrong", "fragment"), BROKEN_RETURNS)
def test_broken_return_values_are_explained(wrong, fragment):
    _fails(checks.check_rnn_step, wrong, "check_rnn_step:", fragment)


def test_stacked_gates_shape_hint():
    def all_gates(x, h, c, p):
        a = _affine(x, h, p)
        return a, c, None

    _fails(checks.check_lstm_step, all_gates, "4 blocks of H")


def test_passing_something_that_is_not_a_function_is_a_type_error():
    with pytest.raises(TypeError, match="needs your function rnn_step"):
        checks.check_rnn_step(None)
    with pytest.raises(TypeError, match="forward="):
        checks.check_rnn_step_backward(nc.rnn_step_backward, forward=3)
