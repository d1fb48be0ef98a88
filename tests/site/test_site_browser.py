"""The built website in a real headless Chromium, page by page, as a reader gets it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import pytest
from site_support import Page, Visit, parse_html, toc_pages

LIGHT_LUMINANCE = 0.9  # a figure's background must be at least this light (white is 1)
DARK_LUMINANCE = 0.3  # the page's background in dark mode must be darker than this


def test_page_loads_without_errors(page: Page, visits: Callable[[Page], Visit]) -> None:
    visit = visits(page)
    assert visit.status == 200, f"{visit.url} answered HTTP {visit.status}"
    assert not visit.page_errors, "uncaught JavaScript errors:\n" + "\n".join(visit.page_errors)
    assert not visit.console_errors, "console errors:\n" + "\n".join(visit.console_errors)
    assert not visit.failed_requests, "failed requests:\n" + "\n".join(visit.failed_requests)


def test_page_makes_no_third_party_request(page: Page, visits: Callable[[Page], Visit]) -> None:
    requests = visits(page).third_party_requests
    assert not requests, "requests to hosts other than the site:\n" + "\n".join(requests)


def test_math_is_typeset(page: Page, visits: Callable[[Page], Visit]) -> None:
    visit = visits(page)
    assert not visit.untypeset_math, (
        f"{len(visit.untypeset_math)} of {visit.math_elements} math elements have no MathJax "
        "output (is MathJax served?): " + "; ".join(visit.untypeset_math[:5])
    )
    assert not visit.math_errors, "MathJax could not typeset: " + "; ".join(visit.math_errors)
    assert not visit.raw_tex, "raw TeX in the page's text: " + "; ".join(visit.raw_tex)


def test_images_load(page: Page, visits: Callable[[Page], Visit]) -> None:
    images = visits(page).images
    broken = [image["src"] for image in images if image["naturalWidth"] == 0]
    assert not broken, "images that did not load:\n" + "\n".join(broken)
    if page.is_chapter:
        figures = [image for image in images if image["inArticle"]]
        assert figures, f"chapter {page.docname} shows no figure"


def test_no_dead_widgets(page: Page, visits: Callable[[Page], Visit]) -> None:
    placeholders = visits(page).widget_placeholders
    assert not placeholders, (
        "ipywidgets outputs that show nothing on the website (tag the cell `remove-cell`): "
        + "; ".join(placeholders)
    )


def test_screenshot_is_saved(page: Page, visits: Callable[[Page], Visit]) -> None:
    screenshot = visits(page).screenshot
    assert screenshot is not None and screenshot.stat().st_size > 10_000, (
        f"no screenshot of {page.docname}: {screenshot}"
    )


def test_search_box_finds_a_word_from_the_landing_page(
    new_page: Callable, server: str, site_dir: Path
) -> None:
    root = toc_pages()[0]
    browser_page, visit, context = new_page(urljoin(server, root.html_path))
    try:
        browser_page.goto(visit.url)
        browser_page.locator("button.search-button__button:visible").first.click()
        search_box = browser_page.locator("#pst-search-dialog input[name='q']")
        search_box.fill("recurrent")
        search_box.press("Enter")
        browser_page.wait_for_url("**/search.html?q=recurrent*")
        # Sphinx lists the results one by one and retitles the page when it has finished.
        browser_page.wait_for_function(
            "() => document.querySelector('#search-results h2')?.innerText"
            ".startsWith('Search Results')"
        )
        hrefs = browser_page.locator("#search-results ul.search li a").evaluate_all(
            "links => links.map((link) => link.href)"
        )
    finally:
        context.close()
    assert any(href.split("#")[0].endswith(root.html_path) for href in hrefs), (
        f"searching for 'recurrent' did not find {root.html_path}: {hrefs}"
    )
    assert not visit.console_errors + visit.page_errors, visit.console_errors + visit.page_errors
    assert not visit.third_party_requests, visit.third_party_requests


# Background colour behind each figure: the image's own, or the nearest ancestor's that is set.
FIGURE_BACKGROUNDS = """
() => {
  const luminance = (color) => {
    const [r, g, b, a = 1] = color.match(/[\\d.]+/g).map(Number);
    return a === 0 ? null : (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  const behind = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const value = luminance(getComputedStyle(node).backgroundColor);
      if (value !== null) return value;
    }
    return null;
  };
  return {
    theme: document.documentElement.dataset.theme,
    page: behind(document.querySelector(".bd-main") || document.body),
    figures: [...document.querySelectorAll("article.bd-article img")].map((image) => ({
      src: image.src,
      background: behind(image),
      filter: getComputedStyle(image).filter,
    })),
  };
}
"""


def test_dark_mode_keeps_figures_on_a_light_background(
    new_page: Callable, server: str, site_dir: Path, screenshot_dir: Path
) -> None:
    with_figures = [
        page
        for page in toc_pages()
        if any(tag.in_article for tag in parse_html(site_dir / page.html_path).find("img"))
    ]
    if not with_figures:
        pytest.skip("no page of the book has a figure yet")
    page = with_figures[0]
    browser_page, visit, context = new_page(urljoin(server, page.html_path), color_scheme="light")
    try:
        browser_page.goto(visit.url)
        toggle = browser_page.locator("button.theme-switch-button:visible").first
        for _ in range(3):  # the toggle cycles through auto, dark and light
            if browser_page.evaluate("document.documentElement.dataset.theme") == "dark":
                break
            toggle.click()
        seen = browser_page.evaluate(FIGURE_BACKGROUNDS)
        browser_page.locator("article.bd-article img").first.scroll_into_view_if_needed()
        browser_page.screenshot(path=str(screenshot_dir / f"dark__{page.slug}.jpg"), quality=80)
    finally:
        context.close()
    assert seen["theme"] == "dark", "the theme toggle never switched to dark mode"
    assert seen["page"] is not None and seen["page"] < DARK_LUMINANCE, seen
    assert seen["figures"], f"{page.docname}: no figure found in the browser"
    for figure in seen["figures"]:
        assert figure["background"] is not None and figure["background"] > LIGHT_LUMINANCE, (
            f"{figure['src']} sits on a dark background in dark mode: {figure}"
        )
        assert "brightness" not in figure["filter"], (
            f"{figure['src']} is dimmed in dark mode: filter {figure['filter']}"
        )
