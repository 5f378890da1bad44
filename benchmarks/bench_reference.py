"""The published search on PACS next to the reference figures of shared/data.

``../shared/data/README.md`` lists figures of an independent prototype of the
published method (heads of DESIGN §2.1 trained 30 epochs, the published
selection rule, 70/30 split, 1000 class-balanced queries, a condition other
than the query's own class, k = 10). This script measures the same figures
with skbackward's published algorithm (``select="published"``,
``predicted_first=False``) for several training seeds, and the peers, and
prints them side by side.

It also prints the published recipe's figures of the README (precision@10 of
the published search at α 0.3 on the domain, ≈ 0.93 over 4 training seeds).

    python benchmarks/bench_reference.py [--seeds 0 1 2 3] [--epochs 30]
"""

import argparse
import warnings

import numpy as np
import torch

from _data import load
from _methods import fit_peers, fit_teacher, variant
from _protocol import evaluate, settings_for

# shared/data/README.md: (setting, measure) -> {method: figure}
REFERENCE = {
    ("domain", "precision"): {"plain kNN": 0.015, "label filter": 0.914,
                              "centroid shift": 0.888, 0.3: 0.827, 1.1: 0.763},
    ("domain", "kept"): {"plain kNN": 0.869, "label filter": 0.816,
                         "centroid shift": 0.814, 0.3: 0.827, 1.1: 0.837},
    ("label", "precision"): {"plain kNN": 0.020, "label filter": 0.777,
                             "centroid shift": 0.876, 0.1: 0.896, 0.3: 0.854,
                             1.1: 0.783},
    ("label", "kept"): {"plain kNN": 0.973, "label filter": 0.929,
                        "centroid shift": 0.891, 0.1: 0.940, 0.3: 0.947,
                        1.1: 0.954},
}
ALPHAS = (0.1, 0.3, 1.1)
PEERS = ("plain kNN", "label filter", "centroid shift")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--epochs", type=int, default=30,
                        help="training epochs (the published recipe, the "
                             "package's default: 30)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    data = load("pacs")
    settings = settings_for(data.X_test, data.y_test, 1000, joint=False)
    ours = {}  # (setting, measure) -> method -> list over seeds
    for seed in args.seeds:
        teacher, _ = fit_teacher(data, epochs=args.epochs, random_state=seed)
        methods = {a: variant(teacher, alpha=a, predicted_first=False) for a in ALPHAS}
        if seed == args.seeds[0]:  # the peers once: they do not search
            methods.update(fit_peers(teacher, data)[0])
        for key, method in methods.items():
            for s in settings:
                r = evaluate(method, data.X_test, data.y_test, s)
                for measure in ("precision", "kept"):
                    ours.setdefault((s.name, measure), {}).setdefault(key, []).append(
                        r[measure])
        print(f"seed {seed} done", flush=True)
    head = ["setting: measure", *PEERS, *(f"published α={a:g}" for a in ALPHAS)]
    print()
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for (setting, measure), ref in REFERENCE.items():
        name = "precision@10" if measure == "precision" else "kept@10"
        cells = [f"{setting}: {name}"]
        for key in (*PEERS, *ALPHAS):
            values = ours[(setting, measure)][key]
            mine = (f"{values[0]:.3f}" if len(values) == 1 else
                    f"{np.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})")
            cells.append(f"{mine} / {ref[key]:.3f}" if key in ref else f"{mine} / —")
        print("| " + " | ".join(cells) + " |")
    print(f"\nCells: skbackward / reference. Search columns: mean (min–max) over "
          f"training seeds {args.seeds} at epochs={args.epochs}; peers: seed "
          f"{args.seeds[0]}.")


if __name__ == "__main__":
    main()
