"""What runs inside a grading sandbox: one student's code, confined, in its own process.

    python -I scripts/grading_sandbox.py notebook DIR   # run the notebook's code cells
    python -I scripts/grading_sandbox.py tests DIR      # run its functions on hidden inputs

``scripts/grade.py`` starts this file in a fresh process with an empty temporary folder
``DIR``, a minimal environment and a wall-clock limit. Before any student code runs, the
process confines itself (``confine``): resource limits (memory, CPU time, file size, no
core dumps) and, on Linux 5.13 or newer, a Landlock domain. Landlock is the kernel's
unprivileged sandbox: from then on this process and every process it starts can read only
Python, the installed packages and the ``throughtime`` library, can write only in ``DIR``,
cannot open TCP connections, and cannot send signals to processes outside the sandbox.
What the domain could not be set up for is written to ``DIR/confinement.json``, and the
grader reports it.

``notebook`` reads ``DIR/job.json`` (the code cells, the names of the functions to grade),
runs the cells in order in an IPython shell (an error in a cell is recorded and the next
cell runs, as after "Run all" with errors allowed), and after each cell saves every graded
function the cell (re)defined with cloudpickle into ``DIR/functions/NAME.pkl``. The log
``DIR/progress.jsonl`` says which cell started and how each ended, so that a grader that
had to stop the process knows where it was.

``tests`` reads ``DIR/job.pkl`` (per exercise: the check, the function names, the public
half of each hidden case, never an expected value) and ``DIR/functions``, runs
``throughtime.checks.run_cases`` for each exercise, and writes the outcomes, encoded as
plain JSON (``encode``), one line per exercise, to ``DIR/results.jsonl``. While an
exercise runs, the library functions that compute its answer are replaced by stubs that
raise, before the student's functions are loaded, so that neither a call nor an imported
alias of the reference can stand in for the student's code.

The grader decodes the results with ``decode`` (which accepts only plain data: numbers,
strings, lists, dicts and float64 arrays) and judges them in its own process.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import pickle
import resource
import signal
import struct
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------
# Confinement
# --------------------------------------------------------------------------------------

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_PR_SET_NO_NEW_PRIVS = 38
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_TRUNCATE, _IOCTL_DEV = 1 << 14, 1 << 15
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_READ = _EXECUTE | _READ_FILE | _READ_DIR
# Access rights each Landlock ABI version knows (versions 1 to 7 exist in 2026).
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
                     5: (1 << 16) - 1}
_NET_BIND_CONNECT = 0b11      # ABI 4: TCP bind and connect
_SCOPE_SOCKET_SIGNAL = 0b11   # ABI 6: abstract unix sockets and signals

SYSTEM_READ = ("/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/localtime",
               "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/matplotlibrc",
               "/sys/devices/system/cpu", "/dev/urandom", "/dev/random", "/dev/zero")
SYSTEM_WRITE = ("/dev/null",)


def _syscall(number: int, *args: Any) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(number, *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def landlock(read: list[str], write: list[str], protected: list[str]) -> dict[str, Any]:
    """Confine this process (and its children) to reading ``read`` and writing ``write``.

    Paths that would expose one of ``protected`` (an ancestor of it) are left out. Returns a
    report: the ABI version, the paths allowed, what was left out, or why it failed.
    """
    if not sys.platform.startswith("linux"):
        return {"landlock": None, "reason": f"Landlock exists only on Linux ({sys.platform})"}
    try:
        abi = _syscall(_CREATE_RULESET, None, 0, 1)
    except (OSError, AttributeError) as error:
        return {"landlock": None, "reason": f"the kernel offers no Landlock ({error})"}
    fs_rights = _FS_RIGHTS_BY_ABI.get(abi, _FS_RIGHTS_BY_ABI[5])
    fields = [fs_rights]
    if abi >= 4:
        fields.append(_NET_BIND_CONNECT)
    if abi >= 6:
        fields.append(_SCOPE_SOCKET_SIGNAL)
    attr = struct.pack(f"{len(fields)}Q", *fields)
    ruleset = _syscall(_CREATE_RULESET, ctypes.create_string_buffer(attr, len(attr)),
                       len(attr), 0)
    guarded = [Path(p).resolve() for p in protected]
    allowed, refused = [], []

    def allow(path: str, rights: int) -> None:
        target = Path(path)
        if not target.exists():
            return
        resolved = target.resolve()
        if any(g == resolved or g.is_relative_to(resolved) for g in guarded):
            refused.append(str(resolved))
            return
        if not resolved.is_dir():
            rights &= _FILE_RIGHTS
        descriptor = os.open(resolved, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = struct.pack("=Qi", rights & fs_rights, descriptor)
            _syscall(_ADD_RULE, ruleset, 1, ctypes.create_string_buffer(rule, len(rule)), 0)
        finally:
            os.close(descriptor)
        allowed.append(str(resolved))

    for path in read:
        allow(path, _READ)
    for path in write:
        allow(path, fs_rights)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return {"landlock": None, "reason": "prctl(PR_SET_NO_NEW_PRIVS) failed"}
    _syscall(_RESTRICT_SELF, ruleset, 0)
    os.close(ruleset)
    return {"landlock": abi, "network": abi >= 4, "signals": abi >= 6, "read": allowed,
            "refused": refused}


def confine(directory: Path, limits: dict[str, Any]) -> dict[str, Any]:
    """Resource limits, then a Landlock domain; return (and write down) what was done."""
    memory = int(limits.get("memory_mb", 4096)) * 1024 * 1024
    cpu = int(limits.get("cpu_seconds", 600))
    file_size = int(limits.get("file_mb", 64)) * 1024 * 1024
    for name, value in (("RLIMIT_AS", memory), ("RLIMIT_CPU", cpu), ("RLIMIT_FSIZE", file_size),
                        ("RLIMIT_CORE", 0)):
        limit = getattr(resource, name, None)
        if limit is not None:
            try:
                resource.setrlimit(limit, (value, value))  # the hard limit too: no way back up
            except (ValueError, OSError):
                pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the size limit fails, no kill
    os.umask(0o077)
    read = sorted({*SYSTEM_READ, sys.prefix, sys.base_prefix, sys.exec_prefix,
                   *(p for p in sys.path if p and Path(p).is_absolute())})
    report = landlock(read, [str(directory), *SYSTEM_WRITE], limits.get("protected", []))
    report["limits"] = {"memory_mb": memory // 2**20, "cpu_seconds": cpu,
                        "file_mb": file_size // 2**20}
    (directory / "confinement.json").write_text(json.dumps(report))
    return report


# --------------------------------------------------------------------------------------
# Plain data across the process boundary
# --------------------------------------------------------------------------------------

MAX_ARRAY = 4_000_000  # entries
MAX_DEPTH = 12


def encode(value: Any, depth: int = 0) -> Any:
    """Outcomes of ``checks.run_cases`` as JSON-able data (float64 arrays as base64)."""
    import numpy as np

    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value, dtype=np.float64)
        return {"__array__": base64.b64encode(array.tobytes()).decode("ascii"),
                "shape": list(array.shape)}
    if isinstance(value, dict):
        return {"__dict__": [[str(k), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return float(value) if isinstance(value, np.floating) else value
    return repr(type(value).__name__)


def decode(value: Any, depth: int = 0) -> Any:
    """The inverse of ``encode``, for untrusted input: plain data only, sizes checked."""
    import numpy as np

    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, dict):
        if set(value) == {"__array__", "shape"}:
            shape = value["shape"]
            if not (isinstance(shape, list) and len(shape) <= 8
                    and all(isinstance(n, int) and 0 <= n <= MAX_ARRAY for n in shape)):
                raise ValueError("bad array shape")
            raw = base64.b64decode(value["__array__"], validate=True)
            size = int(np.prod(shape)) if shape else 1
            if size > MAX_ARRAY or len(raw) != 8 * size:
                raise ValueError("array data does not match its shape")
            return np.frombuffer(raw, dtype=np.float64).reshape(shape).copy()
        if set(value) == {"__dict__"} and isinstance(value["__dict__"], list):
            out = {}
            for item in value["__dict__"]:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                    raise ValueError("bad dict entry")
                out[item[0]] = decode(item[1], depth + 1)
            return out
        raise ValueError("unknown object")
    if isinstance(value, list):
        return [decode(v, depth + 1) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise ValueError(f"unexpected {type(value).__name__}")


# --------------------------------------------------------------------------------------
# The two stages
# --------------------------------------------------------------------------------------


def _log(directory: Path, **entry: Any) -> None:
    with open(directory / "progress.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_notebook(directory: Path, job: dict[str, Any]) -> None:
    """Run the code cells in order; save the graded functions after each cell."""
    import cloudpickle
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):  # %matplotlib inline: figures render as text here
            pass

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    shell = Shell.instance(config=config)
    names = list(job["functions"])
    saved: dict[str, int] = {}
    (directory / "functions").mkdir()
    for number, source in job["cells"]:
        _log(directory, cell=number, status="started")
        started = time.perf_counter()
        try:
            result = shell.run_cell(source, store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except BaseException as failure:  # noqa: BLE001  (SystemExit from a cell included)
            error = failure
        entry: dict[str, Any] = {"cell": number, "seconds": round(time.perf_counter() - started, 3)}
        if error is not None:
            entry["error"] = _short(f"{type(error).__name__}: {error}")
        for name in names:
            value = shell.user_ns.get(name)
            if callable(value) and saved.get(name) != id(value):
                saved[name] = id(value)
                try:
                    (directory / "functions" / f"{name}.pkl").write_bytes(
                        cloudpickle.dumps(value))
                except Exception as failure:  # noqa: BLE001
                    entry.setdefault("unsaved", {})[name] = _short(
                        f"{type(failure).__name__}: {failure}")
        _log(directory, status="done", **entry)
    _log(directory, status="finished")


def _block(dotted: str, role: str, package: str) -> Any:
    """A stand-in for a reference function that raises. It is compiled as if it lay in the
    library, so the error message points at the student's line that called it."""
    message = (f"{dotted} is the reference that grading compares {role} with; it is not "
               "available while your code is graded")
    namespace: dict[str, Any] = {}
    code = compile(f"def blocked(*args, **kwargs):\n    raise RuntimeError({message!r})\n",
                   os.path.join(package, "_grading_stub.py"), "exec")
    exec(code, namespace)
    namespace["blocked"].__name__ = dotted.rpartition(".")[2]
    return namespace["blocked"]


def run_tests(directory: Path, job: list[dict[str, Any]]) -> None:
    """Run each exercise's cases; one line of encoded outcomes per exercise."""
    import importlib

    import cloudpickle

    from throughtime import checks

    answers = [name for name in dir(checks) if name.endswith(("_variant", "_reference"))]
    for number, exercise in enumerate(job):
        _log(directory, exercise=number, status="started")
        spec = checks._spec(exercise["check"])
        patched = []
        for dotted in [*spec.references, *(f"throughtime.checks.{n}" for n in answers)]:
            module_name, _, attribute = dotted.rpartition(".")
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            if hasattr(module, attribute):
                patched.append((module, attribute, getattr(module, attribute)))
                setattr(module, attribute, _block(dotted, spec.role,
                                                  os.path.dirname(checks.__file__)))
        try:
            functions = {}
            for role in ("function", "forward"):
                name = exercise.get(role)
                if name is None:
                    continue
                path = directory / "functions" / f"{name}.pkl"
                functions[role] = cloudpickle.loads(path.read_bytes()) if path.exists() else None
            if functions["function"] is None:
                message = (f"{exercise['check']}: {exercise['function']} is not defined in your "
                           "notebook (did the cell that defines it run without an error?)")
                outcomes = [{"error": message, "outputs": None, "forward_outputs": None,
                             "mutated": [], "called": []}] * len(exercise["cases"])
            elif exercise.get("forward") and functions.get("forward") is None:
                message = (f"{exercise['check']}: {exercise['forward']}, which the exercise "
                           "passes as forward=, is not defined in your notebook")
                outcomes = [{"error": message, "outputs": None, "forward_outputs": None,
                             "mutated": [], "called": []}] * len(exercise["cases"])
            else:
                outcomes = checks.run_cases(exercise["check"], exercise["cases"],
                                            functions["function"], functions.get("forward"))
        except BaseException as failure:  # noqa: BLE001  (even SystemExit from student code)
            where = traceback.format_exception_only(type(failure), failure)[-1].strip()
            message = (f"{exercise['check']}: your {exercise['function']} could not be run: "
                       f"{_short(where)}")
            outcomes = [{"error": message, "outputs": None, "forward_outputs": None,
                         "mutated": [], "called": []}] * len(exercise["cases"])
        finally:
            for module, attribute, original in patched:
                setattr(module, attribute, original)
        with open(directory / "results.jsonl", "a") as results:
            results.write(json.dumps({"exercise": number, "outcomes": encode(outcomes)}) + "\n")
        _log(directory, exercise=number, status="done")


def main(argv: list[str]) -> int:
    stage, directory = argv[1], Path(argv[2]).resolve()
    limits = json.loads((directory / "limits.json").read_text())
    confine(directory, limits)
    os.chdir(directory)
    if stage == "notebook":
        run_notebook(directory, json.loads((directory / "job.json").read_text()))
    elif stage == "tests":
        with open(directory / "job.pkl", "rb") as handle:
            job = pickle.load(handle)  # written by the grader, before any student code ran
        run_tests(directory, job)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    sys.stdout.flush()
    os._exit(0)  # skip atexit handlers a submission may have registered


if __name__ == "__main__":
    sys.exit(main(sys.argv))
