"""The built documentation site, read as a user reads it.

A Sphinx build with ``-W`` catches broken references, not what a reader sees.
These checks read the HTML it wrote:

- no ``mailto:`` link but to a real address (docutils turns "precision@10"
  into an e-mail link; ``docs/sphinxext/plain_cells.py`` undoes that);
- no table cell that is a one-item bullet list (a CSV cell "+ preserve");
- no text a user cannot follow: a developers' issue number ("issue 7"),
  a design document ("DESIGN", "§2.1") or the developers' data folder
  ("shared/data");
- every image an ``<img>`` shows, or a link opens, is in the site.

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
