"""The setup cell that opens every chapter: its one canonical text, and a command to apply it.

    python scripts/setup_cell.py [--root DIR] [--check]

A chapter's first code cell installs the book's library, ``throughtime``, whenever Python
cannot import it (Colab, a notebook downloaded from the website, a fresh Jupyter), from the
repository and branch that ``_config.yml`` names, and says what it is doing. Where pip fails
(no network, a private fork) it stops with what to do instead. numpy, torch and ipywidgets,
when present, are left as they are: pip only adds what is missing. Then the chapter's own
lines follow (seeding, by default).

The command rewrites the install part of the first code cell of every chapter to this text,
for the repository and branch of ``_config.yml``, and keeps the chapter's own lines (those
from the first line that imports ``throughtime``). With ``--check`` it changes nothing and
exits with status 1 if a chapter's setup cell differs from the canonical text.
``scripts/retarget.py`` later rewrites only the install URL (``make retarget``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETUP_TAG = "remove-cell"
# The line every setup cell written by this module contains; tests look for it.
MARKER = 'if importlib.util.find_spec("throughtime") is None:'
REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
BRANCH_PATTERN = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$")
# The install URL in a setup cell, old or new (scripts/retarget.py rewrites it).
INSTALL_URL = re.compile(r"git\+https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[^\"'\s]+")
# What pip installs: the library from a URL (the repository, or a wheel for a course).
REQUIREMENT = re.compile(r"throughtime @ [^\"'\s]+")
# The chapter's own part of the setup cell starts at its first import of the library.
OWN_PART = re.compile(r"^(from|import)\s+throughtime\b")

DEFAULT_OWN_LINES = """from throughtime.training import seed_everything

rng = seed_everything(0)
"""

TEMPLATE = '''# Setup. The chapters use the book's library, throughtime. Where Python cannot
# import it (Colab, a notebook downloaded from the website, a fresh Jupyter), this
# cell installs it with pip from the book's repository; numpy, torch and ipywidgets
# stay as they are.
import importlib.util
import site
import subprocess
import sys

LIBRARY = "{requirement}"

if importlib.util.find_spec("throughtime") is None:
    print(f"Installing the book's library: pip install '{{LIBRARY}}' (a minute or two)")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", LIBRARY],
                         capture_output=True, text=True)
    importlib.invalidate_caches()
    if importlib.util.find_spec("throughtime") is None:  # pip may have used the user site
        site.addsitedir(site.getusersitepackages())
    if pip.returncode != 0 or importlib.util.find_spec("throughtime") is None:
        said = "\\n".join((pip.stdout + pip.stderr).strip().splitlines()[-3:]) or "nothing"
        raise ModuleNotFoundError(
            "Could not install the book's library, throughtime, from "
            f"{{LIBRARY.split(' @ ', 1)[-1]}}.\\npip said: {{said}}\\n"
            "What to do: with no network here, or for a private copy of the repository, "
            "download or clone the repository where you can (with your credentials for a "
            "private one) and run `pip install -e <its folder>` in this Python environment; "
            f"with a network, run `pip install '{{LIBRARY}}'` in a terminal and read pip's "
            "message. Then restart the kernel and run this cell again."
        )
    print("Installed throughtime.")

'''


def render(repo: str, branch: str, own_lines: str = DEFAULT_OWN_LINES) -> str:
    """The setup cell's source for the library at ``github.com/<repo>`` on ``branch``.

    ``own_lines`` are the chapter's lines after the install part (by default, seeding).
    """
    if not isinstance(repo, str) or not REPO_PATTERN.match(repo):
        raise ValueError(f"repo must look like ORG/NAME, got {repo!r}")
    if not isinstance(branch, str) or not BRANCH_PATTERN.match(branch):
        raise ValueError(f"branch must be a git branch name, got {branch!r}")
    return render_requirement(f"throughtime @ git+https://github.com/{repo}@{branch}", own_lines)


def render_requirement(requirement: str, own_lines: str = DEFAULT_OWN_LINES) -> str:
    """The setup cell's source for any pip requirement ``throughtime @ URL`` (a wheel, say)."""
    if not isinstance(requirement, str) or not REQUIREMENT.fullmatch(requirement):
        raise ValueError(f"requirement must look like 'throughtime @ URL', got {requirement!r}")
    return TEMPLATE.format(requirement=requirement) + own_lines.strip("\n")


def requirement_of(source: str) -> str | None:
    """The ``throughtime @ URL`` that a setup cell installs, or None."""
    found = REQUIREMENT.search(source)
    return found[0] if found else None


def configured_repository(root: Path = ROOT) -> tuple[str, str]:
    """(ORG/NAME, branch) named by ``repository`` in ``_config.yml``."""
    repository = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    repo = repository["url"].rstrip("/").removeprefix("https://github.com/")
    return repo, str(repository["branch"])


def cell_source(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def split_setup(source: str) -> tuple[str, str]:
    """(install part, chapter's own lines) of a setup cell's source.

    The install part is everything before the first line that imports ``throughtime``; it
    must contain an install URL, or the cell is not a setup cell.
    """
    lines = source.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if OWN_PART.match(line)), None)
    if start is None:
        raise ValueError("the setup cell has no line that imports throughtime")
    install = "".join(lines[:start])
    if not (INSTALL_URL.search(install) or REQUIREMENT.search(install)):
        raise ValueError("the cell has no install URL (git+https://github.com/ORG/NAME@BRANCH, "
                         "or 'throughtime @ URL') before its first import of throughtime")
    return install, "".join(lines[start:])


def first_code_cell(notebook: dict) -> dict:
    cell = next((c for c in notebook["cells"] if c["cell_type"] == "code"), None)
    if cell is None:
        raise ValueError("the notebook has no code cell")
    return cell


def rewrite_notebook(text: str, repo: str, branch: str) -> tuple[str, bool]:
    """The notebook's JSON text with its setup cell in the canonical form; (text, changed)."""
    notebook = json.loads(text)
    cell = first_code_cell(notebook)
    source = cell_source(cell)
    _, own = split_setup(source)
    new = render(repo, branch, own)
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    changed = new != source or SETUP_TAG not in tags
    if SETUP_TAG not in tags:
        tags.insert(0, SETUP_TAG)
    cell["source"] = new.splitlines(keepends=True)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", changed


def is_canonical(source: str, repo: str, branch: str) -> bool:
    """True when a setup cell's source is the canonical text for ``repo`` and ``branch``."""
    try:
        _, own = split_setup(source)
    except ValueError:
        return False
    return source == render(repo, branch, own)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book (default: this one)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a setup cell is not canonical")
    args = parser.parse_args(argv)
    repo, branch = configured_repository(args.root)
    paths = sorted((args.root / "chapters").glob("*.ipynb"))
    if not paths:
        parser.error(f"no chapter notebooks in {args.root / 'chapters'}")
    stale = []
    for path in paths:
        try:
            text, changed = rewrite_notebook(path.read_text(), repo, branch)
        except ValueError as error:
            print(f"{path.name}: first code cell: {error}", file=sys.stderr)
            return 2
        if not changed:
            print(f"{path.relative_to(args.root)}: setup cell already canonical")
            continue
        stale.append(path.name)
        if args.check:
            print(f"{path.relative_to(args.root)}: setup cell differs from the canonical text")
        else:
            path.write_text(text)
            print(f"{path.relative_to(args.root)}: setup cell rewritten (installs from "
                  f"github.com/{repo}@{branch} when throughtime is missing)")
    if args.check and stale:
        print("run `.venv/bin/python scripts/setup_cell.py` to rewrite them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
