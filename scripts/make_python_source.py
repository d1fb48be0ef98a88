"""Write the book's text corpus: a fixed selection of Python standard-library modules.

    python scripts/make_python_source.py [--out lib/throughtime/data]

The character-level language model of the book reads Python source code that every reader
has offline: modules of CPython's standard library, under the Python Software Foundation
License, which allows copying and redistribution with the licence and the copyright notice
kept. This script copies the modules listed below from the standard library of the Python
that runs it, in that order, into one text file, and writes beside it

- ``python_source.json``: the manifest (the Python version, and for every module its file
  name, its split, its character offsets in the text file and the SHA-256 of its text);
- ``PSF_LICENSE.txt``: the licence text, copied from the same Python installation.

The split is by file, fixed here, never by position inside a file: no module has lines in
two splits. The output depends only on the Python version (recorded in the manifest), so
rerunning it with the same version rewrites the same bytes; the shipped files were made
with the version the manifest names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "lib" / "throughtime" / "data"

SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("bisect.py", "colorsys.py", "fnmatch.py", "glob.py", "heapq.py", "queue.py",
              "string.py", "textwrap.py", "csv.py", "calendar.py", "fractions.py",
              "contextlib.py", "pprint.py", "random.py", "copy.py", "abc.py", "operator.py",
              "reprlib.py", "linecache.py", "numbers.py"),
    "validation": ("cmd.py", "sched.py", "timeit.py"),
    "test": ("selectors.py", "shlex.py", "graphlib.py"),
}
"""Which standard-library modules go into which split, in the order they are written."""


def build(out: Path) -> dict:
    """Copy the modules and the licence into ``out``; return the manifest."""
    library = Path(sysconfig.get_paths()["stdlib"])
    licence = library / "LICENSE.txt"
    if not licence.is_file():
        raise SystemExit(f"the licence file {licence} is missing: this Python installation "
                         "does not ship it, and the text cannot be shipped without it")
    pieces, files, offset = [], [], 0
    for split, names in SPLITS.items():
        for name in names:
            text = (library / name).read_text(encoding="utf-8")
            if not text.endswith("\n"):
                text += "\n"
            files.append({"name": name, "split": split, "start": offset,
                          "end": offset + len(text),
                          "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()})
            pieces.append(text)
            offset += len(text)
    manifest = {
        "description": "A fixed selection of modules of the Python standard library, "
                       "concatenated; offsets count characters (not bytes) of the UTF-8 text.",
        "source": "CPython standard library (Lib/), https://github.com/python/cpython",
        "python_version": platform.python_version(),
        "implementation": sys.implementation.name,
        "licence": "Python Software Foundation License Version 2 (PSF_LICENSE.txt); "
                   "Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved",
        "text_file": "python_source.txt",
        "characters": offset,
        "files": files,
    }
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "python_source.txt", "w", encoding="utf-8", newline="") as handle:
        handle.write("".join(pieces))
    with open(out / "python_source.json", "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
    (out / "PSF_LICENSE.txt").write_text(licence.read_text(encoding="utf-8"), encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    manifest = build(parser.parse_args().out)
    sizes = {split: sum(f["end"] - f["start"] for f in manifest["files"] if f["split"] == split)
             for split in SPLITS}
    print(f"Python {manifest['python_version']}: {manifest['characters']} characters "
          f"({', '.join(f'{k} {v}' for k, v in sizes.items())})")


if __name__ == "__main__":
    main()
