"""P2P flows between participant types: one mapping of participant to type, sums from trades."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from p2penergy.community import CAR_KIND, HOME_KIND, OFFICE_KIND, PARTICIPANT_TYPES, Participant, participant_type
from p2penergy.market import Tag, Trade
from p2penergy.sim.results import Flow, trade_flows


def _participant(pid: str, kind: str, group: str, pv: str | None = None) -> Participant:
    zeros = np.zeros(1, dtype=np.int64)
    return Participant(id=pid, kind=kind, group=group, load_wh=zeros, pv_wh=zeros, pv_device=pv)


def test_each_participant_has_one_type():
    assert PARTICIPANT_TYPES == ("office", "consumer", "prosumer", "car")
    assert participant_type(_participant("office", OFFICE_KIND, "office", pv="office-pv")) == "office"
    assert participant_type(_participant("car-1", CAR_KIND, "phv")) == "car"
    assert participant_type(_participant("h1", HOME_KIND, "consumer_phv")) == "consumer"
    assert participant_type(_participant("h2", HOME_KIND, "pv_battery", pv="h2-pv")) == "prosumer"


def _priced(seller: str, buyer: str, energy_wh: int, price: str, trade_id: str = "t") -> Trade:
    return Trade(trade_id=trade_id, slot_start=datetime(2020, 8, 1, 10, tzinfo=ZoneInfo("Asia/Tokyo")),
                 buy_id=f"b-{trade_id}", sell_id=f"s-{trade_id}", buyer=buyer, seller=seller, energy_wh=energy_wh,
                 price_per_kwh=Decimal(price), premium_per_kwh=Decimal(0), tag=Tag(), preference_level=0,
                 buyer_limit_per_kwh=Decimal("30"), seller_limit_per_kwh=Decimal("10"))


def test_flows_sum_energy_and_weight_the_price_by_volume():
    types = {"h1": "prosumer", "h2": "prosumer", "c1": "car", "o": "office", "h3": "consumer"}
    trades = [
        _priced("h1", "c1", 1000, "20", "a"),
        _priced("h2", "c1", 3000, "24", "b"),   # prosumer -> car: 4 kWh for 20 + 72 = 92 -> 23.00 /kWh
        _priced("c1", "o", 500, "18.5", "c"),   # car -> office
        _priced("h1", "h3", 250, "21.01", "d"),  # prosumer -> consumer
    ]
    flows = trade_flows(trades, types)
    assert flows == [
        Flow("prosumer", "consumer", 250, Decimal("5.2525")),
        Flow("prosumer", "car", 4000, Decimal("92")),
        Flow("car", "office", 500, Decimal("9.25")),
    ]
    assert flows[1].vwap_per_kwh == Decimal("23")
    assert flows[1].as_dict() == {"seller_type": "prosumer", "buyer_type": "car", "energy_kwh": 4.0,
                                  "vwap_per_kwh": 23.0}


def test_a_trade_by_an_unknown_participant_is_an_error():
    with pytest.raises(ValueError, match="nobody"):
        trade_flows([_priced("nobody", "c1", 10, "20")], {"c1": "car"})
