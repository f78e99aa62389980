"""The self-contained HTML report of a run (plotly, no network needed to view it).

Every sentence and figure in it is computed from the run (docs/report.md)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from p2penergy.community import CAR_KIND, participant_type
from p2penergy.outage import PRIORITIES
from p2penergy.provenance.sankey import sankey_data, sankey_figure, sankey_links, sankey_views
from p2penergy.report.explain import describe, group_change
from p2penergy.report.figures import FLOW_COLUMNS, FigureStyle, flow_rows, key_figures
from p2penergy.sim.resilience import demand_by_priority, ideal_resilience, islanded_positions, resilience
from p2penergy.sim.results import DEMONSTRATION_PCT, GROUP_LABELS, car_energy, flows, office_peak_slots
from p2penergy.sim.simulate import AGENT_MODES, Simulation


def render_report(sim: Simulation) -> str:
    """The whole report as one HTML string (plotly.js inlined once, so it works offline)."""
    c = sim.community
    parts = [f"<h1>p2penergy — {html.escape(sim.scenario_name or c.settings.name)}, "
             f"{html.escape(c.report_month.strftime('%B %Y'))}, "
             f"{html.escape(sim.options.mechanism)}, {html.escape(sim.options.agents)} agents</h1>",
             "<h2>Savings against buying only from the utility</h2>", _savings_table(sim),
             "<h2>Key figures</h2>", _key_figures(sim),
             "<h2>P2P flows between participant types</h2>", _flow_table(sim), _cars_and_peak(sim)]
    if c.islanded_slots():
        parts += ["<h2>Through the outage</h2>", _resilience_table(sim)]
    figures = [_flow_diagram(sim), _prices(sim), _energy_per_slot(sim), _soc(sim), _forecasts(sim)]
    if c.islanded_slots():
        figures += [_outage_soc(sim), _outage_served(sim)]
    events = sim.provenance.events
    if events:
        figures.append(_origin_diagram(sim))
    if sim.network is not None:
        figures += [_voltage_heatmap(sim), _loading(sim)]
    figures = [f for f in figures if f is not None]
    for k, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(k == 0)))
    parts += ["<h2>All indicators</h2>", _kpi_table(sim)]
    body = "\n".join(parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>p2penergy report</title>"
            f"<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}table{{border-collapse:collapse}}"
            f"td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}"
            f"td:first-child,th:first-child,#savings th:last-child{{text-align:left}}"
            f"td.note{{text-align:left;font-size:90%}}"
            f"</style></head><body>{body}</body></html>")


def _savings_table(sim: Simulation) -> str:
    """Groups with their electricity-charge balances and fuel; the demonstration's column only
    for a run of its community and month; each note computed from the group's own trades and
    bills (report/explain.py)."""
    style = FigureStyle.of(sim.community.settings)
    cur = html.escape(style.currency)
    demo = sim.reproduces_demonstration
    head = (f"<tr><th>group</th><th>members</th><th>baseline balance {cur}</th><th>P2P balance {cur}</th>"
            "<th>improvement</th>" + ("<th>demonstration</th>" if demo else "")
            + f"<th>fuel {cur} (baseline → P2P)</th><th>what P2P changed for the group (this run)</th></tr>")
    rows = [head]
    for name, g in sim.groups.items():
        published = DEMONSTRATION_PCT.get(name) if demo else None
        note = describe(group_change(sim, g.members), style)
        rows.append(
            f"<tr id='group-{name}'><td>{html.escape(GROUP_LABELS.get(name, name))}</td><td>{len(g.members)}</td>"
            f"<td>{style.money(g.baseline_balance, unit=False)}</td><td>{style.money(g.p2p_balance, unit=False)}</td>"
            f"<td>{html.escape(g.improvement_text)}</td>"
            + (f"<td>{'' if published is None else f'{published:.1f} %'}</td>" if demo else "")
            + f"<td>{style.money(g.baseline_fuel, unit=False)} → {style.money(g.p2p_fuel, unit=False)}</td>"
            f"<td class='note'>{html.escape(note)}</td></tr>")
    caption = (f"<p>Balance = paid for electricity − earned selling it (utility and P2P), fuel not included; "
               f"energy batteries and cars end the period holding less than they started counts at the price "
               f"of putting it back. "
               f"Baseline: utility only; exports credited: "
               f"{html.escape(sim.community.baseline_export_credit.label)}.</p>")
    return caption + "<table id='savings'>" + "".join(rows) + "</table>"


def _key_figures(sim: Simulation) -> str:
    rows = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in key_figures(sim))
    return f"<table id='key-figures'>{rows}</table>"


def _cars_and_peak(sim: Simulation) -> str:
    """Per car: where it charged, what it discharged to the office and earned; the office's
    highest slots in both runs (the first of each sets its demand charge)."""
    cur = sim.community.settings.currency
    style = FigureStyle.of(sim.community.settings)
    rows = [f"<tr><th>car</th><th>charged at home, kWh</th><th>charged at the office, kWh</th>"
            f"<th>discharged to the office, kWh</th><th>sales, {cur}</th></tr>"]
    for car, e in car_energy(sim.community, sim.p2p).items():
        rows.append(f"<tr><td>{html.escape(car)}</td><td>{e['charged_home_kwh']:,.1f}</td>"
                    f"<td>{e['charged_office_kwh']:,.1f}</td><td>{e['discharged_office_kwh']:,.1f}</td>"
                    f"<td>{style.money(e['sales_value'], unit=False)}</td></tr>")
    out = ["<h2>Cars and the office's peak</h2>", "<table id='cars'>" + "".join(rows) + "</table>"]
    for run, slots in office_peak_slots(sim.community, sim.baseline, sim.p2p).items():
        peak = [f"<tr><th>{html.escape(run)}: highest slots</th><th>baseline kW</th><th>P2P kW</th>"
                "<th>office bought P2P, kWh</th></tr>"]
        peak += [f"<tr><td>{html.escape(str(x['slot_start']))}</td><td>{x['baseline_kw']:,.1f}</td>"
                 f"<td>{x['p2p_kw']:,.1f}</td><td>{x['p2p_bought_kwh']:,.1f}</td></tr>" for x in slots]
        out.append(f"<table id='peak-{html.escape(run)}'>" + "".join(peak) + "</table>")
    return "\n".join(out)


def _kpi_table(sim: Simulation) -> str:
    """Every indicator of ``results.json``'s ``kpis``, with its unit (report/figures.py)."""
    style = FigureStyle.of(sim.community.settings)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(style.text(k, v))}</td></tr>"
                   for k, v in sim.kpis.items())
    return f"<table id='kpis'>{rows}</table>"


def _flow_table(sim: Simulation) -> str:
    rows = flow_rows(flows(sim.community, sim.p2p.trades), FigureStyle.of(sim.community.settings))
    if not rows:
        return "<p id='flows'>No P2P trades in this run.</p>"
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in FLOW_COLUMNS) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table id='flows'>{head}{body}</table>"


def _flow_diagram(sim: Simulation) -> go.Figure | None:
    run_flows = flows(sim.community, sim.p2p.trades)
    if not run_flows:
        return None
    data = sankey_links({(f"{f.seller_type} (sells)", f"{f.buyer_type} (buys)"): f.energy_wh for f in run_flows})
    return sankey_figure(data, title="P2P energy from seller type to buyer type (kWh)")


def _origin_diagram(sim: Simulation) -> go.Figure:
    """Certificates from origin to consumer, by participant type, with a per-site view."""
    events = sim.provenance.events
    types = {pid: participant_type(p) for pid, p in sim.community.participants.items()}
    views = {"by participant type": sankey_data(events, group=types), "per site": sankey_data(events)}
    return sankey_views(views, title="Where the energy came from (kWh, certificates of origin)")


def _month_index(sim: Simulation) -> pd.DatetimeIndex:
    return sim.community.index[sim.community.month]


def _prices(sim: Simulation) -> go.Figure:
    index = _month_index(sim)
    trades = sim.p2p.trades
    at = index.get_indexer([t.slot_start for t in trades])
    if (at < 0).any():
        raise ValueError("trades: every trade's slot lies in the report month")
    volume = np.zeros(len(index))
    amount = np.zeros(len(index))
    # in trade order, one at a time per slot (np.add.at is unbuffered): the same sums as adding them in a loop
    np.add.at(volume, at, np.array([t.energy_wh / 1000 for t in trades], dtype=float))
    np.add.at(amount, at, np.array([float(t.amount) for t in trades], dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(volume == 0, np.nan, amount / np.where(volume == 0, 1.0, volume))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=index, y=volume, name="P2P volume (kWh)", opacity=0.5), secondary_y=False)
    fig.add_trace(go.Scatter(x=index, y=price, name=f"P2P price ({sim.community.settings.currency}/kWh)",
                             mode="markers", marker={"size": 3}), secondary_y=True)
    fig.update_layout(title="P2P price and volume per slot", height=380)
    return fig


def _energy_per_slot(sim: Simulation) -> go.Figure:
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


def _outage_window(sim: Simulation) -> np.ndarray:
    """Month positions from 12 h before the first islanded slot to 6 h after the last."""
    ks = islanded_positions(sim.community)
    per_hour = 60 // sim.community.settings.slot_minutes
    n = sim.community.month.stop - sim.community.month.start
    return np.arange(max(0, int(ks[0]) - 12 * per_hour), min(n, int(ks[-1]) + 1 + 6 * per_hour))


def _resilience_table(sim: Simulation) -> str:
    """Served shares by priority and unserved energy per group, three ways: each site alone, the P2P
    island, an ideal operator with everything pooled and perfect foresight (an upper bound)."""
    c = sim.community
    ways = {"each site alone": resilience(c, sim.baseline), "P2P island": resilience(c, sim.p2p),
            "ideal operator": ideal_resilience(c, sim.p2p)}
    outages = "; ".join(o.label() for o in c.outages)
    head = ("<tr><th>group</th>" + "".join(f"<th>{html.escape(w)}: critical / essential / deferrable served</th>"
                                          f"<th>{html.escape(w)}: unserved kWh</th>" for w in ways) + "</tr>")
    rows = [head]
    for name in ways["P2P island"]["groups"]:
        cells = []
        for way in ways.values():
            g = way["groups"][name]
            pct = " / ".join("–" if g[f"{p}_served_pct"] is None else f"{g[f'{p}_served_pct']:.1f} %"
                             for p in PRIORITIES)
            cells.append(f"<td>{pct}</td><td>{g['unserved_kwh']:.1f}</td>")
        rows.append(f"<tr><td>{html.escape(GROUP_LABELS.get(name, name))}</td>{''.join(cells)}</tr>")
    firsts = [(pid, s["hours_to_first_critical_shortfall"]) for pid, s in ways["P2P island"]["sites"].items()]
    short = [f"{pid} {h[0]:g} h" for pid, h in firsts if h and h[0] is not None]
    note = ("first critical shortfall (P2P island), hours after the outage began: " + ", ".join(short)
            if short else "no site's critical load went unserved on the P2P island")
    return (f"<p>Outage: {html.escape(outages)}. No utility import or export; the island's controller serves "
            "every site's critical load before any essential load (sim/island.py).</p>"
            f"<table id='resilience'>{''.join(rows)}</table><p>{html.escape(note)}. The ideal operator "
            "knows the whole outage in advance and runs every battery and parked car as one, from the P2P run's "
            "stored energy at the outage's start: no rule could do better with the same devices.</p>")


def _outage_soc(sim: Simulation) -> go.Figure:
    window = _outage_window(sim)
    index = _month_index(sim)[window]
    fig = go.Figure()
    for p in sim.community.participants.values():
        if p.battery is None and p.kind != CAR_KIND:
            continue
        soc = sim.p2p.accounts[p.id].columns["soc_wh"][window] / 1000
        fig.add_trace(go.Scatter(x=index, y=soc, name=f"{p.id} battery" if p.battery is not None else p.id,
                                 mode="lines", line={"dash": "dot"} if p.kind == CAR_KIND else {}))
    for o in sim.community.outages:
        fig.add_vrect(x0=o.start, x1=o.end, fillcolor="grey", opacity=0.15, line_width=0)
    fig.update_layout(title="Through the outage (shaded): state of charge of batteries and cars, P2P island (kWh)",
                      height=380)
    return fig


def _outage_served(sim: Simulation) -> go.Figure:
    c = sim.community
    window = _outage_window(sim)
    index = _month_index(sim)[window]
    sites = [pid for pid, p in c.participants.items() if p.kind != CAR_KIND]
    demand = sum(demand_by_priority(c, pid, window) for pid in sites) / 1000
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("P2P island", "each site alone"))
    colours = {"critical": "#b2182b", "essential": "#ef8a62", "deferrable": "#67a9cf"}
    for col, records in ((1, sim.p2p), (2, sim.baseline)):
        for j, prio in enumerate(PRIORITIES):
            shed = sum(records.accounts[pid].columns[f"shed_{prio}_wh"][window] for pid in sites) / 1000
            fig.add_trace(go.Bar(x=index, y=demand[j] - shed, name=f"{prio} served", marker_color=colours[prio],
                                 legendgroup=prio, showlegend=col == 1), row=1, col=col)
            fig.add_trace(go.Bar(x=index, y=shed, name=f"{prio} shed", marker_color=colours[prio], opacity=0.3,
                                 legendgroup=prio, showlegend=col == 1), row=1, col=col)
    fig.update_layout(barmode="stack", height=420, bargap=0,
                      title="Community load by priority through the outage: served and shed (kWh per slot)")
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
    replan_slots = sim.options.replan_slots or AGENT_MODES[sim.options.agents][1]
    ahead_min = replan_slots * sim.community.settings.slot_minutes
    fig.update_layout(title=f"Community load and PV: agents' forecasts (made up to {ahead_min} min ahead) "
                            "against actuals", height=380)
    return fig



def _voltage_heatmap(sim: Simulation) -> go.Figure:
    """Every bus's voltage in every slot [p.u.], baseline above P2P, on one colour scale centred
    on 1 p.u. whose ends are the voltage band's (outside the band: the scale's end colours)."""
    assert sim.network is not None
    net = sim.network
    index = _month_index(sim)
    band = net.feeder.band
    buses = list(net.baseline.bus_names)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("baseline (utility only)", "P2P"))
    for row, series in ((1, net.baseline), (2, net.p2p)):
        fig.add_trace(go.Heatmap(x=index, y=buses, z=series.v_pu.T, zmin=band.min_pu, zmax=band.max_pu, zmid=1.0,
                                 colorscale="RdBu_r", colorbar={"title": "p.u."}, showscale=row == 1,
                                 hovertemplate="%{y}<br>%{x}<br>%{z:.4f} p.u.<extra></extra>"), row=row, col=1)
    fig.update_layout(title=f"Voltage per bus and slot (p.u.; colour scale = the band, {band.label})",
                      height=200 + 14 * len(buses) * 2)
    return fig


def _loading(sim: Simulation) -> go.Figure:
    """The transformer's loading and the most loaded line's, per slot, in both runs [%]."""
    assert sim.network is not None
    net = sim.network
    index = _month_index(sim)
    fig = go.Figure()
    for run, series, dash in (("baseline", net.baseline, "dot"), ("P2P", net.p2p, "solid")):
        for k, name in enumerate(series.trafo_names):
            fig.add_trace(go.Scatter(x=index, y=series.trafo_loading_pct[:, k], name=f"transformer {name} ({run})",
                                     mode="lines", line={"dash": dash}))
        if series.line_loading_pct.size:
            fig.add_trace(go.Scatter(x=index, y=series.line_loading_pct.max(axis=1), name=f"most loaded line ({run})",
                                     mode="lines", line={"dash": dash}))
    fig.add_hline(y=100, line={"color": "red", "width": 1})
    fig.update_layout(title="Loading of the feeder's transformer and most loaded line (% of rating)", height=380)
    return fig
