"""Fixtures for the tests of the built website, ``_build/html``.

The tests never build the book: ``make book`` does, and ``make test-site`` runs them after it.
Set ``THROUGHTIME_BOOK_DIR`` to test a book built elsewhere (its ``_build/html``).

Every test that takes the ``page`` argument runs once for each page in ``_toc.yml``, so the
suite grows with the book; a test that also takes ``width`` runs at each width of
``site_support.WIDTHS`` (a desktop window, and a phone in dark mode). A local HTTP server
on 127.0.0.1 serves the site; the browser tests drive Debian's headless Chromium through
Playwright (``THROUGHTIME_CHROMIUM`` names another Chromium). Without a Chromium they are
skipped, except in CI (``CI=true``), where they fail: CI installs Chromium, so a skip there
would hide a broken install.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from site_support import (
    CHROMIUM_ARGS,
    INSPECT_FOCUS,
    INSPECT_LAYOUT,
    INSPECT_PAGE,
    SCREENSHOT_DIR,
    SCREENSHOT_MAX_HEIGHT,
    SITE_DIR,
    VIEWPORT,
    WAIT_FOR_MATHJAX,
    WIDTHS,
    Page,
    Visit,
    find_chromium,
    in_ci,
    is_local,
    raw_tex_in,
    toc_pages,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that asks for ``page`` once per page of the table of contents, and every
    test that asks for ``notebook`` once per notebook page."""
    pages = toc_pages()
    if "page" in metafunc.fixturenames:
        metafunc.parametrize("page", pages, ids=[page.docname for page in pages])
    if "notebook" in metafunc.fixturenames:
        notebooks = [page for page in pages if page.is_notebook]
        metafunc.parametrize("notebook", notebooks, ids=[page.docname for page in notebooks])
    if "width" in metafunc.fixturenames:
        metafunc.parametrize("width", list(WIDTHS))


_reported_missing_build: list[bool] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "colab_like: the library in a Colab-like environment (THROUGHTIME_ENV_CHECK=1)"
    )
    config.addinivalue_line("markers", "needs_no_build: a test that needs no built website")


@pytest.fixture(autouse=True)
def site_dir(request: pytest.FixtureRequest) -> Path:
    """The built website, checked before every test. Without one, the first test fails saying
    to run ``make book`` and the others are skipped, so the report shows the cause once."""
    if request.node.get_closest_marker("colab_like") or request.node.get_closest_marker(
        "needs_no_build"
    ):
        return SITE_DIR  # needs no website
    if not (SITE_DIR / "index.html").is_file():
        if _reported_missing_build:
            pytest.skip("no built website (see the first failure)")
        _reported_missing_build.append(True)
        pytest.fail(
            f"No built website in {SITE_DIR}: run `make book` first "
            "(the site tests test the build, they do not build it).",
            pytrace=False,
        )
    return SITE_DIR


@pytest.fixture
def built_page(site_dir: Path, page: Page) -> Path:
    """The built HTML file of ``page``."""
    path = site_dir / page.html_path
    if not path.is_file():
        pytest.fail(f"{page.docname} is in _toc.yml but {path} was not built", pytrace=False)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".ipynb": "application/x-ipynb+json",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
    }

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Serve the site on a free loopback port; yields its base URL, ``http://127.0.0.1:N/``."""
    handler = functools.partial(_QuietHandler, directory=str(SITE_DIR))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _no_browser(reason: str) -> None:
    message = (
        f"{reason}; the browser tests need Debian's Chromium: `apt-get install chromium` "
        "(or set THROUGHTIME_CHROMIUM=/path/to/chromium)"
    )
    if in_ci():
        pytest.fail(f"{message}. CI installs Chromium, so this is a broken CI setup.", False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium with a fresh profile, driven by Playwright."""
    executable = find_chromium()
    if executable is None:
        _no_browser("No Chromium found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("Playwright for Python is not installed (`make install`)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            downloads_path=str(tmp_path_factory.mktemp("downloads")),
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def new_page(browser: object, server: str) -> Callable[..., tuple[object, Visit, object]]:
    """Open a fresh browser context and page that records errors and foreign requests.

    Returns ``(page, visit, context)``; the caller navigates and closes the context.
    """

    def open_page(url: str, **context_options: object) -> tuple[object, Visit, object]:
        context_options = {"viewport": VIEWPORT, **context_options}
        context = browser.new_context(service_workers="block", **context_options)
        context.set_default_timeout(20_000)
        visit = Visit(url=url)

        def route(route: object) -> None:
            request_url = route.request.url
            if urlsplit(request_url).scheme in {"http", "https", "ws", "wss"} and not is_local(
                request_url, server
            ):
                visit.third_party_requests.append(request_url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                message.type == "error"
                and visit.console_errors.append(f"{message.text} ({message.location.get('url')})")
            ),
        )
        page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
        page.on(
            "requestfailed",
            lambda request: (
                is_local(request.url, server)
                and visit.failed_requests.append(f"{request.url}: {request.failure}")
            ),
        )
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and visit.failed_requests.append(f"{response.url}: HTTP {response.status}")
            ),
        )
        return page, visit, context

    return open_page


def save_full_page(browser_page: object, path: Path, width: int = VIEWPORT["width"]) -> Path:
    """Screenshot the whole page into ``path`` (JPEG) and return ``path``.

    JPEG saves a page tens of thousands of pixels tall faster than PNG, and the screenshots
    are for people to look at, not to compare. JPEG holds at most 65,535 pixels in height,
    so a page taller than ``SCREENSHOT_MAX_HEIGHT`` (the library reference) is cut there.
    """
    height = browser_page.evaluate("document.documentElement.scrollHeight")
    options: dict = {"full_page": True, "quality": 80}
    if height > SCREENSHOT_MAX_HEIGHT:
        options["clip"] = {
            "x": 0,
            "y": 0,
            "width": width,
            "height": SCREENSHOT_MAX_HEIGHT,
        }
    browser_page.screenshot(path=str(path), **options)
    return path


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """_build/screenshots, emptied of an earlier run's pictures."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for old in [*SCREENSHOT_DIR.glob("*.png"), *SCREENSHOT_DIR.glob("*.jpg")]:
        old.unlink()
    return SCREENSHOT_DIR


def _open_answers(browser_page: object) -> list[dict]:
    """Click the button of every folded reference answer; report whether its code shows."""
    answers = browser_page.locator("article.bd-article details").filter(
        has_text="### BEGIN SOLUTION"
    )
    opened = []
    for index in range(answers.count()):
        answer = answers.nth(index)
        answer.locator(":scope > summary").click()
        code = answer.locator("pre").filter(has_text="### BEGIN SOLUTION").first
        opened.append({"index": index, "visible": code.is_visible()})
    return opened


@pytest.fixture(scope="session")
def loads(
    new_page: Callable, server: str, screenshot_dir: Path
) -> Callable[[Page, str], Visit]:
    """Load a page of the book at one of ``WIDTHS`` and report what happened (cached).

    One load does everything the browser tests look at: errors, math, images, the layout
    (``INSPECT_LAYOUT``), a full-page screenshot, keyboard focus (``INSPECT_FOCUS``) and, last,
    the folded answers, opened with a click.
    """
    cache: dict[tuple[str, str], Visit] = {}

    def load(page: Page, width: str) -> Visit:
        key = (page.docname, width)
        if key in cache:
            return cache[key]
        options = WIDTHS[width]
        browser_page, report, context = new_page(urljoin(server, page.html_path), **options)
        try:
            response = browser_page.goto(report.url, wait_until="load")
            report.status = response.status if response else None
            browser_page.evaluate(WAIT_FOR_MATHJAX)
            seen = browser_page.evaluate(INSPECT_PAGE)
            browser_page.wait_for_load_state("networkidle")
            report.images = seen["images"]
            report.math_elements = seen["mathElements"]
            report.untypeset_math = seen["untypeset"]
            report.math_errors = seen["mathErrors"]
            report.raw_tex = raw_tex_in(seen["text"])
            report.widget_placeholders = seen["placeholders"]
            report.layout = browser_page.evaluate(INSPECT_LAYOUT)
            name = page.slug if width == "desktop" else f"{width}__{page.slug}"
            report.screenshot = save_full_page(
                browser_page, screenshot_dir / f"{name}.jpg", options["viewport"]["width"]
            )
            browser_page.keyboard.press("Tab")  # from now on, focus is keyboard focus
            report.focus = browser_page.evaluate(INSPECT_FOCUS)
            report.opened_solutions = _open_answers(browser_page)
        finally:
            context.close()
        cache[key] = report
        return report

    return load


@pytest.fixture(scope="session")
def visits(loads: Callable[[Page, str], Visit]) -> Callable[[Page], Visit]:
    """Load a page of the book in a desktop window once and report what happened (cached)."""
    return lambda page: loads(page, "desktop")
