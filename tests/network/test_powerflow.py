"""The batch power flow (power-grid-model) against pandapower's Newton–Raphson on the shipped feeder,
and against a two-bus case solved by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from p2penergy.network.feeder import BAND_PRESETS, Feeder, kerber_community_feeder
from p2penergy.network.powerflow import flows, pandapower_flows

HOMES = [f"house-{i:02d}" for i in range(1, 21)]
SITES = ["office", *HOMES]


@pytest.fixture(scope="module")
def feeder() -> Feeder:
    return kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"])


def site_powers(slots: int, seed: int, export_w: float = 8000, import_w: float = 6000) -> np.ndarray:
    """Random net draws [W]: homes from ``-export_w`` (PV exporting) to ``import_w``; the office 1–2 MW."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-export_w, import_w, (slots, len(SITES)))
    p[:, 0] = rng.uniform(1e6, 2e6, slots)
    return p


@pytest.mark.parametrize(("seed", "export_w"), [(1, 8000), (2, 20000)])
def test_batch_matches_pandapower_newton_raphson(feeder, seed, export_w):
    """Same network, same loads: voltages to 1e-6 p.u. (issue 17); loadings and losses agree too.
    pandapower runs its π transformer model, the one power-grid-model uses (its default T model
    differs by about 4e-7 p.u. on this feeder)."""
    p = site_powers(12, seed, export_w)
    ours = flows(feeder, SITES, p)
    ref = pandapower_flows(feeder, SITES, p)
    assert ours.bus_names == ref.bus_names and ours.line_names == ref.line_names
    assert np.abs(ours.v_pu - ref.v_pu).max() < 1e-6
    assert np.abs(ours.line_loading_pct - ref.line_loading_pct).max() < 1e-4
    assert np.abs(ours.trafo_loading_pct - ref.trafo_loading_pct).max() < 1e-4
    assert np.abs(ours.losses_w - ref.losses_w).max() < 1e-3 * np.abs(ref.losses_w).max()
    # the draws matter: exports raise the far end of feeder 2 above the transformer's LV busbar
    far = ours.bus_names.index("loadbus_2_8")
    assert ours.v_pu[:, far].max() > ours.v_pu[:, ours.bus_names.index("main_busbar")].min()


def test_two_buses_by_hand():
    """A 0.4 kV source and one load over a line of R + jX (no capacitance), constant power P + jQ
    (three-phase). With line-to-line voltages the receiving end solves
    V⁴ − (V0² − 2(PR + QX))·V² + (P² + Q²)(R² + X²) = 0 (the larger root); the line carries
    I = |S| / (√3 V) and loses 3 I² R = (P² + Q²) R / V²."""
    import pandapower as pp

    v0, r, x, p_w, q_var, i_n = 400.0, 0.1, 0.05, 50_000.0, 20_000.0, 200.0
    net = pp.create_empty_network(f_hz=50.0)
    a = pp.create_bus(net, 0.4, name="source")
    b = pp.create_bus(net, 0.4, name="load")
    pp.create_ext_grid(net, a, vm_pu=1.0)
    pp.create_line_from_parameters(net, a, b, 1.0, r_ohm_per_km=r, x_ohm_per_km=x, c_nf_per_km=0.0,
                                   max_i_ka=i_n / 1000, name="line")
    pf = p_w / math.hypot(p_w, q_var)
    feeder = Feeder("two buses", net, {"site": b}, BAND_PRESETS["europe"], power_factor=pf)
    out = flows(feeder, ["site"], np.array([[p_w]]))
    c = v0**2 - 2 * (p_w * r + q_var * x)
    v2 = (c + math.sqrt(c * c - 4 * (p_w**2 + q_var**2) * (r * r + x * x))) / 2
    v = math.sqrt(v2)
    assert out.v_pu[0, 1] == pytest.approx(v / v0, abs=1e-9)
    assert out.v_pu[0, 0] == pytest.approx(1.0, abs=1e-9)
    assert out.losses_w[0] == pytest.approx((p_w**2 + q_var**2) * r / v2, rel=1e-6)
    current = math.hypot(p_w, q_var) / (math.sqrt(3) * v)
    assert out.line_loading_pct[0, 0] == pytest.approx(current / i_n * 100, rel=1e-6)
    # for the reader: the first-order drop (PR + QX) / V0 = (5,000 + 1,000) / 400 = 15 V; the root: 384.39 V
    assert v == pytest.approx(384.389, abs=1e-3)


def test_sites_off_the_feeder_are_left_out(feeder):
    """A site with no bus (a car park elsewhere, a member on another feeder) draws nothing here."""
    p = site_powers(3, 3)
    extra = np.hstack([p, np.full((3, 1), 1e6)])
    a = flows(feeder, SITES, p)
    b = flows(feeder, [*SITES, "elsewhere"], extra)
    assert np.array_equal(a.v_pu, b.v_pu)


def test_a_community_larger_than_the_feeder_gets_a_copy_of_it_per_twenty_homes(feeder):
    """45 homes on the default feeder: three copies of its LV part, each with its own transformer on
    the same MV bus, homes filling them in turn. The MV bus is the ideal supply, so the copies are
    independent: homes 21–40 drawing what homes 1–20 draw give their copy the single feeder's
    voltages, loadings and losses (and the third copy, with 5 homes, its own)."""
    homes = [f"h{i:03d}" for i in range(1, 46)]
    big = kerber_community_feeder(homes, "office", BAND_PRESETS["japan"])
    assert len(big.net.trafo) == 3 and len(big.net.bus) == 3 * (len(feeder.net.bus) - 1) + 1
    assert len({big.bus_of(h) for h in homes}) == 45
    assert big.bus_of("office") == feeder.bus_of("office")
    p = site_powers(6, 3)
    one = flows(feeder, SITES, p)
    draws = np.concatenate([p, p[:, 1:], np.zeros((6, 5))], axis=1)
    many = flows(big, ["office", *homes], draws)
    assert many.trafo_names[1:] == tuple(f"c{c}/{many.trafo_names[0]}" for c in (2, 3))
    assert np.allclose(many.trafo_loading_pct[:, 0], one.trafo_loading_pct[:, 0], atol=1e-9)
    assert np.allclose(many.trafo_loading_pct[:, 1], one.trafo_loading_pct[:, 0], atol=1e-9)
    for name in ("loadbus_1_1", "loadbus_2_8"):
        mine = one.v_pu[:, one.bus_names.index(name)]
        assert np.allclose(many.v_pu[:, many.bus_names.index(name)], mine, atol=1e-9)
        assert np.allclose(many.v_pu[:, many.bus_names.index(f"c2/{name}")], mine, atol=1e-9)
    # the third copy carries nothing: its houses sit near 1 p.u. (cable charging moves them by micro-p.u.)
    idle = many.v_pu[:, [i for i, b in enumerate(many.bus_names) if b.startswith("c3/loadbus")]]
    assert np.abs(idle - 1).max() < 1e-4
    assert (many.losses_w > one.losses_w).all()  # two more transformers' no-load losses
