"""The operator's transactions are signed as eth-account signs them, byte for byte (ledger/chain.py signs
them itself so the simulation's process need not import eth-account)."""

from __future__ import annotations

import random

from eth_account import Account
from eth_utils import to_checksum_address

from p2penergy.ledger.chain import sign_transaction
from p2penergy.ledger.keys import derive_keys


def test_type2_transactions_equal_eth_accounts_signed_bytes() -> None:
    rng = random.Random(5)
    for key in derive_keys(7, ["operator", "other"]).values():
        for k in range(60):
            to = None if k % 10 == 0 else to_checksum_address("0x" + rng.randbytes(20).hex())  # None: a deployment
            nonce = rng.choice([0, 1, 127, 128, 255, 256, rng.randrange(2**40)])
            chain_id, max_fee, tip = rng.choice([1, 31337, 2**40]), rng.randrange(2**64), rng.randrange(2**20)
            data = "0x" + rng.randbytes(rng.choice([0, 1, 4, 55, 56, 300, 2000])).hex()  # RLP's length forms
            gas = rng.randrange(21_000, 10**7)
            tx = {"chainId": chain_id, "nonce": nonce, "gas": gas, "value": 0, "data": data, "maxFeePerGas": max_fee,
                  "maxPriorityFeePerGas": tip, "type": 2}
            if to is not None:
                tx["to"] = to
            expected = bytes(Account.sign_transaction(tx, key.private_key).raw_transaction)
            assert sign_transaction(key, chain_id, nonce, to, data, gas, max_fee, tip) == expected
