"""The simulation's participants' keys: derived from the seed, held by the simulation, never by the engine.

In the live service every participant holds its own key; in a simulation the model plays
every participant, so it holds their keys here and signs for them (one EIP-712 batch per
agent step) exactly as their wallets would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from p2penergy.ledger.actions import Action
from p2penergy.ledger.keys import Key, derive_keys
from p2penergy.ledger.signing import Domain, Signed, SignedBatch, sign_action, sign_batch


class Wallets:
    """Keys (derived from ``seed``) and next nonces of participants, signing for ``domain``."""

    def __init__(self, domain: Domain, seed: int) -> None:
        self.domain = domain
        self.seed = seed
        self.keys: dict[str, Key] = {}
        self._next_nonce: dict[str, int] = defaultdict(int)

    def add(self, participants: Iterable[str]) -> dict[str, str]:
        """Derive the participants' keys; returns their addresses (to register with the engine)."""
        keys = derive_keys(self.seed, list(participants))
        self.keys.update(keys)
        return {pid: k.address for pid, k in keys.items()}

    def _nonce(self, participant: str) -> int:
        n = self._next_nonce[participant]
        self._next_nonce[participant] = n + 1
        return n

    def sign(self, participant: str, actions: Iterable[Action]) -> SignedBatch:
        """One EIP-712 ``Batch`` signature over ``actions`` of one participant, with fresh nonces."""
        key = self._key(participant)
        return sign_batch(key, self.domain, [(a, self._nonce(participant)) for a in actions])

    def sign_one(self, action: Action) -> Signed:
        """An individually signed action (what a wallet in the live service produces)."""
        return sign_action(self._key(action.participant), self.domain, action, self._nonce(action.participant))

    def _key(self, participant: str) -> Key:
        try:
            return self.keys[participant]
        except KeyError:
            raise KeyError(f"participant: no key held for {participant!r}; add it first") from None
