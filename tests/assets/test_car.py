"""Commute model: one place per slot, no teleporting, energy only while on the road."""

import itertools
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2penergy.assets.car import LOCATIONS, CommuteSpec, PhvSpec, commute, fuel_cost

PRIUS = PhvSpec()


def _run(spec, business, seed=1, slot=30):
    days = len(business)
    index = pd.date_range("2020-08-03", periods=days * 24 * 60 // slot, freq=f"{slot}min", tz="Asia/Tokyo")
    return commute(index, np.array(business), spec, PRIUS, slot, np.random.default_rng(seed))


def _check_invariants(frame):
    assert set(frame["location"]) <= set(LOCATIONS)
    # one label per slot is structural; what matters: no jump between home and office without the road
    loc = frame["location"].to_numpy()
    pairs = set(itertools.pairwise(loc))
    assert ("home", "office") not in pairs and ("office", "home") not in pairs
    assert (frame["drive_wh"] >= 0).all()
    assert (frame.loc[frame["location"] != "road", "drive_wh"] == 0).all()


def test_business_day_commute_parks_at_office():
    spec = CommuteSpec(one_way_km=15, absence_probability=0.0, errand_probability=0.0)
    frame = _run(spec, [True] * 5)
    _check_invariants(frame)
    for _, day in frame.groupby(frame.index.normalize()):
        office_hours = day.index[day["location"] == "office"].hour
        assert len(office_hours) >= 16  # at least 8 h parked
        assert office_hours.min() >= 7 and office_hours.max() <= 22
        assert day["location"].iloc[0] == "home" and day["location"].iloc[-1] == "home"
        # 2 × 15 km at 68.2 km / 7 kWh ≈ 3.08 kWh a day
        assert day["drive_wh"].sum() == pytest.approx(30 * 7000 / 68.2, abs=2)


def test_non_business_days_never_at_office():
    frame = _run(CommuteSpec(one_way_km=10, leisure_probability=1.0), [False] * 4)
    _check_invariants(frame)
    assert (frame["location"] != "office").all()
    assert frame["drive_wh"].sum() > 0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(1, 60), st.sampled_from([15, 30, 60]),
       st.lists(st.booleans(), min_size=1, max_size=7))
def test_invariants_hold_for_any_seed(seed, km, slot, business):
    frame = _run(CommuteSpec(one_way_km=km, errand_probability=0.5), business, seed, slot)
    _check_invariants(frame)
    assert len(frame) == len(business) * 24 * 60 // slot


def test_same_seed_same_commute():
    spec = CommuteSpec(one_way_km=12)
    a, b = _run(spec, [True, True, False], seed=7), _run(spec, [True, True, False], seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = _run(spec, [True, True, False], seed=8)
    assert not a.equals(c)


def test_fuel_cost_hand_computed():
    # 7000 Wh / (7000/68.2 Wh/km) = 68.2 km; / 30.8 km/L = 2.2143 L; × 134 JPY/L = 296.71 JPY
    cost = fuel_cost(7000, PRIUS, Decimal("134"))
    assert cost == pytest.approx(Decimal("296.7142857"), abs=Decimal("0.001"))
    with pytest.raises(ValueError, match=r"^unserved_wh:"):
        fuel_cost(-1, PRIUS, Decimal(1))


def test_prius_parameters():
    assert PRIUS.battery_nominal_wh == 8800
    battery = PRIUS.battery()
    assert battery.capacity_wh == 7000 and battery.initial_soc_wh == 7000
    with pytest.raises(ValueError, match=r"^usable_wh:"):
        PhvSpec(usable_wh=9000)
