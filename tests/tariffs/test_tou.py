"""The time-of-use contract with a demand charge (TEPCO extra-high-voltage TOU A, 20 kV, 2016 list)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from p2penergy.tariffs import RatePeriod, TimeOfUseTariff, TouPeriod, office_bill

D = Decimal
TZ = ZoneInfo("Asia/Tokyo")
SUMMER = (7, 8, 9)
EHV = TimeOfUseTariff(
    demand_charge_per_kw=D("1630.80"),
    periods=(TouPeriod("peak", D("17.39"), 13, 16, SUMMER), TouPeriod("day (summer)", D("16.79"), 8, 22, SUMMER),
             TouPeriod("day (other)", D("15.66"), 8, 22)),
    base_per_kwh=D("12.31"), off_weekdays=(6,), off_days=frozenset({date(2020, 8, 10)}),
    renewable_surcharge=(RatePeriod(date(2020, 5, 1), D("2.98")),),
    fuel_adjustment=(RatePeriod(date(2020, 8, 1), D("-2.72")),),
)


def at(day: int, hour: float, month: int = 8) -> datetime:
    return datetime(2020, month, day, tzinfo=TZ) + timedelta(hours=hour)


def test_bands_follow_hours_seasons_and_days_off():
    assert EHV.unit_prices([at(3, 13), at(3, 15.5), at(3, 16)]) == [D("17.39"), D("17.39"), D("16.79")]
    assert EHV.unit_prices([at(3, 7.5), at(3, 8), at(3, 21.5), at(3, 22)]) == [D("12.31"), D("16.79"),
                                                                                D("16.79"), D("12.31")]
    # October: no peak band, the other seasons' day price
    assert EHV.unit_prices([at(5, 14, month=10)]) == [D("15.66")]
    # Sunday 2 August and the holiday 10 August: night price all day; Saturday is a normal day
    assert EHV.unit_prices([at(2, 14), at(10, 14), at(1, 14)]) == [D("12.31"), D("12.31"), D("17.39")]
    with pytest.raises(ValueError, match="timezone-aware"):
        EHV.band_of(at(3, 14).replace(tzinfo=None))


def test_time_of_use_bill_hand_computed():
    # Monday 3 August 2020: 1,000 kWh at 14:00 (peak, 2,000 kW over the slot), 500 kWh at 10:00 (day),
    # 300 kWh at 02:00 (night); Sunday 2 August 14:00: 400 kWh (night price on a day off).
    starts = [at(3, 14), at(3, 10), at(3, 2), at(2, 14)]
    imports = [1_000_000, 500_000, 300_000, 400_000]
    bill = office_bill("office", date(2020, 8, 1), imports, [0] * 4, EHV, 30, None, "JPY", slot_starts=starts)
    # demand 2,000 kW × 1,630.80 × 0.85 = 2,772,360; energy 1,000 × 17.39 + 500 × 16.79 + 700 × 12.31
    # = 17,390 + 8,395 + 8,617 = 34,402; fuel −2.72 × 2,200 = −5,984; charges 2,800,778.
    # surcharge 2.98 × 2,200 = 6,556
    names = [x.name for x in bill.lines]
    assert names == ["demand charge", "energy charge (peak)", "energy charge (day (summer))",
                     "energy charge (night)", "fuel-cost adjustment", "renewable surcharge"]
    assert bill.charges == D(2_800_778)
    assert bill.surcharge == D(6_556)
    assert bill.import_kwh == D(2_200)


def test_time_of_use_bill_needs_slot_starts():
    with pytest.raises(ValueError, match="slot_starts"):
        office_bill("office", date(2020, 8, 1), [1000], [0], EHV, 30, None, "JPY")
    with pytest.raises(ValueError, match="slot_starts"):
        office_bill("office", date(2020, 8, 1), [1000, 1000], [0, 0], EHV, 30, None, "JPY", slot_starts=[at(3, 1)])


def test_bad_periods_are_refused_with_their_name():
    with pytest.raises(ValueError, match=r"periods\.peak"):
        TouPeriod("peak", D("17.39"), 16, 13)
    with pytest.raises(ValueError, match="names"):
        TimeOfUseTariff(D(1), (TouPeriod("night", D(1), 0, 1),), D(1))
