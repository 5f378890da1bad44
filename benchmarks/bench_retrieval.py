"""Conditional-retrieval quality and speed of Backward Search, its students and peers.

The paper's protocol (``_protocol.py``): one network fitted on the training
split, the test split indexed as the database, 1000 class-balanced
(query, condition) pairs per setting, every method answering the same pairs.
Settings: each attribute alone (is the other kept?) and all jointly. The
search variants rank by z* alone (``feature_weight=0``) unless named; the
default (``feature_weight="auto"``) is fitted on its own, with the same seed
(the same network), and answers at its own alpha.

Prints markdown tables (quality of every method, which methods dominate the
label filter, speed) and saves them with the frontier plots under ``--out``
(one PNG per plot and setting). ``--replot`` draws the plots again from the
quality CSV files of an earlier run, without running anything:

    python benchmarks/bench_retrieval.py [--data auto|pacs|digits|digits_style]
        [--part quality|speed|all] [--quick] [--threads N] [--out DIR]
    python benchmarks/bench_retrieval.py --replot results/quality_pacs.csv [--out DIR]
"""

from pathlib import Path

import torch

from _data import NAMES, load
from _measure import doc_parser, log
from _methods import (
    CONTEXT,
    RULES,
    fit_default,
    fit_peers,
    fit_students,
    fit_teacher,
    search_variants,
    variant,
    with_ranking,
)
from _protocol import evaluate, settings_for
from _report import (
    dominance_lines,
    frontier_plot,
    method_name,
    quality_csv,
    quality_table,
    read_quality_csv,
)
from _speed import measure, table
from skbackward import DistilledRetriever

STUDENT_ALPHA = 0.3  # the teacher's alpha while the students are trained
def parse_args():
    parser = doc_parser(__doc__)
    parser.add_argument("--data", default="auto", choices=NAMES,
                        help="auto: PACS when ../shared/data/pacs_effnet_lite0.npz "
                             "exists")
    parser.add_argument("--part", default="all", choices=["quality", "speed", "all"])
    parser.add_argument("--quick", action="store_true",
                        help="200 queries, 3 alphas, short student training")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a busy 2-core machine more "
                        "threads were several times slower for these small networks)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"),
                        help="folder for the plots and the markdown tables")
    parser.add_argument("--replot", nargs="+", metavar="CSV",
                        help="only draw the frontier plots again from these "
                        "quality_<data>.csv files of an earlier run (the data "
                        "name is taken from the file name)")
    return parser.parse_args()


def quality(data, teacher, default, peers, students, alphas, n_queries, out, tag):
    """Every method on every setting: the tables and the frontier plot.
    ``default``: the default BackwardSearchRetriever (its own fit, the same
    network as the teacher's), answered at its default alpha."""
    settings = settings_for(data.X_test, data.y_test, n_queries,
                            groups=data.groups_test)
    for s in settings:
        log(f"setting {s.name}: {len(s.qi)} pairs")
    methods = {"plain kNN": peers["plain kNN"]}
    methods[f"default (feature_weight auto, chose {default.feature_weight_:g}; "
            f"α={default.alpha:g})"] = default
    methods.update(search_variants(teacher, alphas, {**RULES, **CONTEXT}))
    methods.update({m: p for m, p in peers.items() if m != "plain kNN"})
    methods["label filter + preserve"] = variant(peers["label filter"],
                                                 preserve="predicted")
    for objective, student in students.items():
        for filt in (False, True):
            ranking = " + filter" if filt else ""
            methods[f"student {objective}{ranking} (α={STUDENT_ALPHA:g})"] = (
                with_ranking(student, filt))
    results = {}
    for key, method in methods.items():
        results[key] = {s.name: evaluate(method, data.X_test, data.y_test, s)
                        for s in settings}
        log(f"{method_name(key)}: " + ", ".join(
            f"{s.name} P={results[key][s.name]['precision']:.3f}"
            + (f" kept={results[key][s.name]['kept']:.3f}" if s.kept else "")
            + f" near={results[key][s.name]['near']:.3f}"
            + (f" hit={results[key][s.name]['hit']:.3f}"
               if data.groups_test is not None else "")
            for s in settings))
    plot_frontiers(results, settings, alphas, data.groups_test is not None,
                   data.name, out, tag)
    (out / f"quality_{tag}.csv").write_text(quality_csv(results, settings))
    return [
        f"## Quality: {data.name}",
        "",
        f"Database: the test split ({data.X_test.shape[0]} items); {n_queries} "
        "class-balanced (query, condition) pairs per setting, the condition a class "
        "other than the query's own with at least 10 database items. Columns per "
        "setting: precision@10 (the paper's 'mAP@10'), standard AP@10 (R = matching "
        "database items), kept@10 (share of the top 10 keeping the query's "
        "unconditioned attribute), near@10 (share of the top 10 among the query's "
        "10 nearest items of the wanted class in the input feature space: what a "
        "user would pick by hand), "
        + ("hit@10 (share of queries whose counterpart, the same item in the "
           "asked class, is in the top 10), " if data.groups_test is not None else "")
        + "queries/s of the kneighbors call. Best of each "
        f"column in bold. Students were trained at α={STUDENT_ALPHA:g}.",
        "",
        quality_table(results, settings),
        "",
        *dominance_lines(results, settings),
        "",
    ]


def plot_frontiers(results, settings, alphas, with_hit, name, out, tag):
    """The two frontier plots (selection rules; keeping the context), one
    PNG per setting each."""
    plots = {
        "rules": (RULES, (("kept", False), ("kept", True)),
                  "selection rules and rankings"),
        "context": ({"search, published + filter": RULES["search, published + filter"],
                     **CONTEXT},
                    (("kept", True), ("near", True))
                    + ((("hit", True),) if with_hit else ()),
                    "keeping the context"),
    }
    for plot, (curves, rows, what) in plots.items():
        for png in frontier_plot(results, settings, alphas, list(curves),
                                 out / f"frontier_{plot}_{tag}.png",
                                 f"{name}: precision@10 against context over alpha, "
                                 f"{what}", rows=rows):
            log(f"plot saved to {png}")


def replot(paths, out):
    """Draw the frontier plots from quality CSV files of an earlier run."""
    for path in map(Path, paths):
        results, settings, alphas = read_quality_csv(path)
        tag = path.stem.removeprefix("quality_")
        name = {"pacs": "PACS", "digits_style": "digits in three styles"}.get(tag, tag)
        with_hit = any(r[s.name]["hit"] == r[s.name]["hit"]
                       for r in results.values() for s in settings)
        plot_frontiers(results, settings, alphas, with_hit, name, out, tag)


def speed(data, teacher, students, quick):
    attribute = data.attributes[0]
    batches = (1, 64, 1024)
    rows = measure(teacher, students, data.X_test, data.y_test, attribute, batches,
                   n_single=10 if quick else 50)
    return [
        f"## Speed: {data.name} (condition on {attribute!r}, "
        f"search α={teacher.alpha:g}, select={teacher.select!r}, "
        f"torch threads={torch.get_num_threads()})",
        "",
        table(rows, students),
        "",
    ]


def main():
    args = parse_args()
    if args.replot:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        replot(args.replot, out)
        return
    torch.set_num_threads(args.threads)
    data = load(args.data)
    alphas = (0.1, 0.5, 3.0) if args.quick else (0.03, 0.1, 0.3, 0.5, 1.1, 3.0, 10.0)
    n_queries = 200 if args.quick else 1000
    student_epochs = 10 if args.quick else DistilledRetriever().epochs
    tag = data.name + ("_quick" if args.quick else "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"data={data.name} train={data.X_train.shape} database={data.X_test.shape} "
        f"queries={n_queries} torch threads={torch.get_num_threads()}")

    teacher, fit_seconds = fit_teacher(data, alpha=STUDENT_ALPHA)
    fit_times = {"network (teacher)": fit_seconds}
    log(f"teacher fitted in {fit_seconds:.1f}s")
    students, seconds = fit_students(teacher, data, student_epochs)
    fit_times.update(seconds)
    log("students fitted: " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))

    report = []
    if args.part in ("quality", "all"):
        default, fit_times["default (feature_weight auto)"] = fit_default(data)
        log(f"default fitted in {fit_times['default (feature_weight auto)']:.1f}s, "
            f"feature_weight auto chose {default.feature_weight_:g}")
        peers, seconds = fit_peers(teacher, data)
        fit_times.update(seconds)
        report += quality(data, teacher, default, peers, students, alphas, n_queries,
                          out, tag)
    if args.part in ("speed", "all"):
        report += speed(data, teacher, students, args.quick)
    report.append("Fit times (s, this run): " + ", ".join(
        f"{k} {v:.1f}" for k, v in fit_times.items()))
    text = "\n".join(report)
    print()
    print(text)
    part = "" if args.part == "all" else f"_{args.part}"
    md = out / f"retrieval_{tag}{part}.md"
    md.write_text(text + "\n")
    log(f"tables saved to {md}")


if __name__ == "__main__":
    main()
