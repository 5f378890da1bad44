"""The order of the examples in the gallery: a story, not the alphabet."""

from pathlib import Path

ORDER = [
    "plot_quickstart.py",
    "plot_choose_strategy.py",
    "plot_tune_alpha.py",
    "plot_training_strength.py",
    "plot_multi_attribute.py",
    "plot_cluster.py",
    "plot_scale.py",
]


class ExampleOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``.

    Examples listed in ``ORDER`` come first, in that order; any other example
    follows, by file name.
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)

    def __repr__(self):
        return f"<{type(self).__name__}>"
