"""Shared docstring text, filled into several estimators' docstrings.

A docstring built as ``"..." + TEXT + "..."`` is an expression, not a
docstring: Python leaves ``__doc__`` empty. :func:`fill_doc` fills named
``{markers}`` in a real docstring instead.
"""

import textwrap


def fill_doc(**blocks):
    """Class or function decorator: replace each ``{name}`` line of the docstring.

    Each ``{name}`` must stand alone on its line; the block (dedented text)
    is indented like the marker.
    """

    def decorate(obj):
        lines = []
        found = set()
        for line in obj.__doc__.splitlines():
            name = line.strip()[1:-1]
            if line.strip() == "{" + name + "}" and name in blocks:
                indent = line[: len(line) - len(line.lstrip())]
                block = textwrap.dedent(blocks[name]).strip("\n")
                lines.append(textwrap.indent(block, indent))
                found.add(name)
            else:
                lines.append(line)
        missing = set(blocks) - found
        if missing:
            raise ValueError(f"{obj.__name__}'s docstring has no {sorted(missing)}.")
        obj.__doc__ = "\n".join(lines)
        return obj

    return decorate
