"""Issue 12: the exchange against outsiders, over real HTTP.

The exchange's clock decides every gate; rate limits are charged after the signature is
verified; order ids are the participant's own; refusals tell nothing about others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from tests.service.conftest import START, Server, key, now_of, order, register, run_server, service_settings

from p2penergy.ledger.signing import sign_action
from p2penergy.market import Order
from p2penergy.service.models import OrderIn


def signed_order(o: Order, nonce: int, signer: str | None = None) -> dict:
    s = sign_action(key(signer or o.participant), _domain(), o, nonce)
    return {"order": OrderIn.of(o).model_dump(mode="json"), "nonce": nonce, "signature": "0x" + s.signature.hex()}


def _domain():
    from p2penergy.ledger.signing import Domain

    return Domain(31337, "0x" + "00" * 20)  # the domain of a service without a chain


@pytest.fixture(scope="module")
def lax(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A service that accepts signed times up to two market hours from its clock: only the gate,
    decided by the exchange's own clock, stands between a backdated order and the book."""
    settings = service_settings(tmp_path_factory.mktemp("lax"), max_skew_s=7200.0)
    with run_server(settings) as s:
        register(s.url, "seller", "buyer")
        yield s


def test_a_backdated_order_for_a_closed_slot_is_refused(lax: Server):
    """The attack of the issue: a sell and a buy for a slot whose delivery has ended, both signed
    with a ``submitted_at`` at which the gate was open. The exchange's clock says the gate is closed."""
    now = now_of(lax.url)
    ended = START - timedelta(hours=1)  # delivered 08:00-08:30; its gate closed at 08:20
    assert ended + timedelta(minutes=30) < now
    backdated = ended - timedelta(minutes=30)  # the gate was open then, and it is within the allowed skew
    sell = order("late-s", "seller", "sell", 500, "10.00", backdated, slot=ended)
    buy = order("late-b", "buyer", "buy", 500, "30.00", backdated, slot=ended)
    with lax.client() as c:
        for o in (sell, buy):
            r = c.post("/api/orders", json=signed_order(o, 1))
            assert r.status_code == 409, r.text
            assert r.json()["field"] == "submitted_at" and "gate" in r.json()["message"]
            assert now.isoformat()[:16] in r.json()["message"]  # the exchange's time, not the signed one
        assert c.get("/api/trades").json() == []
        assert c.get("/api/depth", params={"slot_start": ended.isoformat()}).json()["sell"] == []
    # journalled as refused at the exchange's clock, not at the order's time
    rejects = [json.loads(r.body) for r in lax.app.state.live.journal.rows() if r.kind == "reject"]
    late = [b for b in rejects if b["action"]["order_id"].startswith("late-")]
    assert len(late) == 2
    for body in late:
        assert datetime.fromisoformat(body["at"]) >= now > ended + timedelta(minutes=30)
        assert datetime.fromisoformat(body["action"]["submitted_at"]) == backdated
