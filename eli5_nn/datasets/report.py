"""``dataset_report``: one standalone HTML page over an explained dataset.

Per-class mean maps, mean maps per (true, predicted) pair, with masks the share of
attribution inside them per class and the items most and least inside, and the
faithfulness AUC distributions; plots drawn with matplotlib (no pyplot state) and
embedded as PNG. Every text is escaped. Imports no framework.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from .summaries import DatasetSummary, summarize

_CSS = """body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f4f4f4}
img{max-width:100%}.note{color:#555}"""


def dataset_report(out_dir: str | Path, out: str | Path = "report.html", *, masks: Any = None,
                   by: str = "label", top: int = 8, title: str | None = None) -> Path:
    """Write one standalone HTML report over what :func:`eli5_nn.explain_dataset` wrote.

    Parameters
    ----------
    out_dir : str or Path
        The folder of the run.
    out : str or Path
        The HTML file to write; a relative path is taken inside ``out_dir``.
    masks : array or dict, optional
        The region to audit (a watermark, a border, a planted cue): one (H, W) mask
        for all items, (N, H, W) one per item, or a dict from item id to mask. The
        report then gives the share of attribution inside it per item and per class,
        and shows the items most and least inside (the shortcut audit).
    by : {"label", "predicted"}
        Group items by true label (default) or by predicted class.
    top : int
        How many items to show as most and least inside the mask.
    title : str, optional
        The page's title.

    Returns
    -------
    Path
        The report's path.
    """
    s = summarize(out_dir, masks=masks, by=by)
    path = Path(out)
    if not path.is_absolute():
        path = Path(out_dir) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(s, top, title), encoding="utf-8")
    return path


def render(s: DatasetSummary, top: int = 8, title: str | None = None) -> str:
    """The report's HTML."""
    title = title or f"eli5-nn dataset report: {s.method} on {s.out.name}"
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>",
             f"<p>{len(s.ids)} items explained with {e(s.method)}; {s.n_errors} could not be "
             "explained (see the <code>errors</code> tables).</p>"]
    parts.append(_class_table(s))
    if s.class_maps:
        parts.append("<h2>Mean map per class</h2>")
        parts.append(_img(_grid([(f"{s.name(c)} (n={s.class_counts[c]})", m)
                                 for c, m in s.class_maps.items()])))
    if s.pair_maps:
        parts.append("<h2>Mean map per (true, predicted) pair</h2><p class='note'>"
                     "Off-diagonal pairs are the mistakes.</p>")
        parts.append(_img(_grid([(f"true {s.name(t)} → {s.name(p)} (n={n})", s.pair_maps[(t, p)])
                                 for (t, p), n in sorted(s.pair_counts.items(),
                                                         key=lambda kv: (-kv[1], kv[0]))][:30])))
    if s.share is not None:
        parts.append(_mask_section(s, top))
    if s.auc:
        parts.append("<h2>Faithfulness</h2><p class='note'>Deletion AUC: lower is better; "
                     "insertion AUC: higher is better.</p>")
        parts.append(_img(_histograms(s.auc)))
    parts.append("</body></html>")
    return "\n".join(parts)


def _class_table(s: DatasetSummary) -> str:
    e = html.escape
    rows = ["<h2>Classes</h2><table><tr><th>class</th><th>items</th><th>accuracy</th>" +
            ("<th>share inside mask</th>" if s.masked else "") + "</tr>"]
    for c in sorted(set(s.class_counts) | set(np.unique(s.predicted).tolist())):
        sel = s.labels == c
        acc = f"{np.mean(s.predicted[sel] == c):.3f}" if sel.any() else "–"
        share = f"<td>{s.class_share.get(c, float('nan')):.3f}</td>" if s.masked else ""
        rows.append(f"<tr><td>{e(s.name(c))}</td><td>{s.class_counts.get(c, 0)}</td>"
                    f"<td>{acc}</td>{share}</tr>")
    return "".join(rows) + "</table>"


def _mask_section(s: DatasetSummary, top: int) -> str:
    assert s.share is not None
    e = html.escape
    ok = s.share[~np.isnan(s.share)]
    parts = [f"<h2>Share of attribution inside the mask</h2><p>Mean over items: "
             f"{ok.mean() if ok.size else float('nan'):.3f} (median "
             f"{np.median(ok) if ok.size else float('nan'):.3f}). A class whose maps sit "
             "inside the mask rests on what the mask covers.</p>"]
    parts.append(_img(_share_plot(s)))
    for most in (True, False):
        pos = s.ranked(top, most)
        parts.append(f"<h3>Items {'most' if most else 'least'} inside the mask</h3>")
        parts.append("<table><tr><th>id</th><th>label</th><th>predicted</th><th>share</th>"
                     "</tr>" + "".join(
                         f"<tr><td>{e(s.ids[i])}</td><td>{e(_label(s, s.labels[i]))}</td>"
                         f"<td>{e(s.name(int(s.predicted[i])))}</td><td>{s.share[i]:.3f}</td>"
                         "</tr>" for i in pos) + "</table>")
        if len(pos) and s.map_shape is not None and len(s.map_shape) == 2:
            maps = _item_maps(s, pos)
            parts.append(_img(_grid([(s.ids[i], m) for i, m in zip(pos, maps, strict=True)])))
    return "\n".join(parts)


def _label(s: DatasetSummary, c: int) -> str:
    return "?" if c < 0 else s.name(int(c))


def _item_maps(s: DatasetSummary, pos: np.ndarray) -> list[np.ndarray]:
    from . import store

    wanted = set(s.index[pos].tolist())
    table = store.read_items(s.out, ["index", "target_rank", "heatmap", "heatmap_shape"])
    found: dict[int, np.ndarray] = {}
    for row in table.to_pylist():
        if row["target_rank"] == 0 and row["index"] in wanted:
            found[row["index"]] = store.as_array(row["heatmap"], row["heatmap_shape"])
    return [found[int(s.index[i])] for i in pos]


# -- matplotlib, without pyplot's global state ------------------------------------------------
def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=80)


def _img(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<p><img alt='plot' src='data:image/png;base64,{data}'></p>"


def _grid(panels: list[tuple[str, np.ndarray]]) -> Any:
    cols = min(6, max(1, len(panels)))
    rows = (len(panels) + cols - 1) // cols
    fig = _figure(2.2 * cols, 2.4 * rows)
    for k, (name, m) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        m = np.asarray(m)
        ax.imshow(m if m.ndim == 2 else m[None], cmap="jet", vmin=0, vmax=max(float(m.max()),
                                                                              1e-12))
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    return fig


def _share_plot(s: DatasetSummary) -> Any:
    assert s.share is not None
    group = np.where(s.labels >= 0, s.labels, s.predicted)
    classes = sorted(s.class_maps) or sorted(set(group.tolist()))
    data = [s.share[(group == c) & ~np.isnan(s.share)] for c in classes]
    fig = _figure(max(4, 0.6 * len(classes) + 2), 3)
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot(data, tick_labels=[s.name(c) for c in classes])
    ax.set_ylabel("share inside the mask")
    ax.set_ylim(-0.02, 1.02)
    return fig


def _histograms(auc: dict[str, np.ndarray]) -> Any:
    fig = _figure(4 * len(auc), 3)
    for k, (name, values) in enumerate(auc.items()):
        ax = fig.add_subplot(1, len(auc), k + 1)
        v = values[~np.isnan(values)]
        ax.hist(v, bins=20)
        ax.set_title(f"{name.replace('_', ' ')} (mean {v.mean() if v.size else np.nan:.3f})",
                     fontsize=9)
    return fig
