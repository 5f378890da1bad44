"""Markdown tables and the precision / context frontier plot."""

import numpy as np

COLUMNS = (("precision", "P@10"), ("ap", "AP@10"), ("kept", "kept@10"),
           ("near", "near@10"), ("qps", "q/s"))


def method_name(key):
    """Row label: a variant key ``(label, alpha)`` or a plain name."""
    return f"{key[0]}, α={key[1]:g}" if isinstance(key, tuple) else key


def _fmt(value, key):
    if value is None or np.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if key == "qps" else f"{value:.3f}"


def quality_table(results, settings, columns=COLUMNS):
    """One row per method, the columns per setting, the best value in bold."""
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


def dominates(result, anchor, settings):
    """Whether ``result`` matches or beats ``anchor`` on precision and kept in
    every setting with a kept attribute, and beats its precision in the others
    (compared at the printed three decimals)."""
    for s in settings:
        mine, theirs = result[s.name], anchor[s.name]
        p, q = round(mine["precision"], 3), round(theirs["precision"], 3)
        if s.kept:
            if p < q or round(mine["kept"], 3) < round(theirs["kept"], 3):
                return False
        elif p <= q:
            return False
    return True


def dominance_lines(results, settings, anchor="label filter"):
    """The methods that dominate the anchor, as markdown bullet lines."""
    found = [m for m in results if m != anchor
             and dominates(results[m], results[anchor], settings)]
    if not found:
        return [f"No method dominates the {anchor} in every setting."]
    return [f"Methods that match or beat the {anchor} on precision@10 and kept@10 "
            "in every single-attribute setting and beat its precision@10 jointly:"] + [
        f"- {method_name(m)}" for m in found]


def frontier_plot(results, settings, alphas, variants, path, title):
    """Precision@10 against kept@10 for every variant over alpha (a curve
    each) and the other methods (points), one column per setting with a kept
    attribute (the lower row zooms into the high-precision corner); a last
    column shows precision@10 over alpha in the joint setting. Returns False
    when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in settings if s.kept]
    joint = [s for s in settings if not s.kept]
    n_cols = len(shown) + len(joint)
    if not n_cols:
        return False
    fig, axes = plt.subplots(2, n_cols, figsize=(5.6 * n_cols, 9.5), squeeze=False)
    others = [m for m in results if not isinstance(m, tuple)]
    colours = {label: f"C{i}" for i, label in enumerate(variants)}
    colours.update({m: f"C{(i + len(variants)) % 10}" for i, m in enumerate(others)})
    markers = dict(zip(others, "sD^v<>P*Xh"))

    def line(label):
        return "-o" if "filter" in label else "--o"

    for col, s in enumerate(shown):
        for row, ax in enumerate(axes[:, col]):
            for label in variants:
                pts = [results[(label, a)][s.name] for a in alphas]
                ax.plot([r["kept"] for r in pts], [r["precision"] for r in pts],
                        line(label), color=colours[label], label=label, markersize=4)
                for a, r in zip(alphas, pts):
                    ax.annotate(f"{a:g}", (r["kept"], r["precision"]), fontsize=6,
                                xytext=(3, 3), textcoords="offset points",
                                color=colours[label])
            for m in others:
                r = results[m][s.name]
                ax.plot(r["kept"], r["precision"], markers[m], color="black",
                        markerfacecolor=colours[m], markersize=9, label=m,
                        linestyle="none")
            ax.set_xlabel(f"{', '.join(s.kept)} kept@10 (context preserved)")
            ax.set_ylabel("precision@10 (condition reached)")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"condition on {s.name}")
            else:  # the corner where the label filter and the searches compete
                anchor = results.get("label filter", results[others[0]])[s.name]
                low = min(0.9, anchor["precision"] - 0.02)
                kept = [r[s.name]["kept"] for r in results.values()
                        if r[s.name]["precision"] >= low]
                ax.set_xlim(min(kept) - 0.005, max(kept) + 0.005)
                ax.set_ylim(low, 1.0)
                ax.set_title(f"condition on {s.name}: zoom")
    for col, s in enumerate(joint, start=len(shown)):
        for row, ax in enumerate(axes[:, col]):
            for label in variants:
                precision = [results[(label, a)][s.name]["precision"] for a in alphas]
                ax.plot(alphas, precision, line(label), color=colours[label],
                        label=label, markersize=4)
            for m in others:
                ax.axhline(results[m][s.name]["precision"], color=colours[m],
                           linestyle=":", label=m)
            ax.set_xscale("log")
            ax.set_xlabel("alpha")
            ax.set_ylabel("precision@10")
            ax.grid(alpha=0.3)
            ax.set_title(f"condition on {s.name} (nothing left to keep)"
                         + (": zoom" if row else ""))
            if row:
                ax.set_ylim(0.8, 1.0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
