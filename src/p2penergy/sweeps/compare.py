"""``compare.html`` of a sweep: savings per group and the KPIs along each axis, with the spread
over seeds (mean and range), configurations side by side (plotly, inlined once: works offline).

A *configuration* is a point's settings without its seed: the seeds of one configuration are
its repetitions, summarised as mean, minimum and maximum. Failed points are listed with their
error and left out of the figures.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from p2penergy.sim.results import GROUP_LABELS

HEADLINE_GROUP = "all"  # the axes' figures follow the whole community's savings


def configurations(frame: pd.DataFrame, axes: Sequence[str]) -> list[str]:
    """The non-seed axes (what tells configurations apart)."""
    return [a for a in axes if a != "seed" and a in frame.columns]


def spread(frame: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """Mean, min, max and count of ``column`` per ``by`` (over seeds and whatever else is not in ``by``)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    grouped = frame.assign(_v=values).groupby(by, sort=False, dropna=False)["_v"]
    return grouped.agg(["mean", "min", "max", "count"]).reset_index()


def render_compare(frame: pd.DataFrame, axes: Sequence[str]) -> str:
    """The whole comparison page as one HTML string."""
    ok = frame[frame["status"] == "ok"].copy()
    failed = frame[frame["status"] != "ok"]
    keys = configurations(frame, axes)
    points = frame["point"].nunique()
    currency = html.escape(str(ok["currency"].iloc[0])) if len(ok) else ""
    parts = [f"<h1>p2penergy sweep — {points} points</h1>",
             f"<p>Axes: {html.escape(', '.join(axes) or 'none')}. Savings = baseline balance − P2P balance "
             f"({currency}; electricity-charge balance, fuel not included). Spread over seeds: mean "
             "[min – max] (n).</p>"]
    if len(failed):
        items = "".join(f"<li>{html.escape(str(r.label))}: {html.escape(str(r.error))}</li>"
                        for r in failed.itertuples())
        parts.append(f"<h2>Failed points ({len(failed)})</h2><ul id='failed'>{items}</ul>")
    figures: list[go.Figure] = []
    if len(ok):
        ok["configuration"] = _config_labels(ok, keys)
        parts += ["<h2>Savings per group</h2>", _group_table(ok, "savings"),
                  "<h2>Improvement per group (%)</h2>", _group_table(ok, "improvement_pct")]
        figures.append(_group_figure(ok, currency))
        for axis in keys:
            parts += [f"<h2>Along {html.escape(axis)}</h2>", _kpi_table(ok, axis)]
            fig = _axis_figure(ok, axis, keys, currency)
            if fig is not None:
                figures.append(fig)
    for k, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(k == 0)))
    body = "\n".join(parts)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>p2penergy sweep</title>"
            "<style>body{font-family:sans-serif;max-width:1400px;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}</style></head>"
            f"<body>{body}</body></html>")


def _config_labels(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    if not keys:
        return pd.Series("all points", index=frame.index)
    return frame[keys].astype(str).apply(lambda r: ", ".join(f"{k}={v}" for k, v in zip(keys, r, strict=True)),
                                         axis=1)


def _cell(row: pd.Series, decimals: int) -> str:
    if pd.isna(row["mean"]):
        return "–"
    count = int(row["count"])
    if count <= 1:
        return f"{row['mean']:,.{decimals}f}"
    return f"{row['mean']:,.{decimals}f} [{row['min']:,.{decimals}f} – {row['max']:,.{decimals}f}] ({count})"


def _decimals(column: str) -> int:
    """Shown decimals by the unit in the name (report/figures.py's words): prices 2, shares 3,
    percentages, kWh, kW and kg 1, counts and money 0."""
    if column.endswith("per_kwh"):
        return 2
    if "share" in column or "sufficiency" in column:
        return 3
    if any(w in column for w in ("pct", "kwh", "_kw", "_kg")):
        return 1
    return 0


def _group_table(ok: pd.DataFrame, column: str) -> str:
    stats = spread(ok, ["group", "configuration"], column)
    configs = list(dict.fromkeys(ok["configuration"]))
    decimals = 1 if column.endswith("pct") else 0
    head = "<tr><th>group</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in configs) + "</tr>"
    rows = [head]
    for group in dict.fromkeys(ok["group"]):
        cells = []
        for config in configs:
            match = stats[(stats["group"] == group) & (stats["configuration"] == config)]
            cells.append(f"<td>{_cell(match.iloc[0], decimals) if len(match) else ''}</td>")
        label = GROUP_LABELS.get(group, group).strip()
        rows.append(f"<tr><td>{html.escape(label)}</td>{''.join(cells)}</tr>")
    return f"<table class='groups' data-column='{column}'>{''.join(rows)}</table>"


def _kpi_table(ok: pd.DataFrame, axis: str) -> str:
    """Each KPI (and the whole community's savings) per value of ``axis``, over all other settings."""
    headline = ok[ok["group"] == HEADLINE_GROUP]
    columns = ["savings", "improvement_pct", *sorted(c for c in ok.columns if c.startswith("kpi."))]
    values = list(dict.fromkeys(headline[axis].astype(str)))
    keyed = headline.assign(_axis=headline[axis].astype(str))
    head = "<tr><th>indicator</th>" + "".join(f"<th>{html.escape(axis)} = {html.escape(v)}</th>" for v in values)
    rows = [head + "</tr>"]
    for col in columns:
        if pd.to_numeric(keyed[col], errors="coerce").isna().all():
            continue
        stats = spread(keyed, ["_axis"], col).set_index("_axis")
        decimals = _decimals(col)
        cells = "".join(f"<td>{_cell(stats.loc[v], decimals)}</td>" for v in values)
        name = "savings (all participants)" if col == "savings" else (
            "improvement % (all participants)" if col == "improvement_pct" else col.removeprefix("kpi."))
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table class='kpis' data-axis='{html.escape(axis)}'>{''.join(rows)}</table>"


def _group_figure(ok: pd.DataFrame, currency: str) -> go.Figure:
    """Savings per group, one bar per configuration (side by side), error bars: range over seeds."""
    stats = spread(ok, ["group", "configuration"], "savings")
    fig = go.Figure()
    for config in dict.fromkeys(ok["configuration"]):
        s = stats[stats["configuration"] == config]
        fig.add_bar(name=config, x=[GROUP_LABELS.get(g, g).strip() for g in s["group"]], y=s["mean"],
                    error_y={"type": "data", "symmetric": False, "array": s["max"] - s["mean"],
                             "arrayminus": s["mean"] - s["min"]})
    fig.update_layout(title="Savings per group (mean over seeds; bars: min–max)", barmode="group",
                      yaxis_title=f"savings {currency}", height=520)
    return fig


def _axis_figure(ok: pd.DataFrame, axis: str, keys: list[str], currency: str) -> go.Figure | None:
    """The whole community's savings along ``axis``; one line per setting of the other axes."""
    headline = ok[ok["group"] == HEADLINE_GROUP]
    if headline.empty:
        return None
    others = [k for k in keys if k != axis]
    series = _config_labels(headline, others) if others else pd.Series("all", index=headline.index)
    fig = go.Figure()
    for name in dict.fromkeys(series):
        part = headline[series == name]
        stats = spread(part.assign(_axis=part[axis].astype(str)), ["_axis"], "savings")
        fig.add_scatter(name=name, x=stats["_axis"], y=stats["mean"], mode="lines+markers",
                        error_y={"type": "data", "symmetric": False, "array": stats["max"] - stats["mean"],
                                 "arrayminus": stats["mean"] - stats["min"]})
    fig.update_layout(title=f"All participants' savings along {axis} (mean over seeds; bars: min–max)",
                      xaxis_title=axis, xaxis_type="category", yaxis_title=f"savings {currency}", height=420)
    return fig
