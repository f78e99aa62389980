"""The commit queue against a real anvil node behind a relay that can go down or lose a reply."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from eth_hash.auto import keccak
from tests.ledger.nodes import TEST_OPERATOR, Relay

from p2penergy.ledger.chain import Chain, ChainError
from p2penergy.ledger.commit_queue import Backoff, CommitConflict, CommitQueue, Landed, Registration, SlotCommit

SLOT0 = 1_596_240_000  # 2020-08-01T00:00Z
HALF_HOUR = 1800


def commit_of(k: int, salt: bytes = b"") -> SlotCommit:
    slot = SLOT0 + k * HALF_HOUR
    return SlotCommit(slot, keccak(b"orders%d" % k + salt), keccak(b"trades%d" % k + salt),
                      keccak(b"certs%d" % k + salt), keccak(b"head%d" % k), 10 * k + 5, {"solar": 100 + k},
                      ((f"pv-{k}", 50, 20),))


@pytest.fixture
def relay(anvil_url):
    r = Relay(int(anvil_url.rsplit(":", 1)[1]))
    yield r
    r.close()


@pytest.fixture
def chain(relay):
    c = Chain.connect(relay.url, TEST_OPERATOR)
    c.deploy()
    yield c
    c.close()


class Journal:
    """Stands for the owner's journal: records what landed, can fail like a full disk."""

    def __init__(self) -> None:
        self.landed: list[Landed] = []
        self.fail_next = 0

    def __call__(self, landed: Landed) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("disk full")
        self.landed.append(landed)


def test_backoff_grows_exponentially_to_its_cap_and_checks_its_parameters():
    b = Backoff(first_s=0.5, factor=2.0, max_s=3.0)
    assert [b.delay_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert Backoff().delay_s(1_000) == Backoff().max_s
    with pytest.raises(ValueError, match="first_s"):
        Backoff(first_s=0)
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)
    with pytest.raises(ValueError, match="max_s"):
        Backoff(first_s=2, max_s=1)


def test_slots_must_be_queued_in_order_and_once(chain):
    q = CommitQueue(chain, Journal())
    q.put(commit_of(1))
    with pytest.raises(ValueError, match=r"slot_start: .* not after the last slot queued"):
        q.put(commit_of(1))
    with pytest.raises(ValueError, match="slot order"):
        q.put(commit_of(0))


def test_an_outage_queues_commits_and_they_land_in_slot_order_when_the_node_returns(chain, relay):
    now = [100.0]
    journal = Journal()
    q = CommitQueue(chain, journal, Backoff(first_s=1, factor=2, max_s=4), clock=lambda: now[0])
    relay.set_up(False)
    for k in range(3):
        q.put(commit_of(k))
    for failures in (1, 2, 3, 4):
        assert q.step() is None
        lag = q.status()
        assert lag.failures == failures and lag.pending_slots == 3 and lag.oldest_pending_slot == SLOT0
        assert lag.last_error.startswith(f"commit of slot {SLOT0}:") and lag.last_error_at is not None
        assert lag.next_attempt_in_s == [1, 2, 4, 4][failures - 1]  # backoff, capped
    assert journal.landed == []
    relay.set_up(True)
    while q.step() is not None:
        pass
    assert [landed.op.slot_start for landed in journal.landed] == [SLOT0, SLOT0 + HALF_HOUR, SLOT0 + 2 * HALF_HOUR]
    assert chain.committed_slots() == [SLOT0, SLOT0 + HALF_HOUR, SLOT0 + 2 * HALF_HOUR]
    for landed in journal.landed:
        assert chain.commitment(landed.op.slot_start).trades_root == landed.op.trades_root
        assert landed.tx_hash.startswith("0x") and landed.block is not None
    lag = q.status()
    assert (lag.pending_slots, lag.failures, lag.last_error, lag.last_committed_slot, lag.committed) == (
        0, 0, None, SLOT0 + 2 * HALF_HOUR, 3)


def test_a_commit_that_landed_although_its_reply_was_lost_is_not_sent_again(chain, relay):
    journal = Journal()
    q = CommitQueue(chain, journal)
    q.put(commit_of(0))
    q.put(commit_of(1))
    relay.swallow_reply_of("eth_sendRawTransaction", then_down=True)
    assert q.step() is None  # the node executed it, then went away; we heard nothing
    assert relay.swallowed == 1 and "commit of slot" in q.status().last_error
    relay.set_up(True)
    assert chain.commitment(SLOT0) is not None  # it did land
    first = q.step()
    assert first is not None and first.recovered
    sent = [landed for landed in journal.landed]
    assert sent[0].tx_hash is not None and chain.w3.eth.get_transaction_receipt(sent[0].tx_hash)["status"] == 1
    assert q.step() is not None and q.step() is None
    assert chain.committed_slots() == [SLOT0, SLOT0 + HALF_HOUR]  # once each, in order
    assert [landed.recovered for landed in journal.landed] == [True, False]


def test_a_failed_journal_write_after_landing_is_retried_without_a_second_transaction(chain):
    journal = Journal()
    journal.fail_next = 2
    q = CommitQueue(chain, journal)
    q.put(commit_of(0))
    assert q.step() is None and q.step() is None
    assert "disk full" in q.status().last_error
    landed = q.step()
    assert landed is not None and landed.recovered and len(journal.landed) == 1
    assert chain.committed_slots() == [SLOT0]


def test_a_restart_finds_what_landed_before_it_and_sends_nothing(chain):
    q = CommitQueue(chain, Journal())
    q.put(commit_of(0))
    sent = q.step()
    # a new process re-queues the slot from its journal (commit row there, its transaction not)
    journal = Journal()
    again = CommitQueue(chain, journal)
    again.put(replace(commit_of(0), maybe_landed=True))
    landed = again.step()
    assert landed.recovered and (landed.tx_hash, landed.block) == (sent.tx_hash, sent.block)
    assert chain.committed_slots() == [SLOT0]
    # the same roots with another journal head is not ours: a conflict
    other = CommitQueue(chain, Journal())
    other.put(replace(commit_of(0), journal_seq=999, maybe_landed=True))
    assert other.step() is None and "row 5; ours" in other.status().last_error


def test_a_different_commitment_on_chain_is_a_conflict_that_stays_queued(chain):
    q = CommitQueue(chain, Journal())
    q.put(commit_of(0))
    q.step()
    other = CommitQueue(chain, Journal())
    other.put(commit_of(0, salt=b"forged"))
    assert other.step() is None
    lag = other.status()
    assert lag.pending_slots == 1 and "reverted (execution reverted: slot already committed)" in lag.last_error
    assert other.step() is None  # the retry checks the chain first: a conflict, nothing sent
    assert "already holds another commitment" in other.status().last_error
    with pytest.raises(CommitConflict):
        commit_of(0, salt=b"forged").landed(chain)


def test_registrations_are_idempotent_and_ordered_with_commits(chain, relay):
    journal = Journal()
    q = CommitQueue(chain, journal)
    alice, bob = "0x" + "11" * 20, "0x" + "22" * 20
    q.register({"alice": alice})  # the calls an engine makes of a chain
    c = commit_of(0)
    assert q.commit_slot(c.slot_start, c.orders_root, c.trades_root, c.certificates_root, c.journal_head,
                         c.journal_seq, c.tag_energy_wh, list(c.device_certificates)) is None
    q.put(Registration({"alice": alice, "bob": bob}))  # alice again: already there, only bob is sent
    relay.set_up(False)
    assert q.step() is None
    relay.set_up(True)
    while q.step() is not None:
        pass
    assert [type(landed.op).__name__ for landed in journal.landed] == ["Registration", "SlotCommit", "Registration"]
    assert journal.landed[1].op == c
    assert chain.account_of("alice").lower() == alice and chain.account_of("bob").lower() == bob
    q.put(Registration({"alice": bob}))
    assert q.step() is None and "holds" in q.status().last_error


def test_the_worker_thread_retries_by_itself_until_the_node_is_back(chain, relay):
    journal = Journal()
    q = CommitQueue(chain, journal, Backoff(first_s=0.05, factor=2, max_s=0.2))
    relay.set_up(False)
    q.start()
    try:
        for k in range(4):
            q.put(commit_of(k))
        deadline = time.monotonic() + 10
        while q.status().failures < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert journal.landed == [] and q.status().pending_slots == 4
        relay.set_up(True)
        assert q.wait_idle(30)
    finally:
        q.stop()
    assert [landed.op.slot_start for landed in journal.landed] == [SLOT0 + k * HALF_HOUR for k in range(4)]
    assert chain.committed_slots() == [SLOT0 + k * HALF_HOUR for k in range(4)]


def test_a_lost_reply_to_a_send_is_recovered_from_the_receipt_with_one_transaction(chain, relay):
    relay.swallow_reply_of("eth_sendRawTransaction")
    tx_hash, block, _ = chain.commit_slot(SLOT0, *([b"\x01" * 32] * 4), 1, {}, [])
    assert relay.swallowed == 1 and chain.w3.eth.get_block(block)["transactions"] == [bytes.fromhex(tx_hash[2:])]
    assert chain.committed_slots() == [SLOT0]


def test_chain_errors_carry_the_hash_of_a_sent_transaction(chain, relay):
    relay.swallow_reply_of("eth_sendRawTransaction", then_down=True)
    with pytest.raises(ChainError) as caught:
        chain.commit_slot(SLOT0, *([b"\x01" * 32] * 4), 1, {}, [])
    assert caught.value.tx_hash is not None
    relay.set_up(True)
    assert chain.w3.eth.get_transaction_receipt(caught.value.tx_hash)["status"] == 1
