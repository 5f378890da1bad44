"""Run the user guide's code snippets and compare their output with the pages.

The user guide's pages (``docs/user_guide/*.rst``) hold Python snippets
(``.. code-block:: python``) that run in order, page after page, in one
Python session, each followed by the output it printed (a literal block:
``::`` or ``.. code-block:: text``) when it prints something. This script
runs them all, with one torch thread, and compares::

    python docs/run_user_guide.py            # print each snippet's output
    python docs/run_user_guide.py --check    # exit 1 if a page's output differs
    python docs/run_user_guide.py --write    # paste the new outputs into the pages

``--check`` compares the words of an output exactly (runs of spaces count as
one) and its decimal numbers ("0.952", "1.5e-03") within ``--tolerance``,
0.01 by default. Whole numbers (counts such as "93 of 100") and every word
must match.

On one machine (the same torch build, CPU kernels and thread count) the
outputs are bit for bit the same from run to run. A CPU whose vector kernels
differ (torch picks them at start: ``ATEN_CPU_CAPABILITY=default``, ``avx2``
or ``avx512`` forces one) rounds a training run's sums differently in the
last bit, and 30 epochs amplify that into another network: its figures move
by a few hundredths, its neighbours and chosen parameters may change. So the
snippets print what is stable (shares over many queries, medians over seeds,
shapes) rather than neighbour indices, and a snippet whose figures still move
says by how much in a comment the reader sees, which ``--check`` reads:

- ``# figures vary by up to 0.05 with the CPU`` (or "varies by up to"):
  this snippet's decimal numbers are compared within 0.05 (or
  ``--tolerance``, if larger);
- ``# varies with the CPU``: the output is shown but not compared (a
  decision, such as a grid search's choice, that differs between CPUs; the
  page says so and by how much).

``--tolerance 0`` ignores both comments and asks for every output exactly as
printed: the check of the machine that wrote the pages.

CI (``.ci/run``) runs ``--check`` with the default tolerance under one of
the three ``ATEN_CPU_CAPABILITY`` settings, chosen by the commit.

Run it from anywhere; it imports the ``skbackward`` found on ``sys.path``
(``PYTHONPATH=$PWD`` in a checkout). A run takes a few minutes on two cores
(about 3.5 minutes on a busy 2-core machine, 2.5 on a quieter one; the five
networks that tuning.rst's last snippet trains for its medians add about 3%).
Warnings are listed with each snippet's output but not compared (the pages
describe them in words).
"""

import argparse
import contextlib
import io
import re
import sys
import time
import warnings
from pathlib import Path

GUIDE = Path(__file__).resolve().parent / "user_guide"
CODE = re.compile(r"^\.\. code-block:: python\s*$")
# a literal block: "::" alone or ending a paragraph ("This printed::"), or text
OUTPUT = re.compile(r"^((?!\.\. ).*::|\.\. code-block:: text)\s*$")


def pages():
    """The pages of the user guide, in the order of its toctree."""
    names, in_toctree = [], False
    for line in (GUIDE / "index.rst").read_text().splitlines():
        if line.startswith(".. toctree::"):
            in_toctree = True
        elif in_toctree and line.strip() and not line.strip().startswith(":"):
            if not line.startswith(" "):
                break
            names.append(line.strip())
    return [GUIDE / f"{name}.rst" for name in names]


def block(lines, start):
    """The indented block under the directive on line ``start - 1``.

    Returns its first and one-past-last line (blank lines around it left out)
    and its text, dedented.
    """
    i = start
    # blank lines and the directive's options (":caption: ...")
    while i < len(lines) and (not lines[i].strip()
                              or re.match(r"^\s+:[\w-]+:", lines[i])):
        i += 1
    first = end = i
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
        if lines[i].strip():
            end = i + 1
        i += 1
    body = lines[first:end]
    indent = min(len(x) - len(x.lstrip()) for x in body if x.strip())
    return first, end, "\n".join(x[indent:] for x in body)


def snippets(path):
    """(code, output span or None) for every Python snippet of one page.

    The output span is (first line, end line, indent, text) of the literal
    block that directly follows the snippet, if any.
    """
    lines = path.read_text().splitlines()
    found = []
    for n, line in enumerate(lines):
        if not CODE.match(line):
            continue
        _, end, code = block(lines, n + 1)
        j = end
        while j < len(lines) and not lines[j].strip():
            j += 1
        output = None
        if j < len(lines) and OUTPUT.match(lines[j]):
            first, out_end, text = block(lines, j + 1)
            indent = len(lines[first]) - len(lines[first].lstrip())
            output = (first, out_end, indent, text)
        found.append((code, output))
    return lines, found


# what the comment of a snippet says about its output (see the module's docstring)
VARIES_BY = re.compile(r"#.*\bvar(?:y|ies) by up to (\d+(?:\.\d+)?) with the CPU\b")
NOT_COMPARED = re.compile(r"#.*\bvaries with the CPU\b")


def tolerance_of(code, tolerance):
    """How far the snippet's decimal numbers may be from its page's: None
    when its output is not compared, else the larger of ``tolerance`` and the
    figure of its "vary by up to ... with the CPU" comment; 0 (exactly as
    printed, every output) when ``tolerance`` is 0."""
    if tolerance == 0:
        return 0
    if NOT_COMPARED.search(code):
        return None
    found = [float(x) for x in VARIES_BY.findall(code)]
    return max([tolerance, *found])


def normalise(text):
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


# a decimal number: "0.952", "-1.5", "1.5e-03" (whole numbers, counts, match exactly)
DECIMAL = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")


def agree(got, shown, tolerance):
    """Whether an output matches its page: the same words (runs of spaces
    counting as one) and decimal numbers within ``tolerance``."""
    def split(text):
        text = re.sub(r"\s+", " ", text.strip())
        return DECIMAL.split(text), [float(x) for x in DECIMAL.findall(text)]

    words_got, numbers_got = split(got)
    words_shown, numbers_shown = split(shown)
    return (words_got == words_shown and len(numbers_got) == len(numbers_shown)
            and all(abs(a - b) <= tolerance + 1e-12
                    for a, b in zip(numbers_got, numbers_shown)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 when an output differs from its page")
    mode.add_argument("--write", action="store_true",
                      help="replace the outputs on the pages by the new ones")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="--check: how far a decimal number may be from the "
                        "page's where the snippet says no more (default 0.01; 0: "
                        "every output exactly as printed)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    namespace = {"__name__": "__user_guide__"}
    differ = 0
    for path in pages():
        lines, found = snippets(path)
        edits = []
        for number, (code, output) in enumerate(found, 1):
            tic = time.perf_counter()
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer), \
                    warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                exec(compile(code, f"{path.name}, snippet {number}", "exec"), namespace)
            got = normalise(buffer.getvalue())
            where = f"{path.relative_to(GUIDE.parent)}, snippet {number}"
            print(f"--- {where} ({time.perf_counter() - tic:.1f}s)")
            if got:
                print(got)
            for w in caught:  # shown, not compared: pages mention them in words
                print(f"    warned: {w.category.__name__}: {w.message}")
            if output is None:
                if got:
                    print("    (printed, but the page shows no output)")
                    differ += 1
                continue
            if got != normalise(output[3]):
                edits.append((output, got))
                tolerance = tolerance_of(code, args.tolerance)
                if tolerance is None:
                    print(f"    (varies with the CPU, not compared; the page "
                          f"shows:)\n{output[3]}")
                    continue
                if agree(got, output[3], tolerance):
                    print(f"    (within {tolerance:g} of the page, which "
                          f"shows:)\n{output[3]}")
                    continue
                differ += 1
                print(f"    DIFFERS from the page, which shows:\n{output[3]}")
        if args.write and edits:
            for (first, end, indent, _), got in sorted(edits, reverse=True):
                lines[first:end] = [" " * indent + x if x else "" for x in
                                    got.splitlines()]
            path.write_text("\n".join(lines) + "\n")
            print(f"    wrote {len(edits)} output(s) into {path.name}")
    print(f"{differ} output(s) differ from the pages")
    return 1 if differ and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
