"""Checking: how an assignment check runs, whatever it checks.

Every check is one ``_Spec``: how to draw a case from a seed (inputs, the reference
outputs, the known mistakes, finite differences), the names and shapes of what the
student's function returns, and the library functions that compute the answer. One
skeleton runs every spec in two halves:

- ``run_cases`` calls the student's function on the cases' inputs and reads what it
  returns (shapes, dtypes, changed inputs, calls of the reference). It needs no expected
  value, so a grader can run it in a separate, confined process.
- ``judge_cases`` compares those outputs with the reference and explains a mismatch.

The public checks run both halves in the student's own process with the book's seed:
they are feedback, not proctoring. ``scripts/grade.py`` runs the first half on
submissions in confined processes and the second in its own, on cases drawn from a
course's private seed (``hidden_cases``); ``hidden_check`` runs all of it in one process,
for graders such as Otter that run tests beside the submission.

What each check checks (its cases, the known mistakes it names, the public
``check_...`` functions) lives in ``throughtime.checks`` and ``throughtime.text_checks``;
this module is the part they share.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import sys
import sysconfig
import textwrap
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import describe
from .gradients import rel_error

__all__ = [
    "CheckFailed",
    "CACHE_KEYS",
    "Case",
    "Verdict",
    "graded_checks",
    "hidden_cases",
    "run_cases",
    "judge_cases",
    "hidden_check",
    "copied_from_library",
]

TOLERANCE = 1e-7
"""Largest relative error accepted against the float64 reference."""

FD_TOLERANCE = 1e-5
"""Largest relative error accepted against centred finite differences (step 1e-5)."""

HINT_TOLERANCE = 1e-6
"""A known mistake explains a wrong answer when it reproduces it to this relative error."""

_SEED = 8_271_946  # private: the public cases depend on it
_PACKAGE = str(Path(__file__).resolve().parent)
_PACKAGE_DIRS = tuple({_PACKAGE, str(Path(__file__).parent)})

CACHE_KEYS = {
    "rnn_step": ("kind", "x", "h", "a", "h_next", "params", "nonlinearity"),
    "lstm_step": ("kind", "x", "h", "c", "i", "f", "g", "o", "tanh_c", "h_next", "params"),
    "gru_step": ("kind", "x", "h", "r", "z", "n", "ah_n", "h_next", "params"),
    "rnn_forward": ("kind", "steps"),
}
"""The keys of the reference caches that backward functions receive (see above)."""

_GRAD_SYMBOLS = {"weight_ih": "dL/dW_ih", "weight_hh": "dL/dW_hh", "bias_ih": "dL/db_ih",
                 "bias_hh": "dL/db_hh"}


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says which output and, if known, why."""


# --------------------------------------------------------------------------------------
# Calling the student's code
# --------------------------------------------------------------------------------------


def _public(check: Callable) -> Callable:
    """Print the success line; re-raise a failure from the check's own frame, without the
    checker's internals in the traceback."""

    @functools.wraps(check)
    def run_check(*args: Any, **kwargs: Any) -> None:
        try:
            line = check(*args, **kwargs)
        except CheckFailed as failure:
            message = str(failure)
        else:
            print(line)
            return None
        raise CheckFailed(message) from None

    return run_check


def _require_callable(check: str, fn: Any, role: str) -> None:
    if not callable(fn):
        raise TypeError(f"{check} needs your function {role} (the function itself, not its "
                        f"result), got {describe(fn)}")


def _library_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib",
                                                      "platlib")}
    paths.add(_PACKAGE)
    return tuple(str(Path(p).resolve()) for p in paths)


def _where(error: BaseException) -> str:
    """The last frame of the traceback that lies in the student's code, as one line."""
    frames = traceback.extract_tb(error.__traceback__)[1:]  # drop the checker's own call
    libraries = _library_paths()
    own = [f for f in frames if not str(Path(f.filename).resolve()).startswith(libraries)]
    frame = (own or frames or [None])[-1]
    if frame is None:
        return ""
    if "ipykernel_" in frame.filename or frame.filename.startswith("<"):
        place = "your notebook cell"
    else:
        place = Path(frame.filename).name
    code = f": {frame.line.strip()}" if frame.line else ""
    return f"\n  at line {frame.lineno} of {place}, in {frame.name}{code}"


class _Watch:
    """Record which functions of the book's library run while the student's code runs.

    A profile hook sees every Python call; it keeps the code objects whose file lies in the
    ``throughtime`` package, and ``called`` later names those that compute the answer.
    """

    def __init__(self) -> None:
        self.seen: dict = {}  # code objects, in the order they first ran
        self._previous = None

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(_PACKAGE_DIRS):
            self.seen.setdefault(frame.f_code, len(self.seen))
        if self._previous is not None:
            self._previous(frame, event, arg)

    def __enter__(self) -> _Watch:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.setprofile(self._previous)

    def called(self, references: Sequence[str]) -> list[str]:
        """The references (dotted names) that ran, and any part of the checker that did
        (``_CHECKER``), the first to run (the one the student's code called) first."""
        found = []
        for dotted in references:
            code = getattr(_resolve(dotted), "__code__", None)
            if code is not None and code in self.seen and dotted not in found:
                found.append(dotted)
        found.sort(key=lambda dotted: self.seen[_resolve(dotted).__code__])
        for code in self.seen:
            module = Path(code.co_filename).stem
            if module in ("checks", "checking") and \
                    code.co_filename.startswith(_PACKAGE_DIRS) and \
                    not code.co_qualname.startswith("_Watch."):
                found.append(f"throughtime.{module}.{code.co_qualname}")
        return found


def _resolve(dotted: str) -> Any:
    """The object a dotted name refers to, if its module has been imported (else None)."""
    module_name, _, attribute = dotted.rpartition(".")
    module = sys.modules.get(module_name)
    return getattr(module, attribute, None) if module is not None else None


def _call(check: str, role: str, fn: Callable, args: tuple, kwargs: Mapping[str, Any],
          watch: _Watch) -> Any:
    """Call the student's ``fn``; turn any exception into a ``CheckFailed`` that explains it."""
    try:
        with watch:
            return fn(*args, **kwargs)
    except NotImplementedError as error:
        detail = f" ({error})" if str(error) else ""
        raise CheckFailed(
            f"{check}: {role} is not implemented yet: it raised NotImplementedError{detail}. "
            f"Replace the stub with your code, run that cell, then run this check again."
        ) from None
    except Exception as error:  # noqa: BLE001  (any error in the student's code is reported)
        raise CheckFailed(
            f"{check}: your {role} raised {type(error).__name__}: {error}{_where(error)}"
        ) from None


def _copy(value: Any) -> Any:
    return copy.deepcopy(value)


def _changes(before: Any, after: Any, name: str) -> list[str]:
    """Where ``after`` (what the student's function was given) differs from ``before``."""
    if isinstance(before, np.ndarray):
        same = (isinstance(after, np.ndarray) and after.shape == before.shape
                and np.array_equal(after, before, equal_nan=True))
        return [] if same else [name]
    if isinstance(before, Mapping):
        if not isinstance(after, Mapping) or set(after) != set(before):
            return [name]
        return [path for key in before for path in _changes(before[key], after[key],
                                                            f"{name}[{key!r}]")]
    if isinstance(before, (list, tuple)):
        if type(after) is not type(before) or len(after) != len(before):
            return [name]
        return [path for index, (b, a) in enumerate(zip(before, after, strict=True))
                for path in _changes(b, a, f"{name}[{index}]")]
    return []


# --------------------------------------------------------------------------------------
# Reading what the student's function returns
# --------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    """What a returned value is, without printing its (hidden) numbers."""
    if isinstance(value, Mapping):
        return f"a dict with the keys {list(value)}"
    if isinstance(value, (np.ndarray, list, tuple)) or hasattr(value, "shape"):
        return describe(value)
    return f"a value of type {type(value).__name__}"


def _unpack(check: str, role: str, result: Any, names: tuple[str, ...],
            optional_last: bool = False) -> tuple:
    """Check that ``result`` is a tuple of ``len(names)`` values and return it."""
    signature = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
    counts = (len(names) - 1, len(names)) if optional_last else (len(names),)
    if result is None:
        raise CheckFailed(f"{check}: your {role} returned None; it must return {signature}. "
                          "Is the return statement missing?")
    if len(names) == 1:
        return (result,)
    if not isinstance(result, (tuple, list)):
        raise CheckFailed(f"{check}: your {role} returned {_describe(result)}; it must return "
                          f"a tuple {signature}")
    if len(result) not in counts:
        raise CheckFailed(f"{check}: your {role} returned {len(result)} values; it must return "
                          f"{len(names)}: {signature}")
    return tuple(result)


def _shape_hint(shape: tuple[int, ...], expected: tuple[int, ...], hidden: int) -> str:
    if len(shape) == 2 and shape == expected[::-1]:
        return " (it looks transposed)"
    if len(expected) == 1 and len(shape) == 2 and shape[1] == expected[0]:
        return " (sum over the batch axis: a bias gradient has one entry per row of the weights)"
    if len(expected) == 1 and len(shape) == 2 and shape == (1, expected[0]):
        return " (drop the batch axis: use .sum(axis=0) without keepdims)"
    if (len(shape) == 2 and len(expected) == 2 and shape[0] == expected[0]
            and shape[1] % hidden == 0 and shape[1] // hidden in (3, 4)
            and expected[1] == hidden):
        return (f" (it has {shape[1] // hidden} blocks of H = {hidden} columns: the stacked gate "
                "pre-activations rather than one state)")
    return ""


def _array(check: str, role: str, name: str, value: Any, shape: tuple[int, ...],
           hidden: int) -> np.ndarray:
    """Check that an output is a finite float64 array of the expected shape."""
    shape = tuple(shape)
    where = f"{check}: {name} returned by your {role}"
    if value is None:
        raise CheckFailed(f"{where} is None; it must be a numpy array of shape {shape}")
    if type(value).__module__.startswith("torch"):
        raise CheckFailed(f"{where} is a torch tensor; compute it with numpy (or convert it "
                          "with .detach().numpy())")
    if not isinstance(value, np.ndarray):
        raise CheckFailed(f"{where} is {_describe(value)}; it must be a numpy array of shape "
                          f"{shape}")
    if value.shape != shape:
        raise CheckFailed(f"{where} has shape {value.shape}, expected {shape}"
                          f"{_shape_hint(value.shape, shape, hidden)}")
    if not np.issubdtype(value.dtype, np.floating):
        raise CheckFailed(f"{where} has dtype {value.dtype}; it must be float64 like the inputs")
    if value.dtype != np.float64:
        raise CheckFailed(f"{where} has dtype {value.dtype}, expected float64 like the "
                          "inputs: do not cast (no .astype or dtype= arguments)")
    if not np.isfinite(value).all():
        raise CheckFailed(f"{where} contains NaN or infinite entries (an overflow, or a "
                          "division by zero?)")
    return np.array(value)  # a plain array, not a subclass or a view of the student's data


def _grads(check: str, role: str, name: str, value: Any, shapes: Mapping[str, tuple],
           hidden: int) -> dict[str, np.ndarray]:
    """Check a dict of arrays (parameter gradients) against the expected keys and shapes."""
    keys = list(shapes)
    if not isinstance(value, Mapping):
        raise CheckFailed(f"{check}: {name} returned by your {role} is {_describe(value)}; it "
                          f"must be a dict with the keys {keys}")
    if set(value) != set(keys):
        missing = [k for k in keys if k not in value]
        extra = sorted(str(k) for k in value if k not in shapes)
        raise CheckFailed(f"{check}: {name} returned by your {role} must have exactly the keys "
                          f"{keys} (the names of the parameters); missing {missing}, "
                          f"unexpected {extra}")
    return {key: _array(check, role, f"{name}[{key!r}]", value[key], shapes[key], hidden)
            for key in keys}


def _number(check: str, role: str, name: str, value: Any, whole: bool = False) -> np.float64:
    """Check that an output is one finite number (a whole one if ``whole``)."""
    where = f"{check}: {name} returned by your {role}"
    if value is None:
        raise CheckFailed(f"{where} is None; it must be a number")
    if type(value).__module__.startswith("torch") and hasattr(value, "item"):
        value = value.item()
    array = np.asarray(value) if isinstance(value, (int, float, np.number, np.ndarray)) else None
    if array is None or array.size != 1 or not np.issubdtype(array.dtype, np.number) \
            or np.issubdtype(array.dtype, np.complexfloating):
        raise CheckFailed(f"{where} is {_describe(value)}; it must be a single number")
    number = np.float64(array.reshape(()))
    if not np.isfinite(number):
        raise CheckFailed(f"{where} is {float(number)}")
    if whole and number != np.round(number):
        raise CheckFailed(f"{where} is {float(number)}; a count is a whole number")
    return number


def _cache_contents(value: Any) -> dict[str, Any]:
    """The arrays a returned cache holds (values of a dict or items of a tuple, one level
    deep), to look for what the exercise asks it to keep."""
    kind = ("dict" if isinstance(value, Mapping) else
            type(value).__name__ if isinstance(value, (tuple, list)) else
            "None" if value is None else _describe(value))
    items = list(value.values()) if isinstance(value, Mapping) else (
        list(value) if isinstance(value, (tuple, list)) else [])
    arrays = []
    for item in items[:256]:
        inner = (list(item.values()) if isinstance(item, Mapping) else
                 list(item) if isinstance(item, (tuple, list)) else [item])
        arrays += [np.array(a, dtype=np.float64) for a in inner[:256]
                   if isinstance(a, np.ndarray) and a.size <= 1_000_000
                   and np.issubdtype(a.dtype, np.number)]
    return {"kind": kind, "arrays": arrays[:256]}


def _read_outputs(check: str, role: str, result: Any, names: tuple[str, ...],
                  shapes: Mapping[str, Any], hidden: int,
                  optional_last: bool = False) -> tuple[dict[str, Any], Any]:
    """Validate what the student's function returned; return (outputs by name, cache).

    ``shapes[name]`` is a shape tuple (an array), a dict of shapes (a dict of arrays),
    ``"number"``, ``"count"`` (a whole number) or ``None`` (anything: a cache).
    """
    values = _unpack(check, role, result, names, optional_last)
    outputs: dict[str, Any] = {}
    cache = None
    for name, value in zip(names, values, strict=False):
        shape = shapes.get(name)
        if shape is None:
            cache = value
            outputs[name] = _cache_contents(value)
        elif isinstance(shape, Mapping):
            outputs[name] = _grads(check, role, name, value, shape, hidden)
        elif shape in ("number", "count"):
            outputs[name] = _number(check, role, name, value, whole=shape == "count")
        else:
            outputs[name] = _array(check, role, name, value, shape, hidden)
    return outputs, cache


# --------------------------------------------------------------------------------------
# Comparing with the reference and explaining the difference
# --------------------------------------------------------------------------------------


def _flatten(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{"dx": a, "grads": {...}} -> {"dx": a, "grads['weight_ih']": ...}."""
    flat = {}
    for name, value in outputs.items():
        if isinstance(value, Mapping):
            flat.update({f"{name}[{key!r}]": np.asarray(v) for key, v in value.items()})
        else:
            flat[name] = np.asarray(value)
    return flat


def _label(name: str) -> str:
    for key, symbol in _GRAD_SYMBOLS.items():
        if name == f"grads[{key!r}]":
            return f"{name} ({symbol})"
    return name


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> "0-2 and 5"."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return _join([f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs])


def _wrong_entries(student: np.ndarray, expected: np.ndarray, tolerance: float) -> np.ndarray:
    difference = np.abs(student - expected)
    scale = np.maximum(np.abs(student) + np.abs(expected), 1e-8)
    return difference > tolerance * scale


def _how_wrong(name: str, student: np.ndarray, expected: np.ndarray, tolerance: float,
               gates: str, hidden: int) -> str:
    """Say how an output differs from the reference, beyond its relative error."""
    wrong = _wrong_entries(student, expected, tolerance)
    size = expected.size
    count = int(wrong.sum())
    if size == 1:
        notes = ["your value differs from the reference"]
    else:
        largest = float(np.max(np.abs(student - expected)))
        notes = [f"{count} of {size} entries differ; the largest difference is {largest:.3g}, "
                 f"where the reference's entries are at most "
                 f"{float(np.max(np.abs(expected))):.3g} in size"]
    if not np.any(student):
        notes.append("yours are all zero")
    elif np.allclose(student, -expected, rtol=1e-6, atol=1e-12):
        notes.append("yours have the opposite sign")
    else:
        usable = np.abs(expected) > 1e-9 * max(float(np.max(np.abs(expected))), 1e-300)
        if usable.any():
            ratios = student[usable] / expected[usable]
            if np.ptp(ratios) <= 1e-6 * max(abs(float(ratios[0])), 1.0) and \
                    abs(float(ratios[0]) - 1) > 1e-6:
                notes.append(f"yours are {float(ratios[0]):.4g} times the reference")
    blocks = len(gates)
    axis = next((a for a in (0, 1) if blocks and expected.ndim > a
                 and expected.shape[a] == blocks * hidden), None)
    if axis is not None and blocks > 1 and 0 < count < size:
        bad = [gates[k] for k in range(blocks)
               if np.take(wrong, range(k * hidden, (k + 1) * hidden), axis=axis).any()]
        good = [gate for gate in gates if gate not in bad]
        what = "rows" if axis == 0 else "columns"
        if good:
            notes.append(f"the {what} of gate{'s' if len(bad) > 1 else ''} {_join(bad)} are "
                         f"wrong, those of {_join(good)} are right")
    if expected.ndim == 3 and 0 < count < size:  # (T, B, X): which time steps
        steps = [t for t in range(expected.shape[0]) if wrong[t].any()]
        if len(steps) < expected.shape[0]:
            notes.append(f"only time step{'s' if len(steps) > 1 else ''} {_ranges(steps)} "
                         f"{'are' if len(steps) > 1 else 'is'} wrong")
    return "; ".join(notes)


def _compare(check: str, case: str, student: Mapping[str, Any], reference: Mapping[str, Any],
             mistakes: Sequence[tuple[str, Callable[[], Mapping[str, Any]]]], *,
             against: str = "the reference", tolerance: float = TOLERANCE, gates: str = "",
             hidden: int = 0) -> float:
    """Compare every output; on a mismatch raise with the first known mistake that fits."""
    student, reference = _flatten(student), _flatten(reference)
    errors = {name: rel_error(student[name], reference[name]) for name in reference}
    wrong = [name for name, error in errors.items() if error > tolerance]
    if not wrong:
        return max(errors.values())
    first = wrong[0]
    how = _how_wrong(first, student[first], reference[first], tolerance, gates, hidden)
    message = (f"{check}: {_label(first)} is wrong on {case}: {how} (relative error "
               f"{errors[first]:.1e} against {against}, at most {tolerance:.0e} allowed).")
    if len(wrong) > 1:
        message += f" Also wrong: {_join([_label(n) for n in wrong[1:]])}."
    else:
        right = [n for n in reference if n != first]
        if right:
            message += f" The other outputs ({_join(right)}) are right."
    for hint, produce in mistakes:
        candidate = _flatten(produce())
        if all(rel_error(student[name], candidate[name]) <= HINT_TOLERANCE for name in reference):
            message += f"\nHint: {hint}"
            break
    raise CheckFailed(message)


def _case_label(index: int, total: int, sizes: Mapping[str, Any]) -> str:
    dims = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return f"hidden case {index + 1} of {total} ({dims})"


def _passed_line(check: str, what: str, cases: int, error: float,
                 fd_error: float | None = None) -> str:
    """The one line that says what was verified."""
    verb = "match" if " and " in what else "matches"
    if fd_error is None:
        return (f"{check}: {what} {verb} the reference on {cases} hidden cases "
                f"(max relative error {error:.1e}).")
    return (f"{check}: {what} {verb} the reference and centred finite differences on {cases} "
            f"hidden cases (max relative error {error:.1e} against the reference, "
            f"{fd_error:.1e} against finite differences).")


# --------------------------------------------------------------------------------------
# The skeleton every check shares
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Forward:
    """The student's forward function that may give a backward check its cache."""

    role: str                   # "lstm_step"
    returns: tuple[str, ...]    # ("h_next", "c_next", "cache")


@dataclass
class Case:
    """One case of a check: the inputs, and (for the judging half only) the answers.

    ``public`` is what the student's function may see: its arguments, the shapes of what
    it must return and, for backward checks, the arguments of the forward function. The
    other fields hold the expected values and exist only on the judging side.
    """

    label: str
    hidden: int
    args: tuple
    shapes: dict[str, Any]
    reference: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    mistakes: Callable[[], list] = list
    numeric: Callable[[], dict] | None = None
    tolerance: float = TOLERANCE
    cache_holds: tuple[tuple[str, np.ndarray], ...] = ()
    forward_args: tuple = ()
    forward_shapes: dict[str, Any] = field(default_factory=dict)
    forward_reference: dict[str, Any] = field(default_factory=dict)
    cache_position: int = -1

    @property
    def public(self) -> dict[str, Any]:
        return {"label": self.label, "hidden": self.hidden, "args": self.args,
                "kwargs": self.kwargs, "shapes": self.shapes, "forward_args": self.forward_args,
                "forward_shapes": self.forward_shapes, "cache_position": self.cache_position}


@dataclass(frozen=True)
class _Spec:
    """Everything that makes one check different from the others."""

    check: str                  # "check_lstm_step"
    role: str                   # "lstm_step": the function the student writes
    arguments: tuple[str, ...]  # its parameters, to name an input changed in place
    returns: tuple[str, ...]    # the names of what it returns
    what: str                   # "h_next and c_next", for the success line
    build: Callable[..., Case]  # build(rng, size, label) -> Case
    sizes: tuple                # the sizes of the public cases
    references: tuple[str, ...]  # library functions that compute the answer
    gates: str = ""             # the order of stacked gate blocks, for messages
    optional_last: bool = False  # the last returned value may be left out
    forward: _Forward | None = None
    allowed: str = ""           # what the student may use from the library
    holds: str = ""             # the cache the exercise asks for, in words
    select: Callable[..., tuple] | None = None  # select(sizes, **options) -> sizes
    prepare: Callable[[Callable], Callable] | None = None  # wraps the student's function
    refuse_copies: bool = True  # False where a right answer is one line, like the library's

    def prepared(self, fn: Callable) -> Callable:
        """The student's ``fn`` as the check calls it (``prepare`` applied, if any)."""
        if self.prepare is None:
            return fn
        return functools.update_wrapper(self.prepare(fn), fn, updated=())

    def cases(self, seed: int | Sequence[int], sizes: Sequence | None = None,
              **options: Any) -> list[Case]:
        sizes = tuple(self.sizes if sizes is None else sizes)
        if self.select is not None:
            sizes = self.select(sizes, **options)
        elif options:
            raise TypeError(f"{self.check} got unexpected options {sorted(options)}")
        seed = [int(s) for s in (seed if isinstance(seed, Sequence) else [seed])]
        total = len(sizes)
        return [self.build(np.random.default_rng([*seed, sum(map(ord, self.check)), index]),
                           size, lambda dims, index=index: _case_label(index, total, dims))
                for index, size in enumerate(sizes)]


_CHECKER = (__name__, __name__.rpartition(".")[0] + ".checks")
"""The modules of the checker itself: a student's function must not call into them."""


def _library_function(fn: Any, spec: _Spec) -> str | None:
    """The dotted name of ``fn`` when it is (or wraps) the library's reference or any part
    of the checker (this module and ``throughtime.checks``)."""
    seen = 0
    while seen < 10:
        seen += 1
        inner = (fn.func if isinstance(fn, functools.partial) else
                 getattr(fn, "__wrapped__", None) or getattr(fn, "__func__", None))
        for dotted in spec.references:
            if fn is _resolve(dotted):
                return dotted
        if getattr(fn, "__module__", None) in _CHECKER:
            return f"{fn.__module__}.{getattr(fn, '__qualname__', fn)}"
        if inner is None:
            return None
        fn = inner
    return None


def _run_one(spec: _Spec, case: Mapping[str, Any], fn: Callable,
             forward: Callable | None) -> dict[str, Any]:
    """Call the student's function(s) on one case and read the results, without judging."""
    check, hidden = spec.check, case["hidden"]
    outcome: dict[str, Any] = {"error": None, "outputs": None, "forward_outputs": None,
                               "mutated": [], "called": []}
    watch = _Watch()
    try:
        args = case["args"]
        if forward is not None:
            raw = _call(check, spec.forward.role, forward, _copy(case["forward_args"]), {},
                        watch)
            outputs, cache = _read_outputs(check, spec.forward.role, raw, spec.forward.returns,
                                           case["forward_shapes"], hidden)
            outcome["forward_outputs"] = {k: v for k, v in outputs.items() if k != "cache"}
            position = case["cache_position"] % len(args)
            args = (*args[:position], cache, *args[position + 1:])
        given = _copy(args)
        raw = _call(check, spec.role, fn, given, case["kwargs"], watch)
        outcome["mutated"] = [path for index, (before, after) in
                              enumerate(zip(args, given, strict=True))
                              if forward is None or index != case["cache_position"] % len(args)
                              for path in _changes(before, after, spec.arguments[index])]
        outcome["outputs"], _ = _read_outputs(check, spec.role, raw, spec.returns,
                                              case["shapes"], hidden, spec.optional_last)
    except CheckFailed as failure:
        outcome["error"] = str(failure)
    outcome["called"] = watch.called(spec.references)
    return outcome


def _called_message(spec: _Spec, called: Sequence[str]) -> str:
    allowed = f" ({spec.allowed})" if spec.allowed else ""
    if called[0].startswith(tuple(f"{module}." for module in _CHECKER)):
        return (f"{spec.check}: your {spec.role} calls {called[0]}, part of the checker "
                "itself, so it would pass without your own code. Write it yourself"
                f"{allowed}, then run the check again.")
    return (f"{spec.check}: your {spec.role} calls {called[0]}, the library's own "
            "reference that the check compares with, so it would pass without your own code. "
            f"Compute the result yourself{allowed}, then run the check again.")


def _mutated_message(spec: _Spec, paths: Sequence[str]) -> str:
    return (f"{spec.check}: your {spec.role} changed its input {_join(list(paths)[:3])} in "
            "place (an in-place operation such as x *= ..., x += ... or x[...] = ... on an "
            "argument). The caller still needs the values it passed in (a loop over time "
            "passes the same arrays on), so compute new arrays instead, for example "
            "x = x * ... .")


def _check_cache(spec: _Spec, case: Case, contents: Mapping[str, Any] | None) -> None:
    """The cache the exercise asks for: every array it names must be in it."""
    wanted = ", ".join(name for name, _ in case.cache_holds)
    if contents is None or contents.get("kind") not in ("dict", "tuple", "list"):
        got = "nothing" if contents is None else contents.get("kind")
        raise CheckFailed(f"{spec.check}: the cache returned by your {spec.role} is {got}; the "
                          f"exercise asks for a dictionary that keeps {spec.holds} ({wanted}), "
                          "which the backward pass reads.")
    arrays = contents["arrays"]
    missing = [name for name, expected in case.cache_holds
               if not any(a.shape == expected.shape and rel_error(a, expected) <= TOLERANCE
                          for a in arrays)]
    if missing:
        raise CheckFailed(f"{spec.check}: the cache returned by your {spec.role} has no array "
                          f"equal to {_join(missing)} on {case.label}. The exercise asks for a "
                          f"cache that keeps {spec.holds} ({wanted}), which the backward "
                          f"pass reads. ({spec.what} {'are' if ' and ' in spec.what else 'is'} "
                          "right.)")


def _judge_one(spec: _Spec, case: Case, outcome: Mapping[str, Any]) -> tuple[float, float | None]:
    """Judge one outcome of ``_run_one`` against the case's answers (raises CheckFailed)."""
    check = spec.check
    if outcome["called"]:
        raise CheckFailed(_called_message(spec, outcome["called"]))
    if outcome["error"]:
        raise CheckFailed(str(outcome["error"]))
    if outcome["mutated"]:
        raise CheckFailed(_mutated_message(spec, outcome["mutated"]))
    if outcome["forward_outputs"] is not None:
        try:
            _compare(check, case.label, outcome["forward_outputs"], case.forward_reference, [],
                     gates=spec.gates, hidden=case.hidden)
        except CheckFailed as failure:
            raise CheckFailed(f"{failure} (computed by your forward function "
                              f"{spec.forward.role}, passed as forward=). Fix the forward pass "
                              "first: the backward pass differentiates it.") from None
    outputs = outcome["outputs"]
    values = {name: outputs[name] for name in case.reference}
    error = _compare(check, case.label, values, case.reference, case.mistakes(),
                     tolerance=case.tolerance, gates=spec.gates, hidden=case.hidden)
    if case.cache_holds:
        _check_cache(spec, case, outputs.get("cache"))
    fd_error = None
    if case.numeric is not None:
        fd_error = _compare(check, case.label, values, case.numeric(), [],
                            against="centred finite differences", tolerance=FD_TOLERANCE,
                            gates=spec.gates, hidden=case.hidden)
    return error, fd_error


def _refuse_library(spec: _Spec, fn: Callable) -> None:
    """Stop at once when the function handed over is the library's own (or a copy of it)."""
    dotted = _library_function(fn, spec)
    if dotted is not None:
        raise CheckFailed(f"{spec.check}: the function you passed is {dotted}, the library's "
                          "own, which the check compares with. Write your own "
                          f"{spec.role} in the exercise cell and pass that.")
    if not spec.refuse_copies:
        return
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return
    copied = _copied(spec, source, getattr(fn, "__name__", ""))
    if copied is not None:
        raise CheckFailed(f"{spec.check}: your {spec.role} is a copy of the library's "
                          f"{copied}. Write it yourself from the equations of the exercise.")


# --------------------------------------------------------------------------------------
# Code copied from the library
# --------------------------------------------------------------------------------------


def _body_fingerprint(node: ast.FunctionDef) -> str:
    """The function's body without its docstring, as a canonical string."""
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None),
                                                             ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return "\n".join(ast.dump(statement, annotate_fields=False) for statement in body)


def _function_nodes(source: str) -> list[ast.FunctionDef]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]


@functools.cache
def _reference_fingerprints(dotted: str) -> tuple[str, ...]:
    target = _resolve(dotted)
    try:
        source = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        return ()
    return tuple(_body_fingerprint(node) for node in _function_nodes(source)[:1])


def _copied(spec: _Spec, source: str, name: str) -> str | None:
    """The reference whose body the function ``name`` in ``source`` repeats, if any."""
    nodes = [node for node in _function_nodes(source) if node.name == name]
    if not nodes:
        return None
    fingerprint = _body_fingerprint(nodes[-1])
    for dotted in spec.references:
        candidates = [dotted]
        module, _, attribute = dotted.rpartition(".")
        if not attribute.startswith("_"):
            candidates.append(f"{module}._{attribute}")  # the kernel behind a public function
        for candidate in candidates:
            if _resolve(candidate) is not None and \
                    fingerprint in _reference_fingerprints(candidate):
                return candidate
    return None


# --------------------------------------------------------------------------------------
# The skeleton's entry points: the public checks and graders
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a grader learns from ``judge_cases``: whether every case passed, and the
    message the student sees (the success line, or the first failure's explanation)."""

    passed: bool
    message: str


def _registered() -> tuple[dict[str, _Spec], dict[str, _Spec]]:
    """The specs of ``throughtime.checks`` and of the book's other check modules (the
    language-model exercises of ``throughtime.text_checks``, the bidirectional and
    beam-search ones of ``throughtime.seq2seq_checks``, the scan's of
    ``throughtime.scan_checks``), imported when first needed: those modules import this one."""
    from . import checks, scan_checks, seq2seq_checks, text_checks

    return checks._SPECS, {**text_checks._SPECS, **seq2seq_checks._SPECS, **scan_checks._SPECS}


def graded_checks() -> tuple[str, ...]:
    """The names of every check a grader can run: ``throughtime.checks.CHECKS`` and those
    of ``text_checks``, ``seq2seq_checks`` and ``scan_checks``; ``hidden_cases``,
    ``run_cases``, ``judge_cases``, ``hidden_check`` and ``copied_from_library`` accept each
    of them."""
    own, others = _registered()
    return tuple(own) + tuple(others)


def _spec(check: str) -> _Spec:
    own, others = _registered()
    if check in own:
        return own[check]
    if check not in others:
        raise ValueError(f"check must be one of {sorted(own) + sorted(others)}, "
                         f"got {check!r}")
    return others[check]


def hidden_cases(check: str, seed: int | Sequence[int], sizes: Sequence | None = None,
                 **options: Any) -> list[Case]:
    """The cases of ``check`` drawn from ``seed`` (a course's private seed, for grading).

    ``sizes`` replaces the public cases' sizes (their meaning depends on the check: (B, I,
    H) for steps, (T, B, I, H) for ``check_rnn_backward``, ...; see ``_SPECS``);
    ``options`` are the check's own keyword arguments (``norm_types=`` for clipping).
    """
    return _spec(check).cases(seed, sizes, **options)


def run_cases(check: str, cases: Sequence[Mapping[str, Any]], fn: Callable,
              forward: Callable | None = None) -> list[dict[str, Any]]:
    """Call the student's ``fn`` on every case (``Case.public``) and read what it returns.

    Needs no expected value, so it can run where the submission runs. Returns one plain
    dict per case (outputs as float64 arrays, or the error message, inputs changed in
    place, references called), for ``judge_cases``.
    """
    spec = _spec(check)
    dotted = _library_function(fn, spec)
    if dotted is not None:
        message = (f"{check}: the function handed in is {dotted}, the library's own, which "
                   f"the check compares with, not your own {spec.role}.")
        return [{"error": message, "outputs": None, "forward_outputs": None, "mutated": [],
                 "called": []} for _ in cases]
    return [_run_one(spec, case, spec.prepared(fn), forward) for case in cases]


def judge_cases(check: str, cases: Sequence[Case],
                outcomes: Sequence[Mapping[str, Any]]) -> Verdict:
    """Judge the outcomes of ``run_cases`` against the cases' answers.

    Never raises for a malformed outcome (one that came back from an untrusted process):
    that is a failed case too.
    """
    spec = _spec(check)
    worst, worst_fd = 0.0, None
    if len(outcomes) != len(cases):
        return Verdict(False, f"{check}: the grader got {len(outcomes)} results for "
                              f"{len(cases)} cases; the submission's run was cut short.")
    for case, outcome in zip(cases, outcomes, strict=True):
        try:
            error, fd_error = _judge_one(spec, case, outcome)
        except CheckFailed as failure:
            return Verdict(False, str(failure))
        except Exception as error:  # noqa: BLE001  (a forged or truncated outcome)
            return Verdict(False, f"{check}: the grader could not read what your "
                                  f"{spec.role} returned on {case.label} "
                                  f"({type(error).__name__}).")
        worst = max(worst, error)
        if fd_error is not None:
            worst_fd = max(worst_fd or 0.0, fd_error)
    return Verdict(True, _passed_line(check, spec.what, len(cases), worst, worst_fd))


def _run_check(check: str, fn: Any, *, forward: Any = None, seed: Any = _SEED,
               sizes: Sequence | None = None, **options: Any) -> str:
    """Both halves in this process; return the success line or raise CheckFailed."""
    spec = _spec(check)
    _require_callable(check, fn, spec.role)
    if forward is not None:
        if spec.forward is None:
            raise TypeError(f"{check} takes no forward= function")
        _require_callable(check, forward, f"{spec.forward.role} (as forward=)")
    _refuse_library(spec, fn)
    cases = spec.cases(seed, sizes, **options)
    verdict = judge_cases(check, cases,
                          [_run_one(spec, case.public, spec.prepared(fn), forward)
                           for case in cases])
    if not verdict.passed:
        raise CheckFailed(verdict.message)
    return verdict.message


def hidden_check(check: str, fn: Callable, *, seed: int | Sequence[int],
                 sizes: Sequence | None = None, forward: Callable | None = None,
                 **options: Any) -> str:
    """Run ``check`` on the cases of a private ``seed``, in this process.

    For graders that run their tests in the submission's own process (Otter-Grader on
    Gradescope). Returns the success line; raises ``CheckFailed`` like the public check.
    """
    try:
        return _run_check(check, fn, forward=forward, seed=seed, sizes=sizes, **options)
    except CheckFailed as failure:
        raise CheckFailed(str(failure)) from None


def copied_from_library(check: str, source: str, name: str) -> str | None:
    """The library function whose code the student's function ``name`` (defined somewhere
    in ``source``) repeats statement for statement, apart from its docstring; else None."""
    return _copied(_spec(check), source, name)
