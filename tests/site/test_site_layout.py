"""The website on a phone and with a keyboard, in a real headless Chromium.

Each test runs for every page of the book at both widths of ``site_support.WIDTHS``: a
desktop window (1280 CSS pixels, light mode) and a phone held upright (390 pixels, dark
mode). What they check, and what a chapter must do to pass:

- nothing is wider than the screen, except inside a box that scrolls sideways and holds
  display math, code, code output or a table;
- a chapter's display equations fit the column on a desktop; elsewhere, and on a phone, a
  formula too wide for the column scrolls inside its own box, with a shadow at the edge as a
  cue; on a phone its number sits above it instead of beside it (break long equations into
  lines with ``aligned``);
- every picture has alt text that says what it shows (not a file name), a caption and a
  number ("Figure 2.3"): a code cell's figure gets them from its ``mystnb`` metadata;
- figure text is at least ``MIN_FIGURE_TEXT_PX`` CSS pixels tall on the screen (SVG figures,
  read from the file), a PNG figure has twice the pixels it is shown at, and figure text has
  a 4.5:1 contrast on the figure's white;
- no id is used twice on a page;
- the code of an exercise's reference answer (a cell with ``### BEGIN SOLUTION``) is folded
  until the reader clicks its button, and shows after the click;
- formulas are not Tab stops, and every control shows where the keyboard focus is;
- text in the article has a 4.5:1 contrast with what is behind it (3:1 when large);
- inline math does not leave an opening bracket alone at the end of a line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from site_support import (
    SITE_DIR,
    Page,
    Visit,
    contrast_ratio,
    svg_figure,
)

MIN_FIGURE_TEXT_PX = 9.0  # CSS pixels, on the screen
MIN_FIGURE_TEXT_CONTRAST = 4.5  # WCAG AA for text, on the figure's white background
RASTER_DENSITY = 2.0  # a PNG figure holds at least this many pixels per CSS pixel shown
FIGURE_NUMBER = re.compile(r"^Figure \d+(\.\d+)*$")
# Alt text that is a file name, a path or a content hash rather than a description.
FILE_LIKE = re.compile(r"(^|/)[\w.-]+\.(png|svg|jpe?g|gif|webp)$|^[0-9a-f]{16,}|/", re.IGNORECASE)
MIN_ALT_WORDS = 4


def _layout(loads: Callable[[Page, str], Visit], page: Page, width: str) -> dict:
    layout = loads(page, width).layout
    assert layout, f"{page.docname}: the page could not be inspected at {width} width"
    return layout


def test_nothing_is_wider_than_the_screen(
    page: Page, width: str, loads: Callable[[Page, str], Visit]
) -> None:
    layout = _layout(loads, page, width)
    lines = [json.dumps(item) for item in layout["overflow"] + layout["clipped"]]
    assert layout["pageWidth"] <= layout["viewport"] and not lines, (
        f"{page.docname} at {width} width ({layout['viewport']} px): the page is "
        f"{layout['pageWidth']} px wide; elements wider than the screen (outside a scrolling "
        "box of math, code or a table) or cut off:\n" + "\n".join(lines[:20])
    )


def test_display_equations_fit_or_scroll_with_a_cue(
    page: Page, width: str, loads: Callable[[Page, str], Visit]
) -> None:
    equations = _layout(loads, page, width)["equations"]
    problems = []
    for equation in equations:
        name = equation["id"] or "an unnumbered equation"
        if width == "desktop" and page.is_chapter and not equation["fits"]:
            problems.append(
                f"{name} is {equation['width']} px wide in a {equation['room']} px column: "
                "break it into lines (aligned)"
            )
        elif not equation["fits"] and not (equation["scrolls"] and equation["cue"]):
            problems.append(
                f"{name} ({equation['width']} px in {equation['room']} px) is cut off: it "
                f"scrolls={equation['scrolls']}, with a cue={equation['cue']}"
            )
        if width == "phone" and equation["numberBeside"]:
            problems.append(f"{name}: its number takes {equation['numberBeside']} px beside it")
    assert not problems, f"{page.docname} at {width} width:\n" + "\n".join(problems)


def test_pictures_have_alt_text_a_caption_and_a_number(
    page: Page, loads: Callable[[Page, str], Visit]
) -> None:
    images = _layout(loads, page, "desktop")["images"]
    problems = []
    for image in images:
        alt = (image["alt"] or "").strip()
        name = image["src"].rsplit("/", 1)[-1]
        if len(alt.split()) < MIN_ALT_WORDS or FILE_LIKE.search(alt):
            problems.append(f"{name}: alt text {alt!r} does not say what the picture shows")
        if not image["caption"]:
            problems.append(f"{name} ({alt[:40]!r}): no caption")
        elif not (image["number"] and FIGURE_NUMBER.match(image["number"].rstrip(". :"))):
            problems.append(f"{name}: caption without a number: {image['caption'][:60]!r}")
    assert not problems, f"{page.docname}:\n" + "\n".join(problems)


def _local_file(src: str):
    path = src.split("://", 1)[-1].split("/", 1)[-1].split("#")[0].split("?")[0]
    return SITE_DIR / path


def test_figure_text_is_readable(
    page: Page, width: str, loads: Callable[[Page, str], Visit]
) -> None:
    images = _layout(loads, page, width)["images"]
    problems = []
    for image in images:
        path = _local_file(image["src"])
        if path.suffix.lower() == ".svg":
            view_width, labels = svg_figure(path)
            if not labels:
                continue  # text drawn as paths cannot be read back: the alt text carries it
            scale = image["width"] / view_width
            smallest = min(labels, key=lambda label: label.size)
            if smallest.size * scale < MIN_FIGURE_TEXT_PX:
                problems.append(
                    f"{path.name}: {smallest.text!r} is {smallest.size * scale:.1f} px tall "
                    f"({smallest.size:g} units in a figure {view_width:.0f} units wide, shown "
                    f"{image['width']:.0f} px wide); at least {MIN_FIGURE_TEXT_PX:g} px"
                )
        elif image["width"] and image["naturalWidth"] < RASTER_DENSITY * image["width"] - 1:
            problems.append(
                f"{path.name}: {image['naturalWidth']} pixels shown {image['width']:.0f} px "
                f"wide: save it at {RASTER_DENSITY:g}x (savefig.dpi) or as SVG"
            )
    assert not problems, f"{page.docname} at {width} width:\n" + "\n".join(problems)


def test_figure_text_has_contrast(page: Page, loads: Callable[[Page, str], Visit]) -> None:
    problems = []
    for image in _layout(loads, page, "desktop")["images"]:
        path = _local_file(image["src"])
        if path.suffix.lower() != ".svg":
            continue
        for label in svg_figure(path)[1]:
            if not label.fill.startswith("#"):
                continue
            ratio = contrast_ratio(label.fill)
            if ratio < MIN_FIGURE_TEXT_CONTRAST:
                problems.append(f"{path.name}: {label.text!r} in {label.fill} ({ratio:.2f}:1)")
    assert not problems, (
        f"{page.docname}: figure text below {MIN_FIGURE_TEXT_CONTRAST}:1 on white:\n"
        + "\n".join(sorted(set(problems)))
    )


def test_ids_are_unique(page: Page, loads: Callable[[Page, str], Visit]) -> None:
    duplicates = _layout(loads, page, "desktop")["duplicateIds"]
    assert not duplicates, f"{page.docname}: ids used more than once: {duplicates}"


def _answer_cells(page: Page) -> int:
    """Code cells of the page's notebook that hold a reference answer."""
    if not page.is_notebook:
        return 0
    notebook = json.loads(page.source.read_text(encoding="utf-8"))
    return sum(
        cell["cell_type"] == "code" and "### BEGIN SOLUTION" in "".join(cell["source"])
        for cell in notebook["cells"]
    )


def test_answer_code_is_folded_until_clicked(
    page: Page, width: str, loads: Callable[[Page, str], Visit]
) -> None:
    visit = loads(page, width)
    solutions = visit.layout["solutions"]
    expected = _answer_cells(page)
    assert len(solutions) == expected, (
        f"{page.docname}: the notebook has {expected} reference-answer cells, the page shows "
        f"{len(solutions)} code blocks with '### BEGIN SOLUTION'"
    )
    shown = [solution["where"] for solution in solutions if solution["visible"]]
    assert not shown, (
        f"{page.docname} at {width} width: answer code visible before any click: {shown}"
    )
    assert len(visit.opened_solutions) == expected, (
        f"{page.docname}: {expected} answers, {len(visit.opened_solutions)} with a button"
    )
    closed = [answer for answer in visit.opened_solutions if not answer["visible"]]
    assert not closed, f"{page.docname}: answers still hidden after a click: {closed}"


def test_formulas_are_not_tab_stops(
    page: Page, width: str, loads: Callable[[Page, str], Visit]
) -> None:
    layout = _layout(loads, page, width)
    assert layout["mathTabStops"] == 0, (
        f"{page.docname}: {layout['mathTabStops']} of {layout['tabStops']} Tab stops are "
        "formulas (MathJax's menuOptions.settings.inTabOrder)"
    )


def test_keyboard_focus_is_visible(
    page: Page, width: str, loads: Callable[[Page, str], Visit]
) -> None:
    focus = loads(page, width).focus
    assert focus["stops"] > 0, f"{page.docname}: no control takes the keyboard focus"
    assert not focus["missing"], (
        f"{page.docname} at {width} width: controls that show no focus indicator:\n"
        + "\n".join(focus["missing"])
    )


def test_text_has_contrast(page: Page, width: str, loads: Callable[[Page, str], Visit]) -> None:
    low = _layout(loads, page, width)["lowContrast"]
    lines = sorted({f"{item['element']} {item['text']!r}: {item['ratio']}:1" for item in low})
    assert not lines, (
        f"{page.docname} at {width} width: text below 4.5:1 (3:1 when large):\n"
        + "\n".join(lines[:20])
    )


def test_no_opening_bracket_is_left_at_a_line_end(
    page: Page, width: str, loads: Callable[[Page, str], Visit]
) -> None:
    orphans = _layout(loads, page, width)["orphans"]
    assert not orphans, f"{page.docname} at {width} width: orphan brackets before: {orphans}"
