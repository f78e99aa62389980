"""A feeder: a pandapower network, the bus of every site on it, its voltage band and the
power factor sites draw at.

Two sources (docs/network.md):

* the shipped default, :func:`kerber_community_feeder`: pandapower's Kerber rural cable feeder
  (``create_kerber_landnetz_kabel_2``: a 160 kVA 10/0.4 kV transformer, 14 house connections on
  two cable feeders) with its second feeder extended by six house connections in the first
  feeder's pattern, so every home of the community has its own connection; the office on the
  medium-voltage bus (its own MV connection: a 2 MW site is never supplied from a 160 kVA LV
  feeder; in Higashi-Fuji it had a 20 kV extra-high-voltage contract), so its flow does not
  pass the LV transformer;
* a user's own pandapower JSON file (:func:`feeder_from_file`) with a bus named for each site.

The network's own ``load`` and ``sgen`` elements are not used: the sites are the feeder's
loads and generators, each at its metered net power every slot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FEEDER = "kerber-landnetz-kabel-2"
DEFAULT_FEEDER_FILE = "kerber-landnetz-kabel-2-community.json"
KERBER_SEED = 17
"""Seed of Python's ``random`` while pandapower builds the Kerber feeder: it picks each house
connection's cable (NAYY 4x50 or NAYY 4x50 SE, 50 % each) at random, so without a seed two builds
differ; the shipped file is the draw of this seed (issue 17)."""

SUPPORTED = ("bus", "line", "trafo", "ext_grid", "load", "sgen")
"""Element tables a feeder file may have rows in (in service). Loads and sgens are ignored."""

# element tables pandapower networks carry that a feeder may not use (in service)
_UNSUPPORTED = ("trafo3w", "gen", "shunt", "impedance", "ward", "xward", "dcline", "storage", "switch", "motor",
                "asymmetric_load", "asymmetric_sgen", "svc", "tcsc", "ssc", "vsc", "source_dc", "load_dc",
                "line_dc", "bus_dc")

# The extension of the Kerber feeder 2: six junctions 53 m apart on NAYY 4x150 (feeder 1's spacing),
# each with a house connection alternating 18 m and 33 m of NAYY 4x50 SE (feeder 1's service cables).
_EXTRA_HOUSES = 6
_JUNCTION_KM = 0.053
_SERVICE_KM = (0.018, 0.033)


class FeederError(ValueError):
    """A bad feeder: the message names the element (``line 3 ('line_1_2'): ...``) or the site."""


@dataclass(frozen=True, slots=True)
class VoltageBand:
    """Allowed steady-state voltage at every bus [p.u. of the bus's nominal voltage]."""

    min_pu: float
    max_pu: float
    label: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.min_pu < 1 < self.max_pu < 2:
            raise ValueError(f"voltage band: need 0 < v_min_pu < 1 < v_max_pu < 2, got {self.min_pu}, {self.max_pu}")


BAND_PRESETS: dict[str, VoltageBand] = {
    # Japan's Electricity Business Act ordinance, art. 38: 101 ± 6 V at 100 V service (95–107 V)
    "japan": VoltageBand(0.95, 1.07, "Japan: 101 ± 6 V at 100 V (0.95–1.07 p.u.)"),
    # EN 50160: ± 10 % of the nominal voltage
    "europe": VoltageBand(0.90, 1.10, "Europe (EN 50160): ± 10 % (0.90–1.10 p.u.)"),
}


@dataclass(frozen=True, slots=True)
class Feeder:
    """``net``: the pandapower network (its ``load``/``sgen`` rows unused); ``site_bus``: site id →
    pandapower bus index (sites not in it are off this feeder); ``power_factor``: every site draws
    reactive power ``|P| · tan(acos(pf))`` (see docs/network.md); ``band``: the voltage band."""

    name: str
    net: Any
    site_bus: Mapping[str, int]
    band: VoltageBand
    power_factor: float = 0.95
    file: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.power_factor <= 1:
            raise ValueError(f"power_factor: must be in (0, 1], got {self.power_factor}")

    @property
    def q_per_p(self) -> float:
        """Reactive power per unit of active power [var/W] at the stated power factor."""
        return math.tan(math.acos(self.power_factor))

    @property
    def bus_names(self) -> list[str]:
        return [_bus_label(self.net, int(b)) for b in self.net.bus.index]

    def bus_of(self, site: str) -> int | None:
        return self.site_bus.get(site)


def kerber_community_net() -> Any:
    """The shipped default feeder as a pandapower network, built from pandapower's own Kerber feeder
    (module docstring); its loads removed. What ``data/feeders/`` ships (:func:`write_default_feeder`)."""
    import random

    import pandapower as pp
    import pandapower.networks as pn

    state = random.getstate()
    try:  # pandapower draws each house's service cable type with the random module: one fixed draw
        random.seed(KERBER_SEED)
        net = pn.create_kerber_landnetz_kabel_2()
    finally:
        random.setstate(state)
    trunk = net.line[net.line.std_type == "NAYY 4x150"].iloc[0]
    service = net.line[net.line.std_type == "NAYY 4x50 SE"].iloc[0]
    last = int(net.bus.index[net.bus.name == "KV_2_2"][0])
    for k in range(_EXTRA_HOUSES):
        n = k + 3
        junction = pp.create_bus(net, 0.4, name=f"KV_2_{n}", type="b")
        house = pp.create_bus(net, 0.4, name=f"loadbus_2_{n}", type="b")
        for (a, b, name, row, km) in ((last, junction, f"line_2_{n}", trunk, _JUNCTION_KM),
                                      (junction, house, f"branchout_line_2_{n}", service, _SERVICE_KM[k % 2])):
            pp.create_line_from_parameters(net, a, b, km, r_ohm_per_km=row.r_ohm_per_km, x_ohm_per_km=row.x_ohm_per_km,
                                           c_nf_per_km=row.c_nf_per_km, max_i_ka=row.max_i_ka, name=name,
                                           type="cs")
        last = junction
    net.load.drop(net.load.index, inplace=True)
    return net


def default_feeder_path() -> Path:
    """The shipped default feeder, a pandapower JSON file (``p2penergy/data/feeders``)."""
    from importlib import resources

    return Path(str(resources.files("p2penergy") / "data" / "feeders" / DEFAULT_FEEDER_FILE))


def write_default_feeder(path: Path | None = None) -> Path:
    """(Re)write the shipped default feeder from pandapower (tests/network checks the two agree)."""
    import pandapower as pp

    target = path or default_feeder_path()
    pp.to_json(kerber_community_net(), str(target))
    return target


def kerber_community_feeder(home_ids: Sequence[str], office_id: str | None, band: VoltageBand,
                            power_factor: float = 0.95, sites: Mapping[str, str | int] | None = None) -> Feeder:
    """The shipped default feeder for the community (module docstring), read from its shipped file
    without pandapower (:func:`read_tables`: the main job does not pay pandapower's import). Homes
    take the house connections in order — feeder 1's twelve from the transformer outwards, then
    feeder 2's — unless ``sites`` names a bus for them. A community of more homes than the feeder's 20
    connections (a generated one: docs/sweep.md) gets as many copies of the whole LV feeder, each
    with its own transformer on the same MV bus (:func:`replicate_lv`), homes filling them in turn:
    the way a distribution operator supplies a larger village, one transformer district per 20
    homes; such a feeder has no file (pandapower's reference power flow needs one)."""
    path = default_feeder_path()
    net = read_tables(path)
    houses = [int(b) for b in net.bus.index if str(net.bus.name[b]).startswith("loadbus_1_")]
    houses += [int(b) for b in net.bus.index if str(net.bus.name[b]).startswith("loadbus_2_")]
    copies = max(1, -(-len(home_ids) // len(houses)))
    file: Path | None = path
    if copies > 1:
        net, offsets = replicate_lv(net, copies)
        houses = [b + off for off in offsets for b in houses]
        file = None
    mapping: dict[str, int] = dict(zip(home_ids, houses, strict=False))
    if office_id is not None:
        mapping[office_id] = int(net.ext_grid.bus.iloc[0])
    if sites:
        mapping.update(_named_buses(net, sites, "network.sites"))
    return Feeder(DEFAULT_FEEDER, net, mapping, band, power_factor, file)


def replicate_lv(net: Any, copies: int) -> tuple[Any, list[int]]:
    """``net``'s tables with everything below its supply bus (buses, lines, transformers) present
    ``copies`` times, each copy's transformers fed from the same supply (``ext_grid``) bus; copy ``c``
    (from 1) has bus indices shifted by ``offsets[c − 1]`` and its elements' names prefixed ``"c<c>/"``
    (the first copy keeps the original indices and names). Returns (tables, offsets)."""
    from types import SimpleNamespace

    import pandas as pd

    supply = int(net.ext_grid.bus.iloc[0])
    if not (net.trafo.hv_bus == supply).all():
        raise FeederError("network.feeder: a transformer not fed from the supply bus cannot be replicated")
    lv = net.bus.drop(index=supply)
    step_bus, step_line, step_trafo = (int(t.index.max()) + 1 if len(t) else 0 for t in (net.bus, net.line, net.trafo))
    buses, lines, trafos, offsets = [net.bus], [net.line], [net.trafo], [0]
    for c in range(1, copies):
        off = step_bus * c
        offsets.append(off)
        b = lv.copy()
        b.index = b.index + off
        b["name"] = (f"c{c + 1}/" + lv["name"].astype(str)).to_numpy()
        ln = net.line.copy()
        ln.index = ln.index + step_line * c
        ln["name"] = (f"c{c + 1}/" + net.line["name"].astype(str)).to_numpy()
        ln["from_bus"] = (net.line.from_bus + off).to_numpy()
        ln["to_bus"] = (net.line.to_bus + off).to_numpy()
        tr = net.trafo.copy()
        tr.index = tr.index + step_trafo * c
        tr["name"] = (f"c{c + 1}/" + net.trafo["name"].astype(str)).to_numpy()
        tr["lv_bus"] = (net.trafo.lv_bus + off).to_numpy()
        buses.append(b)
        lines.append(ln)
        trafos.append(tr)
    out = SimpleNamespace(**vars(net))
    out.bus, out.line, out.trafo = pd.concat(buses), pd.concat(lines), pd.concat(trafos)
    return out, offsets


TABLES = ("bus", "line", "trafo", "ext_grid", "load", "sgen")


def read_tables(path: Path) -> Any:
    """The element tables a power flow needs (:data:`TABLES`) and ``f_hz`` of a pandapower JSON file,
    as pandas DataFrames on a plain namespace, read without importing pandapower (about 2 s of CPU)."""
    import json
    from types import SimpleNamespace

    import pandas as pd

    doc = json.loads(Path(path).read_text(encoding="utf-8"))["_object"]
    tables = {}
    for name in TABLES:
        entry = doc[name]
        body = json.loads(entry["_object"])
        frame = pd.DataFrame(body["data"], columns=body["columns"], index=body["index"])
        tables[name] = frame.astype({k: v for k, v in entry.get("dtype", {}).items() if k in frame.columns})
    return SimpleNamespace(**tables, f_hz=float(doc["f_hz"]))


def feeder_from_file(path: Path, sites: Mapping[str, str | int], band: VoltageBand,
                     power_factor: float = 0.95) -> Feeder:
    """A user's pandapower JSON network, checked (:func:`check_network`); ``sites``: site id →
    bus name (or index) in it."""
    import pandapower as pp

    if not Path(path).is_file():  # pandapower would read a missing file's name as JSON text
        raise FeederError(f"network.file: {path}: no such file")
    try:
        net = pp.from_json(str(path))
    except Exception as exc:  # pandapower raises what json and pandas raise on a broken file
        raise FeederError(f"network.file: {path}: not a pandapower network ({type(exc).__name__}: {exc})") from exc
    check_network(net, str(path))
    return Feeder(Path(path).name, net, _named_buses(net, sites, "network.sites"), band, power_factor, Path(path))


def check_network(net: Any, source: str) -> None:
    """Raise :class:`FeederError` naming the first element a power flow cannot use."""
    for table in _UNSUPPORTED:
        frame = getattr(net, table, None)
        if frame is None or len(frame) == 0:
            continue
        live = frame[frame.in_service] if "in_service" in frame else frame
        if table == "switch":
            live = frame[~frame.closed | (frame.et != "b")]
        if len(live):
            i = live.index[0]
            raise FeederError(f"{source}: {table} {i}{_name(live, i)}: not supported (a feeder may have "
                              f"{', '.join(SUPPORTED)}; closed bus-bus switches are allowed only if absent)"
                              if table != "switch" else
                              f"{source}: switch {i}{_name(live, i)}: not supported (fuse its buses or drop it)")
    if len(net.bus) == 0:
        raise FeederError(f"{source}: bus: the network has no bus")
    buses = set(int(b) for b in net.bus.index)
    for i, row in net.bus.iterrows():
        if not row.vn_kv > 0:
            raise FeederError(f"{source}: bus {i}{_name(net.bus, i)}: vn_kv must be > 0, got {row.vn_kv}")
    grids = net.ext_grid[net.ext_grid.in_service]
    if len(grids) != 1:
        raise FeederError(f"{source}: ext_grid: need exactly one in service (the feeder's supply), got {len(grids)}")
    g = grids.index[0]
    if int(grids.bus[g]) not in buses:
        raise FeederError(f"{source}: ext_grid {g}: bus {grids.bus[g]} is not a bus of the network")
    if not 0.8 <= float(grids.vm_pu[g]) <= 1.2:
        raise FeederError(f"{source}: ext_grid {g}: vm_pu must be within 0.8–1.2, got {grids.vm_pu[g]}")
    lines = net.line[net.line.in_service]
    for i, row in lines.iterrows():
        where = f"{source}: line {i}{_name(lines, i)}"
        for end in ("from_bus", "to_bus"):
            if int(row[end]) not in buses:
                raise FeederError(f"{where}: {end} {row[end]} is not a bus of the network")
        if net.bus.vn_kv[row.from_bus] != net.bus.vn_kv[row.to_bus]:
            raise FeederError(f"{where}: joins buses of different nominal voltage (use a trafo)")
        for col, low in (("length_km", 0), ("r_ohm_per_km", -1e-12), ("x_ohm_per_km", -1e-12), ("max_i_ka", 0),
                         ("c_nf_per_km", -1e-12)):
            if not float(row[col]) > low:
                raise FeederError(f"{where}: {col} must be {'> 0' if low == 0 else '>= 0'}, got {row[col]}")
        if float(row.r_ohm_per_km) == 0 and float(row.x_ohm_per_km) == 0:
            raise FeederError(f"{where}: r_ohm_per_km and x_ohm_per_km are both 0 (a line needs an impedance)")
    trafos = net.trafo[net.trafo.in_service]
    for i, row in trafos.iterrows():
        where = f"{source}: trafo {i}{_name(trafos, i)}"
        for end in ("hv_bus", "lv_bus"):
            if int(row[end]) not in buses:
                raise FeederError(f"{where}: {end} {row[end]} is not a bus of the network")
        for col in ("sn_mva", "vn_hv_kv", "vn_lv_kv", "vk_percent"):
            if not float(row[col]) > 0:
                raise FeederError(f"{where}: {col} must be > 0, got {row[col]}")
        if not 0 <= float(row.vkr_percent) < float(row.vk_percent):
            raise FeederError(f"{where}: vkr_percent must be >= 0 and below vk_percent, got {row.vkr_percent}")
        step_degree = row.get("tap_step_degree")
        if step_degree is not None and not _missing(step_degree) and float(step_degree) != 0:
            raise FeederError(f"{where}: phase-shifting taps (tap_step_degree) are not supported")
    _check_connected(net, source, lines, trafos, int(grids.bus[g]))


def _check_connected(net: Any, source: str, lines: Any, trafos: Any, root: int) -> None:
    links: dict[int, set[int]] = {int(b): set() for b in net.bus.index}
    for a, b in list(zip(lines.from_bus, lines.to_bus, strict=True)) + list(zip(trafos.hv_bus, trafos.lv_bus,
                                                                                 strict=True)):
        links[int(a)].add(int(b))
        links[int(b)].add(int(a))
    seen = {root}
    todo = [root]
    while todo:
        for nxt in links[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    loose = [b for b in links if b not in seen and bool(net.bus.in_service[b])]
    if loose:
        raise FeederError(f"{source}: bus {loose[0]}{_name(net.bus, loose[0])}: not connected to the ext_grid's bus "
                          "by lines and transformers in service")


def _named_buses(net: Any, sites: Mapping[str, str | int], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    names = {str(n): int(i) for i, n in net.bus.name.items() if n is not None}
    for site, bus in sites.items():
        if isinstance(bus, int) and not isinstance(bus, bool):
            if bus not in net.bus.index:
                raise FeederError(f"{key}.{site}: bus {bus} is not a bus index of the network")
            out[site] = bus
        elif str(bus) in names:
            out[site] = names[str(bus)]
        else:
            raise FeederError(f"{key}.{site}: no bus named {bus!r} in the network (names: "
                              f"{', '.join(sorted(names)[:8])}{', ...' if len(names) > 8 else ''})")
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _name(frame: Any, i: Any) -> str:
    name = frame.name[i] if "name" in frame else None
    return "" if _missing(name) else f" ({name!r})"


def _bus_label(net: Any, b: int) -> str:
    name = net.bus.name[b]
    return str(b) if _missing(name) else str(name)
