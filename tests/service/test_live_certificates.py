"""Live certificates come from the provenance registry, fed with the participants' signed meter
readings — not from the tags sellers declare — and are journalled, committed and audited as in
the simulation; `p2penergy certificates --db URL` reads them from the service's journal."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.service.conftest import START, key, order
from tests.service.test_live_audit import MARKET, SLOT, clock, reading
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.ledger.journal import Journal
from p2penergy.ledger.signing import Signed, sign_action
from p2penergy.service.live import LiveExchange


def test_certificates_are_the_registrys_from_metered_pv_not_the_sellers_tags(db_url):
    ex = LiveExchange.open(db_url, MARKET, clock())
    ex.pv_devices = {"sun": ("sun-pv", 4000)}
    for pid in ("sun", "liar", "b"):
        ex.register(pid, key(pid).address)
    now = ex.clock.now()
    nonce = dict.fromkeys(("sun", "liar", "b"), 0)

    def send(o):
        nonce[o.participant] += 1
        s = sign_action(key(o.participant), ex.domain, o, nonce[o.participant])
        return ex.submit(Signed(o, s.nonce, s.signature))

    send(order("sun1", "sun", "sell", 500, "10.00", now, slot=SLOT))
    send(order("liar1", "liar", "sell", 200, "10.50", now, slot=SLOT))  # says solar; has no PV
    send(order("b1", "b", "buy", 700, "12.00", now, slot=SLOT))
    for pid, values in (("sun", {"load_wh": 300, "pv_wh": 1200, "grid_export_wh": 400}),
                        ("liar", {"load_wh": 100, "grid_import_wh": 300}),
                        ("b", {"load_wh": 900, "grid_import_wh": 200})):
        nonce[pid] += 1
        _, sig = reading(ex, pid, values, nonce[pid])
        ex.upload_meter(pid, SLOT, values, nonce[pid], sig)
    # before settlement the buyer holds only what sellers declared
    assert ex.certified == {}
    assert ex.close_due(SLOT + timedelta(minutes=40)) == [SLOT] and ex.engine.committed == set()  # grace not over
    ex.commit_due(SLOT + timedelta(hours=1))
    got = ex.certified["b"]
    assert [(e["device"], e["source"], e["producer"], e["energy_wh"], e["trade_id"]) for e in got] == [
        ("sun-pv", "solar", "sun", 500, "t1")]
    rows = [json.loads(r.body) for r in ex.journal.rows() if r.kind == "certificate"]
    trade_events = {e["trade_id"]: e for e in rows if e["kind"] == "trade"}
    assert trade_events["t1"]["certified_wh"] == 500
    assert trade_events["t2"]["certified_wh"] == 0  # the liar's "solar" came from the grid
    assert any(e["kind"] == "issue" and e["device"] == "sun-pv" and e["energy_wh"] == 1200 for e in rows)
    commit = json.loads(next(r for r in ex.journal.rows() if r.kind == "commit").body)
    assert commit["device_certificates"] == [["sun-pv", 1200, 800]]  # claimed: 300 by sun itself, 500 by b
    assert commit["certificates_root"] != "00" * 32
    ex.journal.close()

    again = LiveExchange.open(db_url, MARKET, clock())  # the views are rebuilt from the journal
    assert again.certified["b"] == got
    again.journal.close()
    audited = CliRunner().invoke(app, ["audit", "--db", db_url])
    assert audited.exit_code == 0, audited.output
    exported = CliRunner().invoke(app, ["certificates", "--db", db_url, "--participant", "b", "--format", "json"])
    assert exported.exit_code == 0, exported.output
    events = json.loads(exported.output)
    assert {(e["kind"], e["to_holder"], e["energy_wh"]) for e in events if e["kind"] == "transfer"} == {
        ("transfer", "b", 500)}
    Journal(db_url).close()
    assert START == SLOT
