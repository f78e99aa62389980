"""The self-contained HTML report of a run (plotly, no network needed to view it)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from p2penergy.community import CAR_KIND
from p2penergy.provenance.sankey import sankey_data, sankey_figure
from p2penergy.sim.results import DEMONSTRATION_PCT, GROUP_LABELS
from p2penergy.sim.simulate import Simulation

EXPLANATIONS = {
    "all": "The sum of the cells below; the all-participants saving follows from them.",
    "consumers": "Consumers buy P2P energy below their marginal retail tier; see the rows below.",
    "consumers_no_phv": "P2P energy (about 22 JPY/kWh in the model) replaces the most expensive retail tier "
                        "(26.48-30.57 JPY/kWh plus surcharge); the demonstration's P2P prices were not published "
                        "and were probably nearer retail.",
    "consumers_phv": "Their cars charge from P2P energy at the office instead of from the grid at home.",
    "prosumers": "Several model homes are past their FIT term (8.5 JPY/kWh buyback), so P2P sales are worth "
                 "more to them than to FIT homes; the demonstration did not publish its homes' FIT status.",
    "pv_only": "As for prosumers: P2P sales against a low post-FIT buyback price.",
    "pv_battery": "The battery also buys cheap P2P energy and sells stored energy; post-FIT buyback as above.",
    "pv_phv": "Post-FIT buyback as above, and the car charges from office PV.",
    "pv_battery_phv": "A net income (above 100 %) needs sales above purchases; the model home sells less than "
                      "the demonstration's did.",
    "phv": "Cars save by charging from P2P energy at the office in daytime instead of at home from the grid.",
}


def render_report(sim: Simulation) -> str:
    """The whole report as one HTML string (plotly.js inlined once)."""
    c = sim.community
    cur = c.settings.currency
    parts = [f"<h1>p2penergy — {html.escape(c.report_month.strftime('%B %Y'))}, "
             f"{html.escape(sim.options.mechanism)}, {html.escape(sim.options.agents)} agents</h1>",
             "<h2>Savings against buying only from the utility</h2>", _savings_table(sim), "<h2>Key figures</h2>",
             _kpi_table(sim)]
    figures = [_prices(sim), _flows(sim), _soc(sim), _forecasts(sim)]
    events = sim.provenance.events
    if events:
        figures.append(sankey_figure(sankey_data(events), title=f"Where the energy came from (kWh), {cur} market"))
    for k, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(k == 0)))
    body = "\n".join(parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>p2penergy report</title>"
            f"<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}table{{border-collapse:collapse}}"
            f"td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}"
            f"</style></head><body>{body}</body></html>")


def _savings_table(sim: Simulation) -> str:
    cur = sim.community.settings.currency
    rows = [f"<tr><th>group</th><th>members</th><th>baseline balance {cur}</th><th>P2P balance {cur}</th>"
            f"<th>improvement</th><th>demonstration</th><th>fuel {cur} (baseline → P2P)</th>"
            "<th>why it differs</th></tr>"]
    for name, g in sim.groups.items():
        demo = DEMONSTRATION_PCT.get(name)
        pct = g.improvement_pct
        note = EXPLANATIONS.get(name, "") if demo is not None and pct is not None and abs(pct - demo) > 3 else ""
        rows.append(
            f"<tr id='group-{name}'><td>{html.escape(GROUP_LABELS.get(name, name))}</td><td>{len(g.members)}</td>"
            f"<td>{g.baseline_balance:,.0f}</td><td>{g.p2p_balance:,.0f}</td>"
            f"<td>{html.escape(g.improvement_text)}</td>"
            f"<td>{'' if demo is None else f'{demo:.1f} %'}</td>"
            f"<td>{g.baseline_fuel:,.0f} → {g.p2p_fuel:,.0f}</td><td style='text-align:left'>{html.escape(note)}</td>"
            "</tr>")
    caption = (f"<p>Balance = paid for electricity − earned selling it (utility and P2P), fuel not included. "
               f"Baseline: utility only; exports credited: "
               f"{html.escape(sim.community.baseline_export_credit.label)}.</p>")
    return caption + "<table>" + "".join(rows) + "</table>"


def _kpi_table(sim: Simulation) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in sim.kpis.items())
    return f"<table id='kpis'>{rows}</table>"


def _month_index(sim: Simulation) -> pd.DatetimeIndex:
    return sim.community.index[sim.community.month]


def _prices(sim: Simulation) -> go.Figure:
    index = _month_index(sim)
    volume = pd.Series(0.0, index=index)
    amount = pd.Series(0.0, index=index)
    for t in sim.p2p.trades:
        volume[t.slot_start] += t.energy_wh / 1000
        amount[t.slot_start] += float(t.amount)
    price = (amount / volume.replace(0, np.nan))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=index, y=volume, name="P2P volume (kWh)", opacity=0.5), secondary_y=False)
    fig.add_trace(go.Scatter(x=index, y=price, name=f"P2P price ({sim.community.settings.currency}/kWh)",
                             mode="markers", marker={"size": 3}), secondary_y=True)
    fig.update_layout(title="P2P price and volume per slot", height=380)
    return fig


def _flows(sim: Simulation) -> go.Figure:
    index = _month_index(sim)
    totals: dict[str, np.ndarray] = {}
    for name in ("load_wh", "pv_wh", "grid_import_wh", "grid_export_wh", "p2p_buy_wh", "car_charge_wh"):
        totals[name] = sum(acc.columns[name] for acc in sim.p2p.accounts.values()) / 1000  # type: ignore[assignment]
    fig = go.Figure()
    for name, values in totals.items():
        fig.add_trace(go.Scatter(x=index, y=values, name=name.replace("_wh", " (kWh)"), mode="lines"))
    fig.update_layout(title="Community energy flows per slot (P2P run)", height=380)
    return fig


def _soc(sim: Simulation) -> go.Figure:
    index = _month_index(sim)
    fig = go.Figure()
    for p in sim.community.participants.values():
        acc = sim.p2p.accounts[p.id]
        if p.battery is not None:
            fig.add_trace(go.Scatter(x=index, y=acc.columns["soc_wh"] / 1000, name=f"{p.id} battery", mode="lines"))
        elif p.kind == CAR_KIND:
            fig.add_trace(go.Scatter(x=index, y=acc.columns["soc_wh"] / 1000, name=p.id, mode="lines",
                                     line={"dash": "dot"}))
    fig.update_layout(title="State of charge of batteries and cars (kWh)", height=380)
    return fig


def _forecasts(sim: Simulation) -> go.Figure:
    index = _month_index(sim)
    fig = go.Figure()
    log = sim.p2p.forecasts
    for target in ("load_wh", "pv_wh"):
        actual = sum(sim.p2p.accounts[pid].columns[target] for pid in log.get(target, {})) / 1000
        predicted = sum(log[target].values()) / 1000 if log.get(target) else None
        if predicted is None:
            continue
        fig.add_trace(go.Scatter(x=index, y=actual, name=f"{target[:-3]} actual (kWh)", mode="lines"))
        fig.add_trace(go.Scatter(x=index, y=predicted, name=f"{target[:-3]} forecast (kWh)", mode="lines",
                                 line={"dash": "dash"}))
    fig.update_layout(title="Community load and PV: agents' forecasts (made up to 2 h ahead) against actuals",
                      height=380)
    return fig

