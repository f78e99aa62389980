# pragma version 0.4.3
# pragma evm-version cancun
"""
@title p2penergy slot settlement
@notice One commitment per closed delivery slot: Merkle roots of the slot's orders,
        trades and certificate events and the journal head (stored), the traded energy
        per tag and, per generating device, the certificates issued and claimed in Wh
        (in the SlotCommitted event). Claimed may never exceed issued for any device
        in a slot: a slot is committed once and each device appears once in it.
        Only the operator writes; every write emits an event.
"""

MAX_BATCH: constant(uint256) = 128

struct Commitment:
    orders_root: bytes32
    trades_root: bytes32
    certificates_root: bytes32
    journal_head: bytes32
    journal_seq: uint256
    block_number: uint256

event OperatorTransferred:
    previous: indexed(address)
    operator: indexed(address)

event ParticipantRegistered:
    participant_id: indexed(bytes32)
    account: indexed(address)

event SlotCommitted:
    slot_start: indexed(uint256)
    orders_root: bytes32
    trades_root: bytes32
    certificates_root: bytes32
    journal_head: bytes32
    journal_seq: uint256
    tags: DynArray[bytes32, MAX_BATCH]
    tag_wh: DynArray[uint256, MAX_BATCH]
    devices: DynArray[bytes32, MAX_BATCH]
    issued_wh: DynArray[uint256, MAX_BATCH]
    claimed_wh: DynArray[uint256, MAX_BATCH]

operator: public(address)
account_of: public(HashMap[bytes32, address])
participant_of: public(HashMap[address, bytes32])
participant_count: public(uint256)
commitments: public(HashMap[uint256, Commitment])
slot_count: public(uint256)
slot_at: public(HashMap[uint256, uint256])


@deploy
def __init__():
    self.operator = msg.sender
    log OperatorTransferred(previous=empty(address), operator=msg.sender)


@external
def transfer_operator(new_operator: address):
    assert msg.sender == self.operator, "only the operator"
    assert new_operator != empty(address), "operator may not be zero"
    log OperatorTransferred(previous=self.operator, operator=new_operator)
    self.operator = new_operator


@external
def register(ids: DynArray[bytes32, MAX_BATCH], accounts: DynArray[address, MAX_BATCH]):
    assert msg.sender == self.operator, "only the operator"
    assert len(ids) == len(accounts), "ids and accounts differ in length"
    for i: uint256 in range(len(ids), bound=MAX_BATCH):
        pid: bytes32 = ids[i]
        account: address = accounts[i]
        assert account != empty(address), "account may not be zero"
        assert self.account_of[pid] == empty(address), "participant already registered"
        assert self.participant_of[account] == empty(bytes32), "account already registered"
        self.account_of[pid] = account
        self.participant_of[account] = pid
        self.participant_count += 1
        log ParticipantRegistered(participant_id=pid, account=account)


@external
def commit_slot(
    slot_start: uint256,
    orders_root: bytes32,
    trades_root: bytes32,
    certificates_root: bytes32,
    journal_head: bytes32,
    journal_seq: uint256,
    tags: DynArray[bytes32, MAX_BATCH],
    tag_wh: DynArray[uint256, MAX_BATCH],
    devices: DynArray[bytes32, MAX_BATCH],
    issued: DynArray[uint256, MAX_BATCH],
    claimed: DynArray[uint256, MAX_BATCH],
):
    assert msg.sender == self.operator, "only the operator"
    assert self.commitments[slot_start].block_number == 0, "slot already committed"
    assert len(tags) == len(tag_wh), "tags and tag_wh differ in length"
    assert len(devices) == len(issued) and len(devices) == len(claimed), "device arrays differ in length"
    # One commitment per slot, devices strictly increasing (so each appears once): claimed <= issued
    # per device here is the invariant for the whole slot.
    previous: uint256 = 0
    for i: uint256 in range(len(devices), bound=MAX_BATCH):
        assert convert(devices[i], uint256) > previous, "devices must be strictly increasing"
        previous = convert(devices[i], uint256)
        assert claimed[i] <= issued[i], "certificates claimed exceed certificates issued"
    self.commitments[slot_start] = Commitment(
        orders_root=orders_root,
        trades_root=trades_root,
        certificates_root=certificates_root,
        journal_head=journal_head,
        journal_seq=journal_seq,
        block_number=block.number,
    )
    self.slot_at[self.slot_count] = slot_start
    self.slot_count += 1
    log SlotCommitted(
        slot_start=slot_start,
        orders_root=orders_root,
        trades_root=trades_root,
        certificates_root=certificates_root,
        journal_head=journal_head,
        journal_seq=journal_seq,
        tags=tags,
        tag_wh=tag_wh,
        devices=devices,
        issued_wh=issued,
        claimed_wh=claimed,
    )
