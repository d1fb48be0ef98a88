"""`make pdf` prints the book's single-page HTML with the system's Chromium (scripts/book_pdf.py).

The whole book takes minutes to print, so this test prints a small page the same way and
checks the PDF: it needs Chromium but no built website.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from site_support import REPOSITORY_ROOT, find_chromium, in_ci, load_script

pytestmark = pytest.mark.needs_no_build

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Print test</title>
<style>@media print { .no-print { display: none; } }</style></head>
<body><h1>Through Time, printed</h1>
<p class="no-print">This line is for the screen only.</p>
{paragraphs}
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">
<rect width="200" height="100" fill="#0072B2"/></svg>
</body></html>
"""


def _book_pdf():
    return load_script("book_pdf")


@pytest.fixture(scope="module")
def book_pdf():
    if find_chromium() is None:
        if in_ci():
            pytest.fail("CI installs Chromium, but none was found", pytrace=False)
        pytest.skip("printing needs Debian's Chromium (`apt-get install chromium`)")
    return _book_pdf()


def test_a_page_prints_to_a_multi_page_pdf(book_pdf, tmp_path: Path) -> None:
    # The script runs in its own process, as `make pdf` runs it: the browser tests of the same
    # session keep Playwright's synchronous API busy in this one.
    paragraphs = "\n".join(f"<p>Paragraph {n}: a recurrent network.</p>" for n in range(120))
    (tmp_path / "index.html").write_text(PAGE.replace("{paragraphs}", paragraphs))
    out = tmp_path / "pdf" / "book.pdf"
    done = subprocess.run(
        [sys.executable, str(REPOSITORY_ROOT / "scripts" / "book_pdf.py"),
         "--html-dir", str(tmp_path), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = out.read_bytes()
    assert data.startswith(b"%PDF-"), "the output is not a PDF"
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    assert pages >= 2, f"120 paragraphs printed on {pages} page(s)"
    assert f"{out}: {pages} pages" in done.stdout, done.stdout


def test_a_missing_page_is_named(book_pdf, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="index.html"):
        book_pdf.print_page(tmp_path, "index.html", tmp_path / "book.pdf")


def test_the_printed_page_is_the_one_index_forwards_to(tmp_path: Path) -> None:
    module = _book_pdf()  # no browser needed
    assert module.start_page(tmp_path) == "index.html"  # no index.html at all
    (tmp_path / "index.html").write_text("<html><body>The book.</body></html>")
    assert module.start_page(tmp_path) == "index.html"
    # Jupyter Book's singlehtml index only forwards to the root page.
    forward = '<meta http-equiv="Refresh" content="0; url=intro.html" />'
    (tmp_path / "index.html").write_text(forward)
    assert module.start_page(tmp_path) == "intro.html"
