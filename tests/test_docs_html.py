"""The built documentation site, read as a user reads it.

A Sphinx build with ``-W`` catches broken references, not what a reader sees.
These checks read the HTML it wrote:

- no ``mailto:`` link but to a real address (docutils turns "precision@10"
  into an e-mail link; ``docs/sphinxext/plain_cells.py`` undoes that);
- no table cell that is a one-item bullet list (a CSV cell "+ preserve");
- no text a user cannot follow: a developers' issue number ("issue 7"),
  a design document ("DESIGN", "§2.1") or the developers' data folder
  ("shared/data");
- every image an ``<img>`` shows, or a link opens, is in the site;
- every figure of the article (not the gallery's thumbnails) is a link to
  its full-size image, so a figure shrunk to the page's width can be opened;
- no table printed in a code or output block is wider than the page's
  column (88 characters): the site's style sheet wraps long lines in those
  blocks rather than hide them, which would break a table's columns;
- the benchmarks page says which strategy to use before its figures, and its
  figures before its full tables;
- at 1400 and 390 px wide, in a real browser (chromium, driven by
  playwright): the page never scrolls sideways, no element runs past the
  article's column (a table too wide for a phone scrolls inside its own
  container), no table cell's text is cut, every table fits the column at
  1400 px, and every table of up to five columns fits it at 390 px.

They run over a built site when ``SKBACKWARD_DOCS_HTML`` names its folder
(``.ci/run`` sets it after its Sphinx build)::

    SKBACKWARD_DOCS_HTML=docs/_build/html python -m pytest tests/test_docs_html.py

and are skipped otherwise. The checkers themselves are tested on small
snippets every time (the browser's, where playwright and a chromium are
installed: ``SKBACKWARD_CHROMIUM`` names its executable, ``/usr/bin/chromium``
by default).
"""

import html
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

SITE = os.environ.get("SKBACKWARD_DOCS_HTML")

# a real address: a dotted domain ending in letters (not "precision@10")
REAL_ADDRESS = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}$")
# words of the developers' workflow, not of the package
UNFOLLOWABLE = re.compile(r"\bissues? (#?\d+|N)\b|\bDESIGN\b|§|shared/data|\.\./shared")
ONE_ITEM_LIST_CELL = re.compile(
    r"<td>\s*<ul[^>]*>\s*<li>(?:(?!</li>).)*</li>\s*</ul>\s*</td>", re.S
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp")
# the widest printed line that fits the article's column at 1400 px
MAX_TABLE_LINE = 88
PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S)
ARTICLE = re.compile(r"<article[^>]*>(.*)</article>", re.S)
IMG = re.compile(r"<img\b[^>]*>", re.S)
LINKED_IMG = re.compile(
    r"<a\b[^>]*href=\"([^\"]+)\"[^>]*>\s*(<img\b[^>]*>)\s*</a>", re.S
)


class _Page(HTMLParser):
    """Visible text, ``mailto:`` targets and local image paths of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.mailto, self.images = [], [], []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._hidden += 1
        href = attrs.get("href") or ""
        if tag == "a" and href.startswith("mailto:"):
            self.mailto.append(unquote(href[len("mailto:"):]))
        elif tag == "a" and urlsplit(href).path.lower().endswith(IMAGE_SUFFIXES):
            self.images.append(href)
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def read_page(source):
    page = _Page()
    page.feed(source)
    page.close()
    return page


def bogus_mailto(page):
    return [m for m in page.mailto if not REAL_ADDRESS.match(m)]


def unfollowable(page):
    text = re.sub(r"\s+", " ", " ".join(page.text))
    return [
        text[max(m.start() - 40, 0):m.end() + 40]
        for m in UNFOLLOWABLE.finditer(text)
    ]


def list_cells(source):
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in ONE_ITEM_LIST_CELL.findall(source)]


def missing_images(page, html_path):
    missing = []
    for src in page.images:
        parts = urlsplit(src)
        if parts.scheme or parts.netloc or src.startswith("data:"):
            continue  # an external image is not the build's to check
        if not (html_path.parent / unquote(parts.path)).is_file():
            missing.append(src)
    return missing


def unlinked_figures(source):
    """The ``src`` of the figures (``_images/``) of the article that are not
    wrapped in a link to an image (the gallery's thumbnails, which link to
    their example, are left out)."""
    article = ARTICLE.search(source)
    if not article:
        return []
    body = article.group(1)
    linked = {img for href, img in LINKED_IMG.findall(body)
              if urlsplit(href).path.lower().endswith(IMAGE_SUFFIXES)}
    found = []
    for img in IMG.findall(body):
        src = re.search(r'src="([^"]+)"', img)
        if img in linked or not src or "_images/" not in src.group(1) \
                or "_thumb." in src.group(1):
            continue  # a theme's icon, or a thumbnail
        found.append(src.group(1))
    return found


def wide_table_lines(source):
    """Lines of printed tables (starting with "|" or "+-") in ``<pre>``
    blocks that are wider than the article's column."""
    found = []
    for block in PRE.findall(source):
        text = html.unescape(re.sub(r"<[^>]+>", "", block))
        found += [line for line in text.splitlines()
                  if line.lstrip().startswith(("|", "+-"))
                  and len(line.rstrip()) > MAX_TABLE_LINE]
    return found


def section_order(source, first, then):
    """Whether the text ``first`` comes before ``then`` in the page."""
    a, b = source.find(first), source.find(then)
    return 0 <= a < b


# the page widths of the browser check: a laptop's, a phone's
WIDTHS = (1400, 390)
# at a phone's width, a table of more columns may scroll inside its container
PHONE_MAX_FITTING_COLUMNS = 5
CHROMIUM = os.environ.get("SKBACKWARD_CHROMIUM", "/usr/bin/chromium")
# what the browser measures on a page (the article: pydata-sphinx-theme's
# .bd-article; tables are in its .pst-scrollable-table-container)
MEASURE_JS = """() => {
  const page = document.documentElement;
  const column = document.querySelector('.bd-article') || document.body;
  const right = column.getBoundingClientRect().right;
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const name = (el) => el.tagName.toLowerCase() + (el.className ? '.' +
      String(el.className).trim().split(/\\s+/).join('.') : '') + ' "' +
      el.textContent.trim().slice(0, 40) + '"';
  const past = [];
  for (const el of column.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (!box.width || box.right <= right + 1) continue;
    let inside = false;  // within a container that scrolls and fits the column
    for (let p = el.parentElement; p && p !== column; p = p.parentElement) {
      if (scrolls(p) && p.getBoundingClientRect().right <= right + 1) {
        inside = true;
        break;
      }
    }
    if (!inside) past.push(name(el));
  }
  // scikit-learn's estimator display (the examples' fitted estimators) lays
  // out and scrolls its own boxes, its tables folded away in <details>
  const ours = (el) => !el.closest('.sk-top-container, details:not([open])');
  const tables = [...column.querySelectorAll('table')].filter(ours).map((t) => {
    const box = t.parentElement;
    return {name: name(t), columns: t.rows.length ? t.rows[0].cells.length : 0,
            width: t.scrollWidth, room: box.clientWidth};
  });
  const cut = [...column.querySelectorAll('td, th')].filter(ours)
      .filter((c) => c.scrollWidth > c.clientWidth + 1).map(name);
  return {sideways: page.scrollWidth - page.clientWidth, past, tables, cut};
}"""


def width_problems(measured, width):
    """What a reader at ``width`` px cannot read whole, from ``MEASURE_JS``."""
    problems = []
    if measured["sideways"] > 0:
        problems.append(f"the page scrolls sideways by {measured['sideways']} px")
    problems += [f"past the column: {name}" for name in measured["past"][:5]]
    problems += [f"text cut in a cell: {name}" for name in measured["cut"][:5]]
    for table in measured["tables"]:
        must_fit = width >= 1000 or table["columns"] <= PHONE_MAX_FITTING_COLUMNS
        if must_fit and table["width"] > table["room"] + 1:
            problems.append(f"a table {table['width']} px wide in {table['room']} px: "
                            f"{table['name']}")
    return problems


@pytest.fixture(scope="module")
def browser():
    """A headless chromium. Without playwright or chromium the test skips,
    unless a built site is to be checked (``SKBACKWARD_DOCS_HTML``, as in
    CI): then it fails, rather than leave the widths unchecked."""
    missing = pytest.fail if SITE else pytest.skip
    try:
        from playwright import sync_api
    except ImportError:
        missing("playwright is not installed (the docs extra)")
    if not Path(CHROMIUM).is_file():
        missing(f"no chromium at {CHROMIUM} (SKBACKWARD_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


def measure(browser, urls, width):
    """``MEASURE_JS`` of each page of ``urls`` (or of one url) at ``width`` px."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        found = []
        for url in [urls] if isinstance(urls, str) else urls:
            page.goto(url)
            found.append(page.evaluate(MEASURE_JS))
        return found[0] if isinstance(urls, str) else found
    finally:
        page.close()


# -- the checkers, on snippets -------------------------------------------------

def test_width_checker_on_a_page(browser, tmp_path):
    cell = "<td>" + "word " * 30 + "</td>"
    narrow = f"<table><tr>{cell}{cell}</tr></table>"
    wide = "<table><tr>" + "<td>0.12345</td>" * 40 + "</tr></table>"
    page = tmp_path / "page.html"
    style = ".scroll { overflow-x: auto } td { white-space: nowrap }"
    source = (
        f"<html><head><style>{style}</style></head><body><article class='bd-article'>"
        f"<p>text</p>{narrow}<div class='scroll'>{wide}</div></article></body></html>"
    )
    page.write_text(source)
    found = width_problems(measure(browser, page.as_uri(), 390), 390)
    # the unwrapped two-column table runs past the column and the page
    # scrolls; the forty-column one scrolls in its container, as a phone may
    assert any("scrolls sideways" in p for p in found), found
    assert any(p.startswith('past the column: table "word') for p in found), found
    assert not any("0.12345" in p for p in found), found
    page.write_text(source.replace("td { white-space: nowrap }", ""))
    assert width_problems(measure(browser, page.as_uri(), 390), 390) == []
    # on a laptop's page every table must fit the column
    found = width_problems(measure(browser, page.as_uri(), 1400), 1400)
    assert len(found) == 1 and found[0].startswith("a table"), found
    assert "0.12345" in found[0]


def test_checkers_on_snippets(tmp_path):
    page = read_page(
        '<p><a href="mailto:precision&#37;&#52;&#48;10">precision@10</a> '
        '<a href="mailto:someone@example.org">write</a> as in issue 7 and '
        'DESIGN §2.1, see ../shared/data; the design of issues.</p>'
        '<script>var issue = "issue 3";</script><img src="a.png">'
        '<a href="b.png">full size</a><img src="https://x.org/c.png">'
    )
    assert bogus_mailto(page) == ["precision@10"]
    found = unfollowable(page)
    assert len(found) == 4 and not any("var" in f for f in found)
    (tmp_path / "a.png").write_bytes(b"")
    assert missing_images(page, tmp_path / "index.html") == ["b.png"]
    cells = (
        '<td><ul class="simple"><li><p>preserve</p></li></ul></td>'
        "<td><p>+ a</p></td>"
    )
    assert list_cells(cells) == ["preserve"]
    article = (
        '<article><a href="_images/a.png"><img src="_images/a.png"></a>'
        '<img src="_images/b.png"><a href="x.html"><img src="_images/c.png"></a>'
        "</article>"
    )
    assert unlinked_figures(article) == ["_images/b.png", "_images/c.png"]
    table = "| " + "x" * 90 + " |"
    pre = f"<pre>| a | b |\n{table}\nprose {'y' * 100}</pre>"
    assert wide_table_lines(pre) == [table]
    assert section_order("<h2>In short</h2><img>", "In short", "<img")
    assert not section_order("<img><h2>In short</h2>", "In short", "<img")


# -- the built site ------------------------------------------------------------

def _pages():
    if not SITE:
        return []
    root = Path(SITE)
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"SKBACKWARD_DOCS_HTML={SITE}: no index.html there")
    return sorted(p for p in root.rglob("*.html") if "_static" not in p.parts)


needs_site = pytest.mark.skipif(
    not SITE, reason="set SKBACKWARD_DOCS_HTML to a built site (docs/_build/html)"
)


@pytest.fixture(scope="module")
def site():
    pages = _pages()
    assert len(pages) > 20, f"only {len(pages)} pages under {SITE}"
    return [(p, p.read_text(encoding="utf-8")) for p in pages]


def _report(site, find):
    root = Path(SITE)
    found = {}
    for path, source in site:
        hits = find(path, source)
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


@needs_site
def test_no_mailto_but_real_addresses(site):
    found = _report(site, lambda p, s: bogus_mailto(read_page(s)))
    assert not found, f"e-mail links that are no address: {found}"


@needs_site
def test_no_table_cell_is_a_bullet(site):
    found = _report(site, lambda p, s: list_cells(s))
    assert not found, f"table cells rendered as a one-item list: {found}"


@needs_site
def test_no_words_a_user_cannot_follow(site):
    found = _report(site, lambda p, s: unfollowable(read_page(s)))
    assert not found, f"issue numbers, design notes or data folders: {found}"


@needs_site
def test_every_image_is_in_the_site(site):
    found = _report(site, lambda p, s: missing_images(read_page(s), p))
    assert not found, f"images that are not in the site: {found}"


@needs_site
def test_every_figure_opens_full_size(site):
    # the pages' figures (a :target:) and the gallery's
    # (docs/sphinxext/gallery_figure_links.py)
    found = _report(site, lambda p, s: unlinked_figures(s))
    assert not found, f"figures without a link to their full size: {found}"


@needs_site
def test_printed_tables_fit_the_column(site):
    found = _report(site, lambda p, s: wide_table_lines(s))
    assert not found, f"printed table lines over {MAX_TABLE_LINE} characters: {found}"
    css = Path(SITE) / "_static" / "skbackward.css"
    wraps = re.compile(r"\.bd-article pre\s*\{[^}]*white-space:\s*pre-wrap")
    assert wraps.search(css.read_text()), (
        "the style sheet no longer wraps long lines in code blocks"
    )


@needs_site
def test_benchmarks_page_conclusions_first(site):
    source = dict((p.name, s) for p, s in site)["benchmarks.html"]
    assert section_order(source, 'id="in-short"', "<img"), (
        "the benchmarks page should say which strategy to use before its figures"
    )
    assert section_order(source, "<img", 'id="full-tables"'), (
        "the benchmarks page's full tables should follow its figures"
    )


@needs_site
def test_pages_fit_a_laptop_and_a_phone(site, browser):
    found = {}
    for width in WIDTHS:
        urls = [path.resolve().as_uri() for path, _ in site]
        for (path, _), measured in zip(site, measure(browser, urls, width)):
            problems = width_problems(measured, width)
            if problems:
                found[f"{path.relative_to(Path(SITE))} at {width} px"] = problems
    assert not found, f"what a reader cannot read whole: {found}"
