from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from tests.market.helpers import SLOT, T0, buy, req, sell

from p2penergy.market import MarketSettings, Order, OrderError, Requirement, Tag, check_against

S = MarketSettings.demonstration()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"energy_wh": 0}, "energy_wh"),
        ({"energy_wh": 1.5}, "energy_wh"),
        ({"side": "hold"}, "side"),
        ({"order_id": ""}, "id"),
        ({"participant": ""}, "participant"),
        ({"submitted_at": datetime(2020, 8, 3, 10, 0)}, "submitted_at"),  # noqa: DTZ001 - naive on purpose
        ({"slot_start": datetime(2020, 8, 3, 12, 0)}, "slot_start"),  # noqa: DTZ001
        ({"price_per_kwh": 12.5}, "price_per_kwh"),
        ({"requirements": (Requirement.any(),)}, "requirements"),  # a sell order with requirements
    ],
)
def test_invalid_orders_name_the_field(kwargs, field):
    base = dict(order_id="o1", participant="house-01", side="sell", slot_start=SLOT, energy_wh=100,
                price_per_kwh=Decimal("12"), submitted_at=T0)
    base.update(kwargs)
    with pytest.raises(OrderError) as info:
        Order(**base)
    assert info.value.field == field


def test_buy_order_with_attributes_is_refused():
    with pytest.raises(OrderError) as info:
        Order("o", "p", "buy", SLOT, 100, Decimal(10), T0, tag=Tag.of(source="solar"))
    assert info.value.field == "attributes"


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (sell("a", 100, "50.01"), "price_per_kwh"),
        (sell("a", 100, "-1"), "price_per_kwh"),
        (sell("a", 100, "12.345"), "price_per_kwh"),
        (buy("a", 100, "49", reqs=(req("2", source="solar"),)), "requirements.premium_per_kwh"),
        (sell("a", 100, "10", slot=SLOT + timedelta(minutes=10)), "slot_start"),
    ],
)
def test_market_rules_checked(order, field):
    with pytest.raises(OrderError) as info:
        check_against(order, S)
    assert info.value.field == field
    assert "must be" in str(info.value)


@pytest.mark.parametrize(
    ("attrs", "field"),
    [({"colour": "green"}, "attributes"), ({"source": "coal"}, "attributes.source"), ({"producer": ""}, "attributes.producer")],
)
def test_bad_tags(attrs, field):
    with pytest.raises(OrderError) as info:
        Tag.of(attrs)
    assert info.value.field == field


def test_bad_requirements():
    with pytest.raises(OrderError) as info:
        Requirement.of({"source": []})
    assert info.value.field == "requirements.match.source"
    with pytest.raises(OrderError) as info:
        Requirement.of({"source": "solar"}, "-1")
    assert info.value.field == "requirements.premium_per_kwh"


def test_limit_for_uses_first_met_requirement():
    b = buy("b", 100, "10", reqs=(req("3", producer="house-07"), req("1", source="solar"), req()))
    assert b.limit_for(Tag.of(source="solar", producer="house-07")) == Decimal(13)
    assert b.limit_for(Tag.of(source="solar", producer="office")) == Decimal(11)
    assert b.limit_for(Tag()) == Decimal(10)
    only_solar = buy("c", 100, "10", reqs=(req(source="solar"),))
    assert only_solar.limit_for(Tag.of(source="battery")) is None
    assert buy("d", 100, "10").limit_for(Tag.of(source="grid")) == Decimal(10)
