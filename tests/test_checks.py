"""The assignment checks: they pass correct code and explain known mistakes.

Every implementation below is written out by hand, the way a student would write it: the
correct ones independently of the library (a check must refuse the library's own code),
the wrong ones with exactly one mistake each. A test asserts that the check fails and that
its message names the wrong output and the intended hint. Other tests feed the checks
broken functions (None returned, wrong shapes and dtypes, exceptions, unfinished stubs,
inputs changed in place, the library's reference passed off as the student's) and check
that the message explains the problem without a traceback from inside the checker.
"""

from __future__ import annotations

import importlib.util
import inspect
import textwrap
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from throughtime import checks, gradients, timeseries
from throughtime import numpy_cells as nc


def _sig(v):
    """A sigmoid written independently of the library's (same values, to rounding)."""
    return 0.5 * (1 + np.tanh(0.5 * v))


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
# Correct implementations, written as a student would
# --------------------------------------------------------------------------------------


def rnn_step(x, h, p):
    a = _affine(x, h, p)
    h_next = np.tanh(a)
    return h_next, {"x": x, "h": h, "a": a, "h_next": h_next, "params": p}


def lstm_step(x, h, c, p, *, order="ifgo", forget="f", cand=np.tanh, squash_after=False,
              swap=False, old_cell=False):
    blocks = dict(zip(order, np.split(_affine(x, h, p), 4, axis=1), strict=True))
    i, f, g, o = _sig(blocks["i"]), _sig(blocks["f"]), cand(blocks["g"]), _sig(blocks["o"])
    kept = {"f": f * c, "none": 0, "carousel": c}[forget]
    c_next = kept + i * g
    cell = c if old_cell else c_next
    h_next = np.tanh(o * cell) if squash_after else o * np.tanh(cell)
    cache = {"x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o}
    return (c_next, h_next, cache) if swap else (h_next, c_next, cache)


def gru_step(x, h, p, *, flip_z=False, reset_before=False, order="rzn"):
    a_x = dict(zip(order, np.split(x @ p["weight_ih"].T + p["bias_ih"], 3, axis=1),
                   strict=True))
    w = dict(zip(order, np.split(p["weight_hh"], 3), strict=True))
    b = dict(zip(order, np.split(p["bias_hh"], 3), strict=True))
    r = _sig(a_x["r"] + h @ w["r"].T + b["r"])
    z = _sig(a_x["z"] + h @ w["z"].T + b["z"])
    if reset_before:
        n = np.tanh(a_x["n"] + (r * h) @ w["n"].T + b["n"])
    else:
        n = np.tanh(a_x["n"] + r * (h @ w["n"].T + b["n"]))
    return (z * n + (1 - z) * h if flip_z else (1 - z) * n + z * h), {"r": r, "z": z, "n": n}


def peephole_step(x, h, c, p, *, old_o=False, use=("peephole_i", "peephole_f", "peephole_o")):
    blocks = np.split(_affine(x, h, p), 4, axis=1)
    i = _sig(blocks[0] + (p[use[0]] if use[0] else 0) * c)
    f = _sig(blocks[1] + (p[use[1]] if use[1] else 0) * c)
    c_next = f * c + i * np.tanh(blocks[2])
    o = _sig(blocks[3] + (p[use[2]] if use[2] else 0) * (c if old_o else c_next))
    return o * np.tanh(c_next), c_next


def rnn_step_backward(dh_next, cache, *, slope=None, transpose_dw=False, batch_bias=False,
                      scale=1.0):
    p = cache["params"]
    da = dh_next * (slope if slope is not None else 1 - cache["h_next"] ** 2)
    d_w_hh = da.T @ cache["h"]
    bias = da if batch_bias else da.sum(axis=0)
    return scale * (da @ p["weight_ih"]), da @ p["weight_hh"], {
        "weight_ih": da.T @ cache["x"], "weight_hh": d_w_hh.T if transpose_dw else d_w_hh,
        "bias_ih": bias, "bias_hh": bias}


def lstm_step_backward(dh_next, dc_next, cache, *, use_dc_next=True, order="ifgo",
                       times_f=True, g_slope=None, o_slope=None):
    i, f, g, o, tanh_c = (cache[k] for k in ("i", "f", "g", "o", "tanh_c"))
    p = cache["params"]
    dc = (dc_next if use_dc_next else 0) + dh_next * o * (1 - tanh_c**2)
    slopes = {"i": dc * g * i * (1 - i), "f": dc * cache["c"] * f * (1 - f),
              "g": dc * i * (g_slope if g_slope is not None else 1 - g**2),
              "o": dh_next * tanh_c * (o_slope if o_slope is not None else o * (1 - o))}
    da = np.concatenate([slopes[gate] for gate in order], axis=1)
    return da @ p["weight_ih"], da @ p["weight_hh"], dc * f if times_f else dc, {
        "weight_ih": da.T @ cache["x"], "weight_hh": da.T @ cache["h"],
        "bias_ih": da.sum(0), "bias_hh": da.sum(0)}


def gru_step_backward(dh_next, cache, *, flip_z=False, reset_before=False, direct=True):
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


def rnn_backward(dhs, cache, *, accumulate=True, carry=True):
    """BPTT that calls the library's step backward: allowed, it is not the answer."""
    steps = cache["steps"]
    dxs = np.empty((len(steps), *steps[0]["x"].shape))
    grads = {k: np.zeros_like(v) for k, v in steps[0]["params"].items()}
    dh = np.zeros_like(dhs[0])
    for t in reversed(range(len(steps))):
        dxs[t], dh, step = nc.rnn_step_backward(dhs[t] + (dh if carry else 0), steps[t])
        for k in grads:
            grads[k] = grads[k] + step[k] if accumulate else step[k]
    return dxs, dh, grads


def clip_global(grads, max_norm, norm_type=2.0):
    total = np.linalg.norm([np.linalg.norm(g.ravel(), norm_type) for g in grads.values()],
                           norm_type)
    scale = min(1.0, max_norm / total)  # without torch's 1e-6: accepted
    return {k: g * scale for k, g in grads.items()}, total


def mase(y_true, y_pred, y_train, season, scale_data=None, lag=None):
    base = y_train if scale_data is None else y_true
    lag = season if lag is None else lag
    return np.mean(np.abs(y_true - y_pred)) / np.mean(np.abs(base[lag:] - base[:-lag]))


def param_count(kind, input_size, hidden_size, biases=2):
    return {"RNN": 1, "LSTM": 4, "GRU": 3}[kind] * hidden_size * (input_size + hidden_size
                                                                   + biases)


CORRECT = [
    (checks.check_rnn_step, rnn_step, {}, "h_next matches"),
    (checks.check_lstm_step, lstm_step, {}, "h_next and c_next match"),
    (checks.check_gru_step, gru_step, {}, "h_next matches"),
    (checks.check_lstm_peephole_step, peephole_step, {}, "h_next and c_next"),
    (checks.check_rnn_step_backward, rnn_step_backward, {}, "finite differences"),
    (checks.check_rnn_step_backward, rnn_step_backward, {"forward": rnn_step},
     "finite differences"),
    (checks.check_lstm_step_backward, lstm_step_backward, {}, "dx, dh, dc"),
    (checks.check_gru_step_backward, gru_step_backward, {}, "finite differences"),
    (checks.check_rnn_backward, rnn_backward, {}, "summed over time"),
    (checks.check_clip_by_norm, clip_global, {}, "total_norm"),
    (checks.check_clip_by_norm, clip_global, {"norm_types": (2.0, 1.0, float("inf"))},
     "5 hidden cases"),
    (checks.check_mase, mase, {}, "MASE matches"),
    (checks.check_param_count, param_count, {}, "12 hidden cases"),
]


@pytest.mark.parametrize(("check", "fn", "kwargs", "fragment"), CORRECT,
                         ids=lambda v: getattr(v, "__name__", None))
def test_correct_code_passes_with_one_line(check, fn, kwargs, fragment, capsys):
    assert check(fn, **kwargs) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(check.__name__ + ": ") and fragment in lines[0], lines[0]
    assert "hidden cases (max relative error" in lines[0]


def test_every_check_has_a_correct_implementation_here():
    assert {check.__name__ for check, *_ in CORRECT} == set(checks.CHECKS)
    assert set(checks.CHECKS) == {name for name in checks.__all__ if name.startswith("check_")}


def test_backward_checks_pair_with_the_students_own_forward():
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
        return _sig(_affine(x, h, p)), (x, h, _sig(_affine(x, h, p)), p)

    _fails(checks.check_rnn_step_backward, my_backward, "h_next is wrong",
           "your forward function rnn_step", forward=wrong_forward)

    def lstm_forward_cache(x, h, c, p):
        h_next, c_next, cache = lstm_step(x, h, c, p)
        return h_next, c_next, {**cache, "tanh_c": np.tanh(c_next), "params": p}

    checks.check_lstm_step_backward(lstm_step_backward, forward=lstm_forward_cache)

    def gru_forward_cache(x, h, p):
        h_next, cache = gru_step(x, h, p)
        ah_n = h @ np.split(p["weight_hh"], 3)[2].T + np.split(p["bias_hh"], 3)[2]
        return h_next, {**cache, "x": x, "h": h, "ah_n": ah_n, "params": p}

    checks.check_gru_step_backward(gru_step_backward, forward=gru_forward_cache)


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
    mine = checks._peephole_reference(x, h, c, params)
    assert gradients.rel_error(mine[0], h_next.numpy()) < 1e-12
    assert gradients.rel_error(mine[1], c_next.numpy()) < 1e-12
    with pytest.raises(ValueError, match="peephole_o"):
        checks._peephole_reference(x, h, c, {k: v for k, v in params.items()
                                             if k != "peephole_o"})
    with pytest.raises(ValueError, match=r"params\['peephole_i'\]"):
        checks._peephole_reference(x, h, c, {**params, "peephole_i": np.zeros(hidden + 1)})
    assert not hasattr(checks, "lstm_peephole_step"), "no public reference to import"


def test_param_count_reference_is_torch_nn():
    for kind in ("RNN", "LSTM", "GRU"):
        for size, biases in (((3, 5), True), ((32, 128), True), ((3, 5), False)):
            layer = getattr(torch.nn, kind)(*size, bias=biases)
            expected = sum(p.numel() for p in layer.parameters())
            case = next(c for c in checks.hidden_cases("check_param_count", 0,
                                                       [(kind, *size, 2 if biases else 0)]))
            assert case.reference["the count"] == expected


# --------------------------------------------------------------------------------------
# The library's own code is not the student's
# --------------------------------------------------------------------------------------

LIBRARY = [
    (checks.check_rnn_step, nc.rnn_step, "throughtime.numpy_cells.rnn_step"),
    (checks.check_lstm_step, nc.lstm_step, "throughtime.numpy_cells.lstm_step"),
    (checks.check_gru_step, nc.gru_step, "throughtime.numpy_cells.gru_step"),
    (checks.check_lstm_peephole_step, checks._peephole_reference,
     "throughtime.checks._peephole_reference"),
    (checks.check_rnn_step_backward, nc.rnn_step_backward,
     "throughtime.numpy_cells.rnn_step_backward"),
    (checks.check_lstm_step_backward, nc.lstm_step_backward,
     "throughtime.numpy_cells.lstm_step_backward"),
    (checks.check_gru_step_backward, nc.gru_step_backward,
     "throughtime.numpy_cells.gru_step_backward"),
    (checks.check_rnn_backward, nc.rnn_backward, "throughtime.numpy_cells.rnn_backward"),
    (checks.check_clip_by_norm, gradients.clip_by_norm, "throughtime.gradients.clip_by_norm"),
    (checks.check_mase, timeseries.mase, "throughtime.timeseries.mase"),
]


@pytest.mark.parametrize(("check", "fn", "name"), LIBRARY, ids=lambda v: getattr(v, "__name__",
                                                                                   None))
def test_the_librarys_own_function_is_refused(check, fn, name):
    _fails(check, fn, f"the function you passed is {name}", "Write your own")


def test_a_wrapper_or_partial_around_the_reference_is_refused():
    import functools

    _fails(checks.check_lstm_step, functools.partial(nc.lstm_step),
           "the function you passed is throughtime.numpy_cells.lstm_step")

    def my_lstm_step(x, h, c, params):
        return nc.lstm_step(x, h, c, params)

    _fails(checks.check_lstm_step, my_lstm_step,
           "your lstm_step calls throughtime.numpy_cells.lstm_step",
           "numpy_cells.sigmoid is fine")

    def via_kernel(x, h, c, params):
        return nc._lstm_step(x, h, c, params)

    _fails(checks.check_lstm_step, via_kernel, "calls throughtime.numpy_cells._lstm_step")

    def via_checker(x, h, c, params):
        return checks._peephole_reference(x, h, c, params)

    _fails(checks.check_lstm_peephole_step, via_checker,
           "calls throughtime.checks._peephole_reference")

    def sequence_of_one(x, h, params):
        hs, cache = nc.rnn_forward(x[None], h, params)
        return hs[0], cache

    _fails(checks.check_rnn_step, sequence_of_one, "calls throughtime.numpy_cells.rnn_forward")


def test_a_copy_of_the_librarys_code_is_refused(tmp_path):
    """A student who pastes the library's kernel under the exercise's name is told so."""
    kernel = textwrap.dedent(inspect.getsource(nc._lstm_step))
    body = kernel.split("\n", 1)[1]
    source = ("import numpy as np\nfrom throughtime.numpy_cells import sigmoid\n\n\n"
              "def lstm_step(x, h, c, params):\n" + body)
    path = tmp_path / "pasted.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("pasted", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _fails(checks.check_lstm_step, module.lstm_step,
           "is a copy of the library's throughtime.numpy_cells._lstm_step")
    assert checks.copied_from_library("check_lstm_step", source, "lstm_step") == \
        "throughtime.numpy_cells._lstm_step"
    own = textwrap.dedent(inspect.getsource(lstm_step))
    assert checks.copied_from_library("check_lstm_step", own, "lstm_step") is None


# --------------------------------------------------------------------------------------
# Forward steps: one deliberate mistake each
# --------------------------------------------------------------------------------------


def rnn_sigmoid(x, h, p):
    a = _affine(x, h, p)
    return _sig(a), {"x": x, "h": h, "a": a, "h_next": _sig(a)}


def rnn_no_bias_hh(x, h, p):
    return rnn_step(x, h, {**p, "bias_hh": np.zeros_like(p["bias_hh"])})


def rnn_untransposed(x, h, p):
    return rnn_step(x, h, {**p, "weight_hh": p["weight_hh"].T})


def lstm_no_bias_hh(x, h, c, p):
    return lstm_step(x, h, c, {**p, "bias_hh": np.zeros_like(p["bias_hh"])})


FORWARD_MISTAKES = [
    (checks.check_rnn_step, rnn_sigmoid, ["h_next is wrong", "the sigmoid; it should be tanh"]),
    (checks.check_rnn_step, rnn_no_bias_hh, ["h_next is wrong", "bias_hh is missing"]),
    (checks.check_rnn_step, rnn_untransposed, ["untransposed"]),
    (checks.check_lstm_step, lambda x, h, c, p: lstm_step(x, h, c, p, order="ifog"),
     ["h_next is wrong", "Also wrong: c_next", "i, f, o, g (CS231n's order)",
      "PyTorch stacks them i, f, g, o"]),
    (checks.check_lstm_step, lambda x, h, c, p: lstm_step(x, h, c, p, forget="carousel"),
     ["c_next", "the 1997 LSTM, c_next = c + i * g", "constant error carousel"]),
    (checks.check_lstm_step, lambda x, h, c, p: lstm_step(x, h, c, p, forget="none"),
     ["c_next", "the old cell state is missing"]),
    (checks.check_lstm_step, lambda x, h, c, p: lstm_step(x, h, c, p, swap=True),
     ["returned in swapped order"]),
    (checks.check_lstm_step, lambda x, h, c, p: lstm_step(x, h, c, p, squash_after=True),
     ["h_next is wrong", "The other outputs (c_next) are right", "tanh(o * c_next)"]),
    (checks.check_lstm_step, lambda x, h, c, p: lstm_step(x, h, c, p, cand=_sig),
     ["the candidate g uses the sigmoid; it should use tanh"]),
    (checks.check_lstm_step, lambda x, h, c, p: lstm_step(x, h, c, p, old_cell=True),
     ["it should use the new one"]),
    (checks.check_lstm_step, lstm_no_bias_hh, ["bias_hh is missing"]),
    (checks.check_gru_step, lambda x, h, p: gru_step(x, h, p, flip_z=True),
     ["h_next is wrong", "Chung et al. 2014"]),
    (checks.check_gru_step, lambda x, h, p: gru_step(x, h, p, reset_before=True),
     ["before the matrix product", "Cho et al."]),
    (checks.check_gru_step, lambda x, h, p: gru_step(x, h, p, flip_z=True, reset_before=True),
     ["two conventions differ"]),
    (checks.check_gru_step, lambda x, h, p: gru_step(x, h, p, order="zrn"),
     ["in the order z, r, n", "PyTorch stacks them r, z, n"]),
    (checks.check_gru_step,
     lambda x, h, p: gru_step(x, h, {**p, "bias_hh": 0 * p["bias_hh"]}),
     ["bias_hh is missing"]),
    (checks.check_lstm_peephole_step, lambda *a: peephole_step(*a, old_o=True),
     ["h_next is wrong", "The other outputs (c_next) are right", "old cell state"]),
    (checks.check_lstm_peephole_step, lambda *a: peephole_step(*a, use=(None, None, None)),
     ["the peepholes are missing"]),
    (checks.check_lstm_peephole_step,
     lambda *a: peephole_step(*a, use=("peephole_f", "peephole_i", "peephole_o")),
     ["the peepholes are swapped: your code uses peephole_f for the input gate and "
      "peephole_i for the forget gate"]),
    (checks.check_lstm_peephole_step,
     lambda *a: peephole_step(*a, use=("peephole_i", None, "peephole_o")),
     ["the forget gate's peephole is missing"]),
]


@pytest.mark.parametrize(("check", "wrong", "fragments"), FORWARD_MISTAKES,
                         ids=lambda v: getattr(v, "__name__", None))
def test_forward_mistakes_are_named(check, wrong, fragments):
    message = _fails(check, wrong, *fragments, "relative error", "hidden case 1 of 3",
                     "entries differ")
    assert message.count("Hint:") == 1


def test_hints_say_what_it_should_be_not_what_it_is():
    """'it uses tanh' read as a contradiction; every contrast says 'should'."""
    rng = np.random.default_rng(1)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    p = nc.init_params("lstm", 3, 4, rng)
    for hint, _ in checks._lstm_forward_mistakes(x, h, c, p):
        for clause in hint.split(";")[1:]:
            assert " uses " not in clause and " it is " not in clause, hint


# --------------------------------------------------------------------------------------
# Messages that say how an output is wrong
# --------------------------------------------------------------------------------------


def test_sign_and_scale_are_named():
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: rnn_step_backward(dh, cache, scale=-1.0),
           "dx is wrong", "yours have the opposite sign", "The other outputs")
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: rnn_step_backward(dh, cache, scale=2.0),
           "yours are 2 times the reference")


def test_the_gate_blocks_that_are_wrong_are_named():
    def wrong_output_gate(dh, dc, cache):
        o = cache["o"]
        return lstm_step_backward(dh, dc, cache, o_slope=0.5 * o * (1 - o))

    _fails(checks.check_lstm_step_backward, wrong_output_gate, "dx is wrong",
           "grads['weight_ih'] (dL/dW_ih)")

    def only_weight_ih_wrong(dh, dc, cache):
        dx, dh_prev, dc_prev, grads = lstm_step_backward(dh, dc, cache)
        return dx, dh_prev, dc_prev, {**grads,
                                      "weight_ih": wrong_output_gate(dh, dc, cache)[3]
                                      ["weight_ih"]}

    _fails(checks.check_lstm_step_backward, only_weight_ih_wrong,
           "grads['weight_ih'] (dL/dW_ih) is wrong",
           "the rows of gate o are wrong, those of i, f and g are right")


def test_the_time_steps_that_are_wrong_are_named():
    def last_step_only_carries(dhs, cache):
        dxs, dh0, grads = rnn_backward(dhs, cache)
        exact = rnn_backward(dhs, cache, carry=False)[0]
        dxs[:-1] = exact[:-1]  # every step but the last forgets the gradient from later steps
        return dxs, dh0, grads

    _fails(checks.check_rnn_backward, last_step_only_carries, "dxs is wrong",
           "only time steps 0-2 are wrong")


# --------------------------------------------------------------------------------------
# The cache the exercises ask for, and inputs changed in place
# --------------------------------------------------------------------------------------


def test_the_cache_the_exercise_asks_for_is_checked():
    def no_cache(x, h, p):
        return rnn_step(x, h, p)[0], None

    _fails(checks.check_rnn_step, no_cache, "the cache returned by your rnn_step is None",
           "keeps the inputs, the pre-activation and the new state")

    def no_pre_activation(x, h, p):
        h_next, cache = rnn_step(x, h, p)
        return h_next, {k: v for k, v in cache.items() if k != "a"}

    _fails(checks.check_rnn_step, no_pre_activation, "has no array equal to a",
           "(h_next is right.)")

    def gates_before_the_nonlinearity(x, h, c, p):
        h_next, c_next, cache = lstm_step(x, h, c, p)
        a = np.split(_affine(x, h, p), 4, axis=1)
        return h_next, c_next, {**cache, "i": a[0], "f": a[1]}

    _fails(checks.check_lstm_step, gates_before_the_nonlinearity,
           "has no array equal to i and f", "the inputs and the four gates")

    def tuple_cache(x, h, c, p):
        h_next, c_next, cache = lstm_step(x, h, c, p)
        return h_next, c_next, tuple(cache.values())

    checks.check_lstm_step(tuple_cache)


def test_inputs_changed_in_place_fail():
    def lstm_in_place(x, h, c, p):
        h_next, c_next, cache = lstm_step(x, h, c, p)
        c *= 0.5  # "the old state is not needed any more"
        return h_next, c_next, cache

    _fails(checks.check_lstm_step, lstm_in_place, "your lstm_step changed its input c in place")

    def cache_in_place(dh_next, cache):
        cache["h_next"] **= 2
        da = dh_next * (1 - cache["h_next"])
        p = cache["params"]
        return da @ p["weight_ih"], da @ p["weight_hh"], {
            "weight_ih": da.T @ cache["x"], "weight_hh": da.T @ cache["h"],
            "bias_ih": da.sum(0), "bias_hh": da.sum(0)}

    _fails(checks.check_rnn_step_backward, cache_in_place, "changed its input cache['h_next']")

    def clip_in_place(grads, max_norm):
        total = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
        for g in grads.values():
            g *= min(1.0, max_norm / total)
        return grads, total

    _fails(checks.check_clip_by_norm, clip_in_place, "changed its input grads['g'] in place")


# --------------------------------------------------------------------------------------
# Backward steps, BPTT, clipping, MASE, parameter counts
# --------------------------------------------------------------------------------------


def test_rnn_step_backward_hints():
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: rnn_step_backward(dh, cache, slope=1 - cache["a"] ** 2),
           "dx is wrong", "from the pre-activation a as 1 - a^2")
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: rnn_step_backward(dh, cache, transpose_dw=True),
           "grads['weight_hh'] (dL/dW_hh) is wrong", "is transposed")
    _fails(checks.check_rnn_step_backward,
           lambda dh, cache: rnn_step_backward(dh, cache, batch_bias=True),
           "grads['bias_ih']", "sum over the batch axis")

    def dh_transposed(dh, cache):
        dx, _, grads = rnn_step_backward(dh, cache)
        da = dh * (1 - cache["h_next"] ** 2)
        return dx, da @ cache["params"]["weight_hh"].T, grads

    _fails(checks.check_rnn_step_backward, dh_transposed, "dh is wrong",
           "dh = da @ weight_hh")

    def missing_key(dh, cache):
        dx, dh_prev, grads = rnn_step_backward(dh, cache)
        return dx, dh_prev, {k: v for k, v in grads.items() if k != "bias_hh"}

    _fails(checks.check_rnn_step_backward, missing_key, "missing ['bias_hh']")


def test_lstm_step_backward_hints():
    check = checks.check_lstm_step_backward
    _fails(check, lambda dh, dc, cache: lstm_step_backward(dh, dc, cache, use_dc_next=False),
           "dx is wrong", "dc_next is ignored")
    _fails(check, lambda dh, dc, cache: lstm_step_backward(dh, dc, cache, order="ifog"),
           "stacks the gate gradients in the order i, f, o, g (CS231n's order)")
    _fails(check, lambda dh, dc, cache: lstm_step_backward(dh, dc, cache, times_f=False),
           "dc is wrong", "missing the forget gate")
    _fails(check, lambda dh, dc, cache: lstm_step_backward(dh, dc, cache,
                                                           g_slope=1 - cache["g"]),
           "for the candidate g, tanh' is computed as 1 - t; it should be 1 - t^2")
    _fails(check, lambda dh, dc, cache: lstm_step_backward(
        dh, dc, cache, g_slope=1 - np.tanh(cache["g"]) ** 2), "already tanh(a)")


def test_gru_step_backward_hints():
    check = checks.check_gru_step_backward
    _fails(check, lambda dh, cache: gru_step_backward(dh, cache, flip_z=True),
           "differentiates the wrong GRU", "Chung et al. 2014")
    _fails(check, lambda dh, cache: gru_step_backward(dh, cache, reset_before=True),
           "differentiates the wrong GRU", "Cho et al. 2014")
    _fails(check, lambda dh, cache: gru_step_backward(dh, cache, direct=False),
           "dh is wrong", "The other outputs", "missing the direct path")


def test_rnn_backward_hints():
    _fails(checks.check_rnn_backward, lambda d, c: rnn_backward(d, c, accumulate=False),
           "not summed over time", "step 0")
    _fails(checks.check_rnn_backward, lambda d, c: rnn_backward(d, c, carry=False),
           "from later steps is not added")


def clip_per_tensor(grads, max_norm):
    clipped = {k: g * min(1.0, max_norm / np.linalg.norm(g)) for k, g in grads.items()}
    return clipped, np.sqrt(sum(np.sum(g**2) for g in grads.values()))


def clip_values(grads, max_norm):
    return ({k: np.clip(g, -max_norm, max_norm) for k, g in grads.items()},
            np.sqrt(sum(np.sum(g**2) for g in grads.values())))


def clip_two_norm_only(grads, max_norm, norm_type=2.0):
    return clip_global(grads, max_norm)


def test_clip_by_norm_hints():
    check = checks.check_clip_by_norm
    _fails(check, clip_per_tensor, "clipped by its own norm", "global norm")
    _fails(check, clip_values, "hidden case 1 of 3", "clipping by value")
    _fails(check, lambda g, m: (clip_global(g, m)[0], clip_global(clip_global(g, m)[0], m)[1]),
           "total_norm is wrong", "norm after clipping")
    _fails(check, clip_two_norm_only, "norm_type is ignored",
           norm_types=(2.0, 1.0, float("inf")))
    _fails(check, lambda g, m: clip_global(g, m)[0], "returned a dict with the keys",
           "it must return a tuple (clipped, total_norm)")
    with pytest.raises(ValueError, match="norm_types"):
        check(clip_global, norm_types=(3.0,))


def test_mase_hints():
    _fails(checks.check_mase, lambda a, b, c, m: mase(a, b, c, m, scale_data="test"),
           "MASE scales by the seasonal naive error on the training part")
    _fails(checks.check_mase, lambda a, b, c, m: mase(a, b, c, m, lag=1), "lag 1")
    _fails(checks.check_mase, lambda a, b, c, m: None, "returned None")


def test_param_count_hints():
    check = checks.check_param_count
    _fails(check, lambda kind, i, h, biases=2: param_count(kind, i, h, 1),
           "the count is wrong", "one bias vector per gate block")
    _fails(check, lambda kind, i, h, biases=2: param_count("RNN", i, h, biases),
           "that is one gate block")
    _fails(check, lambda kind, i, h, biases=2: param_count(kind, i, h, biases) + 0.5,
           "a count is a whole number")
    _fails(check, lambda kind, i, h: param_count(kind, i, h), "unexpected keyword argument")


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
    inside = [f for f in frames if Path(f.filename).name in ("checks.py", "checking.py")]
    assert len(inside) == 1, [f"{f.name}:{f.lineno}" for f in inside]


def _h(x, h, p):
    return rnn_step(x, h, p)[0]


BROKEN_RETURNS = [
    (lambda x, h, p: None, "returned None; it must return (h_next, cache)"),
    (lambda x, h, p: _h(x, h, p), "it must return a tuple (h_next, cache)"),
    (lambda x, h, p: (*rnn_step(x, h, p), 1), "returned 3 values; it must return 2"),
    (lambda x, h, p: (None, None), "h_next returned by your rnn_step is None"),
    (lambda x, h, p: (_h(x, h, p).T.copy(), None), "(it looks transposed)"),
    (lambda x, h, p: (_h(x, h, p)[0], None), "has shape"),
    (lambda x, h, p: (_h(x, h, p).astype(np.float32), None), "dtype float32, expected float64"),
    (lambda x, h, p: (_h(x, h, p) * np.nan, None), "NaN"),
    (lambda x, h, p: (torch.from_numpy(_h(x, h, p)), None), "torch tensor"),
    (lambda x, h, p: (_h(x, h, p).tolist(), None), "a list of length"),
]


@pytest.mark.parametrize(("wrong", "fragment"), BROKEN_RETURNS)
def test_broken_return_values_are_explained(wrong, fragment):
    _fails(checks.check_rnn_step, wrong, "check_rnn_step:", fragment)


def test_stacked_gates_shape_hint():
    def all_gates(x, h, c, p):
        return _affine(x, h, p), c, None

    _fails(checks.check_lstm_step, all_gates, "4 blocks of H")


def test_passing_something_that_is_not_a_function_is_a_type_error():
    with pytest.raises(TypeError, match="needs your function rnn_step"):
        checks.check_rnn_step(None)
    with pytest.raises(TypeError, match="forward="):
        checks.check_rnn_step_backward(rnn_step_backward, forward=3)


# --------------------------------------------------------------------------------------
# The grader's halves: hidden cases, running without answers, judging
# --------------------------------------------------------------------------------------


def _arrays(value):
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arrays(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _arrays(item)


@pytest.mark.parametrize("check", checks.CHECKS)
def test_hidden_cases_keep_the_answers_out_of_what_the_student_sees(check):
    public = checks.hidden_cases(check, checks._SEED)
    hidden = checks.hidden_cases(check, 20_260_901)
    assert len(public) == len(hidden)
    shown_public = [list(_arrays(case.public)) for case in public]
    shown_hidden = [list(_arrays(case.public)) for case in hidden]
    if any(shown_public):
        assert any(not (a.shape == b.shape and np.array_equal(a, b))
                   for one, other in zip(shown_public, shown_hidden, strict=True)
                   for a, b in zip(one, other, strict=True)), "the seed changes nothing"
    for case in public:
        shown = list(_arrays(case.public))
        if check == "check_clip_by_norm" and case.reference["total_norm"] <= case.args[1]:
            continue  # below the threshold the answer is the input, by definition
        for expected in _arrays(case.reference):
            if expected.size > 1:
                assert not any(a.shape == expected.shape and np.allclose(a, expected)
                               for a in shown), f"{check}: an answer is in the inputs"


def test_run_and_judge_in_two_halves():
    cases = checks.hidden_cases("check_lstm_step", 99, [(4, 2, 3), (1, 1, 1)])
    outcomes = checks.run_cases("check_lstm_step", [c.public for c in cases], lstm_step)
    assert set(outcomes[0]) == {"error", "outputs", "forward_outputs", "mutated", "called"}
    verdict = checks.judge_cases("check_lstm_step", cases, outcomes)
    assert verdict.passed and "2 hidden cases" in verdict.message
    wrong = checks.run_cases("check_lstm_step", [c.public for c in cases],
                             lambda x, h, c, p: lstm_step(x, h, c, p, forget="carousel"))
    verdict = checks.judge_cases("check_lstm_step", cases, wrong)
    assert not verdict.passed and "1997 LSTM" in verdict.message
    library = checks.run_cases("check_lstm_step", [c.public for c in cases], nc.lstm_step)
    assert "the library's own" in checks.judge_cases("check_lstm_step", cases, library).message
    forged = [{"error": None, "outputs": {"h_next": "1.0"}, "forward_outputs": None,
               "mutated": [], "called": []}] * 2
    verdict = checks.judge_cases("check_lstm_step", cases, forged)
    assert not verdict.passed and "could not read" in verdict.message
    assert not checks.judge_cases("check_lstm_step", cases, outcomes[:1]).passed
    assert "hidden case 2 of 2 (B=1, I=1, H=1)" in checks.hidden_cases(
        "check_lstm_step", 99, [(4, 2, 3), (1, 1, 1)])[1].label


def test_hidden_check_runs_both_halves_in_one_process():
    line = checks.hidden_check("check_gru_step", gru_step, seed=123, sizes=[(2, 2, 2)])
    assert line.startswith("check_gru_step: h_next matches the reference on 1 hidden cases")
    with pytest.raises(checks.CheckFailed, match="Chung et al"):
        checks.hidden_check("check_gru_step", lambda x, h, p: gru_step(x, h, p, flip_z=True),
                            seed=123)
    with pytest.raises(ValueError, match="check must be one of"):
        checks.hidden_check("check_nothing", gru_step, seed=1)
