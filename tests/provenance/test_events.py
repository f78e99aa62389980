"""Certificate events and bundle parts built directly (speed only) are what the generic forms give."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from p2penergy.provenance.certificates import Certificate, Uncertified, released, split
from p2penergy.provenance.events import _BLANK, EVENT_FIELDS, EventLog

START = datetime(2020, 8, 1, 3, 0, tzinfo=UTC)
CERT = Certificate("house-01-pv", "house-01", "house-01", "solar", "pv", 4_000, START, START + timedelta(minutes=30),
                   "issuer-1", 100, 1_000)


def test_a_certificate_event_has_every_field_in_order_as_blank_plus_update() -> None:
    log = EventLog(START.isoformat(), (START + timedelta(minutes=30)).isoformat())
    stored = released(CERT, "house-02-bat", "battery", START)
    for cert, extra in ((CERT, {}), (stored, {"purpose": "consumption", "trade_id": "t7", "tag": "solar"})):
        log.cert("transfer", cert, "house-01", "house-02", **extra)
        want = _BLANK.copy()
        start = cert.production_start.isoformat()
        want.update(kind="transfer", slot_start=log.slot_start, slot_end=log.slot_end,
                    cert_id=f"{cert.device}@{start}#{cert.first_serial}-{cert.last_serial}",
                    serial_first=cert.first_serial, energy_wh=cert.energy_wh, device=cert.device, site=cert.site,
                    producer=cert.producer, source=cert.source, technology=cert.technology,
                    capacity_w=cert.capacity_w, production_start=start,
                    production_end=cert.production_end.isoformat(), origin=cert.origin,
                    storage_id=cert.storage_id, issuer=cert.issuer, from_holder="house-01", to_holder="house-02",
                    purpose=extra.get("purpose"), trade_id=extra.get("trade_id"), tag=extra.get("tag"))
        got = log.events[-1]
        assert got == want and list(got) == list(want) == list(EVENT_FIELDS)


def test_split_gives_the_parts_replace_gives() -> None:
    stored = released(CERT, "house-02-bat", "battery", START)
    for cert in (CERT, stored):
        for take in (1, 300, 999):
            head, tail = split(cert, take)
            assert head == replace(cert, energy_wh=take)
            assert tail == replace(cert, first_serial=cert.first_serial + take, energy_wh=cert.energy_wh - take)
        assert split(cert, 1_000) == (cert, None)
    assert split(Uncertified(50), 20) == (Uncertified(20), Uncertified(30))
