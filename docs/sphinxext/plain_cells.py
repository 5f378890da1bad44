"""Undo two of reStructuredText's guesses that are wrong on these pages.

- **Metric names read as e-mail addresses.** Docutils turns every bare
  ``name@domain`` into a ``mailto:`` link, so "precision@10", "kept@10" or
  "hit@10" (in the pages, in the CSV tables that ``csv-table`` reads and in
  the docstrings on the API pages) became e-mail links. A ``mailto:``
  reference whose text is a word, ``@`` and a number goes back to plain text;
  real addresses (``someone@example.org``) stay links.
- **Table cells read as bullet lists.** A ``csv-table`` cell is parsed as
  body text, so a cell "+ preserve" (a row that adds an option to the row
  above) became a one-item bullet list. A one-item ``+`` list that is the
  only content of a table cell goes back to a paragraph "+ preserve".

Both run on every document once it is read (``doctree-read``), so pages,
generated API pages, gallery pages and the CSV files need no escaping.
"""

import re

from docutils import nodes

# a metric "at k": precision@10, mAP@10, P@10, hit@k
METRIC_AT_K = re.compile(r"^\w+@(\d+|k)$")


def _metric_mailto(node):
    return (
        isinstance(node, nodes.reference)
        and node.get("refuri", "").startswith("mailto:")
        and METRIC_AT_K.match(node.astext()) is not None
    )


def _plus_cell(node):
    return (
        isinstance(node, nodes.bullet_list)
        and node.get("bullet") == "+"
        and len(node.children) == 1
        and isinstance(node.parent, nodes.entry)
        and len(node.parent.children) == 1
    )


def unguess(app, doctree):
    """Replace metric ``mailto:`` links and one-item ``+`` cells in ``doctree``."""
    for ref in list(doctree.findall(_metric_mailto)):
        ref.replace_self(nodes.Text(ref.astext()))
    for blist in list(doctree.findall(_plus_cell)):
        item = blist.children[0]
        if len(item.children) == 1 and isinstance(item[0], nodes.paragraph):
            para = item[0]
            para.insert(0, nodes.Text("+ "))
            blist.replace_self(para)
        else:
            para = nodes.paragraph("", "+ " + item.astext())
            blist.replace_self(para)


def setup(app):
    app.connect("doctree-read", unguess)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
