r"""Measuring instruments: parameters, arithmetic, time and operators of a recurrent layer.

One section each:

- **Parameters.** ``parameter_count`` is the exact formula G H (I + H + k) for a layer
  with G gate blocks (1 for the tanh RNN, 4 for the LSTM, 3 for the GRU) and k bias vectors
  (PyTorch keeps two, b_ih and b_hh; the textbook form has one), and
  ``free_parameter_count`` the parameters left once redundant biases are merged
  (G H (I + H) + F H: F = 1, 4, 4, since the GRU's reset gate multiplies b_hn).
  ``model_parameter_count`` adds a linear read-out, and ``hidden_size_for_budget`` /
  ``matched_hidden_sizes`` find the hidden sizes that give different kinds the same number
  of parameters.
- **Arithmetic.** ``flops_per_step`` counts the floating-point operations of one time
  step from the equations: matrix products, bias additions and the elementwise gate math.
- **Speed.** ``measure`` times a function several times and keeps every sample; a
  ``Timing`` reports the median and the interquartile range, and ``faster`` only names a
  winner when the two ranges do not overlap. ``layer_step`` builds one training or
  inference step of a recurrent layer to time, and ``time_layers`` runs a grid of them.
- **Operators.** ``dispatched_ops`` counts the ATen operators a function calls (an exact
  count, unlike a time), and ``ops_per_step`` the operators one time step adds.

Kinds are named like their ``torch.nn`` classes: ``"RNN"`` (tanh), ``"LSTM"``, ``"GRU"``.
Notation: I inputs, H hidden units, O outputs, T time steps, B sequences per batch.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_choice, check_int, describe

__all__ = [
    "KINDS",
    "GATES",
    "check_kind",
    "IMPLEMENTATIONS",
    "MODES",
    "parameter_count",
    "FREE_BIASES",
    "free_parameter_count",
    "model_parameter_count",
    "hidden_size_for_budget",
    "matched_hidden_sizes",
    "ELEMENTWISE_PER_UNIT",
    "FlopCount",
    "flops_per_step",
    "Timing",
    "measure",
    "faster",
    "make_layer",
    "layer_step",
    "time_layers",
    "dispatched_ops",
    "ops_per_step",
]

KINDS = ("RNN", "LSTM", "GRU")
"""The recurrent layers, named like their classes: ``torch.nn.RNN`` (tanh), ``torch.nn.LSTM``,
``torch.nn.GRU``. The library's one spelling of the kinds; ``check_kind`` also accepts lower
case (``"lstm"``)."""

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
"""G, the number of H-row blocks stacked in ``weight_ih`` and ``weight_hh`` of each kind."""


_SPELLINGS = {spelling: kind for kind in KINDS for spelling in (kind, kind.lower())}


def check_kind(kind: Any) -> str:
    """The name in ``KINDS`` of the recurrent layer ``kind`` (``"LSTM"`` or ``"lstm"``).

    Raises ``ValueError`` when ``kind`` names none of them.
    """
    if not isinstance(kind, str) or kind not in _SPELLINGS:
        raise ValueError(f"kind must be one of {KINDS} (the torch.nn class names; lower "
                         f"case is accepted too), got {kind!r}")
    return _SPELLINGS[kind]


def _check_biases(biases: Any) -> int:
    biases = check_int("biases", biases, minimum=0)
    if biases > 2:
        raise ValueError(f"biases must be 0, 1 (the textbook form) or 2 (PyTorch's b_ih and "
                         f"b_hh), got {biases}")
    return biases


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


def parameter_count(kind: str, input_size: int, hidden_size: int, *, biases: int = 2,
                    num_layers: int = 1) -> int:
    """The number of parameters of a recurrent layer: G H (I + H + k) per layer.

    Each of the G gate blocks has an (H, I) input matrix, an (H, H) recurrent matrix and k
    bias vectors of length H, so one layer holds G (H I + H^2 + k H) numbers. PyTorch keeps
    k = 2 bias vectors (``bias_ih`` and ``bias_hh``, for compatibility with cuDNN); the
    textbook equations, and Keras's LSTM, have k = 1. Layers after the first read the H
    outputs of the layer below, so their I is H.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
        G = 1, 4 or 3.
    input_size : int
        I, features per step of the first layer.
    hidden_size : int
        H.
    biases : {0, 1, 2}
        k, bias vectors per gate block: 2 in ``torch.nn``, 1 in the textbook form, 0 for
        ``bias=False``.
    num_layers : int
        Stacked layers (one direction each).

    Returns
    -------
    int
    """
    gates = GATES[check_kind(kind)]
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    biases = _check_biases(biases)
    num_layers = check_int("num_layers", num_layers, minimum=1)
    first = gates * hidden_size * (input_size + hidden_size + biases)
    later = gates * hidden_size * (hidden_size + hidden_size + biases)
    return first + (num_layers - 1) * later


FREE_BIASES = {"RNN": 1, "LSTM": 4, "GRU": 4}
"""Bias vectors of length H left in each kind once redundant pairs are merged (F).

Only the sum b_ih + b_hh of a pair enters the equations wherever the two are added before a
nonlinearity: every pair of the RNN and the LSTM, and the r and z pairs of the GRU. The
GRU's n pair is different: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) multiplies b_hn
by r, so b_in and b_hn are two free vectors, and the GRU keeps 2 + 2 = 4."""


def free_parameter_count(kind: str, input_size: int, hidden_size: int, *,
                         num_layers: int = 1) -> int:
    """Parameters of a ``torch.nn`` layer that change its function: G H (I + H) + F H.

    PyTorch's two bias vectors per gate block are partly redundant (``FREE_BIASES``): the
    LSTM needs 4 H (I + H) + 4 H numbers, not 4 H (I + H + 2); the tanh RNN H (I + H) + H;
    the GRU 3 H (I + H) + 4 H, because the reset gate multiplies b_hn. This is the rank of
    the Jacobian of the layer's outputs with respect to its parameters at a generic point.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    input_size, hidden_size : int
        I and H.
    num_layers : int
        Stacked layers (one direction each); layers after the first have I = H.

    Returns
    -------
    int
    """
    gates = GATES[check_kind(kind)]
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    num_layers = check_int("num_layers", num_layers, minimum=1)
    biases = FREE_BIASES[kind] * hidden_size
    first = gates * hidden_size * (input_size + hidden_size) + biases
    later = gates * hidden_size * (2 * hidden_size) + biases
    return first + (num_layers - 1) * later


def model_parameter_count(kind: str, input_size: int, hidden_size: int, output_size: int, *,
                          biases: int = 2) -> int:
    """Parameters of a recurrent layer plus a linear read-out: G H (I + H + k) + O (H + 1).

    This is the model the chapter trains: one layer, then ``torch.nn.Linear(H, O)``.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    input_size, hidden_size, output_size : int
        I, H and O.
    biases : {0, 1, 2}
        Bias vectors per gate block of the recurrent layer (see ``parameter_count``).

    Returns
    -------
    int
    """
    output_size = check_int("output_size", output_size, minimum=0)
    layer = parameter_count(kind, input_size, hidden_size, biases=biases)
    return layer + (output_size * (hidden_size + 1) if output_size else 0)


def hidden_size_for_budget(kind: str, budget: int, input_size: int, output_size: int = 0, *,
                           biases: int = 2) -> int:
    """The hidden size whose model has the parameter count closest to ``budget``.

    The count G H^2 + (G (I + k) + O) H + O is quadratic in H, so the real root of
    count(H) = budget is a formula; the answer is the better of the two integers around it
    (the smaller one on a tie), and at least 1.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    budget : int
        The parameter count to match, at least 1.
    input_size : int
        I.
    output_size : int
        O, outputs of the linear read-out (0: the layer alone).
    biases : {0, 1, 2}

    Returns
    -------
    int
        H.
    """
    gates = GATES[check_kind(kind)]
    budget = check_int("budget", budget, minimum=1)
    input_size = check_int("input_size", input_size, minimum=1)
    output_size = check_int("output_size", output_size, minimum=0)
    biases = _check_biases(biases)
    a = gates
    b = gates * (input_size + biases) + output_size
    c = output_size - budget
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}

    def distance(hidden_size: int) -> tuple[int, int]:
        count = model_parameter_count(kind, input_size, hidden_size, output_size,
                                      biases=biases)
        return abs(count - budget), hidden_size

    return min(candidates, key=distance)


def matched_hidden_sizes(input_size: int, output_size: int, lstm_hidden_size: int, *,
                         kinds: Iterable[str] = KINDS, biases: int = 2) -> dict[str, int]:
    """Hidden sizes that give every kind about the parameters of an LSTM of ``lstm_hidden_size``.

    Parameters
    ----------
    input_size, output_size : int
        I and O of the models (a layer and a linear read-out).
    lstm_hidden_size : int
        H of the reference LSTM.
    kinds : iterable of str
    biases : {0, 1, 2}

    Returns
    -------
    dict
        ``sizes[kind]`` is H for that kind; the LSTM keeps ``lstm_hidden_size``.
    """
    budget = model_parameter_count("LSTM", input_size, lstm_hidden_size, output_size,
                                   biases=biases)
    return {kind: (lstm_hidden_size if kind == "LSTM" else
                   hidden_size_for_budget(kind, budget, input_size, output_size, biases=biases))
            for kind in map(check_kind, kinds)}


# --------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------

ELEMENTWISE_PER_UNIT = {"RNN": 1, "LSTM": 9, "GRU": 8}
"""Elementwise operations per hidden unit and step once the pre-activations are summed.

- RNN: tanh (1).
- LSTM: three sigmoids and tanh(g) (4); c' = f c + i g (2 products, 1 sum); tanh(c') (1);
  h' = o tanh(c') (1). Total 9.
- GRU (PyTorch's form): two sigmoids and one tanh (3); the reset gate's product
  r (W_hn h + b_hn) (1); h' = (1 - z) n + z h (1 difference, 2 products, 1 sum). Total 8.
"""


@dataclass(frozen=True)
class FlopCount:
    """Floating-point operations of one time step, by kind of work.

    Attributes
    ----------
    matmul : int
        The two matrix products W_ih x and W_hh h: 2 G H (I + H) per sequence (a
        multiply and an add per weight).
    bias : int
        Adding the k bias vectors and the two products together: G H (k + 1) per sequence.
    elementwise : int
        Gates, nonlinearities and state updates: ``ELEMENTWISE_PER_UNIT[kind]`` H per
        sequence, each sigmoid or tanh counted as one operation.
    """

    matmul: int
    bias: int
    elementwise: int

    @property
    def total(self) -> int:
        """All three together."""
        return self.matmul + self.bias + self.elementwise


def flops_per_step(kind: str, input_size: int, hidden_size: int, *, batch_size: int = 1,
                   biases: int = 2) -> FlopCount:
    """Count the floating-point operations of one forward step of a layer.

    Per sequence, with G gate blocks and k bias vectors:
    2 G H (I + H) for the two matrix products, G H (k + 1) for the bias additions and the
    sum of the two products, and E H for the gate math (``ELEMENTWISE_PER_UNIT``: E = 1, 9,
    8 for the RNN, the LSTM and the GRU). A sigmoid or a tanh counts as one operation
    (a convention: an exponential costs several). A training step costs roughly three times
    the forward step (the backward pass has two products per forward product).

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    input_size, hidden_size : int
        I and H.
    batch_size : int
        B: every count is multiplied by it.
    biases : {0, 1, 2}

    Returns
    -------
    FlopCount
    """
    gates = GATES[check_kind(kind)]
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    biases = _check_biases(biases)
    return FlopCount(
        matmul=batch_size * 2 * gates * hidden_size * (input_size + hidden_size),
        bias=batch_size * gates * hidden_size * (biases + 1),
        elementwise=batch_size * ELEMENTWISE_PER_UNIT[kind] * hidden_size,
    )


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------

CLOCKS = ("process", "wall")


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one function, in seconds.

    Attributes
    ----------
    samples : tuple of float
        Every measured duration, in the order measured.
    clock : {"process", "wall"}
        ``"process"``: CPU time of this process (``time.process_time``), all its threads
        together; other programs on a shared machine barely change it. ``"wall"``: elapsed
        time (``time.perf_counter``), the only clock that sees a GPU working.
    """

    samples: tuple[float, ...]
    clock: str

    @property
    def median(self) -> float:
        """The median duration, the number to report."""
        return float(np.median(self.samples))

    @property
    def low(self) -> float:
        """First quartile of the samples."""
        return float(np.percentile(self.samples, 25))

    @property
    def high(self) -> float:
        """Third quartile of the samples."""
        return float(np.percentile(self.samples, 75))

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median: 0.1 means the middle half of the
        samples lies within 10% of the median's size."""
        return (self.high - self.low) / self.median if self.median > 0 else float("inf")

    def __str__(self) -> str:
        return (f"{self.median * 1e3:.3g} ms (middle half {self.low * 1e3:.3g}-"
                f"{self.high * 1e3:.3g} ms, {len(self.samples)} runs, {self.clock} time)")


def measure(fn: Callable[[], Any], *, repeats: int = 7, warmup: int = 2,
            clock: str = "process", synchronize: Callable[[], Any] | None = None) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; keep every sample.

    The warm-up calls absorb one-off costs (memory allocation, kernel selection, caches).
    A single timing on a shared machine can be off by a factor of two; the median of
    several, with the interquartile range beside it, is a fair summary, and the range says
    how much to trust it.

    Parameters
    ----------
    fn : callable
        Called with no arguments.
    repeats : int
        Timed calls, at least 1.
    warmup : int
        Untimed calls first, at least 0.
    clock : {"process", "wall"}
        ``"process"`` counts the CPU time of this process (robust to other programs, blind
        to a GPU); ``"wall"`` counts elapsed time.
    synchronize : callable, optional
        Called before starting and before stopping the clock, for example
        ``torch.cuda.synchronize`` so that queued GPU work is finished and counted.

    Returns
    -------
    Timing
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {describe(fn)}")
    repeats = check_int("repeats", repeats, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    check_choice("clock", clock, CLOCKS)
    if synchronize is not None and not callable(synchronize):
        raise TypeError(f"synchronize must be callable or None, got {describe(synchronize)}")
    now = time.process_time if clock == "process" else time.perf_counter
    sync = synchronize if synchronize is not None else (lambda: None)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        sync()
        start = now()
        fn()
        sync()
        samples.append(now() - start)
    return Timing(samples=tuple(samples), clock=clock)


def faster(first: Timing, second: Timing) -> str | None:
    """Which timing is faster, or ``None`` when the measurements cannot tell.

    A winner is named only when the interquartile ranges do not overlap: the slower
    function's first quartile lies above the faster one's third quartile.

    Returns
    -------
    {"first", "second"} or None
    """
    for name, value in (("first", first), ("second", second)):
        if not isinstance(value, Timing):
            raise TypeError(f"{name} must be a Timing (from measure), got {describe(value)}")
    if first.high < second.low:
        return "first"
    if second.high < first.low:
        return "second"
    return None


IMPLEMENTATIONS = ("torch.nn", "throughtime")
"""The layers ``make_layer`` builds: ``torch.nn``'s, or the book's ``torch_cells`` (fast path)."""
MODES = ("train", "inference")
"""What ``layer_step`` times: a training step, or a forward pass without gradients."""


def make_layer(kind: str, input_size: int, hidden_size: int, *,
               implementation: str = "torch.nn", device: Any = "cpu",
               dtype: torch.dtype = torch.float32) -> nn.Module:
    """A one-layer, time-major recurrent layer of either implementation.

    ``"torch.nn"`` gives ``torch.nn.RNN`` / ``LSTM`` / ``GRU``; ``"throughtime"`` gives the
    book's ``torch_cells`` layer of the same name with its hand-derived backward
    (``implementation="fast"``), which computes the same function.
    """
    kind = check_kind(kind)
    check_choice("implementation", implementation, IMPLEMENTATIONS)
    if implementation == "torch.nn":
        layer = getattr(nn, kind)(input_size, hidden_size)
    else:
        from . import torch_cells

        layer = getattr(torch_cells, kind)(input_size, hidden_size, implementation="fast")
    return layer.to(device=device, dtype=dtype)


def layer_step(kind: str, input_size: int, hidden_size: int, length: int, batch_size: int, *,
               mode: str = "train", implementation: str = "torch.nn", device: Any = "cpu",
               seed: int = 0) -> Callable[[], None]:
    """One step of a recurrent layer on random data, ready to be timed by ``measure``.

    ``mode="train"``: zero the gradients, run the layer over a (T, B, I) batch, take the
    mean square of its outputs as the loss, backpropagate, and take an Adam step.
    ``mode="inference"``: run the layer under ``torch.no_grad()``.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    input_size, hidden_size, length, batch_size : int
        I, H, T and B.
    mode : {"train", "inference"}
    implementation : {"torch.nn", "throughtime"}
        See ``make_layer``.
    device : str or torch.device
    seed : int
        Seeds the weights and the batch.

    Returns
    -------
    callable
        Takes no arguments; each call does one step. Its attribute ``layer`` is the layer.
    """
    kind = check_kind(kind)
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    length = check_int("length", length, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_choice("mode", mode, MODES)
    seed = check_int("seed", seed, minimum=0)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layer = make_layer(kind, input_size, hidden_size, implementation=implementation,
                       device=device)
    inputs = torch.randn(length, batch_size, input_size, generator=generator).to(device)
    if mode == "inference":
        layer.eval()

        def inference() -> None:
            with torch.no_grad():
                layer(inputs)

        inference.layer = layer  # type: ignore[attr-defined]
        return inference
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)

    def train() -> None:
        optimizer.zero_grad()
        outputs, _ = layer(inputs)
        outputs.square().mean().backward()
        optimizer.step()

    train.layer = layer  # type: ignore[attr-defined]
    return train


def time_layers(kinds: Iterable[str] = ("LSTM", "GRU"), *,
                hidden_sizes: Iterable[int] = (32, 128), lengths: Iterable[int] = (25, 100),
                modes: Iterable[str] = MODES,
                implementations: Iterable[str] = IMPLEMENTATIONS, input_size: int = 16,
                batch_size: int = 32, device: Any = "cpu", repeats: int = 7,
                warmup: int = 2) -> list[dict[str, Any]]:
    """Time ``layer_step`` over a grid of kinds, sizes, lengths, modes and implementations.

    On a CPU the clock is the process's CPU time; on a GPU it is wall-clock time with
    ``torch.cuda.synchronize`` around every call.

    Returns
    -------
    list of dict
        One record per grid point with the keys ``kind``, ``implementation``, ``mode``,
        ``hidden_size``, ``length``, ``device`` and ``timing`` (a ``Timing``).
    """
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    clock = "wall" if on_gpu else "process"
    synchronize = torch.cuda.synchronize if on_gpu else None
    records = []
    for implementation in implementations:
        for mode in modes:
            for hidden_size in hidden_sizes:
                for length in lengths:
                    for kind in kinds:
                        step = layer_step(kind, input_size, hidden_size, length, batch_size,
                                          mode=mode, implementation=implementation,
                                          device=device)
                        timing = measure(step, repeats=repeats, warmup=warmup, clock=clock,
                                         synchronize=synchronize)
                        records.append({"kind": kind, "implementation": implementation,
                                        "mode": mode, "hidden_size": hidden_size,
                                        "length": length, "device": str(device),
                                        "timing": timing})
    return records


def dispatched_ops(fn: Callable[[], Any]) -> Counter:
    """Count the ATen operators that ``fn()`` calls, by name.

    Runs ``fn`` under a ``TorchDispatchMode``, which sees every operator after autograd
    and composite operators have done their work: the kernels that actually run, such as
    ``addmm``, ``sigmoid_`` or ``mkldnn_rnn_layer``. Unlike a time, the count is exact and
    the same on every run (for one PyTorch version, device and input size).

    Returns
    -------
    collections.Counter
        ``counts[name]`` is how many times the operator ``name`` ran.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {describe(fn)}")

    class _Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.counts: Counter = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.counts[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    with _Count() as mode:
        fn()
    return mode.counts


def ops_per_step(kind: str, *, mode: str = "train", implementation: str = "torch.nn",
                 input_size: int = 8, hidden_size: int = 16, batch_size: int = 4,
                 lengths: tuple[int, int] = (10, 20)) -> dict[str, Any]:
    """Operator calls of one layer's forward (and backward) pass, and how they grow with T.

    Runs the layer on the CPU at two lengths T_1 < T_2 and counts the operators with
    ``dispatched_ops``. The growth per step, (count(T_2) - count(T_1)) / (T_2 - T_1), is 0
    for a layer whose whole loop over time is one kernel, and the number of operators
    called per time step for a layer that loops over operators.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    mode : {"train", "inference"}
        ``"train"`` counts the forward and the backward pass (a loss ``outputs.sum()``);
        ``"inference"`` the forward pass under ``torch.no_grad()``.
    implementation : {"torch.nn", "throughtime"}
    input_size, hidden_size, batch_size : int
    lengths : (int, int)
        T_1 and T_2.

    Returns
    -------
    dict
        ``"counts"``: {T: Counter} at both lengths; ``"total"``: {T: int};
        ``"per_step"``: float, the growth per time step of the total;
        ``"per_step_by_op"``: {name: float}, the same per operator (non-zero ones only).
    """
    kind = check_kind(kind)
    check_choice("mode", mode, MODES)
    if (not isinstance(lengths, tuple) or len(lengths) != 2
            or not all(isinstance(t, int) and t >= 1 for t in lengths)
            or lengths[0] >= lengths[1]):
        raise ValueError(f"lengths must be a pair of integers 1 <= T_1 < T_2, got {lengths!r}")
    counts = {}
    for length in lengths:
        torch.manual_seed(0)
        layer = make_layer(kind, input_size, hidden_size, implementation=implementation)
        inputs = torch.randn(length, batch_size, input_size)
        if mode == "train":
            def run(layer: nn.Module = layer, inputs: torch.Tensor = inputs) -> None:
                outputs, _ = layer(inputs)
                outputs.sum().backward()
        else:
            def run(layer: nn.Module = layer, inputs: torch.Tensor = inputs) -> None:
                with torch.no_grad():
                    layer(inputs)
        counts[length] = dispatched_ops(run)
    short, long = lengths
    names = set(counts[short]) | set(counts[long])
    by_op = {name: (counts[long][name] - counts[short][name]) / (long - short)
             for name in sorted(names)}
    total = {length: sum(counter.values()) for length, counter in counts.items()}
    return {"counts": counts, "total": total,
            "per_step": (total[long] - total[short]) / (long - short),
            "per_step_by_op": {name: value for name, value in by_op.items() if value}}
