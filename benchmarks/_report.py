"""Markdown tables and the precision / context frontier plots."""

import csv
import io
from pathlib import Path

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
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["method"] + [f"{s.name}: {label}" for s in settings
                                  for _, label in columns])
    for method, res in results.items():
        writer.writerow([method_name(method)] + [
            _fmt(res[s.name][key], key) for s in settings for key, _ in columns])
    return buf.getvalue()


class CsvSetting:
    """A setting as a quality CSV names it: its conditioned attributes and
    the attributes checked for preservation (those with a kept@10 value)."""

    def __init__(self, name, kept):
        self.name = name
        self.condition_on = name.split("+")
        self.kept = list(kept)


def read_quality_csv(path):
    """The results and settings of a CSV written by :func:`quality_csv`.

    Returns ``(results, settings, alphas)``: ``results`` keyed as the
    benchmark keys them (``(curve, alpha)`` for a search variant, the name for
    any other method), each ``{setting: {measure: value}}`` with NaN for
    "n/a"; the measured values only, as the benchmark run wrote them.
    """
    keys = {label: key for key, label in COLUMNS}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        head = next(reader)
        body = list(reader)
    names = []
    for cell in head[1:]:
        name = cell.split(": ")[0]
        if name not in names:
            names.append(name)
    results = {}
    for row in body:
        method = row[0]
        if ", α=" in method:
            label, alpha = method.rsplit(", α=", 1)
            method = (label, float(alpha))
        values = {name: {key: np.nan for key, _ in COLUMNS} for name in names}
        for cell, text in zip(head[1:], row[1:]):
            name, label = cell.split(": ")
            values[name][keys[label]] = (np.nan if text == "n/a"
                                         else float(text.replace(",", "")))
        results[method] = values
    attributes = [n for n in names if "+" not in n]
    settings = []
    for name in names:
        has_kept = any(not np.isnan(r[name]["kept"]) for r in results.values())
        kept = [a for a in attributes if a not in name.split("+")] if has_kept else []
        settings.append(CsvSetting(name, kept))
    alphas = sorted({m[1] for m in results if isinstance(m, tuple)})
    return results, settings, alphas


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


def _setting_slug(setting):
    """File-name part of a setting: its attribute, or "joint"."""
    return "joint" if len(setting.condition_on) > 1 else setting.name


def frontier_plot(results, settings, alphas, curves, path, title,
                  rows=(("kept", False), ("kept", True))):
    """Precision@10 against a context measure, one figure per setting (saved
    as ``<path stem>_<attribute or "joint">.png``, returned as a list), one
    panel per ``(measure, zoom)`` of ``rows``: every curve of ``curves`` over
    alpha (labels annotated), the other methods as marker points. A setting
    without a kept attribute plots precision over alpha where the row's
    measure is kept@10, the other methods as dotted lines at their level
    (ending in their marker). ``zoom`` shows the high-precision corner where
    the label filter and the searches compete. The figures are drawn to be
    read at a documentation page's width (two panels a row, the legend
    below or in the free panel) and saved at 150 dpi for the full-size view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    path = Path(path)
    others = [m for m in results if not isinstance(m, tuple)]
    palette = plt.get_cmap("tab20").colors
    colours = {label: palette[(2 * i) % 20 + (2 * i) // 20 % 2]
               for i, label in enumerate(curves)}
    colours.update({m: palette[(2 * (i + len(curves))) % 20
                               + (2 * (i + len(curves))) // 20 % 2]
                    for i, m in enumerate(others)})
    markers = dict(zip(others, "sD^v<>P*Xhpd"))
    handles = [Line2D([], [], color=colours[c], marker="o", markersize=5,
                      linestyle="-" if "filter" in c else "--", label=c)
               for c in curves]
    handles += [Line2D([], [], color=colours[m], marker=markers[m],
                       markerfacecolor=colours[m], markeredgecolor="black",
                       markersize=8, linestyle=":", label=m) for m in others]
    written = []
    with plt.rc_context({"font.size": 10, "axes.titlesize": 11,
                         "axes.labelsize": 10, "legend.fontsize": 9}):
        for s in settings:
            # a measure no method has in this setting (hit@10 when the
            # condition leaves no counterpart) gets no panel
            panels = [(m, z) for m, z in rows if m == "kept" or any(
                not np.isnan(r[s.name][m]) for r in results.values())]
            n = len(panels)
            ncols = 1 if n == 1 else 2
            nrows = -(-n // ncols)
            legend_in_panel = n % 2 == 1 and n > 1
            legend_rows = 0 if legend_in_panel else -(-len(handles) // 2)
            fig, axes = plt.subplots(
                nrows, ncols, squeeze=False,
                figsize=(10, 4.6 * nrows + 0.2 * legend_rows + 0.5))
            flat = axes.ravel()
            for (measure, zoom), ax in zip(panels, flat):
                _panel(ax, results, s, alphas, curves, others, colours, markers,
                       measure, zoom)
            for ax in flat[n:]:
                ax.axis("off")
            if legend_in_panel:
                flat[n].legend(handles=handles, loc="center", frameon=False,
                               title="curves over alpha; other methods")
            else:
                fig.legend(handles=handles, loc="lower center", ncol=2,
                           frameon=False)
            fig.suptitle(f"{title}\ncondition on {s.name}")
            bottom = (0.2 * legend_rows + 0.05) / fig.get_figheight()
            fig.tight_layout(rect=(0, bottom, 1, 1))
            out = path.with_name(f"{path.stem}_{_setting_slug(s)}.png")
            fig.savefig(out, dpi=150)
            plt.close(fig)
            written.append(out)
    return written


def _panel(ax, results, s, alphas, curves, others, colours, markers, measure,
           zoom):
    """One panel: precision@10 against ``measure`` for setting ``s``."""
    if measure == "kept" and not s.kept:
        _precision_over_alpha(ax, results, s, alphas, curves, others, colours,
                              markers)
        ax.set_title("precision over alpha (nothing left to keep)"
                     + (": zoom" if zoom else ""))
        if zoom:  # down to the label filter's level
            anchor = results.get("label filter", results[others[0]])[s.name]
            ax.set_ylim(min(0.8, anchor["precision"] - 0.02), 1.0)
        return
    for label in curves:
        pts = [results[(label, a)][s.name] for a in alphas]
        ax.plot([r[measure] for r in pts], [r["precision"] for r in pts],
                "-o" if "filter" in label else "--o", color=colours[label],
                markersize=4)
        for a, r in zip(alphas, pts):
            ax.annotate(f"{a:g}", (r[measure], r["precision"]), fontsize=8,
                        xytext=(3, 3), textcoords="offset points",
                        color=colours[label])
    for m in others:
        r = results[m][s.name]
        ax.plot(r[measure], r["precision"], markers[m], color="black",
                markerfacecolor=colours[m], markersize=9, linestyle="none")
    ax.set_xlabel(MEASURE_LABELS[measure]
                  + (f": {', '.join(s.kept)}" if measure == "kept" else ""))
    ax.set_ylabel("precision@10 (condition reached)")
    ax.set_title(MEASURE_LABELS[measure].split(" (")[0]
                 + (": zoom on the precise corner" if zoom else ""))
    ax.grid(alpha=0.3)
    if zoom:  # the corner where the label filter and the searches compete
        anchor = results.get("label filter", results[others[0]])[s.name]
        low = min(0.9, anchor["precision"] - 0.02)
        xs = [r[s.name][measure] for r in results.values()
              if r[s.name]["precision"] >= low and not np.isnan(r[s.name][measure])]
        ax.set_xlim(min(xs) - 0.005, max(xs) + 0.005)
        ax.set_ylim(low, 1.0)


def _precision_over_alpha(ax, results, s, alphas, curves, others, colours,
                          markers):
    for label in curves:
        ax.plot(alphas, [results[(label, a)][s.name]["precision"] for a in alphas],
                "-o" if "filter" in label else "--o", color=colours[label],
                markersize=4)
    right = alphas[-1] * 1.6
    for m in others:
        level = results[m][s.name]["precision"]
        ax.plot([alphas[0], right], [level, level], color=colours[m], linestyle=":")
        ax.plot(right, level, markers[m], color="black", markerfacecolor=colours[m],
                markersize=8, linestyle="none")
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
    ax.set_ylabel("precision@10")
    ax.grid(alpha=0.3)
