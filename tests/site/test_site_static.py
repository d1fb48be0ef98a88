"""The built website as files and HTTP responses: no browser needed.

Launch and download buttons, links, self-containment, leaks, page weight, widget state, the
library reference (one page per module) and the numbers in tables.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import nbformat
from site_support import (
    BOOK_DIR,
    REPOSITORY_ROOT,
    Page,
    book_config,
    is_local,
    page_weight,
    parse_html,
    toc_pages,
)

MAX_CHAPTER_TRANSFER_BYTES = 3_000_000
# The bytes each page transferred before the website was made to work on phones: its pages
# may not get heavier (a page with no entry has only the 3 MB limit).
PAGE_WEIGHT_BUDGET = Path(__file__).with_name("page_weight_budget.json")
LIBRARY = REPOSITORY_ROOT / "lib" / "throughtime"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# A decimal number in a table, and how many significant digits a table may show: pandas prints
# a float it was not asked to round with six decimals ("6.666667", seven digits), the book's
# tables four ("6.667", "0.009358").
DECIMAL = re.compile(r"(?<![\w.])-?(\d+)\.(\d+)(?![\d])")
MAX_TABLE_DIGITS = 5


def unrounded_numbers(text: str) -> list[str]:
    """The decimal numbers in ``text`` shown with more than ``MAX_TABLE_DIGITS`` significant
    digits (leading zeros do not count)."""
    return [match[0] for match in DECIMAL.finditer(text)
            if len((match[1] + match[2]).lstrip("0")) > MAX_TABLE_DIGITS]
COLAB = "https://colab.research.google.com"
# Attributes through which a page loads something while it opens.
LOADING_ATTRIBUTES = {
    "script": "src",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "audio": "src",
    "video": "src",
    "embed": "src",
    "object": "data",
    "link": "href",
}
# <link> relations that only name another page and fetch nothing.
NAMING_LINK_RELS = {"canonical", "alternate", "author", "license", "help", "index", "search"}
NAMING_LINK_RELS |= {"next", "prev", "previous", "up", "me", "bookmark"}


def site_pages(site_dir: Path) -> list[Path]:
    """Every HTML page of the site (the theme's template fragments in _static excluded)."""
    pages = site_dir.rglob("*.html")
    return sorted(path for path in pages if "_static" not in path.relative_to(site_dir).parts)


def repository_url() -> str:
    return book_config()["repository"]["url"].rstrip("/").removesuffix(".git")


def expected_colab_url(page: Page) -> str:
    """The Colab link for a notebook: repository, branch and path from _config.yml."""
    repository = book_config()["repository"]
    owner_and_name = urlsplit(repository_url()).path.strip("/")
    path_to_book = (repository.get("path_to_book") or "").strip("/")
    notebook = f"{path_to_book}/{page.docname}.ipynb" if path_to_book else f"{page.docname}.ipynb"
    # The launch buttons open the reader notebooks, published to their own branch.
    theme = ((book_config().get("sphinx") or {}).get("config") or {}).get("html_theme_options")
    branch = (theme or {}).get("repository_branch", repository["branch"])
    return f"{COLAB}/github/{owner_and_name}/blob/{branch}/{notebook}"


def fetch(url: str) -> tuple[int, bytes]:
    """GET ``url``; returns the status and body (an HTTP error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_the_site_is_built(site_dir: Path) -> None:
    assert (site_dir / "search.html").is_file(), "the build has no search page"
    assert toc_pages(), f"{BOOK_DIR / '_toc.yml'} lists no page"


def test_page_is_built(page: Page, built_page: Path) -> None:
    assert page.source is not None, f"{page.docname} is in _toc.yml but has no source file"
    assert built_page.stat().st_size > 0


def test_repository_button_links_to_the_repository(page: Page, built_page: Path) -> None:
    buttons = parse_html(built_page).find("a", class_="btn-source-repository-button")
    assert buttons, f"{page.docname}: no repository button"
    assert [tag.attrs["href"] for tag in buttons] == [repository_url()] * len(buttons)


def test_notebook_has_a_colab_launch_link(notebook: Page, site_dir: Path) -> None:
    hrefs = [
        tag.attrs.get("href", "") for tag in parse_html(site_dir / notebook.html_path).find("a")
    ]
    colab = [href for href in hrefs if href.startswith(COLAB)]
    assert colab == [expected_colab_url(notebook)], (
        f"{notebook.docname}: expected one Colab link {expected_colab_url(notebook)}, found {colab}"
    )


def test_notebook_page_offers_its_ipynb(notebook: Page, site_dir: Path, server: str) -> None:
    page_file = site_dir / notebook.html_path
    buttons = parse_html(page_file).find("a", class_="btn-download-source-button")
    hrefs = [tag.attrs["href"] for tag in buttons]
    assert len(hrefs) == 1 and hrefs[0].endswith(".ipynb"), (
        f"{notebook.docname}: expected one .ipynb download button, found {hrefs}"
    )
    status, body = fetch(urljoin(urljoin(server, notebook.html_path), hrefs[0]))
    assert status == 200, f"{notebook.docname}: the download {hrefs[0]} answers HTTP {status}"
    downloaded = nbformat.reads(body.decode("utf-8"), as_version=4)
    nbformat.validate(downloaded)
    # After `make notebooks` the download is the reader notebook (with outputs), else the source.
    reader = BOOK_DIR / "_build" / "notebooks" / f"{notebook.docname}.ipynb"
    expected = reader if reader.parent.is_dir() else notebook.source
    source = nbformat.read(expected, as_version=4)
    assert [cell.source for cell in downloaded.cells] == [cell.source for cell in source.cells], (
        f"{notebook.docname}: the downloaded notebook differs from {expected}"
    )


def test_no_widget_placeholders_in_the_html(page: Page, built_page: Path) -> None:
    parsed = parse_html(built_page)
    views = parsed.find("script", type="application/vnd.jupyter.widget-view+json")
    assert not views, (
        f"{page.docname} has {len(views)} ipywidgets output(s) that render as nothing on the "
        "website: tag the widget cell `remove-cell` and show its static counterpart"
    )


def test_pages_load_nothing_from_other_hosts(site_dir: Path) -> None:
    """Every script, stylesheet, font and image comes from the site itself."""
    foreign = []
    for path in site_pages(site_dir):
        for tag in parse_html(path).tags:
            attribute = LOADING_ATTRIBUTES.get(tag.name)
            url = tag.attrs.get(attribute, "") if attribute else ""
            if tag.name == "link" and set(tag.attrs.get("rel", "").lower().split()) <= (
                NAMING_LINK_RELS
            ):
                continue
            if urlsplit(url).netloc or url.startswith("//"):
                foreign.append(f"{path.relative_to(site_dir)}: <{tag.name} {attribute}={url}>")
    assert not foreign, "pages load from other hosts:\n" + "\n".join(foreign)


LEAKS = [
    re.compile(pattern)
    for pattern in (
        r"/work/",
        r"/root/",
        r"/home/",
        r"/tmp/",
        r"/_build/",
        r"\.venv/",
        r"site-packages",
        r"file://",
        r"Traceback \(most recent call last\)",
    )
]


def test_no_local_paths_or_tracebacks_are_published(site_dir: Path) -> None:
    leaks = []
    book_path = re.compile(re.escape(str(BOOK_DIR)))
    for path in site_pages(site_dir):
        html = path.read_text(encoding="utf-8")
        for pattern in [*LEAKS, book_path]:
            for match in pattern.finditer(html):
                context = " ".join(html[max(0, match.start() - 40) : match.end() + 40].split())
                leaks.append(f"{path.relative_to(site_dir)}: {context!r}")
    assert not leaks, "local paths or tracebacks in published pages:\n" + "\n".join(leaks[:30])


def test_the_library_reference_shows_constants_as_written(site_dir: Path) -> None:
    """No ``<function ...>`` or ``<lambda>`` reprs as values, and no "Type" field on a module
    constant (napoleon makes one from a colon in the first line of its docstring; the book's
    extension _ext/throughtime_site.py keeps those docstrings as written)."""
    pages = sorted((site_dir / "api").glob("*.html"))
    assert len(pages) > 10, "the library reference has a page per module"
    html = "".join(page.read_text(encoding="utf-8") for page in pages)
    reprs = re.findall(r"&lt;(?:function|lambda|ufunc)[^&]{0,40}&gt;| object at 0x[0-9a-f]+", html)
    assert not reprs, f"the library reference shows object reprs as values: {reprs[:5]}"
    # Each documented object starts a <dl class="py ...">; a constant's entry runs to the next.
    constants = [block for block in re.split(r'(?=<dl class="py )', html)
                 if block.startswith('<dl class="py data">')]
    assert len(constants) > 10, "the library reference lists the modules' constants"
    typed = [re.search(r'id="([^"]+)"', block)[1] for block in constants
             if re.search(r'<dt class="field-\w+">Type<', block)]
    assert not typed, f"constants shown with a 'Type' made from their docstring: {typed[:5]}"


def _references(path: Path) -> list[str]:
    """Every URL a page links to or loads."""
    found = []
    for tag in parse_html(path).tags:
        for attribute in ("href", "src"):
            if tag.attrs.get(attribute):
                found.append(tag.attrs[attribute])
    return found


def test_internal_links_resolve(site_dir: Path, server: str) -> None:
    """Crawl the site from the table of contents: every local link and asset answers 200,
    and every #anchor into an HTML page names an element of that page."""
    pending = deque(urljoin(server, page.html_path) for page in toc_pages())
    checked: dict[str, int] = {}
    broken, missing_anchors = [], []
    while pending:
        page_url = pending.popleft()
        page_file = site_dir / unquote(urlsplit(page_url).path).lstrip("/")
        for reference in _references(page_file):
            if reference.startswith(("mailto:", "javascript:", "data:", "tel:")):
                continue
            url, fragment = urldefrag(urljoin(page_url, reference))
            if not is_local(url, server):
                continue
            if url not in checked:
                checked[url], _ = fetch(url)
                if checked[url] == 200 and urlsplit(url).path.endswith(".html"):
                    pending.append(url)
            where = f"{page_file.relative_to(site_dir)} -> {reference}"
            if checked[url] != 200:
                broken.append(f"{where} (HTTP {checked[url]})")
            elif fragment and urlsplit(url).path.endswith(".html"):
                target = site_dir / unquote(urlsplit(url).path).lstrip("/")
                if unquote(fragment) not in parse_html(target).ids:
                    missing_anchors.append(where)
    assert not broken, "broken links:\n" + "\n".join(sorted(set(broken)))
    assert not missing_anchors, "links to missing anchors:\n" + "\n".join(
        sorted(set(missing_anchors))
    )


def test_chapter_pages_transfer_under_3_mb(site_dir: Path) -> None:
    weights = [page_weight.page_weight(site_dir, page.docname) for page in toc_pages()]
    print("\n" + page_weight.format_table(weights))
    heavy = [
        weight
        for weight in weights
        if weight.docname.startswith("chapters/") and weight.transfer > MAX_CHAPTER_TRANSFER_BYTES
    ]
    assert not heavy, (
        "chapter pages over 3 MB (make figures smaller, or show fewer):\n"
        + page_weight.format_table(weights)
    )


def test_chapter_pages_own_bytes_under_3_mb(site_dir: Path) -> None:
    """The page's own content (HTML and its figures), uncompressed, stays under 3 MB.

    The theme's scripts and styles are shared by every page and cached after the first
    visit, so they are not counted here; they are in the transfer test above.
    """
    weights = [page_weight.page_weight(site_dir, page.docname) for page in toc_pages()]
    heavy = [
        f"{weight.docname}: {(weight.html + weight.images) / 1e6:.2f} MB"
        for weight in weights
        if weight.docname.startswith("chapters/")
        and weight.html + weight.images > MAX_CHAPTER_TRANSFER_BYTES
    ]
    assert not heavy, "chapter pages whose HTML and figures exceed 3 MB:\n" + "\n".join(heavy)


def test_pages_carry_no_widget_state(page: Page, built_page: Path) -> None:
    """Live widgets are removed from the website; so is the state the notebook kept of them."""
    html = built_page.read_text(encoding="utf-8")
    assert WIDGET_STATE not in html, (
        f"{page.docname} embeds ipywidgets state ({len(html) // 1000} kB page): the build "
        "should drop the notebook's metadata.widgets (_ext/throughtime_site.py)"
    )


def _weight_without_search_index(site_dir: Path, docname: str) -> int:
    """A page's transfer without the search index, which every page loads and which grows
    with the book (a new chapter or reference page), not with how the page is built."""
    weight = page_weight.page_weight(site_dir, docname)
    shared = [path for path in weight.files if path.name == "searchindex.js"]
    return weight.transfer - sum(page_weight.transfer_size(path) for path in shared)


def test_pages_stay_within_their_weight_budget(site_dir: Path) -> None:
    budget = json.loads(PAGE_WEIGHT_BUDGET.read_text(encoding="utf-8"))["transfer_bytes"]
    heavier = []
    for page in toc_pages():
        if page.docname not in budget:
            continue
        weight = _weight_without_search_index(site_dir, page.docname)
        if weight > budget[page.docname]:
            heavier.append(
                f"{page.docname}: {weight / 1000:.0f} kB, budget "
                f"{budget[page.docname] / 1000:.0f} kB"
            )
    assert not heavier, (
        f"pages heavier than their budget in {PAGE_WEIGHT_BUDGET.name} (search index not "
        "counted):\n" + "\n".join(heavier)
    )


def public_modules() -> list[str]:
    """The library's public modules, from its source folder."""
    return sorted(path.stem for path in LIBRARY.glob("*.py") if not path.stem.startswith("_"))


def test_library_reference_has_one_page_per_module(site_dir: Path) -> None:
    reference = site_dir / "api.html"
    assert reference.is_file(), "no library reference page (api.html)"
    links = {tag.attrs.get("href", "").split("#")[0] for tag in parse_html(reference).find("a")}
    missing_pages, missing_links = [], []
    for module in public_modules():
        page = site_dir / "api" / f"{module}.html"
        if not page.is_file() or f"module-throughtime.{module}" not in parse_html(page).ids:
            missing_pages.append(module)
        if f"api/{module}.html" not in links:
            missing_links.append(module)
    assert not missing_pages, f"modules without their reference page: {missing_pages}"
    assert not missing_links, f"modules the reference page does not list: {missing_links}"


def test_tables_print_rounded_numbers(page: Page, built_page: Path) -> None:
    html = built_page.read_text(encoding="utf-8")
    unrounded = []
    # Tables of numbers computed by cells (pandas writes them with class "dataframe"); the
    # prose's own tables hold arXiv numbers and versions, not floats.
    for table in re.findall(r'<table[^>]*class="[^"]*dataframe.*?</table>', html, re.S):
        for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table, re.S):
            text = re.sub(r"<[^>]+>", "", cell)
            unrounded += unrounded_numbers(text)
    assert not unrounded, (
        f"{page.docname}: table cells with unrounded floats: {sorted(set(unrounded))[:10]}"
    )
