"""A month's cost per participant: the electricity-charge balance and, apart, fuel.

``balance = utility bill (charges + surcharge − buyback credit) + P2P paid − P2P received``
(+ the grid fees of P2P purchases where the market charges them)
— the demonstration's metric (電力料金収支): what was paid for electricity minus what was
earned selling it; ``total = balance + fuel``.

* Homes and the office: the bill of their own meter (tariffs from the scenario).
* A car's utility energy is billed on its owner's contract: the car's share is the owner's
  bill with the car's energy minus the owner's bill without it (the marginal tiers), so
  a home's and its car's costs add up to the one real bill. A car without an owner pays
  its energy on the retail tariff without a basic charge. Fuel: engine kilometres when the
  battery ran short, at the scenario's fuel price.
* How exports are credited: each home's own scheme in the P2P run; the baseline takes the
  scenario's ``ExportCredit`` (own scheme, none, or one scheme for all homes with PV); the
  office keeps its contract's scheme, a car its owner's.
* **Stored energy**: a run's batteries and cars may end the period holding less (or more) than
  they started with (both runs start from the same charge). What they hold less was drawn from
  them and will have to be put back: the balance adds ``(start − end)`` kWh at the price of
  putting it back, the participant's (a car: its owner's) next utility kWh at the period's end
  ÷ the charging efficiency (negative where a store ends fuller). Over a month this is a few
  kWh per store; over a day it is most of what a car drew, which the balance would otherwise
  count as saved (a 1-day run showed "PHVs alone 100 %").
* Every amount is exact until the end; each participant's balance and fuel are rounded once
  (half up) to the currency's minor unit (bills round their own lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from p2penergy.community import CAR_KIND, OFFICE_KIND, Community, Participant
from p2penergy.sim.records import RunRecords
from p2penergy.tariffs.bills import Bill, home_bill, office_bill
from p2penergy.tariffs.buyback import OWN_SCHEMES, Buyback, ExportCredit
from p2penergy.tariffs.money import round_money


@dataclass(frozen=True, slots=True)
class Cost:
    """One participant's month, in the market's currency.

    ``balance`` (rounded): utility + P2P paid − P2P received + ``stored_energy``, fuel not included —
    the headline. ``stored_energy`` (exact): the energy the participant's stores end the period
    holding less than they started, at the price of putting it back (module docstring).
    ``fuel``: exact; ``total`` = ``balance`` + ``fuel`` rounded. ``grid_fees`` (exact): the network
    fees of the participant's P2P purchases (market/grid_fees.py), part of ``balance``.
    """

    participant: str
    utility: Decimal
    p2p_paid: Decimal
    p2p_received: Decimal
    fuel: Decimal
    balance: Decimal
    total: Decimal
    bill: Bill | None
    stored_energy: Decimal = Decimal(0)
    grid_fees: Decimal = Decimal(0)


def month_costs(community: Community, records: RunRecords, export_credit: ExportCredit = OWN_SCHEMES,
                grid_fees: Mapping[str, Decimal] | None = None) -> dict[str, Cost]:
    """Every participant's month; ``export_credit`` says how the homes' exports are credited;
    ``grid_fees``: what each participant owes in network fees on its P2P purchases."""
    currency = community.settings.currency
    month = community.report_month
    rounding = community.rounding
    out: dict[str, Cost] = {}
    starts = [t.to_pydatetime() for t in community.index[community.month].tz_convert(community.settings.tz)]
    for p in community.participants.values():
        acc = records.accounts[p.id]
        imp = acc.columns["grid_import_wh"]
        exp = acc.columns["grid_export_wh"]
        bill: Bill | None = None
        if p.kind == CAR_KIND:
            utility = _car_utility(community, records, p, month, export_credit)
        elif p.kind == OFFICE_KIND:
            assert p.office_tariff is not None
            bill = office_bill(p.id, month, imp.tolist(), exp.tolist(), p.office_tariff,
                               community.settings.slot_minutes, p.buyback, currency, rounding=rounding,
                               slot_starts=starts)
            utility = bill.total
        else:
            assert p.retail is not None
            bill = home_bill(p.id, month, imp.tolist(), exp.tolist(), p.retail, p.contract_a,
                             export_credit.applied(p.buyback), currency, rounding=rounding)
            utility = bill.total
        fuel = Decimal(int(acc.columns["shortfall_wh"].sum())) / 1000 * Decimal(str(p.fuel_cost_per_kwh))
        stored = _stored_energy_value(community, records, p)
        fees = (grid_fees or {}).get(p.id, Decimal(0))
        balance = round_money(utility + acc.p2p_paid - acc.p2p_received + stored + fees, currency, "half_up")
        total = balance + round_money(fuel, currency, "half_up")
        out[p.id] = Cost(p.id, utility, acc.p2p_paid, acc.p2p_received, fuel, balance, total, bill, stored, fees)
    return out


def _stored_energy_value(community: Community, records: RunRecords, p: Participant) -> Decimal:
    """The energy ``p``'s store (battery or car) ends the period holding less than it started with,
    at the price of putting it back: its tariff's next kWh after the period's utility imports (a car:
    with its owner's), fuel-cost adjustment and surcharge included, ÷ the charging efficiency."""
    from p2penergy.agents.trader import marginal_retail_per_kwh  # the agents' price of the next kWh

    store = p.car_store if p.kind == CAR_KIND else p.battery
    soc = records.accounts[p.id].columns["soc_wh"]
    if store is None or p.retail is None or len(soc) == 0:
        return Decimal(0)
    drawn_wh = int(store.initial_soc_wh or 0) - int(soc[-1])
    if drawn_wh == 0:
        return Decimal(0)
    imported_wh = int(records.accounts[p.id].columns["grid_import_wh"].sum())
    owner = community.participants.get(p.owner) if p.owner else None
    if owner is not None:
        imported_wh += int(records.accounts[owner.id].columns["grid_import_wh"].sum())
    price = marginal_retail_per_kwh(p.retail, community.report_month, imported_wh)
    return Decimal(drawn_wh) / 1000 * price / Decimal(repr(store.charge_efficiency))


def _car_utility(community: Community, records: RunRecords, car: Participant, month: date,
                 export_credit: ExportCredit) -> Decimal:
    """Owner's bill with the car's meter minus without it (or a standalone energy bill)."""
    currency = community.settings.currency
    acc = records.accounts[car.id]
    car_imp = acc.columns["grid_import_wh"]
    car_exp = acc.columns["grid_export_wh"]
    assert car.retail is not None
    owner = community.participants.get(car.owner) if car.owner else None
    if owner is None:
        alone = home_bill(car.id, month, car_imp.tolist(), car_exp.tolist(), car.retail, 10, None, currency,
                          rounding=community.rounding)
        return alone.total - round_money(car.retail.basic_charge(10), currency, community.rounding)
    own = records.accounts[owner.id].columns
    buyback: Buyback | None = export_credit.applied(owner.buyback)
    with_car = home_bill(owner.id, month, (own["grid_import_wh"] + car_imp).tolist(),
                         (own["grid_export_wh"] + car_exp).tolist(), car.retail, owner.contract_a, buyback,
                         currency, rounding=community.rounding)
    without = home_bill(owner.id, month, own["grid_import_wh"].tolist(), own["grid_export_wh"].tolist(),
                        car.retail, owner.contract_a, buyback, currency, rounding=community.rounding)
    return with_car.total - without.total
