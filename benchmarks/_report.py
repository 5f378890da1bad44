"""Markdown tables and the precision / context frontier plot."""

import numpy as np

COLUMNS = (("precision", "P@10"), ("ap", "AP@10"), ("kept", "kept@10"),
           ("near", "near@10"), ("hit", "hit@10"), ("qps", "q/s"))


def measured(results, columns=COLUMNS):
    """The columns some method has a value for (hit@10 needs groups)."""
    return tuple(
        (key, label) for key, label in columns
        if any(not np.isnan(r[s][key]) for r in results.values() for s in r)
    )


def method_name(key):
    """Row label: a variant key ``(label, alpha)`` or a plain name."""
    return f"{key[0]}, α={key[1]:g}" if isinstance(key, tuple) else key


def _fmt(value, key):
    if value is None or np.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if key == "qps" else f"{value:.3f}"


def quality_table(results, settings, columns=None):
    """One row per method, the columns per setting, the best value in bold."""
    columns = measured(results) if columns is None else columns
    head = ["method"] + [f"{s.name}: {label}" for s in settings for _, label in columns]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    best = {}
    for s in settings:
        for key, _ in columns:
            values = [r[s.name][key] for r in results.values()]
            values = [v for v in values if not np.isnan(v)]
            best[s.name, key] = _fmt(max(values), key) if values else None
    for method, res in results.items():
        cells = [method_name(method)]
        for s in settings:
            for key, _ in columns:
                text = _fmt(res[s.name][key], key)
                cells.append(f"**{text}**" if text == best[s.name, key] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def quality_csv(results, settings, columns=None):
    """The quality table as CSV, for the documentation's ``csv-table``."""
    columns = measured(results) if columns is None else columns
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["method"] + [f"{s.name}: {label}" for s in settings
                                  for _, label in columns])
    for method, res in results.items():
        writer.writerow([method_name(method)] + [
            _fmt(res[s.name][key], key) for s in settings for key, _ in columns])
    return buf.getvalue()


def _at3(value):
    return round(value, 3)


def dominates(result, anchor, settings, measures=("precision", "kept", "hit")):
    """Whether ``result`` matches or beats ``anchor`` on every measure in
    every setting where the measure exists, and beats its precision in the
    settings without a kept attribute (compared at the printed 3 decimals)."""
    for s in settings:
        r, a = result[s.name], anchor[s.name]
        for m in measures:
            if not np.isnan(a[m]) and _at3(r[m]) < _at3(a[m]):
                return False
        if not s.kept and _at3(r["precision"]) <= _at3(a["precision"]):
            return False
    return True


def _names(methods):
    """Method names, the alphas of one curve gathered: "curve (α 0.1, 0.3)"."""
    curves, out = {}, []
    for m in methods:
        if isinstance(m, tuple):
            if m[0] not in curves:
                curves[m[0]] = []
                out.append(m[0])
            curves[m[0]].append(f"{m[1]:g}")
        else:
            out.append(m)
    return "; ".join(f"{m} (α {', '.join(curves[m])})" if m in curves else m
                     for m in out) or "none"


def dominance_lines(results, settings, anchor="label filter"):
    """Markdown lines naming the methods that dominate the label filter, on
    the coarse context (kept@10), on the fine-grained one (near@10), and
    those that also keep as much as plain kNN, which ignores the condition."""
    if anchor not in results:
        return []
    found = [m for m in results if m != anchor
             and dominates(results[m], results[anchor], settings)]
    fine = [m for m in found if dominates(results[m], results[anchor], settings,
                                          ("precision", "kept", "hit", "near"))]
    with_hit = any(not np.isnan(results[anchor][s.name]["hit"]) for s in settings)
    lines = [
        f"- Match or beat the {anchor} on precision@10 and kept@10"
        f"{' and hit@10' if with_hit else ''} in every "
        "single-attribute setting, and beat its precision@10 jointly: "
        f"{_names(found)}.",
        f"- ... and on near@10 too (the fine-grained context): {_names(fine)}.",
    ]
    if "plain kNN" in results:
        knn = results["plain kNN"]

        def keeps_as_much(m):
            return all(_at3(results[m][s.name]["kept"]) >= _at3(knn[s.name]["kept"])
                       for s in settings if s.kept)

        lines += [
            f"- Dominate the {anchor} on precision@10 and kept@10 and keep at least "
            f"plain kNN's kept@10: {_names([m for m in found if keeps_as_much(m)])}.",
            f"- ... and also match the {anchor}'s near@10: "
            f"{_names([m for m in fine if keeps_as_much(m)])}.",
        ]
    return lines


MEASURE_LABELS = {
    "kept": "kept@10 (the other attribute kept)",
    "near": "near@10 (the hand-picked items found)",
    "hit": "hit@10 (the same item in the asked class found)",
}


def frontier_plot(results, settings, alphas, curves, path, title,
                  rows=(("kept", False), ("kept", True))):
    """Precision@10 against a context measure, one column per setting and
    one row per ``(measure, zoom)`` of ``rows``: every curve of ``curves``
    over alpha (labels annotated), the other methods as points. A setting
    without a kept attribute plots near@10, or precision over alpha where
    the row's measure is kept@10. ``zoom`` shows the high-precision corner
    where the label filter and the searches compete."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(settings),
                             figsize=(5.6 * len(settings), 4.7 * len(rows)),
                             squeeze=False)
    others = [m for m in results if not isinstance(m, tuple)]
    colours = {label: f"C{i % 10}" for i, label in enumerate(curves)}
    colours.update({m: f"C{(i + len(curves)) % 10}" for i, m in enumerate(others)})
    markers = dict(zip(others, "sD^v<>P*Xhpd"))
    for (measure, zoom), row in zip(rows, axes):
        for s, ax in zip(settings, row):
            if measure == "kept" and not s.kept:
                _precision_over_alpha(ax, results, s, alphas, curves, others, colours)
                ax.set_title(f"condition on {s.name} (nothing left to keep)")
                if zoom:
                    ax.set_ylim(0.8, 1.0)
                continue
            for label in curves:
                pts = [results[(label, a)][s.name] for a in alphas]
                ax.plot([r[measure] for r in pts], [r["precision"] for r in pts],
                        "-o" if "filter" in label else "--o", color=colours[label],
                        label=label, markersize=4)
                for a, r in zip(alphas, pts):
                    ax.annotate(f"{a:g}", (r[measure], r["precision"]), fontsize=6,
                                xytext=(3, 3), textcoords="offset points",
                                color=colours[label])
            for m in others:
                r = results[m][s.name]
                ax.plot(r[measure], r["precision"], markers[m], color="black",
                        markerfacecolor=colours[m], markersize=9, label=m,
                        linestyle="none")
            ax.set_xlabel(MEASURE_LABELS[measure]
                          + (f": {', '.join(s.kept)}" if measure == "kept" else ""))
            ax.set_ylabel("precision@10 (condition reached)")
            ax.set_title(f"condition on {s.name}" + (": zoom" if zoom else ""))
            ax.grid(alpha=0.3)
            if zoom:  # the corner where the label filter and the searches compete
                anchor = results.get("label filter", results[others[0]])[s.name]
                low = min(0.9, anchor["precision"] - 0.02)
                xs = [r[s.name][measure] for r in results.values()
                      if r[s.name]["precision"] >= low]
                ax.set_xlim(min(xs) - 0.005, max(xs) + 0.005)
                ax.set_ylim(low, 1.0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04 + 0.02 * len(labels) / 4 / len(rows), 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _precision_over_alpha(ax, results, s, alphas, curves, others, colours):
    for label in curves:
        ax.plot(alphas, [results[(label, a)][s.name]["precision"] for a in alphas],
                "-o" if "filter" in label else "--o", color=colours[label],
                label=label, markersize=4)
    for m in others:
        ax.axhline(results[m][s.name]["precision"], color=colours[m], linestyle=":",
                   label=m)
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
    ax.set_ylabel("precision@10")
    ax.grid(alpha=0.3)
