"""Prices of the utility: retail tariffs, buyback, the office's demand contract, and bills.

The one place for utility prices; the simulation calls it for both the P2P run and the
utility-only baseline. Pure: no I/O, money exact (``Decimal``), currency passed in.
"""

from p2penergy.tariffs.bills import Bill, LineItem, home_bill, office_bill
from p2penergy.tariffs.buyback import Buyback, ExportCredit, FitSchedule, buyback_for
from p2penergy.tariffs.money import minor_unit, round_money
from p2penergy.tariffs.office import DemandTariff, OfficeTariff, peak_demand_kw
from p2penergy.tariffs.retail import RatePeriod, RetailTariff, Tier, rate_for
from p2penergy.tariffs.tou import TimeOfUseTariff, TouPeriod

__all__ = [
    "Bill",
    "Buyback",
    "DemandTariff",
    "ExportCredit",
    "FitSchedule",
    "LineItem",
    "OfficeTariff",
    "RatePeriod",
    "RetailTariff",
    "Tier",
    "TimeOfUseTariff",
    "TouPeriod",
    "buyback_for",
    "home_bill",
    "minor_unit",
    "office_bill",
    "peak_demand_kw",
    "rate_for",
    "round_money",
]
