"""Speed of conditional queries: the batched search against its students.

Queries/second of ``transform(X, condition=...)`` (validation, embedding,
conditioning) for the search and every student, and of ``transform(X)``
without a condition (the embedding alone, the floor every method pays). The
conditioning step's own rate is derived from the two (time with a condition
minus time without; the best of ``repeat`` runs of each). Batch 1 is
``n_single`` separate one-query calls: what answering queries one at a time
costs. Only ratios measured in the same run are meaningful on a shared machine.
"""

import warnings

from _measure import timed
from skbackward.exceptions import ConditionNotReachedWarning
from skbackward.model_selection import sample_queries


def _best_seconds(fn, repeat):
    return timed(fn, repeat=repeat)[1]


def measure(teacher, students, X_db, y_db, attribute, batches, n_single, repeat=3):
    """One dict of q/s figures per batch size."""
    qi, condition = sample_queries(
        y_db, y_db, condition_on=[attribute], n_queries=max(batches), k=10,
        exclude_own_class=True, random_state=1,
    )
    X, labels = X_db[qi], condition[attribute]
    methods = {"search": teacher, **{f"student {m}": s for m, s in students.items()}}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConditionNotReachedWarning)
        for est in methods.values():  # warm-up
            est.transform(X[:2], condition={attribute: labels[:2]})
        for n in batches:
            single = [slice(i, i + 1) for i in range(n_single)]
            calls = single if n == 1 else [slice(0, n)]
            n_q = n_single if n == 1 else n
            row = {"batch": n, "n": n_q}
            # the lambdas are called at once, inside this iteration: bind the
            # loop variables anyway, so that they cannot see a later value
            plain = _best_seconds(
                lambda calls=calls: [teacher.transform(X[c]) for c in calls], repeat
            )
            row["embedding"] = n_q / plain
            for name, est in methods.items():
                seconds = _best_seconds(lambda est=est, calls=calls: [
                    est.transform(X[c], condition={attribute: labels[c]}) for c in calls
                ], repeat)
                row[name] = n_q / seconds
                row[f"step {name}"] = n_q / max(seconds - plain, 1e-9)
            rows.append(row)
    return rows


def table(rows, students):
    """A markdown table of the rows of :func:`measure`."""
    names = [f"student {m}" for m in students]
    head = (["batch", "embedding only (q/s)", "search (q/s)"]
            + [f"{m} (q/s)" for m in names] + [f"{m} / search" for m in names]
            + ["search step (q/s)"] + [f"{m} step / search step" for m in names])
    lines = ["| " + " | ".join(head) + " |", "|---:|" + "---:|" * (len(head) - 1)]
    for r in rows:
        cells = [f"{r['batch']}" + (f" ({r['n']} calls)" if r["batch"] == 1 else ""),
                 f"{r['embedding']:,.0f}", f"{r['search']:,.1f}"]
        cells += [f"{r[m]:,.0f}" for m in names]
        cells += [f"{r[m] / r['search']:,.1f}x" for m in names]
        cells += [f"{r['step search']:,.0f}"]
        cells += [f"{r['step ' + m] / r['step search']:,.0f}x" for m in names]
        lines.append("| " + " | ".join(cells) + " |")
    first, last = rows[0], rows[-1]
    gain = last["search"] / first["search"]
    lines += ["", f"Batching: the search answers {gain:,.0f}x more queries/s in one "
              f"batch of {last['batch']} than in {first['n']} one-query calls."]
    return "\n".join(lines)
