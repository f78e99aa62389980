"""Running bills on the live service: the P2P side from trades, the utility side from uploaded meters.

A participant's month = utility bill of its uploaded readings (imports and exports of the
month's slots, on its scenario contract: tiered retail for homes, demand + energy charge
for the office; the tariff code of ``p2penergy.tariffs.bills``) + P2P paid − P2P received.
Cars are billed on their owner's contract in the simulation; live, their utility side is
left to the owner's meter (``utility`` is ``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal

from p2penergy.tariffs.bills import Bill, home_bill, office_bill

# (participant, month, imports Wh, exports Wh, currency, slot minutes, local slot starts) -> bill
BillFn = Callable[[str, date, list[int], list[int], str, int, list[datetime]], Bill]


def contracts_of(scenario: object) -> dict[str, BillFn]:
    """Per home and office of the scenario: a function computing its utility bill for a month."""
    tariffs = scenario.tariffs  # type: ignore[attr-defined]
    retail = tariffs.retail_tariff()
    rounding = tariffs.rounding
    out: dict[str, BillFn] = {}
    for home in scenario.homes:  # type: ignore[attr-defined]
        def bill(pid: str, month: date, imp: list[int], exp: list[int], currency: str, _slot: int,
                 _starts: list[datetime], a: int = home.contract_a, h: object = home) -> Bill:
            buyback = scenario.home_buyback(h, month)  # type: ignore[attr-defined]
            return home_bill(pid, month, imp, exp, retail, a, buyback, currency, rounding)

        out[home.id] = bill
    office = scenario.office  # type: ignore[attr-defined]
    office_tariff = scenario.office_contract()  # type: ignore[attr-defined]
    office_buyback = tariffs.buyback_scheme(tariffs.office.buyback)

    def bill_office(pid: str, month: date, imp: list[int], exp: list[int], currency: str, slot: int,
                    starts: list[datetime]) -> Bill:
        return office_bill(pid, month, imp, exp, office_tariff, slot, office_buyback, currency, rounding=rounding,
                           slot_starts=starts)

    out[office.id] = bill_office
    return out


def month_readings(readings: Mapping[datetime, Mapping[str, int]], month: date, tz: object
                   ) -> tuple[list[int], list[int], list[datetime]]:
    """Grid import and export (Wh) of the readings whose slot lies in ``month`` (local time), and
    those slots' local starts."""
    imp, exp, starts = [], [], []
    for slot, values in sorted(readings.items()):
        local = slot.astimezone(tz)  # type: ignore[arg-type]
        if (local.year, local.month) == (month.year, month.month):
            imp.append(int(values.get("grid_import_wh", 0)))
            exp.append(int(values.get("grid_export_wh", 0)))
            starts.append(local)
    return imp, exp, starts


def money(value: Decimal) -> str:
    return str(value)
