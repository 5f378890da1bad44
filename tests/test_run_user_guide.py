"""The comparison ``docs/run_user_guide.py --check`` makes between a
snippet's output and the output its page shows."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "run_user_guide.py"


@pytest.fixture(scope="module")
def script():
    if not SCRIPT.is_file():  # CI runs the tests from a copy without docs/
        pytest.skip("docs/run_user_guide.py is not beside the tests")
    spec = importlib.util.spec_from_file_location("run_user_guide", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def agree(script):
    return script.agree


def test_words_exact_decimals_within_tolerance(agree):
    assert agree("P@10  0.952  kept 0.84", "P@10 0.955 kept 0.840", 0.01)
    assert not agree("P@10 0.952", "P@10 0.972", 0.01)
    assert not agree("P@10 0.952", "P@10 0.953", 0)
    assert agree("x 1.5e-03", "x 1.6e-03", 0.01)


def test_counts_and_words_match_exactly(agree):
    assert not agree("93 of 100 queries", "94 of 100 queries", 0.01)
    assert not agree("reached 0.95", "missed 0.95", 0.01)
    assert not agree("0.95 0.90", "0.95", 0.01)


def test_a_snippet_says_how_far_its_figures_move(script):
    # the comment the reader sees is the tolerance the check applies
    code = "s = fit()\nprint(s)  # figures vary by up to 0.05 with the CPU\n"
    assert script.tolerance_of(code, 0.01) == 0.05
    assert script.tolerance_of(code, 0.1) == 0.1
    varies = "print(s)  # it varies by up to 0.2 with the CPU"
    assert script.tolerance_of(varies, 0.01) == 0.2
    assert script.tolerance_of("print(s)\n", 0.01) == 0.01
    shown = "print(s)  # varies with the CPU: see below\n"
    assert script.tolerance_of(shown, 0.01) is None
    # --tolerance 0: everything exactly, as on the machine that wrote the pages
    assert script.tolerance_of(varies, 0) == 0 and script.tolerance_of(shown, 0) == 0
    # the words outside a comment do not count
    quoted = 'print("vary by up to 0.5 with the CPU")\n'
    assert script.tolerance_of(quoted, 0.01) == 0.01
