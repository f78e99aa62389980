"""The report speaks about its own run: a short run of the shipped community (JPY) and of a
community of one's own on the 15-minute euro market. Nothing in either report is fixed prose."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from p2penergy.cli.simulate import print_results
from p2penergy.community import PARTICIPANT_TYPES, participant_type
from p2penergy.market import MarketSettings
from p2penergy.market.grid_fees import GridFees
from p2penergy.report.files import slot_labels, write_run
from p2penergy.report.html import render_report
from p2penergy.scenario import shipped_path
from p2penergy.scenario.load import load_scenario, parse_scenario
from p2penergy.sim.simulate import SimulationOptions, simulate

ROOT = Path(__file__).resolve().parents[2]

# Sentences the report used to print whatever the run (issue 13, item 9) and words only a
# Japanese tariff or the Higashi-Fuji demonstration can explain.
FIXED_PROSE = ("about 22 JPY/kWh", "26.48-30.57", "past their FIT term", "did not publish", "TEPCO", "Obon")
JAPANESE = ("JPY", "TEPCO", "FIT", "yen", "Obon", "demonstration's", ">demonstration<")
LONG_FLOAT = re.compile(r"\d\.\d{5,}")  # a figure printed with float noise (0.40486753707694256)


def euro_scenario():
    """The shipped community moved to a 15-minute euro market near Munich, with euro tariffs
    (assumed for the test: 0.30 EUR/kWh, exports 0.08 EUR/kWh or 0.12 inside a feed-in term) and its own name."""
    data = tomllib.loads(shipped_path().read_text(encoding="utf-8"))
    market = tomllib.loads((ROOT / "markets" / "eu-15min.toml").read_text(encoding="utf-8"))["market"]
    data["market"] = market
    # network fees by distance (assumed for the test, EUR/kWh): the run's bills show them
    data["market"]["grid_fees"] = {"same_bus_per_kwh": "0.01", "same_feeder_per_kwh": "0.02",
                                   "through_transformer_per_kwh": "0.05"}
    data["scenario"]["name"] = "our-street"
    data["network"]["voltage_band"] = "europe"
    data["location"].update(latitude=48.1, longitude=11.6, altitude_m=520, holiday_country="DE")
    data["calendar"]["office_closed"] = []
    tariffs = data["tariffs"]
    tariffs["retail"] = {"name": "household standard", "basic_charge_per_10a": "3.00",
                         "tiers": [{"price_per_kwh": "0.30"}]}
    tariffs["renewable_surcharge"] = [{"valid_from": "2020-01-01", "price_per_kwh": "0.0676"}]
    tariffs["fuel_price_per_l"] = "1.20"
    tariffs.pop("fuel_adjustment", None)
    tariffs["buyback"] = dict.fromkeys(tariffs["buyback"], "0.08")
    if "fit" in tariffs:  # feed-in prices by the year a home's PV was connected
        prices = tariffs["fit"]["price_per_kwh_by_fiscal_year"]
        tariffs["fit"]["price_per_kwh_by_fiscal_year"] = dict.fromkeys(prices, "0.12")
    # a seasonal business contract in place of the shipped Japanese time-of-use one
    tariffs["office"] = {"name": "business", "demand_charge_per_kw": "9.50", "energy_summer_per_kwh": "0.20",
                         "energy_other_per_kwh": "0.19"}
    return parse_scenario(data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for name, scenario in (("jpy", load_scenario()), ("eur", euro_scenario())):
        sim = simulate(scenario, SimulationOptions(days=1, history_days=14, ledger=False))
        folder = tmp_path_factory.mktemp(name)
        write_run(sim, folder, render_report(sim))
        out[name] = (sim, folder)
    return out


def _text(html: str) -> str:
    """The report without its scripts (plotly's data carries raw floats, as plotly needs)."""
    return re.sub(r"<script.*?</script>", "", html, flags=re.S)


def test_results_json_has_flows_between_participant_types(runs):
    sim, folder = runs["jpy"]
    body = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    flows = body["flows"]
    assert flows, "the agents traded"
    types = {pid: participant_type(p) for pid, p in sim.community.participants.items()}
    for f in flows:
        assert set(f) == {"seller_type", "buyer_type", "energy_kwh", "vwap_per_kwh"}
        assert f["seller_type"] in PARTICIPANT_TYPES and f["buyer_type"] in PARTICIPANT_TYPES
        trades = [t for t in sim.p2p.trades
                  if (types[t.seller], types[t.buyer]) == (f["seller_type"], f["buyer_type"])]
        energy_wh = sum(t.energy_wh for t in trades)
        assert f["energy_kwh"] == energy_wh / 1000
        vwap = sum((t.amount for t in trades), Decimal(0)) * 1000 / energy_wh
        assert f["vwap_per_kwh"] == pytest.approx(float(vwap), abs=1e-4)
    assert sum(f["energy_kwh"] for f in flows) == pytest.approx(body["kpis"]["p2p_energy_kwh"], abs=1e-9)
    assert {p["type"] for p in body["participants"].values()} <= set(PARTICIPANT_TYPES)


def test_the_report_shows_the_flows_as_a_table_and_a_diagram(runs):
    _, folder = runs["jpy"]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "<table id='flows'>" in html
    assert "P2P flows between participant types" in html
    assert "<th>volume-weighted price</th>" in html
    assert '<script src="http' not in html and "plotly.js v" in html  # offline: plotly.js inlined, once
    assert html.count("plotly.js v") == 1


def test_no_key_figure_carries_float_noise(runs, capsys):
    for sim, folder in runs.values():
        body = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        noisy = {k: v for k, v in body["kpis"].items() if isinstance(v, float) and LONG_FLOAT.search(repr(v))}
        assert not noisy
        assert not LONG_FLOAT.search(json.dumps(body["key_figures"]))
        assert not LONG_FLOAT.search(_text((folder / "report.html").read_text(encoding="utf-8")))
        print_results(sim)
        printed = capsys.readouterr().out
        assert not LONG_FLOAT.search(printed)
        assert f"baseline {sim.community.settings.currency}" in printed
        assert ("P2P flows between participant types" in printed) == bool(sim.p2p.trades)


def test_the_shipped_community_is_compared_with_the_demonstration(runs):
    _, folder = runs["jpy"]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert ">demonstration<" in html
    for sentence in FIXED_PROSE:
        assert sentence not in html


def test_a_euro_community_gets_no_japanese_prose(runs, capsys):
    sim, folder = runs["eur"]
    # the euro market file's rules, with the test's grid fees
    assert replace(sim.community.settings, grid_fees=GridFees()) == MarketSettings.from_toml(
        ROOT / "markets" / "eu-15min.toml")
    html = _text((folder / "report.html").read_text(encoding="utf-8"))
    for word in (*FIXED_PROSE, *JAPANESE):
        assert word not in html, word
    assert "baseline balance EUR" in html
    body = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert all(g["demonstration_pct"] is None for g in body["groups"].values())
    assert "JPY" not in json.dumps(body["key_figures"])
    print_results(sim)
    printed = capsys.readouterr().out
    assert "JPY" not in printed and "demonstration" not in printed.replace("demonstration agents", "")


def test_explanations_are_computed_from_the_run(runs):
    """Each group's note names what its members bought and sold P2P, as the trades say."""
    for sim, folder in runs.values():
        html = (folder / "report.html").read_text(encoding="utf-8")
        members = set(sim.groups["phv"].members)
        bought_wh = sum(t.energy_wh for t in sim.p2p.trades if t.buyer in members)
        row = re.search(r"<tr id='group-phv'>(.*?)</tr>", html, flags=re.S)
        assert row is not None
        note = row.group(1).lower()  # the note's first clause starts with a capital
        if bought_wh:
            assert f"bought {bought_wh / 1000:,.1f} kwh" in note
        else:
            assert "bought" not in note


def test_results_json_and_report_have_the_feeder(runs):
    """Both runs' network figures (issue 17), computed from each site's net draw; the report shows
    the voltage heat-map and the loading over time."""
    from p2penergy.network.run import FIGURES, site_power_w

    for name, band in (("jpy", (0.95, 1.07)), ("eur", (0.90, 1.10))):
        sim, folder = runs[name]
        body = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        network = body["network"]
        assert (sim.network.feeder.band.min_pu, sim.network.feeder.band.max_pu) == band
        for run in ("baseline", "p2p"):
            figures = network[run]
            assert set(figures) == set(FIGURES)
            assert 0.8 < figures["v_min_pu"] <= 1.0 <= figures["v_max_pu"] < 1.2
            assert figures["losses_kwh"] > 0 and figures["peak_transformer_loading_pct"] > 0
        html = (folder / "report.html").read_text(encoding="utf-8")
        assert "Voltage per bus and slot" in html and "Loading of the feeder" in html
        assert any(label.startswith("feeder voltage") for label, _ in _key_figures(body))
    # what the feeder carries is what the meters took in and put out (utility and P2P), cars where parked
    sim, _ = runs["jpy"]
    for records in (sim.baseline, sim.p2p):
        _, p_w = site_power_w(sim.community, records)
        hours = sim.community.settings.slot_minutes / 60
        metered = 0
        for p in sim.community.participants.values():
            c = records.accounts[p.id].columns
            metered += int((c["grid_import_wh"] + c["p2p_buy_wh"] - c["grid_export_wh"] - c["p2p_sell_wh"]).sum())
        assert p_w.sum() * hours == pytest.approx(metered, abs=1e-6)
    assert sim.network.p2p.v_pu.shape == (sim.community.month.stop - sim.community.month.start, 42)


def _key_figures(body):
    return [(f["figure"], f["text"]) for f in body["key_figures"]]


def test_grid_fees_by_distance_on_bills(runs):
    """The euro run's market charges fees by distance: each trade's fee, from the parties' buses in its
    slot (LV buses are one feeder section here, the office on the MV bus), goes to its buyer's balance
    and bill; the shipped market charges none and its files show none."""
    from p2penergy.community import CAR_KIND, LOCATION_CODES

    sim, folder = runs["eur"]
    feeder = sim.network.feeder
    rates = {"same_bus": Decimal("0.01"), "same_feeder": Decimal("0.02"), "through_transformer": Decimal("0.05")}
    c = sim.community
    k_of = {c.slot(c.month.start + k): k for k in range(c.month.stop - c.month.start)}

    def bus(pid, k):
        p = c.participants[pid]
        if p.kind != CAR_KIND:
            return feeder.site_bus.get(pid)
        where = int(p.location[c.month.start + k])
        return {LOCATION_CODES["home"]: feeder.site_bus.get(p.owner),
                LOCATION_CODES["office"]: feeder.site_bus.get("office")}.get(where)

    owed = dict.fromkeys(c.participants, Decimal(0))
    classes = set()
    for t in sim.p2p.trades:
        a, b = bus(t.seller, k_of[t.slot_start]), bus(t.buyer, k_of[t.slot_start])
        if a is None or b is None:
            d = "through_transformer"
        elif a == b:
            d = "same_bus"
        else:
            lv = feeder.net.bus.vn_kv[a] == feeder.net.bus.vn_kv[b] == 0.4
            d = "same_feeder" if lv else "through_transformer"
        classes.add(d)
        owed[t.buyer] += rates[d] * t.energy_wh / 1000
    assert "same_feeder" in classes, "homes traded with homes"
    body = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert Decimal(str(body["grid_fees"]["total"])) == sum(owed.values())
    for pid, cost in sim.p2p_costs.items():
        assert cost.grid_fees == owed[pid]
        assert Decimal(str(body["participants"][pid]["p2p_grid_fees"])) == owed[pid]
    buyer = max(owed, key=lambda pid: owed[pid])
    bill = (folder / "participants" / f"{buyer}.p2p.bill.csv").read_text(encoding="utf-8")
    assert f"grid fees on P2P purchases,,,,{owed[buyer]}" in bill
    jpy, jpy_folder = runs["jpy"]
    assert "grid_fees" not in json.loads((jpy_folder / "results.json").read_text(encoding="utf-8"))
    assert all(cost.grid_fees == 0 for cost in jpy.p2p_costs.values())


@pytest.mark.parametrize(("zone", "freq", "start"), [("Asia/Tokyo", "30min", "2020-08-01"),
                                                     ("Europe/Berlin", "15min", "2021-03-27"),
                                                     ("Europe/Berlin", "15min", "2021-10-30")])
def test_slot_labels_write_what_pandas_writes_for_the_index(zone: str, freq: str, start: str) -> None:
    """The slot files' labels, made once per run, are byte for byte what ``to_csv`` writes for the
    tz-aware index itself, also across a DST change (Berlin's spring and autumn nights)."""
    index = pd.date_range(start, periods=4 * 24 * 2, freq=freq, tz=zone, name="slot_start")
    frame = pd.DataFrame({"load_wh": range(len(index))}, index=index)
    labelled = frame.set_axis(slot_labels(index))
    assert labelled.to_csv() == frame.to_csv()
    assert labelled.index[0] != labelled.index[-1]
