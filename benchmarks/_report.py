"""Markdown tables and the precision / context frontier plot."""

import numpy as np

COLUMNS = (("precision", "P@10"), ("ap", "AP@10"), ("kept", "kept@10"), ("qps", "q/s"))


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
        p, q = round(result[s.name]["precision"], 3), round(anchor[s.name]["precision"], 3)
        if s.kept:
            if p < q or round(result[s.name]["kept"], 3) < round(anchor[s.name]["kept"], 3):
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
    each) and the other methods (points), one panel per setting with a kept
    attribute; a last panel shows precision@10 over alpha in the joint
    setting. Returns False when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in settings if s.kept]
    joint = [s for s in settings if not s.kept]
    panels = len(shown) + len(joint)
    if not panels:
        return False
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 5.4), squeeze=False)
    axes = list(axes[0])
    others = [m for m in results if not isinstance(m, tuple)]
    styles = {label: f"C{i}" for i, label in enumerate(variants)}
    for ax, s in zip(axes, shown):
        for label, colour in styles.items():
            pts = [results[(label, a)][s.name] for a in alphas]
            dashed = "filter" not in label
            ax.plot([r["kept"] for r in pts], [r["precision"] for r in pts],
                    "--o" if dashed else "-o", color=colour, label=label, markersize=4)
            for a, r in zip(alphas, pts):
                ax.annotate(f"{a:g}", (r["kept"], r["precision"]), fontsize=6,
                            xytext=(3, 3), textcoords="offset points", color=colour)
        for j, m in enumerate(others):
            r = results[m][s.name]
            ax.plot(r["kept"], r["precision"], "sD^v<>P*X"[j % 9], color="black",
                    markerfacecolor=f"C{(j + len(styles)) % 10}", markersize=9,
                    label=m, linestyle="none")
        ax.set_xlabel(f"{', '.join(s.kept)} kept@10 (context preserved)")
        ax.set_ylabel("precision@10 (condition reached)")
        ax.set_title(f"condition on {s.name}")
        ax.grid(alpha=0.3)
    for ax, s in zip(axes[len(shown):], joint):
        for label, colour in styles.items():
            ax.plot(alphas, [results[(label, a)][s.name]["precision"] for a in alphas],
                    "--o" if "filter" not in label else "-o", color=colour,
                    label=label, markersize=4)
        for j, m in enumerate(others):
            ax.axhline(results[m][s.name]["precision"], color=f"C{(j + len(styles)) % 10}",
                       linestyle=":", label=m)
        ax.set_xscale("log")
        ax.set_xlabel("alpha")
        ax.set_ylabel("precision@10")
        ax.set_title(f"condition on {s.name} (nothing left to keep)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
