import pytest

from p2penergy.ledger.chain import Chain, ChainError, id32
from p2penergy.ledger.contract.build import ARTIFACT, compile_artifact, load_artifact, render
from p2penergy.ledger.keys import Key


def test_committed_artifact_matches_a_fresh_compile():
    assert ARTIFACT.read_text(encoding="utf-8") == render(compile_artifact())
    assert load_artifact()["compiler"] == "vyper 0.4.3"


@pytest.fixture(scope="module")
def chain():
    c = Chain.in_process(Key.derive(5, "@operator"))
    c.deploy()
    return c


ROOTS = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32)


def test_commit_stores_roots_and_emits_everything(chain):
    tx, block, event = chain.commit_slot(1000, *ROOTS, 9, {"source=solar": 700, "untagged": 20},
                                         [("pv-1", 800, 700), ("pv-2", 50, 0)])
    assert tx.startswith("0x") and block > 0
    c = chain.commitment(1000)
    assert (c.orders_root, c.trades_root, c.certificates_root, c.journal_head, c.journal_seq) == (*ROOTS, 9)
    assert event["slot_start"] == 1000 and event["journal_seq"] == 9
    tags = dict(zip(event["tags"], event["tag_wh"], strict=True))
    assert tags == {id32("source=solar"): 700, id32("untagged"): 20}
    devices = {d: (i, cl) for d, i, cl in zip(event["devices"], event["issued_wh"], event["claimed_wh"], strict=True)}
    assert devices == {id32("pv-1"): (800, 700), id32("pv-2"): (50, 0)}
    assert 1000 in chain.committed_slots()


def test_a_slot_is_committed_once(chain):
    chain.commit_slot(2000, *ROOTS, 1, {}, [])
    with pytest.raises(ChainError, match="commit slot 2000"):
        chain.commit_slot(2000, *ROOTS, 2, {}, [])


def _raw_commit(chain, slot, devices, issued, claimed):
    data = chain._call_data("commit_slot", [slot, *ROOTS, 0, [], [], devices, issued, claimed])
    return chain._transact(data, 500_000, "raw commit", chain.contract.address)


def test_contract_refuses_claims_above_issued(chain):
    # Bypass the client's own check: the contract must enforce it.
    with pytest.raises(ChainError):
        _raw_commit(chain, 3000, [id32("pv-1")], [100], [101])
    assert chain.commitment(3000) is None
    _raw_commit(chain, 3000, [id32("pv-1")], [100], [100])


def test_contract_refuses_a_device_twice_in_a_slot(chain):
    d = id32("pv-1")
    with pytest.raises(ChainError):  # twice 60 claimed of 100 issued each would hide 120 > 100 per device
        _raw_commit(chain, 4000, [d, d], [100, 0], [60, 60])


def test_client_names_the_device_that_overclaims(chain):
    with pytest.raises(ChainError, match="'pv-9' claims 11 Wh of certificates but only 10 Wh were issued"):
        chain.commit_slot(5000, *ROOTS, 0, {}, [("pv-9", 10, 11)])


def test_only_the_operator_writes(chain):
    intruder = Chain(chain.w3, Key.derive(5, "mallory"), chain.kind)
    chain.w3.eth.send_transaction({"from": chain.w3.eth.accounts[0], "to": intruder.operator.address,
                                   "value": 10**18, "gas": 21_000})
    intruder._nonce = 0
    intruder.attach(chain.contract.address)
    with pytest.raises(ChainError):
        intruder.commit_slot(6000, *ROOTS, 0, {}, [])
    with pytest.raises(ChainError):
        intruder.register({"mallory": intruder.operator.address})
    assert chain.commitment(6000) is None


def test_register_emits_events_and_refuses_duplicates(chain):
    k = Key.derive(5, "house-01")
    events = chain.register({"house-01": k.address})
    assert events == [{"participant_id": id32("house-01"), "account": k.address}]
    assert chain.account_of("house-01") == k.address
    with pytest.raises(ChainError):
        chain.register({"house-01": Key.derive(5, "x").address})
