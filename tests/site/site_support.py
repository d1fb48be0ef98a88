"""Helpers for the tests of the built website: the book's pages, HTML parsing, the browser.

The fixtures that use them live in conftest.py.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
BOOK_DIR = Path(os.environ.get("THROUGHTIME_BOOK_DIR", REPOSITORY_ROOT)).resolve()
SITE_DIR = BOOK_DIR / "_build" / "html"
SCREENSHOT_DIR = BOOK_DIR / "_build" / "screenshots"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOT_MAX_HEIGHT = 65_000  # JPEG holds at most 65,535 pixels in height


def _load_page_weight():
    """Import scripts/page_weight.py, which also reads the table of contents."""
    spec = importlib.util.spec_from_file_location(
        "throughtime_page_weight", REPOSITORY_ROOT / "scripts" / "page_weight.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


page_weight = _load_page_weight()


def in_ci() -> bool:
    """True when running in continuous integration (``CI`` set to a true value)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


# --- The pages of the book -------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of the table of contents and where its source and built HTML live."""

    docname: str
    source: Path | None

    @property
    def html_path(self) -> str:
        """Path of the built page relative to the site root, e.g. ``chapters/01_x.html``."""
        return f"{self.docname}.html"

    @property
    def is_notebook(self) -> bool:
        return self.source is not None and self.source.suffix == ".ipynb"

    @property
    def is_chapter(self) -> bool:
        return self.docname.startswith("chapters/")

    @property
    def slug(self) -> str:
        """A file-name-safe name for the page, for screenshots."""
        return self.docname.replace("/", "__")


def _source_of(docname: str) -> Path | None:
    for suffix in page_weight.SOURCE_SUFFIXES:
        path = BOOK_DIR / f"{docname}{suffix}"
        if path.is_file():
            return path
    return None


@functools.cache
def toc_pages() -> tuple[Page, ...]:
    """Every page in ``_toc.yml``, in reading order."""
    return tuple(Page(name, _source_of(name)) for name in page_weight.toc_docnames(BOOK_DIR))


@functools.cache
def book_config() -> dict:
    """The parsed ``_config.yml``."""
    return yaml.safe_load((BOOK_DIR / "_config.yml").read_text(encoding="utf-8"))


# --- Reading built HTML ----------------------------------------------------------------------


@dataclass
class Tag:
    """A start tag of a page: its name, attributes and whether it sits in the article."""

    name: str
    attrs: dict[str, str]
    in_article: bool


@dataclass
class ParsedPage:
    """The tags and element ids of one built HTML page."""

    tags: list[Tag] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def find(self, name: str, **attrs: str) -> list[Tag]:
        """Tags named ``name`` whose attributes contain ``attrs`` (``class_`` for ``class``:
        the value must be one of the element's classes)."""
        wanted = {key.rstrip("_"): value for key, value in attrs.items()}

        def matches(tag: Tag) -> bool:
            for key, value in wanted.items():
                have = tag.attrs.get(key)
                if have is None:
                    return False
                if key == "class" and value not in have.split():
                    return False
                if key != "class" and have != value:
                    return False
            return True

        return [tag for tag in self.tags if tag.name == name and matches(tag)]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._article_depth = 0  # > 0 inside <article>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "article":
            self._article_depth += 1
        self.page.tags.append(Tag(tag, attributes, self._article_depth > 0))
        for key in ("id", "name"):
            if attributes.get(key) and (key == "id" or tag == "a"):
                self.page.ids.add(attributes[key])

    def handle_endtag(self, tag: str) -> None:
        if tag == "article" and self._article_depth:
            self._article_depth -= 1


@functools.cache
def parse_html(path: Path) -> ParsedPage:
    """Parse the HTML file at ``path`` (cached: pages are read by many tests)."""
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.page


# --- The browser ---------------------------------------------------------------------------


def is_local(url: str, base_url: str) -> bool:
    """True if ``url`` (absolute) is served by the site at ``base_url``."""
    return urlsplit(url).netloc == urlsplit(base_url).netloc


def find_chromium() -> str | None:
    """The Chromium executable to drive: ``THROUGHTIME_CHROMIUM`` or Debian's ``chromium``."""
    configured = os.environ.get("THROUGHTIME_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass
class Visit:
    """What the browser saw while loading one page."""

    url: str
    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    third_party_requests: list[str] = field(default_factory=list)
    math_elements: int = 0
    untypeset_math: list[str] = field(default_factory=list)
    math_errors: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    widget_placeholders: list[str] = field(default_factory=list)
    screenshot: Path | None = None


# Runs in the page once it has loaded and MathJax has finished typesetting.
INSPECT_PAGE = """
async () => {
  const article = document.querySelector("article.bd-article") || document.body;
  // Load every image now, lazy or not, and wait until each has loaded or failed.
  const images = [...document.images];
  images.forEach((image) => { image.loading = "eager"; });
  await Promise.all(images.map((image) => image.decode().catch(() => null)));
  const imageReport = images.map((image) => ({
    src: image.currentSrc || image.src,
    naturalWidth: image.naturalWidth,
    inArticle: article.contains(image),
  }));
  const math = [...article.querySelectorAll(".math")];
  const untypeset = math.filter((node) => !node.querySelector("mjx-container"))
    .map((node) => node.textContent.trim().slice(0, 80));
  const mathErrors = [...document.querySelectorAll("mjx-merror")]
    .map((node) => (node.getAttribute("data-mjx-error") || node.textContent).slice(0, 80));
  // The reader's text: code, typeset math and scripts taken out.
  const copy = article.cloneNode(true);
  copy.querySelectorAll("pre, code, mjx-container, script, style, .highlight")
    .forEach((node) => node.remove());
  const placeholders = [
    ...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'),
  ].map((node) => node.textContent.slice(0, 80));
  if (document.body.innerText.includes("Loading widget")) placeholders.push("Loading widget...");
  return {
    images: imageReport,
    mathElements: math.length,
    untypeset: untypeset,
    mathErrors: mathErrors,
    text: copy.textContent,
    placeholders: placeholders,
  };
}
"""

WAIT_FOR_MATHJAX = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
}
"""

RAW_TEX_MARKERS = ("$$", "\\begin{", "\\end{", "\\[", "\\]", "\\(", "\\)")


def raw_tex_in(text: str) -> list[str]:
    """Snippets of ``text`` that look like TeX MathJax left untypeset."""
    found = []
    for marker in RAW_TEX_MARKERS:
        start = text.find(marker)
        if start >= 0:
            found.append(" ".join(text[max(0, start - 30) : start + 50].split()))
    return found
