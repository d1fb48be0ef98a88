"""Report how many bytes a reader downloads to open each page of the built book.

For every page in ``_toc.yml`` the weight is the page's HTML plus every local file the page
references directly: images (``<img src>``), scripts (``<script src>``) and stylesheets
(``<link rel="stylesheet">``, ``<link rel="preload">`` and the stylesheets they ``@import``).
That is what a first visit with an empty browser cache fetches before the page is complete.
Files a script loads later on demand (MathJax's fonts, for example) are not counted.

Two totals are reported: ``total``, the files' sizes on disk, and ``transfer``, the bytes sent
by a host that compresses text as static hosts do (GitHub Pages, Read the Docs, Netlify):
HTML, scripts, stylesheets and SVG gzip-compressed, images other than SVG as they are. Most of
``total`` is shared by every page and cached after the first: the theme's icon font script
(about 1.5 MB) and MathJax (about 1.2 MB) on pages with math.

Usage, after ``make book``::

    .venv/bin/python scripts/page_weight.py             # the book in this repository
    .venv/bin/python scripts/page_weight.py --book-dir /path/to/book --max-mb 3

With ``--max-mb`` the script exits with status 1 when a chapter page (a file under
``chapters/``) transfers more than that.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import re
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")
CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*["']?([^"')\s;]+)""")
LOADING_LINK_RELS = {"stylesheet", "preload", "modulepreload"}
COMPRESSED_SUFFIXES = {".html", ".js", ".css", ".svg", ".json", ".txt", ".map"}


def toc_docnames(book_dir: Path) -> list[str]:
    """Return the document names of ``book_dir/_toc.yml`` in reading order.

    The root document comes first, then every file of every part and section, depth first,
    as the book's sidebar lists them. Glob entries are expanded against the source files.
    """
    from sphinx_external_toc.api import GlobItem
    from sphinx_external_toc.parsing import parse_toc_yaml

    site_map = parse_toc_yaml(book_dir / "_toc.yml")
    names: list[str] = []

    def visit(docname: str) -> None:
        name = docname
        for suffix in SOURCE_SUFFIXES:  # `file: intro.md` names the page `intro`
            name = name.removesuffix(suffix)
        if name in names:
            return
        names.append(name)
        if docname not in site_map:  # found by a glob: a leaf page
            return
        for subtree in site_map[docname].subtrees:
            for item in subtree.items:
                if isinstance(item, GlobItem):
                    for path in sorted(book_dir.glob(item + ".*")):
                        if path.suffix in SOURCE_SUFFIXES:
                            visit(path.relative_to(book_dir).with_suffix("").as_posix())
                elif isinstance(item, str):  # a file; URL items are not pages of the book
                    visit(item)

    visit(site_map.root.docname)
    return names


class _References(HTMLParser):
    """Collect the local files a page loads: images, scripts and stylesheets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "img" and attributes.get("src"):
            self.images.append(attributes["src"])
        elif tag == "script" and attributes.get("src"):
            self.scripts.append(attributes["src"])
        elif tag == "link" and attributes.get("href"):
            rels = set(attributes.get("rel", "").lower().split())
            if rels & LOADING_LINK_RELS:
                is_script = attributes.get("as", "") == "script"
                (self.scripts if is_script else self.styles).append(attributes["href"])


def _local_file(site_dir: Path, page: Path, reference: str) -> Path | None:
    """Map a reference found in ``page`` to a file under ``site_dir``, or None if remote."""
    parts = urlsplit(reference)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    base = site_dir if parts.path.startswith("/") else page.parent
    path = (base / unquote(parts.path).lstrip("/")).resolve()
    return path if path.is_file() and path.is_relative_to(site_dir.resolve()) else None


def _with_css_imports(site_dir: Path, stylesheets: set[Path]) -> set[Path]:
    """Add the stylesheets that ``stylesheets`` pull in with ``@import``, recursively."""
    pending, seen = list(stylesheets), set(stylesheets)
    while pending:
        sheet = pending.pop()
        for reference in CSS_IMPORT.findall(sheet.read_text(encoding="utf-8", errors="replace")):
            imported = _local_file(site_dir, sheet, reference)
            if imported is not None and imported not in seen:
                seen.add(imported)
                pending.append(imported)
    return seen


@functools.cache
def transfer_size(path: Path) -> int:
    """Bytes a compressing host sends for ``path``: gzip (level 6) for text, raw otherwise."""
    if path.suffix.lower() in COMPRESSED_SUFFIXES:
        return len(gzip.compress(path.read_bytes(), compresslevel=6))
    return path.stat().st_size


@dataclass
class PageWeight:
    """Bytes one page costs a first-time reader, split by kind of file."""

    docname: str
    html: int
    images: int
    scripts: int
    styles: int
    transfer: int
    files: list[Path] = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        """All bytes together: HTML, images, scripts and stylesheets."""
        return self.html + self.images + self.scripts + self.styles


def page_weight(site_dir: Path, docname: str) -> PageWeight:
    """Weigh the built page of ``docname`` (for example ``"chapters/01_recurrent_networks"``).

    Raises
    ------
    FileNotFoundError
        If ``site_dir`` has no HTML page for ``docname``.
    """
    page = site_dir / f"{docname}.html"
    if not page.is_file():
        raise FileNotFoundError(f"docname {docname!r} has no built page: {page} does not exist")
    parser = _References()
    parser.feed(page.read_text(encoding="utf-8"))

    def local(references: list[str]) -> set[Path]:
        files = (_local_file(site_dir, page, reference) for reference in references)
        return {path for path in files if path is not None}

    images, scripts = local(parser.images), local(parser.scripts)
    styles = _with_css_imports(site_dir, local(parser.styles))
    return PageWeight(
        docname=docname,
        html=page.stat().st_size,
        images=sum(path.stat().st_size for path in images),
        scripts=sum(path.stat().st_size for path in scripts),
        styles=sum(path.stat().st_size for path in styles),
        transfer=sum(transfer_size(path) for path in {page} | images | scripts | styles),
        files=sorted(images | scripts | styles),
    )


def format_table(weights: list[PageWeight]) -> str:
    """Render ``weights`` as a plain-text table in kilobytes (1 kB = 1000 bytes)."""
    width = max([len("page")] + [len(weight.docname) for weight in weights])
    columns = ("html", "images", "scripts", "styles", "total", "transfer")
    lines = [f"{'page':<{width}}" + "".join(f"{name + ' kB':>13}" for name in columns)]
    lines.append("-" * len(lines[0]))
    for weight in weights:
        values = [getattr(weight, name) for name in columns]
        lines.append(f"{weight.docname:<{width}}" + "".join(f"{v / 1000:>13.1f}" for v in values))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--book-dir",
        type=Path,
        default=REPOSITORY_ROOT,
        help="the book's source directory; its _build/html is weighed (default: this repository)",
    )
    parser.add_argument(
        "--max-mb",
        type=float,
        default=None,
        help="exit with status 1 if a chapter page weighs more than this many megabytes",
    )
    arguments = parser.parse_args(argv)
    site_dir = arguments.book_dir / "_build" / "html"
    if not (site_dir / "index.html").is_file():
        print(f"No built book in {site_dir}: run `make book` first.", file=sys.stderr)
        return 2
    weights = [page_weight(site_dir, name) for name in toc_docnames(arguments.book_dir)]
    print(format_table(weights))
    if arguments.max_mb is not None:
        limit = arguments.max_mb * 1e6
        heavy = [w for w in weights if w.docname.startswith("chapters/") and w.transfer > limit]
        for weight in heavy:
            print(
                f"{weight.docname} transfers {weight.transfer / 1e6:.2f} MB, more than "
                f"{arguments.max_mb} MB",
                file=sys.stderr,
            )
        return 1 if heavy else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
