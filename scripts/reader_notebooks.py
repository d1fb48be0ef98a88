"""Reader notebooks: the executed chapters, written for Jupyter, Colab and VS Code.

    python scripts/reader_notebooks.py [--build _build] [--out _build/notebooks]
                                       [--chapters 03 ...] [--site-url URL]
                                       [--no-downloads] [--report]

Jupyter, Colab and VS Code render a notebook's Markdown as plain CommonMark: the chapters'
MyST (glued numbers, exercises, citations, equation labels, cross-references) shows there as
raw markup. This script reads the chapters as the book build executed them (the outputs from
the build's jupyter-cache, the numbering from its Sphinx environment) and writes, for each
chapter, a notebook that reads like the website:

* every ``{glue:text}`` (and ``{glue}``, ``{glue:md}``) value is written into the prose,
  formatted as myst-nb formats it on the website; a line at the top says that the numbers
  come from the book's run and that the reader's run may differ a little;
* sphinx-exercise exercises become numbered headings ("Exercise 3.1 (title)"), their
  solutions are folded in ``<details>`` (which Jupyter, Colab and VS Code render), and code
  cells with a reference answer (``### BEGIN SOLUTION``) are collapsed;
* ``{cite}`` becomes "(Author, year)" linked to the website's bibliography, and a reference
  list closes the notebook; ``{eq}`` becomes the equation's number (equations carry
  ``\\tag{n}``); ``{ref}``, ``{numref}`` and ``{doc}`` become links to the website; labels
  and targets disappear; headings carry the website's section numbers;
* cells hidden on the website stay (the run needs them) but are collapsed and titled: the
  setup cell, and checks (tagged ``check``); live explorers (tagged ``remove-cell`` because a
  website cannot run a widget) stay open; plotting cells (``hide-input``) are collapsed.
  Collapsed means JupyterLab's ``jupyter.source_hidden`` and Colab's form view (``cellView:
  form`` with a ``# @title`` first line, which JupyterLab shows on the collapsed cell);
* website-only wording: ``{only} html`` blocks are dropped and ``{only} notebook`` blocks
  kept (the website drops those), a Markdown cell tagged ``remove-cell`` is notebook-only
  text, and a short list of phrase rules (``NOTEBOOK_WORDING``) rewrites the website's words
  for the notebook ("a hidden cell" becomes "a collapsed cell", ...).

MyST is parsed with myst-parser's markdown-it configuration: every construct is found as a
token, and only its own span of the source is rewritten. A construct without a notebook form
stops the script with the chapter, cell and construct named.

The notebooks go to ``_build/notebooks/chapters/`` (the path the launch buttons use, so the
folder can be published as a branch), with a README and a ``requirements.txt`` for Binder;
each also replaces the chapter's ``.ipynb`` download in ``_build/html/_sources/`` (unless
``--no-downloads``). ``--report`` prints, per chapter, the raw MyST constructs of the
source and of the reader notebook.
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import functools
import importlib.util
import json
import mimetypes
import pickle
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml
from nbformat.v4.nbbase import new_markdown_cell, random_cell_id

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUILD = ROOT / "_build"
CHAPTERS = "chapters"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Runtime packages a Binder session needs besides the library (pins from requirements.txt).
BINDER_PACKAGES = ("torch", "numpy", "scipy", "pandas", "statsmodels", "matplotlib",
                   "ipywidgets", "tqdm")

# The website's words, as they read in a notebook. Applied to prose only (never to code,
# math or links), with any run of whitespace matching a space; the first rules win.
NOTEBOOK_WORDING: tuple[tuple[str, str], ...] = (
    ("Run this chapter in Jupyter or Colab (the launch button at the top of the page) to get",
     "Run the cell below to get"),
    (" (the launch button at the top of the page)", ""),
    ("In a live notebook (Jupyter or Colab), the hidden cell below", "The cell below"),
    ("In a live notebook, the slider below", "The slider below"),
    ("On this page, the static version below", "The static version below"),
    ("its counterpart on this page", "its counterpart in this notebook"),
    ("the machine that built this page", "the machine that built the book"),
    ("the CPU that built this page", "the CPU that built the book"),
    ("this page's runs", "this chapter's runs"),
    ("On this page, the figure after it", "The figure after it"),
    ("this page was built on", "the book was built on"),
    ("on this page", "in this notebook"),
    ("the hidden cell below", "the cell below"),
    ("The hidden cell", "The collapsed cell"),
    ("the hidden cell", "the collapsed cell"),
    ("A hidden cell", "A collapsed cell"),
    ("a hidden cell", "a collapsed cell"),
)
# What must not be left in a reader notebook's prose (tests/test_reader_notebooks.py).
WEBSITE_ONLY_PHRASES = ("launch button", "this page", "hidden cell", "top of the page")

ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
               "warning": "Warning", "caution": "Caution", "attention": "Attention",
               "danger": "Danger", "error": "Error", "seealso": "See also"}
BOXES = {"margin", "sidebar", "topic", "epigraph", "admonition", "dropdown", "toggle"}
DROPPED_DIRECTIVES = {"bibliography", "tableofcontents", "contents"}
TEXT_ROLES = {"abbr": None, "term": None, "guilabel": None, "menuselection": None,
              "kbd": "code", "file": "code", "samp": "code", "command": "code",
              "code": "code", "py:func": "code", "py:class": "code", "py:meth": "code",
              "py:mod": "code", "py:attr": "code", "py:obj": "code", "py:data": "code",
              "func": "code", "class": "code", "meth": "code", "mod": "code", "attr": "code",
              "obj": "code", "data": "code"}


class ConversionError(ValueError):
    """A chapter uses a construct that has no notebook form (or refers to nothing)."""


def _load_setup_cell() -> Any:
    """scripts/setup_cell.py, the one place that knows the setup cell's text."""
    spec = importlib.util.spec_from_file_location("setup_cell", Path(__file__).with_name(
        "setup_cell.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_cell = _load_setup_cell()


# --------------------------------------------------------------------------------------
# What the website knows: numbers, anchors and citations from the build's Sphinx environment
# --------------------------------------------------------------------------------------


@dataclass
class Site:
    """Numbering and anchors of the built website, for one build."""

    url: str  # ends with "/"
    titles: dict[str, str] = field(default_factory=dict)  # docname -> title
    secnumbers: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (anchor, title)
    labels: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # doc, anchor, title
    equations: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> doc, number
    exercises: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> doc, anchor
    numfig_format: dict[str, str] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)
    book_title: str = ""
    doctrees: Path | None = None  # the build's .doctrees, for the ids of sections

    def section_anchor(self, docname: str, labelid: str) -> str:
        """The first id of the section that a label names (the website numbers by it)."""
        if self.doctrees is None:
            return labelid
        from docutils import nodes

        with (self.doctrees / f"{docname}.doctree").open("rb") as stream:
            doctree = pickle.load(stream)  # noqa: S301 - the book's own build
        for section in doctree.findall(nodes.section):
            if labelid in section["ids"]:
                return section["ids"][0]
        return labelid

    def page(self, docname: str, anchor: str = "") -> str:
        anchor = anchor.lstrip("#")
        return f"{self.url}{docname}.html" + (f"#{anchor}" if anchor else "")

    def number(self, docname: str, anchor: str = "") -> str:
        numbers = self.secnumbers.get(docname, {}).get(f"#{anchor}" if anchor else "")
        return ".".join(map(str, numbers)) if numbers else ""


def site_url(config: dict, override: str | None = None) -> str:
    """The website's address: ``--site-url``, else ``html.baseurl``, else GitHub Pages'."""
    url = override or (config.get("html") or {}).get("baseurl") or ""
    if not url:
        repository = (config.get("repository") or {}).get("url", "").rstrip("/")
        match = re.match(r"https://github\.com/([^/]+)/([^/]+)$", repository)
        if not match:
            raise ConversionError("cannot tell the website's address: set html.baseurl in "
                                  "_config.yml or pass --site-url")
        owner, name = match[1], match[2]
        url = (f"https://{owner}.github.io/" if name == f"{owner}.github.io"
               else f"https://{owner}.github.io/{name}/")
    return url if url.endswith("/") else url + "/"


def _toc_entries(node: Any) -> Iterator[tuple[str, str]]:
    """(anchor, title) of a page's local table of contents, in document order."""
    from docutils import nodes
    from sphinx import addnodes

    for child in node.children if hasattr(node, "children") else ():
        if isinstance(child, addnodes.compact_paragraph):
            for reference in child.findall(nodes.reference):
                yield reference.get("anchorname", ""), reference.astext()
                break
        else:
            yield from _toc_entries(child)


def load_site(build: Path, config: dict, url: str) -> Site:
    """The website's numbering, read from the Sphinx environment of the build in ``build``."""
    path = build / ".doctrees" / "environment.pickle"
    if not path.exists():
        raise ConversionError(f"{path} is missing: build the book first (make book)")
    with path.open("rb") as stream:
        env = pickle.load(stream)  # noqa: S301 - the book's own build
    site = Site(url=url, book_title=str(config.get("title", "")), doctrees=path.parent)
    site.numfig_format = dict(env.config.numfig_format or {})
    site.numfig_format.setdefault("exercise", "Exercise %s")
    site.substitutions = dict(getattr(env.config, "myst_substitutions", {}) or {})
    site.titles = {doc: title.astext() for doc, title in env.titles.items()}
    site.secnumbers = {doc: dict(numbers) for doc, numbers in env.toc_secnumbers.items()}
    site.sections = {doc: list(_toc_entries(toc)) for doc, toc in env.tocs.items()}
    for label, (doc, anchor, title) in env.domaindata["std"]["labels"].items():
        site.labels[label] = (doc, anchor, title)
    fignumbers = env.toc_fignumbers
    for label, (doc, number) in env.domaindata["math"]["objects"].items():
        numbers = fignumbers.get(doc, {}).get("displaymath", {}).get(f"equation-{label}")
        site.equations[label] = (doc, ".".join(map(str, numbers)) if numbers else str(number))
    for label, entry in getattr(env, "sphinx_exercise_registry", {}).items():
        if entry.get("type") != "exercise":
            continue
        node, doc = entry["node"], entry["docname"]
        numbers = fignumbers.get(doc, {}).get("exercise", {}).get(label)
        subtitle = next((n.astext() for n in node.findall() if
                         type(n).__name__ == "exercise_subtitle"), "")
        site.exercises[label] = (doc, ".".join(map(str, numbers)) if numbers else None,
                                 subtitle)
    cite = env.domaindata.get("cite", {})
    for citation in cite.get("citations", []):
        site.citations.setdefault(citation.key, (citation.bibliography_key.docname,
                                                 citation.citation_id))
    return site


# --------------------------------------------------------------------------------------
# The executed chapter and its glued values
# --------------------------------------------------------------------------------------


def executed_notebook(source: Path, build: Path, docname: str) -> nbformat.NotebookNode:
    """The chapter as the build executed it: from the jupyter-cache, else jupyter_execute."""
    notebook = nbformat.read(source, as_version=4)
    cache_dir = build / ".jupyter_cache"
    if cache_dir.exists():
        from jupyter_cache import get_cache

        try:
            _, merged = get_cache(str(cache_dir)).merge_match_into_notebook(notebook)
            return merged
        except KeyError:
            pass
    executed = build / "jupyter_execute" / f"{docname}.ipynb"
    glue_file = executed.with_suffix(".glue.json")
    if executed.exists():
        copy_ = nbformat.read(executed, as_version=4)
        ran = any(c.get("outputs") for c in copy_.cells if c.cell_type == "code")
        same = [c.source for c in copy_.cells] == [c.source for c in notebook.cells]
        if ran and same:
            if glue_file.exists():  # myst-nb moved the glued values out of the cells
                copy_.metadata["reader_glue"] = json.loads(glue_file.read_text())
            return copy_
    raise ConversionError(
        f"{source.name}: the build in {build} holds no executed copy of this chapter as it "
        "is now (it failed to run, or changed since the last build); run `make book` first")


def take_glue(notebook: nbformat.NotebookNode) -> dict[str, dict]:
    """Remove the glued values from the outputs and return them: name -> mime bundle."""
    glue = {name: dict(value["data"]) for name, value in
            notebook.metadata.pop("reader_glue", {}).items()}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook is None:
                kept.append(output)
                continue
            prefix = len(scrapbook.get("mime_prefix", ""))
            glue[scrapbook["name"]] = {key[prefix:]: value
                                       for key, value in output.get("data", {}).items()}
            if not prefix:  # displayed as well as glued
                kept.append(output)
        cell.outputs = kept
    return glue


def format_glue_text(bundle: dict, spec: str) -> str:
    """A glued value as ``{glue:text}`name:spec``` shows it on the website."""
    from myst_nb.core.variables import format_plain_text

    if "text/plain" not in bundle:
        raise ConversionError("has no text/plain representation")
    return format_plain_text(bundle["text/plain"], spec)


# --------------------------------------------------------------------------------------
# Citations
# --------------------------------------------------------------------------------------


@functools.cache
def _bibliography(path: str):
    from pybtex.database import parse_file

    return parse_file(path)


def _plain(latex: str) -> str:
    from pybtex.richtext import Text

    return Text.from_latex(latex).render_as("text")


def author_year(entry: Any) -> tuple[str, str]:
    """("Bengio et al.", "1994"): the author-year label of a bibliography entry."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain(" ".join(person.last_names)) for person in people]
    if not names:
        authors = _plain(entry.fields.get("title", entry.key))
    elif len(names) == 1:
        authors = names[0]
    elif len(names) == 2:
        authors = f"{names[0]} and {names[1]}"
    else:
        authors = f"{names[0]} et al."
    return authors, entry.fields.get("year", "n.d.")


def reference_entry(entry: Any) -> str:
    """One entry of the reference list, in Markdown."""
    from pybtex.plugin import find_plugin

    try:
        style = find_plugin("pybtex.style.formatting", "plain")()
        formatted = next(iter(style.format_entries([entry])))
        text = formatted.text.render(find_plugin("pybtex.backends", "markdown")())
        text = re.sub(r"\\([.()\-])", r"\1", text)  # escapes that CommonMark does not need here
    except Exception:  # an entry the plain style cannot format: authors, year, title
        authors, year = author_year(entry)
        text = f"{authors} ({year}). {_plain(entry.fields.get('title', ''))}."
    return " ".join(text.split())


# --------------------------------------------------------------------------------------
# MyST to CommonMark
# --------------------------------------------------------------------------------------


@functools.cache
def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions={"amsmath", "dollarmath", "colon_fence",
                                               "deflist", "substitution", "html_image"})
    return create_md_parser(config, RendererHTML)


def parse(text: str) -> list:
    return _parser().parse(text)


def _walk(tokens: Iterable) -> Iterator:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


DIRECTIVE_INFO = re.compile(r"^\{([^}\s]+)\}\s*(.*)$")


def directive_parts(token: Any) -> tuple[str, str, dict[str, str], str] | None:
    """(name, argument, options, body) of a MyST directive fence, or None."""
    if token.type not in ("fence", "colon_fence"):
        return None
    match = DIRECTIVE_INFO.match(token.info.strip())
    if not match:
        return None
    lines = token.content.splitlines()
    options: dict[str, str] = {}
    start = 0
    if lines and lines[0].strip() == "---":  # options as a YAML block
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            options = {str(k): str(v) for k, v in (yaml.safe_load(
                "\n".join(lines[1:end])) or {}).items()}
            start = end + 1
    else:
        while start < len(lines):
            option = re.match(r"^:([\w-]+):\s*(.*)$", lines[start])
            if not option:
                break
            options[option[1]] = option[2].strip()
            start += 1
    return match[1], match[2].strip(), options, "\n".join(lines[start:]).strip("\n")


def _normalise_title(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def escape_markdown(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def _safe_at_line_start(text: str) -> str:
    """Text that starts a line, escaped so that it cannot begin a list, heading or quote."""
    text = re.sub(r"^(\d{1,9})([.)])(?=\s|$)", r"\1\\\2", text)
    return re.sub(r"^([-+*])(?=\s|$)|^([#>])", lambda m: "\\" + (m[1] or m[2]), text)


def apply_wording(text: str) -> str:
    """``NOTEBOOK_WORDING`` on a piece of prose (any whitespace matches a space)."""
    for website, notebook in NOTEBOOK_WORDING:
        pattern = r"\s+".join(re.escape(word) for word in website.split(" ") if word)
        if website.startswith(" "):
            pattern = r"\s+" + pattern
        text = re.sub(pattern, notebook.replace("\\", "\\\\"), text)
    return text


@dataclass
class Edit:
    start: int
    end: int
    text: str


class Chapter:
    """The conversion of one chapter: its website data and what it has cited so far."""

    def __init__(self, docname: str, site: Site, glue: dict[str, dict], bibfile: Path,
                 metadata_substitutions: dict | None = None) -> None:
        self.docname = docname
        self.site = site
        self.glue = glue
        self.bibfile = bibfile
        self.cited: list[str] = []
        self.heading_level = 1
        self.sections = list(site.sections.get(docname, []))
        self.substitutions = {**site.substitutions, **(metadata_substitutions or {})}
        self.attachments: dict[str, dict[str, str]] = {}
        self.where = ""

    def fail(self, message: str) -> ConversionError:
        return ConversionError(f"{self.docname}.ipynb, {self.where}: {message}")

    # -- Markdown text -------------------------------------------------------------------

    def convert(self, text: str, *, top: bool = False) -> str:
        """``text`` (MyST) as CommonMark; ``top`` for a cell's own text (headings numbered)."""
        tokens = parse(text)
        offsets = [0]
        for line in text.splitlines(keepends=True):
            offsets.append(offsets[-1] + len(line))

        def span(lines: list[int]) -> tuple[int, int]:
            return offsets[lines[0]], offsets[min(lines[1], len(offsets) - 1)]

        edits: list[Edit] = []
        for index, token in enumerate(tokens):
            if token.map is None:
                continue
            start, end = span(token.map)
            parts = directive_parts(token)
            if parts:
                indent = re.match(r"[ \t]*", text[start:end])[0]
                new = self.directive(*parts)
                new = "".join(indent + line if line.strip() else line
                              for line in new.splitlines(keepends=True))
                edits.append(Edit(start, end, new.rstrip("\n") + "\n"))
            elif token.type in ("myst_target", "myst_line_comment", "myst_block_break"):
                edits.append(Edit(start, end, ""))
            elif token.type == "math_block_label":
                edits.append(Edit(start, end, self.display_math(token.content, token.info)))
            elif token.type == "amsmath":
                edits.append(Edit(start, end, f"$$\n{token.content.strip()}\n$$\n"))
            elif token.type == "substitution_block":
                edits.append(Edit(start, end, self.substitution(token.content) + "\n"))
            elif token.type == "heading_open" and top and token.level == 0:
                edits += self.heading(text, start, tokens[index + 1], int(token.tag[1]))
            elif token.type == "inline":
                edits += self.inline(text, start, end, token)
        return self._apply(text, edits)

    @staticmethod
    def _apply(text: str, edits: list[Edit]) -> str:
        for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
            text = text[:edit.start] + edit.text + text[edit.end:]
        return text

    def heading(self, text: str, start: int, inline: Any, level: int) -> list[Edit]:
        self.heading_level = level
        title = inline.content
        if not self.sections:
            raise self.fail(f"the heading {title!r} is not a section of the website's page")
        anchor, site_title = self.sections.pop(0)
        if _normalise_title(site_title) != _normalise_title(
                re.sub(r"\{[\w:-]+\}`([^`]*)`", r"\1", title)):
            raise self.fail(f"the heading {title!r} does not match the website's section "
                            f"{site_title!r}; is the build older than the chapter?")
        number = self.site.number(self.docname, anchor.lstrip("#"))
        marker = re.match(r"#{1,6}[ \t]+", text[start:])
        edits = []
        if number and marker:
            position = start + marker.end()
            edits.append(Edit(position, position, f"{number}. "))
        return edits

    def inline(self, text: str, start: int, end: int, token: Any) -> list[Edit]:
        """Edits for the roles of one inline token, and the wording of its prose."""
        edits: list[Edit] = []
        cursor = start
        protected: list[tuple[int, int]] = []
        for child in token.children or ():
            if child.type == "code_inline":
                opening = text.find(child.markup, cursor, end)
                closing = text.find(child.markup, opening + len(child.markup), end)
                if opening < 0 or closing < 0:
                    continue
                cursor = closing + len(child.markup)
                protected.append((opening, cursor))
            elif child.type in ("math_inline", "math_inline_double"):
                opening = text.find(child.markup, cursor, end)
                inner = text.find(child.content, opening + 1, end)
                if opening < 0 or inner < 0:
                    continue
                cursor = text.find(child.markup, inner + len(child.content), end)
                cursor = (cursor + len(child.markup)) if cursor >= 0 else inner
                protected.append((opening, cursor))
            elif child.type == "myst_role":
                name = child.meta["name"]
                opening = text.find("{" + name + "}", cursor, end)
                if opening < 0:
                    raise self.fail(f"cannot find the role {{{name}}}`{child.content}`")
                ticks = re.match(r"`+", text[opening + len(name) + 2:])
                closing = text.find(ticks[0], opening + len(name) + 2 + len(ticks[0]), end)
                cursor = closing + len(ticks[0])
                protected.append((opening, cursor))
                new = self.role(name, child.content)
                if not text[text.rfind("\n", 0, opening) + 1:opening].strip():
                    new = _safe_at_line_start(new)
                    if re.fullmatch(r"\d{1,9}", new) and re.match(r"[.)](\s|$)", text[cursor:]):
                        new += "\\"  # "4. Then" at a line's start would begin a list
                edits.append(Edit(opening, cursor, new))
            elif child.type in ("link_open", "image", "html_inline"):
                target = child.attrGet("href") or child.attrGet("src") or child.content
                if target:
                    found = text.find(str(target), cursor, end)
                    if found >= 0:
                        protected.append((found, found + len(str(target))))
                        cursor = found + len(str(target))
            elif child.type == "substitution_inline":
                opening = text.find("{{", cursor, end)
                closing = text.find("}}", opening, end)
                cursor = closing + 2
                protected.append((opening, cursor))
                edits.append(Edit(opening, cursor, self.substitution(child.content)))
        # The wording rules, on the prose between the protected spans.
        gaps, position = [], start
        for first, last in sorted(protected):
            gaps.append((position, first))
            position = max(position, last)
        gaps.append((position, end))
        for first, last in gaps:
            if last > first:
                new = apply_wording(text[first:last])
                if new != text[first:last]:
                    edits.append(Edit(first, last, new))
        return edits

    def substitution(self, key: str) -> str:
        key = key.strip()
        if key not in self.substitutions:
            raise self.fail(f"substitution {{{{ {key} }}}} is not defined (myst_substitutions)")
        return str(self.substitutions[key])

    # -- roles ---------------------------------------------------------------------------

    def role(self, name: str, content: str) -> str:
        if name.startswith("glue"):
            return self.glue_role(name, content)
        if name == "cite" or name.startswith("cite:"):
            return self.cite(name, content)
        if name == "eq":
            return self.equation_reference(content)
        if name in ("ref", "numref", "doc"):
            return self.reference(name, content)
        if name == "math":
            return f"${content}$"
        if name in ("sub", "sup"):
            return f"<{name}>{escape_markdown(content)}</{name}>"
        if name in TEXT_ROLES:
            shown = re.sub(r"\s*\(.*\)$", "", content) if name == "abbr" else content
            shown = re.sub(r"^(.*?)\s*<[^>]+>$", r"\1", shown)  # term `text <target>`
            return f"`{shown}`" if TEXT_ROLES[name] == "code" else escape_markdown(shown)
        raise self.fail(f"the role {{{name}}} has no notebook form (add it to "
                        "scripts/reader_notebooks.py or write the sentence without it)")

    def _glued(self, key: str) -> dict:
        if "::" in key:
            raise self.fail(f"glue from another document ({key!r}) has no notebook form")
        if key not in self.glue:
            raise self.fail(f"no value was glued under {key!r} in the book's run")
        return self.glue[key]

    def glue_role(self, name: str, content: str) -> str:
        if name == "glue:text":
            key, _, spec = content.partition(":")
            try:  # a glued phrase is prose too: the notebook's wording applies
                return escape_markdown(apply_wording(format_glue_text(self._glued(key.strip()),
                                                                      spec)))
            except ConversionError as error:
                raise self.fail(f"{{glue:text}}`{content}`: {error}") from None
            except (ValueError, TypeError) as error:
                raise self.fail(f"{{glue:text}}`{content}`: cannot format: {error}") from None
        bundle = self._glued(content.partition(":")[0].strip() if name == "glue:md"
                             else content.strip())
        if name == "glue:md" or (name in ("glue", "glue:", "glue:any")
                                 and "text/markdown" in bundle):
            if "text/markdown" not in bundle:
                raise self.fail(f"{{{name}}}`{content}` has no text/markdown value")
            return str(bundle["text/markdown"]).strip()
        if name in ("glue", "glue:", "glue:any"):
            if "text/latex" in bundle:
                return str(bundle["text/latex"]).strip()
            return escape_markdown(format_glue_text(bundle, ""))
        raise self.fail(f"the role {{{name}}} has no notebook form")

    def cite(self, name: str, content: str) -> str:
        variant = name.partition(":")[2] or "p"
        bibliography = _bibliography(str(self.bibfile))
        parts = []
        for key in (k.strip() for k in content.split(",") if k.strip()):
            if key not in bibliography.entries:
                raise self.fail(f"{{cite}}`{key}` is not in {self.bibfile.name}")
            if key not in self.cited:
                self.cited.append(key)
            authors, year = author_year(bibliography.entries[key])
            link = self.citation_link(key)
            if variant in ("p", "ps", "alp"):
                parts.append(f"[{authors}, {year}]({link})")
            elif variant in ("t", "ts"):
                parts.append(f"[{authors} ({year})]({link})")
            elif variant == "author":
                parts.append(f"[{authors}]({link})")
            elif variant == "year":
                parts.append(f"[{year}]({link})")
            else:
                raise self.fail(f"the role {{{name}}} has no notebook form")
        if variant in ("p", "ps"):
            return "(" + "; ".join(parts) + ")"
        return ", ".join(parts) if variant != "alp" else "; ".join(parts)

    def citation_link(self, key: str) -> str:
        if key in self.site.citations:
            return self.site.page(*self.site.citations[key])
        bibliography_page = next((doc for doc, title in self.site.titles.items()
                                  if doc.endswith("bibliography")), "bibliography")
        return self.site.page(bibliography_page)

    def equation_reference(self, label: str) -> str:
        label = re.sub(r"^.*<([^>]+)>$", r"\1", label.strip())
        if label not in self.site.equations:
            raise self.fail(f"{{eq}}`{label}`: no such equation on the website")
        doc, number = self.site.equations[label]
        if doc == self.docname:
            return f"({number})"
        return f"[({number})]({self.site.page(doc, 'equation-' + label)})"

    def reference(self, name: str, content: str) -> str:
        explicit = re.match(r"^(.*?)\s*<([^>]+)>$", content.strip(), re.S)
        text, label = (explicit[1], explicit[2]) if explicit else (None, content.strip())
        if name == "doc":
            doc = label.removesuffix(".md").removesuffix(".ipynb").lstrip("/")
            if "/" not in doc and self.docname.count("/"):
                doc = f"{self.docname.rsplit('/', 1)[0]}/{doc}"
            if doc not in self.site.titles:
                raise self.fail(f"{{doc}}`{content}`: no such page on the website")
            return f"[{escape_markdown(text or self.site.titles[doc])}]({self.site.page(doc)})"
        if label in self.site.exercises:
            doc, number, title = self.site.exercises[label]
            numbered = (self.site.numfig_format["exercise"] % number) if number else "Exercise"
            link = self.site.page(doc, label)
            if name == "numref":
                shown = (text.replace("{number}", number or "").replace("%s", number or "")
                         if text else numbered)
            else:
                shown = text or (f"{numbered} ({title})" if title else numbered)
            return f"[{escape_markdown(shown)}]({link})" if doc != self.docname else \
                escape_markdown(shown)
        if label in self.site.equations:
            return self.equation_reference(label)
        if label not in self.site.labels:
            raise self.fail(f"{{{name}}}`{content}`: no such label on the website")
        doc, anchor, title = self.site.labels[label]
        link = self.site.page(doc, anchor)
        if name == "numref":
            number = self.site.number(doc, self.site.section_anchor(doc, anchor))
            if not number:
                raise self.fail(f"{{numref}}`{content}`: the target has no number")
            template = text or self.site.numfig_format.get("section", "Section %s")
            shown = template.replace("{number}", number).replace("%s", number)
        else:
            shown = text or title
        return f"[{escape_markdown(shown)}]({link})"

    # -- directives ----------------------------------------------------------------------

    def display_math(self, content: str, label: str = "") -> str:
        body = content.strip("\n")
        if label:
            if label not in self.site.equations:
                raise self.fail(f"equation ({label}) is not numbered on the website")
            body += f" \\tag{{{self.site.equations[label][1]}}}"
        return f"$$\n{body}\n$$\n"

    def directive(self, name: str, argument: str, options: dict[str, str], body: str) -> str:
        if name == "exercise":
            return self.exercise(argument, options, body)
        if name == "solution":
            return self.solution(argument, body)
        if name in ("exercise-start", "solution-start", "exercise-end", "solution-end"):
            raise self.fail(f"{{{name}}} (an exercise or solution over several cells) has no "
                            "notebook form yet; use {exercise} and {solution} blocks")
        if name == "only":
            from sphinx.util.tags import Tags

            keep = Tags(["notebook", "reader"]).eval_condition(argument)
            return self.convert(body) if keep else ""
        if name == "math":
            return self.display_math(body, options.get("label", ""))
        if name in ("code-block", "code", "sourcecode", "code-cell"):
            fence = "````" if "```" in body else "```"
            return f"{fence}{argument}\n{body}\n{fence}\n"
        if name in DROPPED_DIRECTIVES:
            return ""
        if name in ("figure", "image"):
            return self.figure(argument, options, body)
        if name in ("glue", "glue:", "glue:any", "glue:figure", "glue:math", "glue:md"):
            return self.glue_directive(name, argument, options, body)
        if name in ADMONITIONS or name in BOXES:
            return self.box(name, argument, options, body)
        raise self.fail(f"the directive {{{name}}} has no notebook form (add it to "
                        "scripts/reader_notebooks.py or write the text without it)")

    def exercise(self, argument: str, options: dict[str, str], body: str) -> str:
        label = options.get("label", "")
        number = self.site.exercises.get(label, (None, None, ""))[1]
        if label and label not in self.site.exercises:
            raise self.fail(f"exercise {label!r} is not on the website")
        heading = "Exercise" + (f" {number}" if number and "nonumber" not in options else "")
        title = self.convert(argument).strip() if argument else ""
        level = min(self.heading_level + 1, 6)
        return (f"{'#' * level} {heading}" + (f" ({title})" if title else "") + "\n\n"
                + self.convert(body).strip("\n") + "\n")

    def solution(self, label: str, body: str) -> str:
        label = label.strip()
        if label not in self.site.exercises:
            raise self.fail(f"solution to {label!r}, which is not an exercise of the website")
        _, number, title = self.site.exercises[label]
        summary = f"Solution to Exercise {number}" if number else "Solution"
        summary += f" ({escape_markdown(title)})" if title else ""
        return self.details(summary, self.convert(body))

    @staticmethod
    def details(summary: str, body: str) -> str:
        return (f"<details>\n<summary><b>{summary}</b> (click to open)</summary>\n\n"
                f"{body.strip()}\n\n</details>\n")

    def box(self, name: str, argument: str, options: dict[str, str], body: str) -> str:
        title = self.convert(argument).strip() if argument else ADMONITIONS.get(name, "")
        if name == "admonition" and not title:
            raise self.fail("{admonition} needs a title")
        content = self.convert(body).strip("\n")
        if name in ("dropdown", "toggle") or "dropdown" in options.get("class", "").split():
            return self.details(title or "More", content)
        quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in
                           ([f"**{title}**", ""] if title else []) + content.splitlines())
        return quoted + "\n"

    def attach(self, name: str, mime: str, data: str) -> str:
        self.attachments[name] = {mime: data}
        return f"attachment:{name}"

    def figure(self, argument: str, options: dict[str, str], caption: str) -> str:
        path = (ROOT / CHAPTERS / argument).resolve() if not argument.startswith("/") else \
            (ROOT / argument.lstrip("/")).resolve()
        if re.match(r"https?://", argument):
            source = argument
        elif path.exists():
            mime = mimetypes.guess_type(path.name)[0] or "image/png"
            source = self.attach(path.name, mime, base64.b64encode(path.read_bytes()).decode())
        else:
            raise self.fail(f"figure {argument!r} not found")
        alt = escape_markdown(options.get("alt", "") or caption.splitlines()[0] if caption
                              else options.get("alt", ""))
        text = f"![{alt}]({source})\n"
        if caption:
            text += f"\n*{self.convert(caption).strip()}*\n"
        return text

    def glue_directive(self, name: str, argument: str, options: dict[str, str],
                       body: str) -> str:
        bundle = self._glued(argument.strip())
        if name == "glue:math" or (name != "glue:figure" and "text/latex" in bundle
                                   and not any(m.startswith("image/") for m in bundle)):
            latex = str(bundle.get("text/latex", "")).strip().strip("$")
            return self.display_math(latex, options.get("label", ""))
        if name == "glue:md":
            return str(bundle.get("text/markdown", "")).strip() + "\n"
        image = next((m for m in ("image/png", "image/jpeg", "image/svg+xml") if m in bundle),
                     None)
        if image:
            data = bundle[image]
            data = data if isinstance(data, str) else "".join(data)
            extension = mimetypes.guess_extension(image) or ".png"
            source = self.attach(f"{argument.strip()}{extension}", image, data)
            text = f"![{escape_markdown(argument.strip())}]({source})\n"
            return text + (f"\n*{self.convert(body).strip()}*\n" if body.strip() else "")
        return escape_markdown(format_glue_text(bundle, "")) + "\n"

    # -- the reference list --------------------------------------------------------------

    def references(self) -> str:
        if not self.cited:
            return ""
        bibliography = _bibliography(str(self.bibfile))
        entries = sorted((bibliography.entries[key] for key in self.cited),
                         key=lambda e: (author_year(e)[0].lower(), author_year(e)[1]))
        lines = ["## References", ""]
        for entry in entries:
            lines.append(f"- {reference_entry(entry)} "
                         f"([on the website]({self.citation_link(entry.key)}))")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Code cells
# --------------------------------------------------------------------------------------


def _is_live(cell: nbformat.NotebookNode) -> bool:
    """A live explorer: hidden on the website because a page cannot run a widget."""
    if any(WIDGET_MIME in output.get("data", {}) for output in cell.get("outputs", [])):
        return True
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return False
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    names = {getattr(f, "id", getattr(f, "attr", "")) for f in calls}
    return any(name.endswith("_explorer") or name in ("interact", "interactive", "display")
               for name in names)


def collapse(cell: nbformat.NotebookNode, title: str, *, outputs: bool = False) -> None:
    """Collapse a code cell in JupyterLab and in Colab, with ``title`` shown on it."""
    lines = cell.source.splitlines()
    if lines and re.match(r"#\s*@title\b", lines[0]):
        lines = lines[1:]
    cell.source = "\n".join([f"# @title {title}", *lines])
    jupyter = cell.metadata.setdefault("jupyter", {})
    jupyter["source_hidden"] = True
    if outputs:
        jupyter["outputs_hidden"] = True
    cell.metadata["cellView"] = "form"


def _tag(cell: nbformat.NotebookNode, tag: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def clean_outputs(cell: nbformat.NotebookNode) -> None:
    """Outputs as the website shows them: no stderr, no dead widgets, streams merged."""
    merged: list = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stderr":
            continue
        data = output.get("data", {})
        if WIDGET_MIME in data:
            continue
        if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == output.name):
            merged[-1].text += output.text
            continue
        merged.append(output)
    cell.outputs = merged


def convert_code_cell(cell: nbformat.NotebookNode, *, first: bool, exercise: str | None,
                      install_from: tuple[str, str] | None = None) -> None:
    """Collapse, title and tag one code cell; ``first`` for the setup cell, which gets the
    canonical install part: for the URL the chapter's cell installs from (a course may point
    it at a wheel), else for the repository and branch ``install_from``."""
    tags = list(cell.metadata.get("tags", []))
    live = _is_live(cell)  # before the dead widget outputs go
    clean_outputs(cell)
    has_figure = any(key.startswith("image/") for output in cell.get("outputs", [])
                     for key in output.get("data", {}))
    if first:
        if install_from:
            try:
                _, own_lines = setup_cell.split_setup(cell.source)
            except ValueError as error:
                raise ConversionError(f"the first code cell is not the setup cell: {error}"
                                      ) from None
            requirement = setup_cell.requirement_of(cell.source)
            cell.source = (setup_cell.render_requirement(requirement, own_lines) if requirement
                           else setup_cell.render(*install_from, own_lines))
        collapse(cell, "Setup: install the book's library if it is missing, and seed the "
                 "random generators")
        _tag(cell, "setup")
    elif BEGIN_SOLUTION in cell.source:
        collapse(cell, f"Reference answer{' to ' + exercise if exercise else ''} (open it "
                 "after trying your own)")
    elif "remove-cell" in tags:
        if live:
            _tag(cell, "live")
        else:
            collapse(cell, "Check: what the text states holds in this run")
            _tag(cell, "check")
    elif {"hide-input", "remove-input", "hide-cell"} & set(tags):
        what = "the figure below" if has_figure else "the output below"
        collapse(cell, f"Code for {what}", outputs="hide-cell" in tags)
    if {"hide-output", "remove-output"} & set(tags):
        cell.metadata.setdefault("jupyter", {})["outputs_hidden"] = True


# --------------------------------------------------------------------------------------
# The notebook
# --------------------------------------------------------------------------------------


def _exercise_names(source: str, site: Site) -> Iterator[str]:
    for token in parse(source):
        parts = directive_parts(token)
        if parts and parts[0] == "exercise" and parts[2].get("label") in site.exercises:
            number = site.exercises[parts[2]["label"]][1]
            yield f"Exercise {number}" if number else "the exercise"


def reader_notebook(executed: nbformat.NotebookNode, docname: str, site: Site,
                    bibfile: Path, install_from: tuple[str, str] | None = None
                    ) -> nbformat.NotebookNode:
    """The reader notebook of one executed chapter (``docname`` as on the website).

    ``install_from`` (ORG/NAME, branch): the setup cell installs the library from there;
    None keeps the chapter's own setup cell.
    """
    notebook = copy.deepcopy(executed)
    glue = take_glue(notebook)
    myst = notebook.metadata.get("myst", {}) or {}
    chapter = Chapter(docname, site, glue, bibfile, myst.get("substitutions"))
    cells = []
    first_code = True
    exercise: str | None = None
    for index, cell in enumerate(notebook.cells):
        chapter.where = f"cell {index}"
        if cell.cell_type == "markdown":
            chapter.attachments = dict(cell.get("attachments", {}))
            cell.source = chapter.convert(cell.source, top=True).strip("\n")
            if chapter.attachments:
                cell["attachments"] = chapter.attachments
            exercise = next(_exercise_names(executed.cells[index].source, site), exercise)
            if "remove-cell" in cell.metadata.get("tags", []):
                _tag(cell, "notebook-only")
            if cell.source.strip():
                cells.append(cell)
        elif cell.cell_type == "code":
            try:
                convert_code_cell(cell, first=first_code, exercise=exercise,
                                  install_from=install_from)
            except ConversionError as error:
                raise chapter.fail(str(error)) from None
            first_code = False
            cells.append(cell)
        else:
            cells.append(cell)
    if chapter.sections:
        raise ConversionError(f"{docname}.ipynb: the website has sections that the notebook "
                              f"lacks: {[title for _, title in chapter.sections]}")
    notebook.cells = cells
    _add_front_matter(notebook, chapter)
    references = chapter.references()
    if references:
        notebook.cells.append(new_markdown_cell(references))
    _finish_metadata(notebook, docname, site)
    for cell in notebook.cells:
        cell.setdefault("id", random_cell_id())
    nbformat.validate(notebook)
    return notebook


def _add_front_matter(notebook: nbformat.NotebookNode, chapter: Chapter) -> None:
    """Title, the note on numbers and the link to the website, above the setup cell."""
    site, docname = chapter.site, chapter.docname
    title = ""
    first_markdown = next((c for c in notebook.cells if c.cell_type == "markdown"), None)
    if first_markdown is not None:
        lines = first_markdown.source.splitlines()
        if lines and lines[0].startswith("# "):
            title, first_markdown.source = lines[0], "\n".join(lines[1:]).strip("\n")
            if not first_markdown.source:
                notebook.cells.remove(first_markdown)
    book = f"*{site.book_title}*" if site.book_title else "the book"
    note = (f"> This notebook is a chapter of {book}; [read it on the website]"
            f"({site.page(docname)}). The numbers in the text come from the book's own run: "
            "when you run the cells, yours may differ a little. Collapsed cells hold the "
            "setup, the checks of the text and the plotting code; click one to open it.")
    notebook.cells.insert(0, new_markdown_cell("\n\n".join(filter(None, [title, note]))))


def _finish_metadata(notebook: nbformat.NotebookNode, docname: str, site: Site) -> None:
    metadata = notebook.metadata
    for key in ("widgets", "myst", "mystnb", "jupytext"):
        metadata.pop(key, None)
    metadata["colab"] = {"provenance": [], "toc_visible": True}
    metadata["through_time"] = {"reader_notebook": True, "source": f"{docname}.ipynb",
                                "website": site.page(docname)}
    notebook.nbformat, notebook.nbformat_minor = 4, max(notebook.nbformat_minor, 5)


# --------------------------------------------------------------------------------------
# Counting raw MyST
# --------------------------------------------------------------------------------------

RAW_PATTERNS = {
    "{glue": re.compile(r"\{glue[:\w]*\}"),
    "```{ / :::{": re.compile(r"(```|:::)\s*\{[\w:-]+\}"),
    "{cite": re.compile(r"\{cite[:\w]*\}"),
    "{eq}": re.compile(r"\{eq\}"),
    "{ref}/{numref}/{doc}": re.compile(r"\{(ref|numref|doc)\}"),
    "(label)=": re.compile(r"(?m)^\s*\([\w:.-]+\)=\s*$"),
    "$$ (label)": re.compile(r"(?m)^\s*\$\$\s*\([\w:.-]+\)\s*$"),
    ":label:/:class:": re.compile(r"(?m)^\s*:(label|class):"),
}


def count_raw(text: str) -> Counter:
    """How often each MyST-only construct appears, literally, in ``text``."""
    return Counter({name: len(pattern.findall(text)) for name, pattern in RAW_PATTERNS.items()})


def markdown_text(notebook: nbformat.NotebookNode) -> str:
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def chapter_paths(root: Path, wanted: Iterable[str] | None) -> list[Path]:
    paths = sorted((root / CHAPTERS).glob("*.ipynb"))
    if not wanted:
        return paths
    chosen = []
    for name in wanted:
        matches = [p for p in paths if p.stem == name or p.stem.startswith(name)]
        if not matches:
            raise SystemExit(f"--chapters: no chapter matches {name!r}; chapters are "
                             f"{[p.stem for p in paths]}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def binder_requirements(root: Path, repository: str, branch: str) -> str:
    """requirements.txt of the published folder: Binder installs from it."""
    pins = {}
    requirements = root / "requirements.txt"
    if requirements.exists():
        for line in requirements.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                pins[line.split("==")[0].strip().lower()] = line
    lines = ["# Binder installs these (written by scripts/reader_notebooks.py).",
             "--extra-index-url https://download.pytorch.org/whl/cpu"]
    lines += [pins[name] for name in BINDER_PACKAGES if name in pins]
    lines.append(f"throughtime @ git+{repository}@{branch}")
    return "\n".join(lines) + "\n"


def write_readme(out: Path, site: Site, repository: str, branch: str,
                 written: list[str]) -> None:
    chapters = "\n".join(f"- [{site.titles.get(doc, doc)}]({doc}.ipynb)" for doc in written)
    (out / "README.md").write_text(
        f"# {site.book_title or 'The book'}: the chapters as notebooks\n\n"
        f"Generated from {repository} (branch {branch}) by `make notebooks`; do not edit here.\n"
        f"Each notebook reads like the website, {site.url}, and runs in Jupyter, Colab or "
        "VS Code: its first cell installs the book's library when it is missing.\n\n"
        f"{chapters}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book (default: this one)")
    parser.add_argument("--build", type=Path, help="the book's build (default: ROOT/_build)")
    parser.add_argument("--out", type=Path, help="default: BUILD/notebooks")
    parser.add_argument("--chapters", nargs="*", help="chapter names or number prefixes")
    parser.add_argument("--site-url", help="the website's address (default: from _config.yml)")
    parser.add_argument("--no-downloads", action="store_true",
                        help="leave the website's .ipynb downloads alone")
    parser.add_argument("--report", action="store_true",
                        help="print the raw MyST constructs before and after, per chapter")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    build = (args.build or root / "_build").resolve()
    out = (args.out or build / "notebooks").resolve()
    config = yaml.safe_load((root / "_config.yml").read_text())
    try:
        site = load_site(build, config, site_url(config, args.site_url))
    except ConversionError as error:
        raise SystemExit(str(error)) from None
    bibfiles = config.get("bibtex_bibfiles") or ["references.bib"]
    bibfile = root / bibfiles[0]
    repository = config.get("repository", {}).get("url", "").rstrip("/")
    branch = str(config.get("repository", {}).get("branch", "main"))

    if out.exists():
        shutil.rmtree(out)
    (out / CHAPTERS).mkdir(parents=True)
    written, report = [], {}
    for path in chapter_paths(root, args.chapters):
        docname = f"{CHAPTERS}/{path.stem}"
        try:
            executed = executed_notebook(path, build, docname)
            reader = reader_notebook(executed, docname, site, bibfile,
                                     install_from=setup_cell.configured_repository(root))
        except ConversionError as error:
            raise SystemExit(str(error)) from None
        target = out / CHAPTERS / path.name
        nbformat.write(reader, target)
        written.append(docname)
        report[path.name] = (count_raw(markdown_text(nbformat.read(path, as_version=4))),
                             count_raw(markdown_text(reader)))
        download = build / "html" / "_sources" / CHAPTERS / path.name
        if not args.no_downloads and download.parent.exists():
            shutil.copyfile(target, download)
        print(f"{target.relative_to(out.parent)}: {len(reader.cells)} cells"
              + ("" if args.no_downloads or not download.parent.exists()
                 else f"; also the website's download {download.relative_to(build)}"))
    (out / "requirements.txt").write_text(binder_requirements(root, repository, branch))
    write_readme(out, site, repository, branch, written)
    if args.report:
        names = list(RAW_PATTERNS)
        print("\nraw MyST constructs in the prose, source -> reader notebook")
        print(f"{'chapter':<28}" + "".join(f"{name:>22}" for name in names))
        for chapter, (before, after) in report.items():
            print(f"{chapter:<28}" + "".join(f"{before[n]:>16} -> {after[n]:<3}"
                                             for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
