"""Gallery figures open full size, as the other figures of the site do.

sphinx-gallery writes each figure of an example as a bare ``<img>`` (its
``image-sg`` directive, with a ``srcset``); the pages written by hand give
theirs a ``:target:``. This wraps sphinx-gallery's tag in a link to the
image file, by replacing the HTML visitor of its node with one that calls
the original and links what it wrote.
"""

import re

from sphinx_gallery.directives import (
    depart_imgsg_html,
    depart_imgsg_latex,
    imgsgnode,
    visit_imgsg_html,
    visit_imgsg_latex,
)

# sphinx-gallery's own tag starts so (without a srcset it falls back on
# Sphinx's image visitor, which is left as it is)
_GALLERY_IMG = re.compile(r'<img src="([^"]+)"')


def visit_linked_imgsg_html(self, node):
    start = len(self.body)
    visit_imgsg_html(self, node)
    html = "".join(self.body[start:])
    found = _GALLERY_IMG.match(html)
    if found:
        self.body[start:] = [
            f'<a class="reference internal image-reference" '
            f'href="{found.group(1)}">{html}</a>'
        ]


def setup(app):
    app.setup_extension("sphinx_gallery.gen_gallery")
    app.add_node(
        imgsgnode,
        override=True,
        html=(visit_linked_imgsg_html, depart_imgsg_html),
        latex=(visit_imgsg_latex, depart_imgsg_latex),
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
