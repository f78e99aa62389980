"""A power flow every slot: voltage per bus, loading of every line and transformer, losses.

:func:`flows` solves all slots in one power-grid-model batch calculation (Newton–Raphson in C++,
the network factorised once); :func:`pandapower_flows` runs pandapower's own Newton–Raphson slot
by slot on the same network — the reference the batch is checked against (tests/network) and the
baseline of its benchmark (benchmarks/bench_powerflow.py).

Conventions: ``p_w[slot, site]`` is each site's net active power drawn from the feeder [W]
(negative: it exports); each site draws ``|p| · tan(acos(pf))`` of reactive power
(:class:`~p2penergy.network.feeder.Feeder`). Loadings are in % of the rating (a line's
``max_i_ka · df · parallel``; a transformer's ``sn_mva``, by apparent power at its worse side).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from p2penergy.network.feeder import Feeder

SOURCE_SK_VA = 1e15
"""Short-circuit power of the feeder's supply in power-grid-model [VA]: pandapower's ext_grid is an
ideal voltage source in a power flow; 1e15 VA makes power-grid-model's source the same to far
below 1e-9 p.u. at feeder currents (a 2 MW draw at 10 kV changes its voltage by ~1e-11 p.u.)."""

ERROR_TOLERANCE_PU = 1e-10
"""Newton–Raphson convergence: largest voltage change between iterations [p.u.] (both solvers)."""


@dataclass(frozen=True, slots=True)
class FlowSeries:
    """A run's power flows: ``v_pu[slot, bus]`` (buses in ``bus_names`` order: the network's),
    ``line_loading_pct[slot, line]``, ``trafo_loading_pct[slot, trafo]``, ``losses_w[slot]``
    (lines and transformers)."""

    bus_names: tuple[str, ...]
    line_names: tuple[str, ...]
    trafo_names: tuple[str, ...]
    v_pu: np.ndarray
    line_loading_pct: np.ndarray
    trafo_loading_pct: np.ndarray
    losses_w: np.ndarray


def site_loads(feeder: Feeder, sites: Sequence[str]) -> list[tuple[str, int]]:
    """(site, bus) of the ``sites`` on this feeder, in ``sites`` order."""
    return [(s, feeder.site_bus[s]) for s in sites if s in feeder.site_bus]


def flows(feeder: Feeder, sites: Sequence[str], p_w: np.ndarray, diverged_as_inf: bool = False) -> FlowSeries:
    """Every slot's power flow by one power-grid-model batch calculation; ``p_w[slot, i]`` is
    ``sites[i]``'s net draw [W] (sites not on the feeder are left out). ``diverged_as_inf``: a slot
    whose Newton–Raphson does not converge (a draw far beyond what the feeder can carry, as the
    hosting-capacity search tries) gets infinite voltages and loadings instead of an error."""
    from power_grid_model import CalculationMethod, PowerGridModel, initialize_array

    net = feeder.net
    placed = site_loads(feeder, sites)
    column = {s: i for i, s in enumerate(sites)}
    model_input, ids = pgm_input(net, [bus for _, bus in placed])
    model = PowerGridModel(model_input, system_frequency=float(net.f_hz))
    n = p_w.shape[0]
    update = initialize_array("update", "sym_load", (n, len(placed)))
    update["id"] = ids["load"][None, :]
    p = p_w[:, [column[s] for s, _ in placed]].astype(np.float64)
    update["p_specified"] = p
    update["q_specified"] = np.abs(p) * feeder.q_per_p
    out = model.calculate_power_flow(update_data={"sym_load": update}, symmetric=True,
                                     error_tolerance=ERROR_TOLERANCE_PU, max_iterations=30,
                                     calculation_method=CalculationMethod.newton_raphson,
                                     continue_on_batch_error=diverged_as_inf)
    failed = np.zeros(n, dtype=bool)
    if diverged_as_inf and model.batch_error is not None:
        failed[np.asarray(model.batch_error.failed_scenarios, dtype=np.int64)] = True
    losses = np.zeros(n)
    loading = {}
    # a diverged slot's outputs are garbage (NaN, huge) until set to inf below: no warning for them
    with np.errstate(invalid="ignore", over="ignore") if failed.any() else contextlib.nullcontext():
        for kind in ("line", "transformer"):
            branch = out.get(kind)
            if branch is None:
                loading[kind] = np.zeros((n, 0))
                continue
            losses += (branch["p_from"] + branch["p_to"]).sum(axis=1)
            loading[kind] = branch["loading"] * 100
    v_pu = out["node"]["u_pu"]
    if failed.any():
        for a in (v_pu, loading["line"], loading["transformer"], losses):
            a[failed] = np.inf
    return FlowSeries(tuple(feeder.bus_names), tuple(_names(net.line)), tuple(_names(net.trafo)),
                      v_pu, loading["line"], loading["transformer"], losses)


def pgm_input(net: Any, load_buses: Sequence[int]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """power-grid-model input arrays of a checked pandapower network (feeder.check_network), with
    one constant-power ``sym_load`` per entry of ``load_buses``; also the ids given to each kind.
    Out-of-service lines and transformers are left out (their buses stay, unsupplied ones are
    rejected by the check)."""
    from power_grid_model import WindingType, initialize_array

    buses = np.asarray(net.bus.index, dtype=np.int64)
    node_id = {int(b): i for i, b in enumerate(buses)}
    next_id = len(buses)
    node = initialize_array("input", "node", len(buses))
    node["id"] = np.arange(len(buses))
    node["u_rated"] = net.bus.vn_kv.to_numpy(dtype=float) * 1e3

    lines = net.line
    line = initialize_array("input", "line", len(lines))
    line["id"] = np.arange(next_id, next_id + len(lines))
    next_id += len(lines)
    line["from_node"] = [node_id[int(b)] for b in lines.from_bus]
    line["to_node"] = [node_id[int(b)] for b in lines.to_bus]
    status = lines.in_service.to_numpy(dtype=np.int8)
    line["from_status"] = status
    line["to_status"] = status
    km = lines.length_km.to_numpy(dtype=float)
    parallel = lines.parallel.to_numpy(dtype=float)
    line["r1"] = lines.r_ohm_per_km.to_numpy(dtype=float) * km / parallel
    line["x1"] = lines.x_ohm_per_km.to_numpy(dtype=float) * km / parallel
    c_f = lines.c_nf_per_km.to_numpy(dtype=float) * 1e-9 * km * parallel
    line["c1"] = c_f
    g_s = (lines.g_us_per_km.to_numpy(dtype=float) if "g_us_per_km" in lines else np.zeros(len(lines))) * 1e-6 * km
    omega = 2 * math.pi * float(net.f_hz)
    with np.errstate(divide="ignore", invalid="ignore"):
        line["tan1"] = np.where(c_f > 0, g_s * parallel / (omega * c_f), 0.0)
    line["i_n"] = lines.max_i_ka.to_numpy(dtype=float) * 1e3 * lines.df.to_numpy(dtype=float) * parallel

    trafos = net.trafo
    trafo = initialize_array("input", "transformer", len(trafos))
    trafo["id"] = np.arange(next_id, next_id + len(trafos))
    next_id += len(trafos)
    for k, (_, row) in enumerate(trafos.iterrows()):
        par = float(row.parallel)
        sn_va = float(row.sn_mva) * 1e6 * par
        t = trafo[k]
        t["from_node"], t["to_node"] = node_id[int(row.hv_bus)], node_id[int(row.lv_bus)]
        t["from_status"] = t["to_status"] = int(bool(row.in_service))
        t["u1"], t["u2"] = float(row.vn_hv_kv) * 1e3, float(row.vn_lv_kv) * 1e3
        t["sn"] = sn_va
        t["uk"] = float(row.vk_percent) / 100
        t["pk"] = float(row.vkr_percent) / 100 * sn_va
        t["i0"] = float(row.i0_percent) / 100
        t["p0"] = float(row.pfe_kw) * 1e3 * par
        clock = round(float(row.shift_degree) / 30) % 12 if not _nan(row.shift_degree) else 0
        t["winding_from"] = WindingType.delta if clock % 2 else WindingType.wye_n
        t["winding_to"] = WindingType.wye_n
        t["clock"] = clock
        pos = row.get("tap_pos")
        if pos is None or _nan(pos) or _nan(row.get("tap_step_percent")):
            t["tap_side"], t["tap_pos"], t["tap_min"], t["tap_max"], t["tap_nom"], t["tap_size"] = 0, 0, 0, 0, 0, 0
        else:
            hv = str(row.tap_side) == "hv"
            neutral = 0 if _nan(row.tap_neutral) else int(row.tap_neutral)
            t["tap_side"] = 0 if hv else 1
            t["tap_pos"], t["tap_nom"] = int(pos), neutral
            t["tap_min"] = int(row.tap_min) if not _nan(row.tap_min) else min(int(pos), neutral)
            t["tap_max"] = int(row.tap_max) if not _nan(row.tap_max) else max(int(pos), neutral)
            t["tap_size"] = float(row.tap_step_percent) / 100 * (t["u1"] if hv else t["u2"])

    grids = net.ext_grid[net.ext_grid.in_service]
    source = initialize_array("input", "source", len(grids))
    source["id"] = np.arange(next_id, next_id + len(grids))
    next_id += len(grids)
    source["node"] = [node_id[int(b)] for b in grids.bus]
    source["status"] = 1
    source["u_ref"] = grids.vm_pu.to_numpy(dtype=float)
    source["sk"] = SOURCE_SK_VA

    load = initialize_array("input", "sym_load", len(load_buses))
    load["id"] = np.arange(next_id, next_id + len(load_buses))
    load["node"] = [node_id[int(b)] for b in load_buses]
    load["status"] = 1
    load["type"] = 0  # constant power
    load["p_specified"] = 0.0
    load["q_specified"] = 0.0
    data = {"node": node, "line": line, "transformer": trafo, "source": source, "sym_load": load}
    return {k: v for k, v in data.items() if v.size}, {"load": load["id"].copy()}


def pandapower_flows(feeder: Feeder, sites: Sequence[str], p_w: np.ndarray) -> FlowSeries:
    """The same flows by pandapower's Newton–Raphson, one ``runpp`` per slot (the reference)."""
    import pandapower as pp

    net = pandapower_net(feeder)
    placed = site_loads(feeder, sites)
    column = {s: i for i, s in enumerate(sites)}
    net.load.drop(net.load.index, inplace=True)
    net.sgen.drop(net.sgen.index, inplace=True)
    rows = [pp.create_load(net, bus, 0.0, 0.0, name=s) for s, bus in placed]
    n = p_w.shape[0]
    v = np.zeros((n, len(net.bus)))
    line_pct = np.zeros((n, len(net.line)))
    trafo_pct = np.zeros((n, len(net.trafo)))
    losses = np.zeros(n)
    cols = [column[s] for s, _ in placed]
    for k in range(n):
        p_mw = p_w[k, cols].astype(float) / 1e6
        net.load.loc[rows, "p_mw"] = p_mw
        net.load.loc[rows, "q_mvar"] = np.abs(p_mw) * feeder.q_per_p
        pp.runpp(net, algorithm="nr", calculate_voltage_angles=True, tolerance_mva=1e-10, numba=False,
                 trafo_model="pi", trafo_loading="power", max_iteration=30)
        v[k] = net.res_bus.vm_pu.to_numpy()
        line_pct[k] = net.res_line.loading_percent.to_numpy()
        trafo_pct[k] = net.res_trafo.loading_percent.to_numpy()
        losses[k] = (net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()) * 1e6
    return FlowSeries(tuple(feeder.bus_names), tuple(_names(net.line)), tuple(_names(net.trafo)), v, line_pct,
                      trafo_pct, losses)


def pandapower_net(feeder: Feeder) -> Any:
    """A pandapower network of the feeder to change freely: a copy of ``feeder.net``, or the file it
    was read from where ``net`` holds only its tables."""
    import pandapower as pp

    if isinstance(feeder.net, pp.pandapowerNet):
        return copy.deepcopy(feeder.net)
    assert feeder.file is not None, "a feeder of tables comes from a file"
    return pp.from_json(str(feeder.file))


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _names(frame: Any) -> list[str]:
    return [str(i) if _nan(n) else str(n) for i, n in zip(frame.index, frame.name, strict=True)]
