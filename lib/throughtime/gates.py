"""Gates: where each gate's rows sit, the gate biases that matter, the LSTM's gates recorded.

- ``GATE_ORDER`` and ``gate_rows``: where each gate's rows sit in PyTorch's stacked weights
  and biases: LSTM gates i, f, g, o and GRU blocks r, z, n; rows k*H to (k+1)*H for the
  k-th of its kind.
- ``set_forget_bias`` and ``effective_forget_bias``: the forget gate's pre-activation gets
  *two* biases in PyTorch, b_if (a slice of ``bias_ih``) and b_hf (a slice of ``bias_hh``),
  and only their sum b_if + b_hf matters. Setting both slices to 1 gives an effective bias
  of 2. ``set_forget_bias(module, 1.0)`` writes 1 into the ``bias_ih`` slice and 0 into the
  ``bias_hh`` slice, so the effective bias is exactly 1. ``set_update_bias`` does the same
  for the GRU's update gate z, its counterpart.
- ``record_gates``: run the numpy LSTM of ``numpy_cells`` over a sequence and keep every
  gate, the candidate, the cell state and the hidden state, shape (T, B, H) each.
- ``memory_unit``: in a recording over marked sequences (the adding problem), the unit
  that writes at the first mark and still holds what it wrote at the last, and what its
  gates and cell do.
- ``state_at`` and ``draw_state``: the numbers of one step, and the figure the chapter's
  live explorer redraws when its slider moves (a pure function of the recording and t).

Indices are 0-based like the arrays: ``recording["c"][t]`` is the cell state after reading
``xs[t]``, which the book writes c_{t+1}. The figures label steps 1 .. T, as the book does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import numpy_cells
from ._validate import check_choice, check_float_array, check_int, check_real, describe
from .plotting import COLORS

__all__ = [
    "GATE_ORDER",
    "RECORDED",
    "gate_rows",
    "set_forget_bias",
    "set_update_bias",
    "effective_forget_bias",
    "record_gates",
    "memory_unit",
    "state_at",
    "draw_state",
]

GATE_ORDER = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
"""PyTorch's order of the blocks stacked in a gated layer's weights and biases, by kind: the
LSTM's input gate, forget gate, candidate and output gate; the GRU's reset gate, update
gate and candidate ("new")."""

RECORDED = ("i", "f", "g", "o", "c", "h")
"""The arrays ``record_gates`` returns: the four blocks, the cell state and the hidden state."""

_ARTICLE = {"LSTM": "an", "GRU": "a"}


def gate_rows(kind: str, gate: str, hidden_size: int) -> slice:
    """The rows of gate ``gate`` in the stacked weights and biases of an LSTM or a GRU.

    ``weight_ih[gate_rows("LSTM", "f", H)]`` is W_if (H, I), ``weight_hh[gate_rows("GRU",
    "z", H)]`` is W_hz (H, H), ``bias_ih[gate_rows("GRU", "n", H)]`` is b_in (H,), and so
    on: the k-th gate of ``GATE_ORDER[kind]`` holds rows k*H to (k+1)*H.

    Parameters
    ----------
    kind : {"LSTM", "GRU"}
    gate : {"i", "f", "g", "o"} for the LSTM, {"r", "z", "n"} for the GRU
    hidden_size : int
        H.

    Returns
    -------
    slice
    """
    check_choice("kind", kind, tuple(GATE_ORDER))
    check_choice("gate", gate, GATE_ORDER[kind])
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    k = GATE_ORDER[kind].index(gate)
    return slice(k * hidden_size, (k + 1) * hidden_size)


# --------------------------------------------------------------------------------------
# The gate biases of PyTorch modules
# --------------------------------------------------------------------------------------


def _bias_pairs(module: Any, kind: str, gate_name: str) -> tuple[int, list[tuple[str, str]]]:
    """Check that ``module`` is a ``kind`` with biases; return H and its (bias_ih, bias_hh) names.

    A cell has the pair ("bias_ih", "bias_hh"); a layer has one pair per layer and
    direction, named like ("bias_ih_l1_reverse", "bias_hh_l1_reverse").
    """
    import torch

    a = _ARTICLE[kind]
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module ({a} {kind} or {kind}Cell), "
                        f"got {describe(module)}")
    owner = type(module).__name__
    hidden_size = getattr(module, "hidden_size", None)
    if not isinstance(hidden_size, int):
        raise TypeError(f"module must be {a} {kind} or {kind}Cell with an integer hidden_size, "
                        f"got a {owner} without one")
    parameters = dict(module.named_parameters(recurse=False))
    pairs = [(name, "bias_hh" + name[len("bias_ih"):]) for name in parameters
             if name.startswith("bias_ih")]
    if not pairs:
        raise ValueError(f"module ({owner}) has no bias_ih/bias_hh parameters (it was created "
                         f"with bias=False?): there is no {gate_name} bias to set")
    blocks = len(GATE_ORDER[kind])
    for name_ih, name_hh in pairs:
        if name_hh not in parameters:
            raise ValueError(f"module ({owner}) has {name_ih} but no {name_hh}")
        for name in (name_ih, name_hh):
            rows = parameters[name].shape[0]
            if parameters[name].dim() != 1 or rows != blocks * hidden_size:
                raise ValueError(
                    f"module.{name} must have shape ({blocks}*H,) = ({blocks * hidden_size},) "
                    f"for {a} {kind} with H = {hidden_size} (gates "
                    f"{', '.join(GATE_ORDER[kind])}), got {tuple(parameters[name].shape)}; "
                    f"is {owner} {a} {kind}?"
                )
    return hidden_size, pairs


def _set_gate_bias(module: Any, kind: str, gate: str, gate_name: str, value: float) -> Any:
    """Write ``value`` into the ``gate`` slice of every ``bias_ih`` and 0 into ``bias_hh``'s."""
    import torch

    hidden_size, pairs = _bias_pairs(module, kind, gate_name)
    value = check_real("value", value)
    rows = gate_rows(kind, gate, hidden_size)
    parameters = dict(module.named_parameters(recurse=False))
    with torch.no_grad():
        for name_ih, name_hh in pairs:
            parameters[name_ih][rows] = value
            parameters[name_hh][rows] = 0.0
    return module


def set_forget_bias(module: Any, value: float) -> Any:
    """Set the *effective* forget-gate bias of a torch LSTM to ``value``, in place.

    The forget gate is f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf), so the bias it
    sees is b_if + b_hf. This writes ``value`` into the forget slice of ``bias_ih`` (b_if)
    and 0 into the forget slice of ``bias_hh`` (b_hf): the sum is exactly ``value``. Every
    other entry is left alone. A stacked or bidirectional ``torch.nn.LSTM`` gets the same
    effective bias in every layer and direction.

    Parameters
    ----------
    module : torch.nn.LSTM, torch.nn.LSTMCell, or the book's ``torch_cells`` LSTM/LSTMCell
        Any module with ``hidden_size`` and bias vectors of shape (4H,) named ``bias_ih`` /
        ``bias_hh`` (cells) or ``bias_ih_l0`` / ``bias_hh_l0`` and so on (layers).
    value : float
        The effective bias b_if + b_hf, for example 1.0 (Jozefowicz et al. 2015).

    Returns
    -------
    module
        The same module, changed in place.
    """
    return _set_gate_bias(module, "LSTM", "f", "forget-gate", value)


def set_update_bias(module: Any, value: float) -> Any:
    """Set the *effective* update-gate bias b_iz + b_hz of a torch GRU to ``value``, in place.

    The GRU's counterpart of the LSTM's forget-gate bias (``set_forget_bias``): in
    PyTorch's convention z_t keeps the old state, and with small weights z_t is about
    sigma(b_iz + b_hz), so a bias of 1 keeps about sigma(1) = 0.73 of every unit per step at
    initialisation instead of 1/2. Writes ``value`` into the z slice of ``bias_ih`` (b_iz)
    and 0 into the z slice of ``bias_hh`` (b_hz); every other entry is left alone. A stacked
    or bidirectional ``torch.nn.GRU`` gets the same bias in every layer and direction.

    Parameters
    ----------
    module : torch.nn.GRU, torch.nn.GRUCell, or the book's ``torch_cells`` GRU/GRUCell
        Any module with ``hidden_size`` and bias vectors of shape (3H,) named ``bias_ih`` /
        ``bias_hh`` (cells) or ``bias_ih_l0`` / ``bias_hh_l0`` and so on (layers).
    value : float
        The effective bias b_iz + b_hz.

    Returns
    -------
    module
        The same module, changed in place.
    """
    return _set_gate_bias(module, "GRU", "z", "update-gate", value)


def effective_forget_bias(module: Any, *, layer: int = 0, reverse: bool = False) -> Any:
    """The forget gate's effective bias b_if + b_hf of a torch LSTM: a new tensor (H,).

    Parameters
    ----------
    module : torch.nn.LSTM, torch.nn.LSTMCell, or the book's ``torch_cells`` LSTM/LSTMCell
    layer : int
        Which layer of a stacked ``torch.nn.LSTM`` (0 for a cell).
    reverse : bool
        The reverse direction of a bidirectional ``torch.nn.LSTM``.

    Returns
    -------
    torch.Tensor, shape (H,)
        ``bias_ih[H:2H] + bias_hh[H:2H]``, detached from the graph.
    """
    hidden_size, pairs = _bias_pairs(module, "LSTM", "forget-gate")
    layer = check_int("layer", layer, minimum=0)
    if not isinstance(reverse, bool):
        raise TypeError(f"reverse must be True or False, got {describe(reverse)}")
    if pairs[0][0] == "bias_ih" and (layer != 0 or reverse):
        raise ValueError(f"module ({type(module).__name__}) is a cell with one layer and one "
                         f"direction: layer must be 0 and reverse False, got layer={layer}, "
                         f"reverse={reverse}")
    suffix = "" if pairs[0][0] == "bias_ih" else f"_l{layer}" + ("_reverse" if reverse else "")
    names = {name_ih: name_hh for name_ih, name_hh in pairs}
    name_ih = "bias_ih" + suffix
    if name_ih not in names:
        available = ", ".join(sorted(names))
        raise ValueError(f"module ({type(module).__name__}) has no {name_ih} for layer={layer}, "
                         f"reverse={reverse}; its bias vectors are {available}")
    parameters = dict(module.named_parameters(recurse=False))
    rows = gate_rows("LSTM", "f", hidden_size)
    return (parameters[name_ih][rows] + parameters[names[name_ih]][rows]).detach().clone()


# --------------------------------------------------------------------------------------
# Recording the gates over a sequence
# --------------------------------------------------------------------------------------


def record_gates(xs: np.ndarray, params: Mapping[str, np.ndarray],
                 h0: np.ndarray | None = None,
                 c0: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run the LSTM over ``xs`` and keep every gate and state, step by step.

    Uses ``numpy_cells.lstm_forward``; at each step t (0-based)

    .. math::

        i_t = \\sigma(\\cdot), \\quad f_t = \\sigma(\\cdot), \\quad g_t = \\tanh(\\cdot), \\quad
        o_t = \\sigma(\\cdot), \\quad
        c_t = f_t \\odot c_{t-1} + i_t \\odot g_t, \\quad h_t = o_t \\odot \\tanh(c_t)

    with the gates' affine maps of ``numpy_cells.lstm_step``.

    Parameters
    ----------
    xs : ndarray, shape (T, B, I)
    params : dict
        LSTM parameters (``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` (4H,),
        ``bias_hh`` (4H,)); ``numpy_cells.params_from_torch`` makes them from a torch LSTM.
    h0, c0 : ndarray, shape (B, H), or None
        Initial states; ``None`` means zeros.

    Returns
    -------
    dict
        ``"i"``, ``"f"``, ``"g"``, ``"o"`` (the gates and the candidate), ``"c"`` (cell
        states) and ``"h"`` (hidden states), each an array of shape (T, B, H) in the dtype of
        ``params``. Entry t holds the values computed while reading ``xs[t]``.
    """
    hs, cs, cache = numpy_cells.lstm_forward(xs, h0, c0, params)
    recording = {gate: np.stack([step[gate] for step in cache["steps"]])
                 for gate in GATE_ORDER["LSTM"]}
    recording["c"] = cs
    recording["h"] = hs
    return recording


def memory_unit(recording: Mapping[str, np.ndarray], marked: np.ndarray) -> dict[str, Any]:
    r"""The unit that writes at the first mark and still holds it at the last, and its gates.

    In a task such as the adding problem something written at the first marked step must
    survive until the last one. Along the cell state of unit j, what the input gate lets in
    at the first mark, i_j (times the candidate), reaches the last mark scaled by the forget
    gates in between. So for every unit the *kept share* is the mean over the sequences of

    .. math::

        i_{j, s} \prod_{s < t < e} f_{j, t}

    with s the first and e the last marked step of a sequence, and the memory unit is the
    unit with the largest kept share. For that unit the result reports its input gate at and
    away from the marks, its forget gate strictly between the first and the last mark, and
    how much its cell state changes in one step, ``|c_t - c_{t-1}|`` (with c_0 = 0), at and away
    from the marks.

    Parameters
    ----------
    recording : dict
        From ``record_gates``: arrays (T, B, H).
    marked : ndarray of bool, shape (T, B)
        True at the marked steps (in the adding problem, where the marker input is 1).
        Every sequence needs at least two marked steps, and some step must be unmarked.

    Returns
    -------
    dict
        ``"unit"`` (0-based index), ``"kept"`` (H,), the kept share of every unit,
        ``"response"`` (H,), every unit's mean input gate at the marks minus its mean
        elsewhere, and for the memory unit ``"input_marked"``, ``"input_unmarked"``,
        ``"forget_between"`` (mean), ``"forget_between_min"``, ``"change_marked"``,
        ``"change_unmarked"`` (means of ``|c_t - c_{t-1}|``); ``"forget_all"`` is the mean forget
        gate over every unit, step and sequence. The between-marks entries are NaN when no
        sequence has a step between its first and last mark.
    """
    steps, batch, _ = _check_recording(recording)
    marked = np.asarray(marked)
    if marked.dtype != bool or marked.shape != (steps, batch):
        raise ValueError(f"marked must be a boolean array of shape (T, B) = ({steps}, {batch}) "
                         f"like the recording, got {describe(marked)}")
    if (marked.sum(axis=0) < 2).any() or marked.all():
        raise ValueError("marked must mark at least two steps in every sequence and leave some "
                         "step unmarked")
    gate_i, gate_f, cell = recording["i"], recording["f"], recording["c"]
    sequences = np.arange(batch)
    index = np.arange(steps)[:, None]
    first = marked.argmax(axis=0)
    last = steps - 1 - marked[::-1].argmax(axis=0)
    between = (index > first) & (index < last)  # (T, B)
    held = np.where(between[:, :, None], gate_f, 1.0).prod(axis=0)  # (B, H)
    kept = (gate_i[first, sequences] * held).mean(axis=0)
    unit = int(np.argmax(kept))
    response = gate_i[marked].mean(axis=0) - gate_i[~marked].mean(axis=0)
    change = np.abs(np.diff(cell[:, :, unit], axis=0, prepend=0.0))
    forget = gate_f[:, :, unit][between]
    return {
        "unit": unit,
        "kept": kept,
        "response": response,
        "input_marked": float(gate_i[:, :, unit][marked].mean()),
        "input_unmarked": float(gate_i[:, :, unit][~marked].mean()),
        "forget_between": float(forget.mean()) if forget.size else float("nan"),
        "forget_between_min": float(forget.min()) if forget.size else float("nan"),
        "change_marked": float(change[marked].mean()),
        "change_unmarked": float(change[~marked].mean()),
        "forget_all": float(gate_f.mean()),
    }


def _check_recording(recording: Any) -> tuple[int, int, int]:
    """Check a ``record_gates`` result; return (T, B, H)."""
    if not isinstance(recording, Mapping) or not set(RECORDED) <= set(recording):
        keys = sorted(recording) if isinstance(recording, Mapping) else describe(recording)
        raise TypeError(f"recording must be the dict returned by record_gates, with keys "
                        f"{list(RECORDED)}, got {keys}")
    shape = None
    for name in RECORDED:
        value = check_float_array(f"recording['{name}']", recording[name], ndim=3)
        if shape is None:
            shape = value.shape
        elif value.shape != shape:
            raise ValueError(f"recording['{name}'] has shape {value.shape} but "
                             f"recording['i'] has {shape}; every entry must be (T, B, H)")
    return shape


def _check_step(t: Any, steps: int) -> int:
    t = check_int("t", t, minimum=0)
    if t >= steps:
        raise ValueError(f"t must be a step index in 0 .. {steps - 1} (the recording has "
                         f"T = {steps} steps), got {t}")
    return t


def _check_batch_index(batch_index: Any, batch: int) -> int:
    batch_index = check_int("batch_index", batch_index, minimum=0)
    if batch_index >= batch:
        raise ValueError(f"batch_index must be in 0 .. {batch - 1} (the recording holds "
                         f"B = {batch} sequences), got {batch_index}")
    return batch_index


def state_at(recording: Mapping[str, np.ndarray], t: int,
             batch_index: int = 0) -> dict[str, np.ndarray]:
    """The gates and states of one sequence at one step.

    Parameters
    ----------
    recording : dict
        From ``record_gates``.
    t : int
        Step index, 0 .. T-1 (0-based, like the arrays).
    batch_index : int
        Which sequence of the batch, 0 .. B-1.

    Returns
    -------
    dict
        ``"i"``, ``"f"``, ``"g"``, ``"o"``, ``"c"``, ``"h"``: vectors of shape (H,), copies.
    """
    steps, batch, _ = _check_recording(recording)
    t = _check_step(t, steps)
    batch_index = _check_batch_index(batch_index, batch)
    return {name: np.array(recording[name][t, batch_index]) for name in RECORDED}


# --------------------------------------------------------------------------------------
# The step-by-step figure
# --------------------------------------------------------------------------------------

_COLUMNS = ("i", "f", "g", "o", "c")


def draw_state(recording: Mapping[str, np.ndarray], t: int, *, batch_index: int = 0,
               unit: int | None = None, marked: Sequence[int] = (),
               figsize: tuple[float, float] = (5.4, 3.2)) -> Any:
    """Draw one sequence's LSTM over time, with step ``t`` picked out.

    The live explorer of the LSTM chapter calls this whenever its slider moves; it reads
    nothing but its arguments.

    - Top left: the input gate i and the forget gate f of unit ``unit`` at every step (their
      means over the H units when ``unit`` is ``None``).
    - Bottom left: the cell state c of unit ``unit`` (of every unit when ``unit`` is
      ``None``).
    - In both, steps after ``t`` are faded, the steps in ``marked`` are shaded, and a
      vertical line marks ``t``.
    - Right: every unit's i, f, g, o and c at step ``t`` as a heat map (one row per unit),
      on a colour scale from -1 to 1, with ``unit``'s row pointed out. In the column c each
      unit's cell state is divided by its largest absolute value over the sequence, so
      that a unit with a small cell state is as visible as one with a large one, and the
      colours are comparable from step to step.

    Parameters
    ----------
    recording : dict
        From ``record_gates``.
    t : int
        Step index, 0 .. T-1; the figure labels it t + 1, the book's 1-based step.
    batch_index : int
        Which sequence of the batch.
    unit : int, optional
        A unit to follow, 0 .. H-1 (labelled ``unit + 1``).
    marked : sequence of int
        0-based step indices to shade (the marked steps of the adding problem, say).
    figsize : (float, float)

    Returns
    -------
    matplotlib.figure.Figure
        Its first three axes are the gates over time, the cell states and the heat map (whose
        image holds the (H, 5) values shown); a colour bar follows.
    """
    import matplotlib.pyplot as plt

    steps, batch, hidden_size = _check_recording(recording)
    t = _check_step(t, steps)
    batch_index = _check_batch_index(batch_index, batch)
    if unit is not None:
        unit = check_int("unit", unit, minimum=0)
        if unit >= hidden_size:
            raise ValueError(f"unit must be in 0 .. {hidden_size - 1} (the recording has "
                             f"H = {hidden_size} units), got {unit}")
    marked = [_check_step(step, steps) for step in marked]
    state = state_at(recording, t, batch_index)
    cells = recording["c"][:, batch_index]
    scale = np.maximum(np.abs(cells).max(axis=0), 1e-12)  # (H,): each unit's largest |c|

    figure = plt.figure(figsize=figsize, layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=(2.3, 1))
    gates_ax = figure.add_subplot(grid[0, 0])
    cells_ax = figure.add_subplot(grid[1, 0], sharex=gates_ax)
    heat_ax = figure.add_subplot(grid[:, 1])

    time = np.arange(1, steps + 1)
    past = time <= t + 1

    def trace(ax, values, color, width, label=None):
        """The whole series faded, and bright up to step t."""
        ax.plot(time, values, color=color, alpha=0.2, linewidth=width)
        ax.plot(time[past], values[past], color=color, linewidth=width, label=label)

    if unit is None:
        gate_values = {name: recording[name][:, batch_index].mean(axis=1) for name in "if"}
        labels = {"i": "mean $i_t$", "f": "mean $f_t$"}
    else:
        gate_values = {name: recording[name][:, batch_index, unit] for name in "if"}
        labels = {name: f"${name}_t$, unit {unit + 1}" for name in "if"}
    trace(gates_ax, gate_values["i"], COLORS["input"], 1.6, labels["i"])
    trace(gates_ax, gate_values["f"], COLORS["accent"], 1.6, labels["f"])
    if unit is None:
        for k in range(hidden_size):
            trace(cells_ax, cells[:, k], COLORS["output"], 0.7)
        cells_ax.set_ylabel("$c_t$, every unit")
    else:
        trace(cells_ax, cells[:, unit], COLORS["hidden"], 2.0)
        cells_ax.set_ylabel(f"$c_t$, unit {unit + 1}")
    for ax in (gates_ax, cells_ax):
        for step in marked:
            ax.axvspan(step + 0.5, step + 1.5, color=COLORS["muted"], alpha=0.25, linewidth=0)
        ax.axvline(t + 1, color="black", linewidth=1.0)
    gates_ax.set_ylim(-0.05, 1.05)
    gates_ax.set_ylabel("gate")
    gates_ax.legend(loc="center left", fontsize=10, frameon=False)
    gates_ax.tick_params(labelbottom=False)
    cells_ax.set_xlabel("step $t$")
    cells_ax.set_xlim(0.5, steps + 0.5)

    values = np.column_stack([state[name] for name in _COLUMNS[:4]] + [state["c"] / scale])
    image = heat_ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                           interpolation="nearest")
    heat_ax.set_xticks(range(len(_COLUMNS)), ["$i$", "$f$", "$g$", "$o$", "$c$"])
    rows = [0, hidden_size - 1]
    if unit is not None:  # label the followed unit, dropping an end label that would collide
        rows = [row for row in rows if abs(row - unit) > hidden_size / 10] + [unit]
    heat_ax.set_yticks(sorted(rows), [str(row + 1) for row in sorted(rows)])
    if unit is not None:
        heat_ax.annotate("", xy=(-0.5, unit), xytext=(-1.3, unit), annotation_clip=False,
                         arrowprops={"arrowstyle": "-|>", "color": COLORS["hidden"]})
    heat_ax.set_ylabel("unit")
    heat_ax.set_title(f"step $t$ = {t + 1}", fontsize=10)
    heat_ax.grid(False)
    figure.colorbar(image, ax=heat_ax, shrink=0.8, ticks=[-1, 0, 1])
    return figure
