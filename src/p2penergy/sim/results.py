"""Savings per group in the layout of the demonstration's table, and the run's KPIs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from p2penergy.community import (
    CAR_KIND,
    HOME_KIND,
    LOCATION_CODES,
    OFFICE_KIND,
    PARTICIPANT_TYPES,
    Community,
    participant_type,
)
from p2penergy.market import Trade
from p2penergy.sim.costs import Cost
from p2penergy.sim.records import RunRecords

# The demonstration's published improvements, August 2020 (MISSION.md).
DEMONSTRATION_PCT: dict[str, float] = {
    "all": 8.6, "consumers": 6.1, "consumers_no_phv": 2.1, "consumers_phv": 9.2, "prosumers": 18.0,
    "pv_only": 32.3, "pv_battery": 32.0, "pv_phv": 8.4, "pv_battery_phv": 107.6, "phv": 25.4,
}
GROUP_LABELS: dict[str, str] = {
    "all": "all participants (homes + cars)", "consumers": "consumers (homes + cars)",
    "consumers_no_phv": "  consumers without PHV", "consumers_phv": "  consumers with PHV (homes + cars)",
    "prosumers": "prosumers (homes + cars)", "pv_only": "  PV only", "pv_battery": "  PV + battery",
    "pv_phv": "  PV + PHV (homes + cars)", "pv_battery_phv": "  PV + battery + PHV (home + car)",
    "phv": "PHVs alone",
}
# Other published figures of the same month (MISSION.md): CO2 of the cars' driving fell 38 %;
# 43 % of the energy they drove on was renewable.
DEMONSTRATION_KPIS: dict[str, float] = {"car_co2_reduction_pct": 38.0, "car_renewable_driving_share": 0.43}
# The run they describe: the shipped scenario's community, August 2020, billed in yen. Any other
# scenario, month or currency is not compared with them (a user's own community is not Higashi-Fuji).
DEMONSTRATION_SCENARIO = "higashi-fuji-2020"
DEMONSTRATION_MONTH = date(2020, 8, 1)
DEMONSTRATION_CURRENCY = "JPY"
CONSUMER_TYPES = ("consumer", "consumer_phv")
PROSUMER_TYPES = ("pv_only", "pv_battery", "pv_phv", "pv_battery_phv")
GASOLINE_KG_CO2_PER_L = 2.32  # combustion factor of gasoline (Japan's GHG inventory: 2.32 kg-CO2/L)


NOT_APPLICABLE = "n/a (baseline ≤ 0)"


def reproduces_demonstration(scenario_name: str, community: Community) -> bool:
    """Whether a run is of the demonstration's community and month, so its published figures
    (``DEMONSTRATION_PCT``, ``DEMONSTRATION_KPIS``) are the right comparison."""
    return (scenario_name == DEMONSTRATION_SCENARIO and community.report_month.replace(day=1) == DEMONSTRATION_MONTH
            and community.settings.currency == DEMONSTRATION_CURRENCY)


@dataclass(frozen=True, slots=True)
class GroupResult:
    """A group's month: the electricity-charge balance (paid for electricity − earned selling it,
    utility and P2P) in the baseline and with P2P, and the fuel of its cars apart.

    The improvement is ``(baseline − P2P) / baseline`` of the balance; it means nothing when the
    baseline balance is ≤ 0 (the group already earned more than it paid), so it is ``None``
    there and reads :data:`NOT_APPLICABLE`.
    """

    members: tuple[str, ...]
    baseline_balance: Decimal
    p2p_balance: Decimal
    baseline_fuel: Decimal
    p2p_fuel: Decimal

    @property
    def improvement_pct(self) -> float | None:
        if self.baseline_balance <= 0:
            return None
        pct = (self.baseline_balance - self.p2p_balance) / self.baseline_balance * 100
        return float(pct.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))

    @property
    def improvement_text(self) -> str:
        """The improvement as printed everywhere: ``12.3 %`` or ``n/a (baseline ≤ 0)``."""
        pct = self.improvement_pct
        return NOT_APPLICABLE if pct is None else f"{pct:.1f} %"


def groups(community: Community) -> dict[str, tuple[str, ...]]:
    """Members of every reported group: homes by type, with the cars their owners own."""
    homes = [p for p in community.participants.values() if p.kind == HOME_KIND]
    cars = [p for p in community.participants.values() if p.kind == CAR_KIND]
    type_of = {h.id: h.group for h in homes}

    def members(types: tuple[str, ...]) -> tuple[str, ...]:
        hs = [h.id for h in homes if h.group in types]
        cs = [c.id for c in cars if c.owner is not None and type_of.get(c.owner) in types]
        return tuple(hs + cs)

    out = {
        "all": tuple([h.id for h in homes] + [c.id for c in cars]),
        "consumers": members(CONSUMER_TYPES),
        "consumers_no_phv": members(("consumer",)),
        "consumers_phv": members(("consumer_phv",)),
        "prosumers": members(PROSUMER_TYPES),
    }
    for t in PROSUMER_TYPES:
        out[t] = members((t,))
    out["phv"] = tuple(c.id for c in cars)
    return out


def group_results(community: Community, baseline: dict[str, Cost], p2p: dict[str, Cost]) -> dict[str, GroupResult]:
    result = {}
    for name, members in groups(community).items():
        result[name] = GroupResult(
            members,
            sum((baseline[m].balance for m in members), Decimal(0)),
            sum((p2p[m].balance for m in members), Decimal(0)),
            sum((baseline[m].fuel for m in members), Decimal(0)),
            sum((p2p[m].fuel for m in members), Decimal(0)),
        )
    return result


def kpis(community: Community, baseline: RunRecords, p2p: RunRecords, renewable_driving_share: float | None,
         ) -> dict[str, float | None]:
    """Energy traded, P2P price, self-sufficiency, office peak, CO2, renewable driving."""
    slot_minutes = community.settings.slot_minutes
    traded_wh = sum(t.energy_wh for t in p2p.trades)
    amount = sum((t.amount for t in p2p.trades), Decimal(0))
    office = [p.id for p in community.participants.values() if p.kind == OFFICE_KIND]

    def total(records: RunRecords, column: str, kinds: tuple[str, ...] | None = None) -> int:
        return int(sum(int(records.accounts[p.id].columns[column].sum())
                       for p in community.participants.values() if kinds is None or p.kind in kinds))

    def net_import_wh(records: RunRecords, kinds: tuple[str, ...] | None = None) -> int:
        """What the community (or its members of ``kinds``) drew from the upstream grid: per slot,
        imports net of other members' exports at the same time (P2P trades are virtual; physics
        nets behind the transformer)."""
        members = [p.id for p in community.participants.values() if kinds is None or p.kind in kinds]
        imp = sum(records.accounts[m].columns["grid_import_wh"] for m in members)
        exp = sum(records.accounts[m].columns["grid_export_wh"] for m in members)
        return int(np.maximum(imp - exp, 0).sum())

    def self_sufficiency(records: RunRecords) -> float:
        demand = total(records, "load_wh") + total(records, "car_charge_wh") + total(records, "battery_charge_wh")
        return 1 - net_import_wh(records) / demand if demand else 0.0

    def peak_kw(records: RunRecords) -> float:
        if not office:
            return 0.0
        return float(np.max(records.accounts[office[0]].columns["grid_import_wh"])) * 60 / slot_minutes / 1000

    factor = community.grid_kg_co2_per_kwh

    def co2_kg(records: RunRecords, kinds: tuple[str, ...] | None = None) -> float:
        """Grid CO2 of the community's net import (cars: their own imports) plus engine fuel."""
        grid_wh = total(records, "grid_import_wh", kinds) if kinds == (CAR_KIND,) else net_import_wh(records, kinds)
        grid = grid_wh / 1000 * factor
        fuel_l = 0.0
        for p in community.participants.values():
            if p.kind == CAR_KIND and p.phv is not None and (kinds is None or CAR_KIND in kinds):
                km = records.accounts[p.id].columns["shortfall_wh"].sum() / p.phv.wh_per_km
                fuel_l += km / p.phv.hybrid_km_per_l
        return float(grid + fuel_l * GASOLINE_KG_CO2_PER_L)

    base_co2, p2p_co2 = co2_kg(baseline), co2_kg(p2p)
    base_car, p2p_car = co2_kg(baseline, (CAR_KIND,)), co2_kg(p2p, (CAR_KIND,))
    base_peak, p2p_peak = peak_kw(baseline), peak_kw(p2p)
    return {
        "p2p_energy_kwh": traded_wh / 1000,
        "p2p_trades": len(p2p.trades),
        # a volume-weighted price to the market's tick (0.2354 EUR/kWh, 25.53 JPY/kWh), not float noise
        "p2p_vwap_per_kwh": (round(float(amount * 1000 / traded_wh), community.settings.price_decimals)
                             if traded_wh else None),
        "self_sufficiency_baseline": round(self_sufficiency(baseline), 4),
        "self_sufficiency_p2p": round(self_sufficiency(p2p), 4),
        "office_peak_kw_baseline": base_peak,
        "office_peak_kw_p2p": p2p_peak,
        "office_peak_reduction_pct": round((base_peak - p2p_peak) / base_peak * 100, 1) if base_peak else None,
        "co2_kg_baseline": round(base_co2, 1),
        "co2_kg_p2p": round(p2p_co2, 1),
        "co2_reduction_pct": round((base_co2 - p2p_co2) / base_co2 * 100, 1) if base_co2 else None,
        "car_co2_kg_baseline": round(base_car, 1),
        "car_co2_kg_p2p": round(p2p_car, 1),
        "car_co2_reduction_pct": round((base_car - p2p_car) / base_car * 100, 1) if base_car else None,
        "car_renewable_driving_share": renewable_driving_share,
        "car_fuel_kwh_equivalent_p2p": total(p2p, "shortfall_wh", (CAR_KIND,)) / 1000,
        "car_discharge_kwh": total(p2p, "car_discharge_wh", (CAR_KIND,)) / 1000,
    }


@dataclass(frozen=True, slots=True)
class Flow:
    """P2P energy sold by participants of ``seller_type`` to participants of ``buyer_type``
    over the run: ``energy_wh`` traded for ``amount`` (exact, the market's currency)."""

    seller_type: str
    buyer_type: str
    energy_wh: int
    amount: Decimal

    @property
    def vwap_per_kwh(self) -> Decimal:
        """Volume-weighted price [currency/kWh] (exact)."""
        return self.amount * 1000 / self.energy_wh

    def as_dict(self, price_decimals: int = 6) -> dict[str, str | float]:
        """The ``results.json`` row: energy in kWh (exact to the Wh), price rounded to
        ``price_decimals`` (the report uses the market's tick plus two digits; docs/report.md)."""
        return {"seller_type": self.seller_type, "buyer_type": self.buyer_type,
                "energy_kwh": self.energy_wh / 1000, "vwap_per_kwh": float(round(self.vwap_per_kwh, price_decimals))}


def trade_flows(trades: Iterable[Trade], type_of: Mapping[str, str]) -> list[Flow]:
    """Trades summed per (seller type, buyer type), in the order of ``PARTICIPANT_TYPES``
    (sellers first); pairs that never traded are left out."""
    energy: dict[tuple[str, str], int] = {}
    amount: dict[tuple[str, str], Decimal] = {}
    for t in trades:
        for pid in (t.seller, t.buyer):
            if pid not in type_of:
                raise ValueError(f"trade {t.trade_id}: participant {pid!r} has no type")
        pair = (type_of[t.seller], type_of[t.buyer])
        energy[pair] = energy.get(pair, 0) + t.energy_wh
        amount[pair] = amount.get(pair, Decimal(0)) + t.amount
    order = {name: i for i, name in enumerate(PARTICIPANT_TYPES)}
    pairs = sorted((p for p in energy if energy[p] > 0), key=lambda p: (order.get(p[0], len(order)),
                                                                         order.get(p[1], len(order)), p))
    return [Flow(a, b, energy[(a, b)], amount[(a, b)]) for a, b in pairs]


def flows(community: Community, trades: Iterable[Trade]) -> list[Flow]:
    """The run's P2P flows between participant types (:func:`participant_type`)."""
    return trade_flows(trades, {pid: participant_type(p) for pid, p in community.participants.items()})


def car_energy(community: Community, records: RunRecords) -> dict[str, dict[str, float | Decimal]]:
    """Per car, the month's energy at the meter [kWh]: charged at home, charged at the office,
    discharged (cars discharge only what they sell, and sell only at the office: V2B), and what
    its sales earned [currency, exact: rounded where it is shown, like every amount]."""
    month = community.month
    out: dict[str, dict[str, float]] = {}
    for p in community.of_kind(CAR_KIND):
        assert p.location is not None
        where = p.location[month]
        c = records.accounts[p.id].columns
        out[p.id] = {
            "charged_home_kwh": int(c["car_charge_wh"][where == LOCATION_CODES["home"]].sum()) / 1000,
            "charged_office_kwh": int(c["car_charge_wh"][where == LOCATION_CODES["office"]].sum()) / 1000,
            "discharged_office_kwh": int(c["car_discharge_wh"][where == LOCATION_CODES["office"]].sum()) / 1000,
            "sales_value": records.accounts[p.id].p2p_received,
        }
    return out


def office_peak_slots(community: Community, baseline: RunRecords, p2p: RunRecords, count: int = 3,
                      ) -> dict[str, list[dict[str, object]]]:
    """The office's ``count`` highest slots of each run (the first sets its demand charge), each with
    its import in both runs [kW] and what the office bought P2P in it in the P2P run [kWh]."""
    office = community.of_kind(OFFICE_KIND)
    if not office:
        return {}
    pid = office[0].id
    to_kw = 60 / community.settings.slot_minutes / 1000
    base = baseline.accounts[pid].columns["grid_import_wh"]
    ours = p2p.accounts[pid].columns["grid_import_wh"]
    bought = p2p.accounts[pid].columns["p2p_buy_wh"]
    index = community.index[community.month]
    out: dict[str, list[dict[str, object]]] = {}
    for run, series in (("baseline", base), ("p2p", ours)):
        top = np.argsort(-series, kind="stable")[:count]
        out[run] = [{"slot_start": index[k].isoformat(), "baseline_kw": round(float(base[k]) * to_kw, 1),
                     "p2p_kw": round(float(ours[k]) * to_kw, 1), "p2p_bought_kwh": int(bought[k]) / 1000}
                    for k in top]
    return out
