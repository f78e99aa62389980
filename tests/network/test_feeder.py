"""Feeders: the shipped default adapted to the community, a user's pandapower file, and bad files
whose error names the element at fault."""

from __future__ import annotations

import pytest

from p2penergy.network.feeder import BAND_PRESETS, FeederError, feeder_from_file, kerber_community_feeder
from p2penergy.network.from_scenario import scenario_feeder
from p2penergy.scenario import shipped_path
from p2penergy.scenario.load import ScenarioError, load_scenario, parse_scenario

HOMES = [f"house-{i:02d}" for i in range(1, 21)]
JAPAN = BAND_PRESETS["japan"]


def test_default_feeder_gives_every_home_its_own_connection():
    f = kerber_community_feeder(HOMES, "office", JAPAN)
    net = f.net
    buses = [f.site_bus[h] for h in HOMES]
    assert len(set(buses)) == 20
    assert all(str(net.bus.name[b]).startswith("loadbus_") for b in buses)
    assert all(net.bus.vn_kv[b] == 0.4 for b in buses)
    # the office on the transformer's medium-voltage side, the ext_grid's bus: its flow never passes the LV transformer
    assert f.site_bus["office"] == int(net.ext_grid.bus.iloc[0]) == int(net.trafo.hv_bus.iloc[0])
    assert len(net.load) == 0  # the sites are the feeder's only loads
    assert float(net.trafo.sn_mva.iloc[0]) == 0.16


def test_shipped_feeder_file_is_what_pandapower_builds():
    """data/feeders/ holds the default feeder as pandapower builds it (kerber_community_net); the main job
    reads its tables without pandapower, a fresh interpreter shows it."""
    import subprocess
    import sys

    import numpy as np

    from p2penergy.network.feeder import TABLES, kerber_community_net, read_tables

    built = kerber_community_net()
    shipped = kerber_community_feeder(HOMES, "office", JAPAN).net
    for table in TABLES:
        a, b = getattr(built, table), getattr(shipped, table)
        assert list(a.index) == list(b.index), table
        for col in a.columns:
            if col in ("geo", "std_type") or a[col].dtype == object:
                assert [_text(x) for x in a[col]] == [_text(x) for x in b[col]], (table, col)
            else:
                assert np.allclose(a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float), equal_nan=True), col
    probe = ("import sys; from p2penergy.network.feeder import kerber_community_feeder, BAND_PRESETS; "
             "kerber_community_feeder(['h1'], 'office', BAND_PRESETS['japan']); "
             "print('pandapower' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert read_tables(shipped_path().parent.parent / "feeders" / "kerber-landnetz-kabel-2-community.json").f_hz == 50


def _text(value):
    """A cell as text, every kind of missing alike (JSON brings a missing text back as None, not NaN)."""
    return "-" if value is None or (isinstance(value, float) and value != value) else str(value)


def test_default_feeder_grows_a_transformer_district_per_twenty_homes():
    """A 21st home (a generated community, docs/sweep.md) opens a second copy of the LV feeder with
    its own transformer on the same MV bus, on that copy's first house connection."""
    one = kerber_community_feeder(HOMES, "office", JAPAN)
    two = kerber_community_feeder([*HOMES, "house-21"], "office", JAPAN)
    assert len(one.net.trafo) == 1 and len(two.net.trafo) == 2
    assert two.file is None and one.file is not None
    assert set(two.net.trafo.hv_bus) == {two.bus_of("office")}
    assert two.net.bus.name[two.bus_of("house-21")] == "c2/" + one.net.bus.name[one.bus_of("house-01")]
    assert all(two.bus_of(h) == one.bus_of(h) for h in HOMES)


def test_shipped_scenario_has_the_default_feeder_and_none_runs_as_before():
    scenario = load_scenario()
    feeder = scenario_feeder(scenario)
    assert feeder is not None and feeder.band == JAPAN and feeder.power_factor == 0.95
    assert scenario_feeder(scenario.model_copy(update={"network": None})) is None


def test_sites_name_buses_of_the_default_feeder():
    f = kerber_community_feeder(HOMES, "office", JAPAN, sites={"house-20": "loadbus_1_1", "house-01": "loadbus_2_8"})
    assert f.net.bus.name[f.site_bus["house-20"]] == "loadbus_1_1"
    with pytest.raises(FeederError, match=r"network.sites.house-02: no bus named 'nowhere'"):
        kerber_community_feeder(HOMES, "office", JAPAN, sites={"house-02": "nowhere"})


def _scenario_data():
    import tomllib

    return tomllib.loads(shipped_path().read_text(encoding="utf-8"))


def test_scenario_network_keys_are_checked():
    data = _scenario_data()
    data["network"]["sites"] = {"car-01": "loadbus_1_1"}
    with pytest.raises(ScenarioError, match=r"network.sites.car-01: not a site id"):
        parse_scenario(data)
    data = _scenario_data()
    data["network"]["file"] = "mine.json"
    with pytest.raises(ScenarioError, match=r"network.sites: no bus for homes\[0\] \('house-01'\)"):
        parse_scenario(data)
    data = _scenario_data()
    data["network"]["power_factor"] = 1.2
    with pytest.raises(ScenarioError, match=r"network.power_factor"):
        parse_scenario(data)


@pytest.fixture
def user_net():
    """A small feeder of one's own: a transformer and two houses on a cable."""
    import pandapower as pp

    net = pp.create_empty_network()
    mv = pp.create_bus(net, 10.0, name="mv")
    lv = pp.create_bus(net, 0.4, name="lv")
    h1 = pp.create_bus(net, 0.4, name="h1")
    h2 = pp.create_bus(net, 0.4, name="h2")
    pp.create_ext_grid(net, mv)
    pp.create_transformer(net, mv, lv, "0.25 MVA 10/0.4 kV", name="t1")
    pp.create_line(net, lv, h1, 0.1, "NAYY 4x150 SE", name="cable-1")
    pp.create_line(net, h1, h2, 0.1, "NAYY 4x150 SE", name="cable-2")
    return net


def test_user_file_maps_sites_to_named_buses(tmp_path, user_net):
    import numpy as np
    import pandapower as pp

    from p2penergy.network.powerflow import flows, pandapower_flows

    path = tmp_path / "mine.json"
    pp.to_json(user_net, str(path))
    f = feeder_from_file(path, {"a": "h1", "b": 3}, JAPAN)
    assert f.site_bus == {"a": 2, "b": 3}
    p = np.array([[3000.0, -5000.0], [4000.0, 2000.0]])
    assert np.abs(flows(f, ["a", "b"], p).v_pu - pandapower_flows(f, ["a", "b"], p).v_pu).max() < 1e-6


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda net: net.line.__setitem__("to_bus", [2, 99]), r"line 1 \('cable-2'\): to_bus 99 is not a bus"),
    (lambda net: net.line.__setitem__("length_km", [0.1, 0.0]), r"line 1 \('cable-2'\): length_km must be > 0"),
    (lambda net: net.line.__setitem__("max_i_ka", [-1.0, 0.2]), r"line 0 \('cable-1'\): max_i_ka must be > 0"),
    (lambda net: net.trafo.__setitem__("sn_mva", [0.0]), r"trafo 0 \('t1'\): sn_mva must be > 0"),
    (lambda net: net.ext_grid.drop(net.ext_grid.index, inplace=True), r"ext_grid: need exactly one in service"),
    (lambda net: net.line.__setitem__("in_service", [True, False]), r"bus 3 \('h2'\): not connected"),
    (lambda net: net.line.__setitem__("to_bus", [0, 3]), r"line 0 \('cable-1'\): joins buses of different nominal"),
])
def test_bad_feeder_file_names_the_element(tmp_path, user_net, spoil, message):
    import pandapower as pp

    spoil(user_net)
    path = tmp_path / "bad.json"
    pp.to_json(user_net, str(path))
    with pytest.raises(FeederError, match=message):
        feeder_from_file(path, {"a": "h1"}, JAPAN)


def test_unsupported_elements_and_broken_files(tmp_path, user_net):
    import pandapower as pp

    pp.create_shunt(user_net, 2, q_mvar=0.01, name="cap")
    path = tmp_path / "shunt.json"
    pp.to_json(user_net, str(path))
    with pytest.raises(FeederError, match=r"shunt 0 \('cap'\): not supported"):
        feeder_from_file(path, {}, JAPAN)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(FeederError, match="not a pandapower network"):
        feeder_from_file(broken, {}, JAPAN)
    with pytest.raises(FeederError, match="no such file"):
        feeder_from_file(tmp_path / "missing.json", {}, JAPAN)
    pp.to_json(pp.networks.create_kerber_landnetz_kabel_1(), str(path))
    with pytest.raises(FeederError, match=r"network.sites.a: no bus named 'h1'"):
        feeder_from_file(path, {"a": "h1"}, JAPAN)
