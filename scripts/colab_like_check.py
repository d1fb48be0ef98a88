"""Check that the book's library works in an environment like Google Colab's.

Colab ships its own torch, numpy, matplotlib and ipywidgets 7.7, and a chapter's setup cell
installs ``throughtime`` next to them without replacing any. This script rebuilds that
situation in a fresh, temporary virtual environment:

1. the preinstalled packages: ``torch==2.13.0`` and ``ipywidgets==7.7.1``;
2. the library as the setup cell installs it: ``pip install --no-deps -e <repository>``;
3. the library's other (loose) dependencies from pyproject.toml, resolved by pip, which must
   leave torch and ipywidgets as they are;

then imports every module of ``throughtime`` and runs a short smoke test (seeding, glue
without myst-nb, the core widgets the chapters' explorers use, a figure).

Usage::

    .venv/bin/python scripts/colab_like_check.py           # about a minute
    .venv/bin/python scripts/colab_like_check.py --keep    # keep the environment to look at

Exit status 0 when everything works; the last line says what was checked.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomllib

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
COLAB_PREINSTALLED = {"torch": "2.13.0", "ipywidgets": "7.7.1"}

# Runs inside the Colab-like environment.
SMOKE_TEST = r"""
import importlib
import pkgutil
import sys

import ipywidgets
import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import throughtime
from throughtime import book, training

expected = {expected!r}
assert torch.__version__.split("+")[0] == expected["torch"], torch.__version__
assert ipywidgets.__version__ == expected["ipywidgets"], ipywidgets.__version__

modules = sorted(
    info.name for info in pkgutil.walk_packages(throughtime.__path__, "throughtime.")
)
for name in modules:
    importlib.import_module(name)

assert "myst_nb" not in sys.modules, "throughtime imported myst_nb, which Colab does not have"
assert book.glue("smoke_value", 0.5) == 0.5 and book.glued["smoke_value"] == 0.5

generator = training.seed_everything(0)
first = generator.random()
assert training.seed_everything(0).random() == first, "seed_everything is not reproducible"
device = training.choose_device()

# The core widgets the chapters' explorers are built from, wired as they wire them.
slider = ipywidgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.1, description="a")
steps = ipywidgets.IntSlider(value=3, min=1, max=10, description="T")
choice = ipywidgets.Dropdown(options=["rnn", "lstm", "gru"], value="lstm", description="cell")
toggle = ipywidgets.Checkbox(value=True, description="clip")
seen = []
output = ipywidgets.interactive_output(
    lambda a, T, cell, clip: seen.append((a, T, cell, clip)),
    {{"a": slider, "T": steps, "cell": choice, "clip": toggle}},
)
ipywidgets.VBox([ipywidgets.HBox([slider, steps, choice, toggle]), output])
steps.value = 5
assert seen and seen[-1] == (0.5, 5, "lstm", True), seen

# Every explorer of the book (a public function named *_explorer) builds with its defaults:
# this is what a reader runs in Colab. Building draws the first figure; nothing is clicked.
import inspect

explorers = []
for name in modules:
    module = sys.modules[name]
    for attribute, function in vars(module).items():
        if (
            attribute.endswith("_explorer")
            and inspect.isfunction(function)
            and function.__module__ == name
        ):
            widget = function()
            assert isinstance(widget, ipywidgets.Widget), f"{{name}}.{{attribute}}: {{widget!r}}"
            explorers.append(attribute)
plt.close("all")

figure, axes = plt.subplots()
axes.plot([0, 1], [1, 0])
figure.canvas.draw()
plt.close(figure)

print(
    f"colab-like check passed: Python {{sys.version.split()[0]}}, torch {{torch.__version__}}, "
    f"ipywidgets {{ipywidgets.__version__}}, device {{device}}, "
    f"{{len(modules)}} modules imported: {{', '.join(modules)}}; "
    f"explorers built: {{', '.join(explorers) or 'none'}}"
)
"""


def run(command: list[str], **kwargs: object) -> None:
    """Run ``command``, echoing it and its duration; raise CalledProcessError if it fails."""
    shown = " ".join(
        command if "-c" not in command else [*command[: command.index("-c")], "-c", "<smoke test>"]
    )
    print("$", shown, flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)


def library_dependencies() -> list[str]:
    """The library's dependencies from pyproject.toml, less those Colab preinstalls."""
    project = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]
    return [
        requirement
        for requirement in project["dependencies"]
        if re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower() not in COLAB_PREINSTALLED
    ]


def check(environment: Path) -> None:
    """Build the Colab-like environment in ``environment`` and smoke-test the library."""
    run([sys.executable, "-m", "venv", str(environment)])
    python = str(environment / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-qq", "--no-compile", "--disable-pip-version-check"]
    run([*pip, *(f"{name}=={version}" for name, version in COLAB_PREINSTALLED.items())])
    run([*pip, "--no-deps", "-e", str(REPOSITORY_ROOT)])
    run([*pip, *library_dependencies()])
    run([python, "-m", "pip", "check"])
    smoke = SMOKE_TEST.format(expected=COLAB_PREINSTALLED)
    # Run from a neutral directory, so `import throughtime` finds the installed package.
    environment_variables = {**os.environ, "MPLBACKEND": "Agg"}
    environment_variables.pop("PYTHONPATH", None)
    run([python, "-c", smoke], cwd=environment, env=environment_variables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary environment")
    arguments = parser.parse_args(argv)
    environment = Path(tempfile.mkdtemp(prefix="throughtime-colab-like-")) / "venv"
    start = time.perf_counter()
    try:
        check(environment)
    except subprocess.CalledProcessError as error:
        print(
            f"colab-like check FAILED: {' '.join(map(str, error.cmd))[:200]} exited "
            f"with status {error.returncode}",
            file=sys.stderr,
        )
        return 1
    finally:
        if arguments.keep:
            print(f"The environment is kept in {environment}")
        else:
            shutil.rmtree(environment.parent, ignore_errors=True)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
