"""FIFO origin pools and certificate bundle splitting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2penergy.provenance import Certificate, OriginPool, Uncertified
from p2penergy.provenance.certificates import released, split, take

from .builders import slot


def cert(device: str, energy_wh: int, source: str = "solar", first: int = 0) -> Certificate:
    start, end = slot(0)
    return Certificate(device, "site", "owner", source, "c-Si", 5000, start, end, "reg", first, energy_wh)


def test_split_keeps_consecutive_serials():
    head, tail = split(cert("pv", 1000), 300)
    assert (head.first_serial, head.energy_wh, tail.first_serial, tail.energy_wh) == (0, 300, 300, 700)
    assert head.cert_id.endswith("#0-299") and tail.cert_id.endswith("#300-999")
    assert split(cert("pv", 1000), 1000) == (cert("pv", 1000), None)


def test_take_reports_what_is_missing():
    taken, rest, missing = take([cert("a", 100), Uncertified(50)], 400)
    assert [lot.energy_wh for lot in taken] == [100, 50] and rest == [] and missing == 250


def test_released_keeps_identity_and_marks_origin():
    start, _ = slot(5)
    out = released(cert("pv", 10, first=7), "car-1-bat", "phv", start)
    assert out.cert_id == cert("pv", 10, first=7).cert_id
    assert (out.origin, out.storage_id, out.storage_kind, out.released_at) == ("storage", "car-1-bat", "phv", start)


def test_pool_is_first_in_first_out():
    pool = OriginPool("bat", "battery", "house-01")
    pool.put(cert("a", 100))
    pool.put(Uncertified(50))
    pool.put(cert("b", 100, source="wind"))
    lots, missing = pool.withdraw(120)
    assert [(lot.energy_wh, getattr(lot, "device", None)) for lot in lots] == [(100, "a"), (20, None)]
    assert missing == 0
    assert pool.mix() == {"grid": 30, "wind": 100}
    assert (pool.held_wh, pool.certified_wh) == (130, 100)


def test_pool_refuses_negative_initial_content():
    with pytest.raises(ValueError, match="initial_wh"):
        OriginPool("bat", "battery", "h", -1)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2000)), max_size=30))
def test_pool_never_goes_negative(ops):
    pool = OriginPool("bat", "battery", "h", 100)
    expected = 100
    for i, (charge, wh) in enumerate(ops):
        if charge:
            pool.put(cert(f"d{i}", wh) if wh else Uncertified(0))
            expected += wh
        else:
            lots, missing = pool.withdraw(wh)
            assert sum(lot.energy_wh for lot in lots) + missing == wh
            expected = max(0, expected - wh)
        assert pool.held_wh == expected == sum(lot.energy_wh for lot in pool.lots())
        assert 0 <= pool.certified_wh <= pool.held_wh
