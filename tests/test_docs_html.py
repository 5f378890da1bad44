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
  figures before its full tables.

They run over a built site when ``SKBACKWARD_DOCS_HTML`` names its folder
(``.ci/run`` sets it after its Sphinx build)::

    SKBACKWARD_DOCS_HTML=docs/_build/html python -m pytest tests/test_docs_html.py

and are skipped otherwise. The checkers themselves are tested on small
snippets every time.
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


# -- the checkers, on snippets -------------------------------------------------

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
