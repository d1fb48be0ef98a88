"""Print the whole book into one PDF, offline, with the system's Chromium.

Jupyter Book's ``pdfhtml`` builder does the same through a Chromium that Playwright downloads;
this script uses Debian's (``THROUGHTIME_CHROMIUM`` names another one) and nothing from the
network:

1. ``jupyter-book build --builder singlehtml``: the book on one page, cells from the build's
   cache (a book built with ``make book`` is not executed again);
2. a local HTTP server on 127.0.0.1 serves that page (MathJax and the figures load from it);
3. Chromium opens it in light mode, waits until every figure has loaded and MathJax has
   typeset every formula, and prints it: A4, page numbers at the foot of each page.

Usage (``make pdf``)::

    .venv/bin/python scripts/book_pdf.py                    # -> _build/pdf/through-time.pdf
    .venv/bin/python scripts/book_pdf.py --html-dir DIR --out book.pdf   # print a built page
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")
FOOTER = (
    '<div style="font-size: 8px; width: 100%; text-align: center; color: #444;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)
# Waits for the figures and the formulas, then for the fonts they use.
READY = """
async () => {
  const images = [...document.images];
  images.forEach((image) => { image.loading = "eager"; });
  await Promise.all(images.map((image) => image.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  return document.querySelectorAll("mjx-merror").length;
}
"""


def find_chromium() -> str:
    """The Chromium to print with: ``THROUGHTIME_CHROMIUM`` or Debian's ``chromium``."""
    configured = os.environ.get("THROUGHTIME_CHROMIUM")
    candidates = (configured,) if configured else CHROMIUM_CANDIDATES
    for candidate in candidates:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    raise SystemExit(
        "No Chromium found: `apt-get install chromium`, or set THROUGHTIME_CHROMIUM to one"
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def print_page(html_dir: Path, page: str, out: Path, timeout_s: float = 300) -> int:
    """Print ``html_dir/page`` into the PDF ``out``; returns the number of pages written.

    Raises
    ------
    FileNotFoundError
        If ``html_dir/page`` does not exist.
    RuntimeError
        If MathJax could not typeset a formula.
    """
    if not (html_dir / page).is_file():
        raise FileNotFoundError(f"page {page!r} not found in html_dir {html_dir}")
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with serve(html_dir) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(color_scheme="light", service_workers="block")
            context.set_default_timeout(timeout_s * 1000)
            context.route(
                "**/*",
                lambda route: route.continue_()
                if route.request.url.startswith(base) or route.request.url.startswith("data:")
                else route.abort(),
            )
            browser_page = context.new_page()
            browser_page.goto(base + page, wait_until="load")
            errors = browser_page.evaluate(READY)
            if errors:
                raise RuntimeError(f"MathJax could not typeset {errors} formula(s) in {page}")
            browser_page.emulate_media(media="print")
            browser_page.pdf(
                path=str(out),
                format="A4",
                margin={"top": "16mm", "bottom": "18mm", "left": "14mm", "right": "14mm"},
                print_background=True,
                display_header_footer=True,
                header_template="<div></div>",
                footer_template=FOOTER,
                outline=True,
                tagged=True,
            )
        finally:
            browser.close()
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", out.read_bytes()))


def start_page(html_dir: Path) -> str:
    """The page to print: ``index.html``, or the page it redirects to (Jupyter Book writes an
    ``index.html`` that only forwards to the root page, ``intro.html`` here)."""
    index = html_dir / "index.html"
    if index.is_file():
        forward = re.search(r'http-equiv="Refresh"\s+content="\d+;\s*url=([^"]+)"',
                            index.read_text(encoding="utf-8", errors="replace"), re.IGNORECASE)
        if forward:
            return forward.group(1)
    return "index.html"


def build_single_page(book_dir: Path) -> Path:
    """Build the book as one HTML page (``_build/singlehtml``); returns its folder."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [
        str(jupyter_book if jupyter_book.exists() else "jupyter-book"),
        "build",
        str(book_dir),
        "--builder",
        "singlehtml",
    ]
    subprocess.run(command, check=True)
    return book_dir / "_build" / "singlehtml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book-dir", type=Path, default=REPOSITORY_ROOT)
    parser.add_argument(
        "--html-dir", type=Path, default=None,
        help="print this built folder's index.html instead of building the single page",
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="the PDF to write (default: _build/pdf/through-time.pdf)")
    arguments = parser.parse_args(argv)
    html_dir = arguments.html_dir or build_single_page(arguments.book_dir)
    out = arguments.out or arguments.book_dir / "_build" / "pdf" / "through-time.pdf"
    pages = print_page(html_dir, start_page(html_dir), out)
    print(f"{out}: {pages} pages, {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
