"""Keeping the query's context: fixed feature_weight values against "auto".

The paper's protocol (``_protocol.py``) on each data set: one network fitted
on the training split by the published recipe, the test split indexed, class-
balanced (query, condition) pairs conditioning on each attribute in turn.
Rows: the default ranking (``predicted_first``, feature_weight 0), fixed
``feature_weight`` values, the value ``feature_weight="auto"`` chooses from
the training split alone (no pairs; ``skbackward/_context.py``), the label
filter (the same network, ``query_weight=1``) and the published ranking
(``predicted_first=False``). Columns: precision@10, kept@10 (the unasked
attribute kept), near@10 (among the query's 10 nearest items of the wanted
class in the input space), hit@10 (the query's counterpart, where groups
exist) and closeness (mean cosine between the query's embedding and its
results'). Data: digit styles (written, mirrored, rotated: a condition is a
large change in pixels), digit tones (six renderings that change a digit a
little) and PACS when ../shared/data/pacs_effnet_lite0.npz is there.

    python benchmarks/bench_context.py [--data digits_style digits_tones pacs]
        [--queries 500] [--quick] [--threads 1] [--out DIR]
"""

import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import normalize

from _data import PACS, load
from _measure import doc_parser, log
from _methods import fit_teacher, variant
from _protocol import evaluate, neighbours, settings_for
from _report import quality_csv, quality_table
from skbackward._retrievers._context import choose_feature_weight

WEIGHTS = (0.25, 0.5, 0.75, 1.0)
COLUMNS = (("precision", "P@10"), ("kept", "kept@10"), ("near", "near@10"),
           ("hit", "hit@10"), ("closeness", "closeness"))


def parse_args():
    parser = doc_parser(__doc__)
    parser.add_argument("--data", nargs="+",
                        default=["digits_style", "digits_tones", "pacs"],
                        choices=["digits_style", "digits_tones", "pacs", "digits"])
    parser.add_argument("--queries", type=int, default=500,
                        help="(query, condition) pairs per setting")
    parser.add_argument("--quick", action="store_true",
                        help="150 pairs per setting, digit data only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    return parser.parse_args()


def closeness(retriever, data, setting, Z_db):
    """Mean cosine between each query's embedding and its results'."""
    ind, _ = neighbours(retriever, data.X_test, setting)
    Zq = Z_db[setting.qi]
    return float(np.einsum("qd,qkd->qk", Zq, Z_db[ind]).mean())


def run(name, n_queries, out):
    data = load(name)
    log(f"{name}: {len(data.X_train)} training, {len(data.X_test)} indexed items")
    teacher, _ = fit_teacher(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chosen, report = choose_feature_weight(
            teacher, data.X_train, teacher.encode_labels(data.y_train))
    rates = ", ".join(f"{data.attributes[a]} {r:.3f}"
                      for a, r in report["counterparts"].items())
    log(f"auto chose feature_weight {chosen:g} (counterpart rates: {rates})")
    methods = {"default (feature_weight 0)": teacher}
    methods.update({f"feature_weight {w:g}": variant(teacher, feature_weight=w)
                    for w in WEIGHTS})
    methods[f"auto (chose {chosen:g})"] = variant(teacher, feature_weight=chosen)
    methods["label filter"] = variant(teacher, query_weight=1.0)
    methods["published ranking"] = variant(teacher, predicted_first=False)
    settings = settings_for(data.X_test, data.y_test, n_queries, joint=False,
                            groups=data.groups_test)
    Z_db = normalize(teacher.transform(data.X_test))
    results = {}
    for method, retriever in methods.items():
        results[method] = {}
        for s in settings:
            scores = evaluate(retriever, data.X_test, data.y_test, s)
            scores["closeness"] = closeness(retriever, data, s, Z_db)
            results[method][s.name] = scores
    columns = tuple(c for c in COLUMNS
                    if any(not np.isnan(r[s.name][c[0]])
                           for r in results.values() for s in settings))
    print(f"\n### {name}: feature_weight='auto' chooses {chosen:g}\n")
    print(quality_table(results, settings, columns))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"context_{name}.csv").write_text(quality_csv(results, settings, columns))
    return chosen


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.data if n != "pacs" or PACS.exists()]
    if args.quick:
        names = [n for n in names if n != "pacs"]
        args.queries = 150
    chosen = {name: run(name, args.queries, Path(args.out)) for name in names}
    print("\nfeature_weight='auto' chose: "
          + ", ".join(f"{n} {w:g}" for n, w in chosen.items()))


if __name__ == "__main__":
    main()
