"""Grid fees as market settings: parsed from ``[market.grid_fees]``, bad values named, and a market
without fees maps (and journals) exactly as before."""

from __future__ import annotations

from decimal import Decimal

import pytest

from p2penergy.market import MarketSettings
from p2penergy.market.errors import MarketConfigError
from p2penergy.market.grid_fees import GridFees


def test_fees_from_a_market_table():
    s = MarketSettings.from_mapping({"grid_fees": {"same_bus_per_kwh": "0", "same_feeder_per_kwh": "1.5",
                                                   "through_transformer_per_kwh": "4.25"}})
    assert s.grid_fees.per_kwh("same_feeder") == Decimal("1.5")
    assert s.grid_fees.fee("through_transformer", 1234) == Decimal("5.2445")
    assert s.to_mapping()["grid_fees"]["through_transformer_per_kwh"] == "4.25"
    assert MarketSettings.from_mapping(s.to_mapping()) == s


def test_no_fees_maps_as_before():
    s = MarketSettings.demonstration()
    assert not s.grid_fees.charged
    assert "grid_fees" not in s.to_mapping()


@pytest.mark.parametrize(("table", "field"), [
    ({"across_town_per_kwh": "1"}, "grid_fees.across_town_per_kwh"),
    ({"same_bus_per_kwh": "-1"}, "grid_fees.same_bus_per_kwh"),
    ({"same_bus_per_kwh": "abc"}, "grid_fees.same_bus_per_kwh"),
    ({"same_bus_per_kwh": 1.5}, "grid_fees.same_bus_per_kwh"),
    ("1.5", "grid_fees"),
])
def test_bad_fees_are_named(table, field):
    with pytest.raises(MarketConfigError) as err:
        MarketSettings.from_mapping({"grid_fees": table})
    assert err.value.field == field


def test_unknown_distance():
    with pytest.raises(ValueError, match="distance: one of same_bus, same_feeder, through_transformer"):
        GridFees().per_kwh("next_door")
