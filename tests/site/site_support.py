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
PHONE_VIEWPORT = {"width": 390, "height": 844}
# The two widths every layout test runs at: a desktop window and a phone held upright. The
# phone is also in dark mode, so that both colour modes are checked.
WIDTHS = {
    "desktop": {"viewport": VIEWPORT, "color_scheme": "light"},
    "phone": {
        "viewport": PHONE_VIEWPORT,
        "color_scheme": "dark",
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 1,
    },
}
SCREENSHOT_MAX_HEIGHT = 65_000  # JPEG holds at most 65,535 pixels in height


def load_script(name: str):
    """Import ``scripts/<name>.py`` (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"throughtime_{name}", REPOSITORY_ROOT / "scripts" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


page_weight = load_script("page_weight")  # it also reads the table of contents


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
    layout: dict = field(default_factory=dict)
    focus: dict = field(default_factory=dict)
    opened_solutions: list[dict] = field(default_factory=list)


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

# Runs in a page once MathJax has finished: everything the layout tests need, in one pass.
INSPECT_LAYOUT = r"""
async () => {
  const viewport = document.documentElement.clientWidth;
  const article = document.querySelector("article.bd-article") || document.body;
  const SLACK = 1;  // subpixel rounding
  const describe = (element) => {
    const parts = [];
    for (let node = element; node && node !== document.body && parts.length < 4;
         node = node.parentElement) {
      let part = node.tagName.toLowerCase();
      if (node.id) { part += "#" + node.id; parts.unshift(part); break; }
      const classes = [...node.classList].slice(0, 2);
      if (classes.length) part += "." + classes.join(".");
      parts.unshift(part);
    }
    return parts.join(" > ");
  };
  const shown = (element) => element.checkVisibility
    ? element.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })
    : element.offsetParent !== null;
  // Elements that may be wider than the page because they scroll sideways inside a box that
  // fits: display math, code, code output and tables.
  const SCROLLERS = "div.math, mjx-container, pre, div.highlight, div.cell_output, " +
    "div.output, .pst-scrollable-table-container, div.table-wrapper, table";
  const scrolls = (element) => /(auto|scroll)/.test(getComputedStyle(element).overflowX);
  const clips = (element) => /(hidden|clip)/.test(getComputedStyle(element).overflowX);

  // 1. Elements wider than the viewport, or cut off by a box that hides its overflow.
  const overflow = [];
  const clipped = [];
  const reported = new Set();
  for (const element of document.body.querySelectorAll("*")) {
    // MathJax's copy of each formula for screen readers is clipped to nothing on purpose.
    if (element.closest("mjx-assistive-mml") || !shown(element)) continue;
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.right <= viewport + SLACK && box.left >= -SLACK) continue;
    // The nearest box around it that fits the screen and scrolls or hides what sticks out.
    let container = null;
    let containerBox = null;
    for (let node = element.parentElement; node && node !== document.documentElement;
         node = node.parentElement) {
      if (!scrolls(node) && !clips(node)) continue;
      const nodeBox = node.getBoundingClientRect();
      if (nodeBox.right <= viewport + SLACK && nodeBox.left >= -SLACK) {
        container = node;
        containerBox = nodeBox;
        break;
      }
    }
    const insideReported = [...reported].some((node) => node.contains(element));
    if (insideReported) continue;
    const containerFits = container !== null;
    if (container && containerFits && scrolls(container) && container.matches(SCROLLERS)) {
      continue;  // scrolls sideways inside a math, code or table box that fits
    }
    if (container && containerFits && clips(container)) {
      // Hidden on purpose (a screen-reader label, the off-canvas sidebar) or cut off?
      if (containerBox.width <= 2 || containerBox.height <= 2) continue;
      if (!article.contains(element)) continue;
      clipped.push({ element: describe(element), container: describe(container),
                     width: Math.round(box.width), room: Math.round(containerBox.width) });
      reported.add(element);
      continue;
    }
    if (container && containerFits && scrolls(container)) {
      overflow.push({ element: describe(element), width: Math.round(box.width),
                      scroller: describe(container) });
    } else {
      overflow.push({ element: describe(element), width: Math.round(box.width),
                      left: Math.round(box.left), right: Math.round(box.right) });
    }
    reported.add(element);
  }

  // 2. Display equations: fit, scroll with a cue, or cut off; the room the number takes.
  const equations = [...article.querySelectorAll("div.math")].map((block) => {
    const math = block.querySelector("mjx-container mjx-math") || block;
    const scroller = [block, block.querySelector("mjx-container")]
      .find((node) => node && scrolls(node) && node.scrollWidth > node.clientWidth + SLACK);
    const number = block.querySelector(".eqno");
    const mathBox = math.getBoundingClientRect();
    const blockBox = block.getBoundingClientRect();
    let numberBeside = 0;
    if (number) {
      const numberBox = number.getBoundingClientRect();
      const sameLine = numberBox.top < mathBox.bottom && numberBox.bottom > mathBox.top;
      numberBeside = sameLine ? Math.round(numberBox.width) : 0;
    }
    const cue = scroller ? getComputedStyle(scroller).backgroundImage : "none";
    return {
      id: block.id || (number ? number.textContent.trim() : ""),
      tex: block.querySelector("mjx-assistive-mml") ? "" : "",
      width: Math.round(mathBox.width),
      room: Math.round(blockBox.width - numberBeside),
      scrolls: Boolean(scroller),
      cue: cue.includes("gradient"),
      fits: mathBox.width <= blockBox.width - numberBeside + SLACK &&
        mathBox.right <= viewport + SLACK,
      numberBeside: numberBeside,
    };
  });

  // 3. Pictures: alt text, size on screen, caption and number.
  const images = [...article.querySelectorAll("img")].map((image) => {
    const figure = image.closest("figure");
    const caption = figure && figure.querySelector("figcaption");
    const number = caption && caption.querySelector(".caption-number");
    return {
      src: image.currentSrc || image.src,
      alt: image.getAttribute("alt"),
      width: image.getBoundingClientRect().width,
      naturalWidth: image.naturalWidth,
      caption: caption ? caption.innerText.trim() : null,
      number: number ? number.innerText.trim() : null,
      figureId: figure ? figure.id : null,
    };
  });

  // 4. Ids used more than once.
  const counts = {};
  for (const element of document.querySelectorAll("[id]")) {
    counts[element.id] = (counts[element.id] || 0) + 1;
  }
  const duplicateIds = Object.entries(counts).filter(([, n]) => n > 1)
    .map(([id, n]) => `${id} (${n}x)`);

  // 5. Code cells holding a reference answer: are they visible before any click?
  const solutions = [...article.querySelectorAll("div.cell_input, div.cell div.highlight")]
    .filter((node) => node.textContent.includes("### BEGIN SOLUTION"))
    .filter((node, index, all) => !all.some((other) => other !== node && other.contains(node)))
    .map((node) => ({ where: describe(node), visible: shown(node) &&
                      node.getBoundingClientRect().height > 0 }));

  // 6. Tab stops, and those that are formulas.
  const TABBABLE = "a[href], button, input, select, textarea, summary, iframe, " +
    "[tabindex], [contenteditable='true']";
  const tabStops = [...document.querySelectorAll(TABBABLE)].filter((element) =>
    !element.disabled && element.tabIndex >= 0 && shown(element) &&
    element.getBoundingClientRect().width > 0);
  const mathStops = tabStops.filter((element) => element.closest("mjx-container"));

  // 7. Contrast of the article's text with what is behind it (WCAG 2 relative luminance).
  const parse = (color) => {
    const values = (color.match(/[\d.]+/g) || []).map(Number);
    return { r: values[0], g: values[1], b: values[2], a: values.length > 3 ? values[3] : 1 };
  };
  const channel = (value) => {
    const c = value / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ({ r, g, b }) => 0.2126 * channel(r) + 0.7152 * channel(g) +
    0.0722 * channel(b);
  const backgroundOf = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const color = parse(getComputedStyle(node).backgroundColor);
      if (color.a > 0) { layers.push(color); if (color.a >= 1) break; }
    }
    let result = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) {
      result = { r: layer.r * layer.a + result.r * (1 - layer.a),
                 g: layer.g * layer.a + result.g * (1 - layer.a),
                 b: layer.b * layer.a + result.b * (1 - layer.a), a: 1 };
    }
    return result;
  };
  const lowContrast = [];
  for (const element of article.querySelectorAll("*")) {
    if (element.closest("mjx-container, svg, script, style")) continue;
    const text = [...element.childNodes].filter((node) => node.nodeType === 3)
      .map((node) => node.textContent).join("").trim();
    if (!text || !shown(element)) continue;
    const style = getComputedStyle(element);
    const background = backgroundOf(element);
    const foreground = parse(style.color);
    const blended = { r: foreground.r * foreground.a + background.r * (1 - foreground.a),
                      g: foreground.g * foreground.a + background.g * (1 - foreground.a),
                      b: foreground.b * foreground.a + background.b * (1 - foreground.a) };
    const [light, dark] = [luminance(blended), luminance(background)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const required = large ? 3 : 4.5;
    if (ratio < required) {
      lowContrast.push({ element: describe(element), text: text.slice(0, 40),
                         ratio: Math.round(ratio * 100) / 100, required: required });
    }
  }

  // 8. An opening bracket left at the end of a line, its formula on the next.
  const textBefore = (node) => {
    for (let current = node; current && current !== article; current = current.parentElement) {
      let previous = current.previousSibling;
      while (previous && previous.nodeType === 1 && !previous.textContent) {
        previous = previous.previousSibling;
      }
      if (previous) {
        if (previous.nodeType === 3) return previous;
        const walker = document.createTreeWalker(previous, NodeFilter.SHOW_TEXT);
        let last = null;
        while (walker.nextNode()) last = walker.currentNode;
        return last;
      }
      if (getComputedStyle(current.parentElement).display === "block") return null;
    }
    return null;
  };
  const orphans = [];
  for (const container of article.querySelectorAll('mjx-container:not([display="true"])')) {
    const text = textBefore(container);
    if (!text || !/[(\[{‘“]$/.test(text.textContent)) continue;
    const range = document.createRange();
    range.setStart(text, text.textContent.length - 1);
    range.setEnd(text, text.textContent.length);
    const bracket = range.getBoundingClientRect();
    const formula = container.getBoundingClientRect();
    if (bracket.height && formula.height && bracket.bottom <= formula.top + 2) {
      orphans.push(text.textContent.slice(-30).trim() + " " +
                   (container.getAttribute("aria-label") || "").slice(0, 30));
    }
  }

  return {
    viewport: viewport,
    pageWidth: document.documentElement.scrollWidth,
    orphans: orphans,
    overflow: overflow,
    clipped: clipped,
    equations: equations,
    images: images,
    duplicateIds: duplicateIds,
    solutions: solutions,
    tabStops: tabStops.length,
    mathTabStops: mathStops.length,
    lowContrast: lowContrast,
  };
}
"""

# Focuses every tab stop in turn (after a key press, so that focus counts as keyboard focus)
# and reports those that show no focus indicator: an outline of at least 2 px, or a box
# shadow, border or background that differs from the unfocused element's.
INSPECT_FOCUS = r"""
async () => {
  const TABBABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  const shown = (element) => element.checkVisibility
    ? element.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })
    : element.offsetParent !== null;
  const describe = (element) => {
    const label = element.getAttribute("aria-label") || element.getAttribute("title") ||
      element.textContent.trim().slice(0, 30);
    const classes = [...element.classList].slice(0, 3).join(".");
    return `${element.tagName.toLowerCase()}${classes ? "." + classes : ""} "${label}"`;
  };
  const looks = (element) => {
    const style = getComputedStyle(element);
    return { outlineStyle: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth),
             boxShadow: style.boxShadow, border: style.borderColor + style.borderWidth,
             background: style.backgroundColor };
  };
  const stops = [...document.querySelectorAll(TABBABLE)].filter((element) =>
    !element.disabled && element.tabIndex >= 0 && shown(element) &&
    element.getBoundingClientRect().width > 0);
  const missing = [];
  const seen = new Set();
  for (const element of stops) {
    const key = describe(element);
    if (seen.has(key)) continue;  // one report per kind of control
    seen.add(key);
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    const before = looks(element);
    element.focus();
    if (document.activeElement !== element) continue;  // not focusable after all
    const after = looks(element);
    const visible = element.matches(":focus-visible");
    const indicated = (after.outlineStyle !== "none" && after.outlineWidth >= 2) ||
      (after.boxShadow !== "none" && after.boxShadow !== before.boxShadow) ||
      after.border !== before.border || after.background !== before.background;
    if (!visible || !indicated) missing.push(key + (visible ? "" : " (not :focus-visible)"));
  }
  return { stops: stops.length, missing: missing };
}
"""

# Opens every folded reference answer by clicking its button, as a reader would; then reports
# which answers show. Run after INSPECT_LAYOUT, which checks they are hidden before.
SOLUTION_TOGGLES = """
() => [...document.querySelectorAll("article.bd-article details")]
  .filter((details) => details.textContent.includes("### BEGIN SOLUTION"))
  .map((details) => details.querySelector(":scope > summary"))
  .filter((summary) => summary !== null)
"""

WAIT_FOR_MATHJAX = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
}
"""

# --- Figures --------------------------------------------------------------------------------

SVG_NAMESPACE = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class SvgText:
    """One label of an SVG figure: its text, font size in the figure's units, and colour."""

    text: str
    size: float
    fill: str


def _style(element) -> dict[str, str]:
    pairs = (part.split(":", 1) for part in element.get("style", "").split(";") if ":" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def _font_size(style: dict[str, str], inherited: float | None) -> float | None:
    value = style.get("font-size")
    if value is None and "font" in style:  # the shorthand "font: 10px 'DejaVu Sans'"
        value = next((word for word in style["font"].split() if word[:1].isdigit()), None)
    if value is None:
        return inherited
    return float(value.removesuffix("px").removesuffix("pt"))


@functools.cache
def svg_figure(path: Path) -> tuple[float, tuple[SvgText, ...]]:
    """The width of an SVG figure in its own units (its viewBox) and its labels.

    A label is a ``<text>`` element: its size is the largest font size among its glyphs, so
    that a subscript set smaller, as in $h_{t-1}$, counts with its label. Its colour is the
    ``fill`` set on it or on its glyphs (black when none is set). Matplotlib writes text this
    way with ``svg.fonttype: none`` (``throughtime.plotting.use_book_style``).
    """
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(path).getroot()
    view_box = root.get("viewBox")
    if view_box:
        width = float(view_box.split()[2])
    else:
        width = float(root.get("width", "0").removesuffix("pt").removesuffix("px"))
    labels = []
    for element in root.iter(f"{SVG_NAMESPACE}text"):
        style = _style(element)
        sizes, fills = [], []
        own_size = _font_size(style, None)
        for glyph in [element, *element.iter(f"{SVG_NAMESPACE}tspan")]:
            glyph_style = _style(glyph)
            size = _font_size(glyph_style, own_size)
            if size is not None:
                sizes.append(size)
            fill = glyph_style.get("fill") or glyph.get("fill")
            if fill:
                fills.append(fill)
        glyphs = list(element.iter(f"{SVG_NAMESPACE}tspan"))
        text = "".join(glyph.text or "" for glyph in glyphs) if glyphs else element.text or ""
        text = text.strip()
        if text and sizes:
            labels.append(SvgText(text, max(sizes), (fills or ["#000000"])[0]))
    return width, tuple(labels)


def _relative_luminance(color: str) -> float:
    value = color.strip().lstrip("#")
    if len(value) == 3:
        value = "".join(2 * digit for digit in value)
    if len(value) != 6:
        raise ValueError(f"color must be #rgb or #rrggbb, got {color!r}")
    channels = [int(value[index : index + 2], 16) / 255 for index in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


NAMED_COLORS = {"black": "#000000", "white": "#ffffff", "grey": "#808080", "gray": "#808080"}


def contrast_ratio(foreground: str, background: str = "#ffffff") -> float:
    """WCAG 2 contrast ratio of two colours given as ``#rrggbb`` (or black, white, grey)."""
    lighter, darker = sorted(
        (_relative_luminance(NAMED_COLORS.get(c, c)) for c in (foreground, background)),
        reverse=True,
    )
    return (lighter + 0.05) / (darker + 0.05)


RAW_TEX_MARKERS = ("$$", "\\begin{", "\\end{", "\\[", "\\]", "\\(", "\\)")


def raw_tex_in(text: str) -> list[str]:
    """Snippets of ``text`` that look like TeX MathJax left untypeset."""
    found = []
    for marker in RAW_TEX_MARKERS:
        start = text.find(marker)
        if start >= 0:
            found.append(" ".join(text[max(0, start - 30) : start + 50].split()))
    return found
