"""Origin pools of home batteries and car batteries: first in, first out.

Rule: a storage's pool is a queue of lots (certificate bundles and uncertified energy) in
the order they were charged. Every withdrawal — discharge to the site, a car's driving,
losses — takes from the front (oldest first), splitting a lot at a whole Wh when needed.

Why first in, first out rather than a proportional pool:

* it is exact in integer Wh with no rounding at all (a proportional pool must round each
  source's share every slot and carry the remainders), so totals balance to the Wh;
* every certificate keeps its serials through storage, so an auditor can follow one Wh
  from its issuance through a car battery to its cancellation and prove it was claimed once;
* it is the rule of inventory accounting that needs no judgement, and it does not let a
  storage owner choose the greenest lots for a sale (there is no choice to make).

The pool never goes negative: a withdrawal larger than the pool returns what there is and
the missing Wh (``untracked``), which the registry counts as uncertified energy. That only
happens when the simulation's state of charge and the flows it reports disagree, or when a
storage held energy before records began and no ``initial_wh`` was given.
"""

from __future__ import annotations

from collections.abc import Iterator

from p2penergy.provenance.certificates import Certificate, Lot, Uncertified, take


class OriginPool:
    """What one storage holds, by origin, oldest first. ``held_wh`` equals the sum of lots."""

    __slots__ = ("_lots", "certified_wh", "held_wh", "kind", "owner", "storage_id")

    def __init__(self, storage_id: str, kind: str, owner: str, initial_wh: int = 0) -> None:
        if initial_wh < 0:
            raise ValueError(f"initial_wh of {storage_id!r}: must be zero or more, got {initial_wh}")
        self.storage_id = storage_id
        self.kind = kind
        self.owner = owner
        self._lots: list[Lot] = [Uncertified(initial_wh, "initial")] if initial_wh else []
        self.held_wh = initial_wh
        self.certified_wh = 0

    def put(self, lot: Lot) -> None:
        """Charge ``lot`` (it joins the back of the queue)."""
        if lot.energy_wh <= 0:
            return
        self._lots.append(lot)
        self.held_wh += lot.energy_wh
        if isinstance(lot, Certificate):
            self.certified_wh += lot.energy_wh

    def withdraw(self, energy_wh: int) -> tuple[list[Lot], int]:
        """Take ``energy_wh`` from the front: ``(lots, untracked_wh)``; never below zero."""
        if energy_wh <= 0:
            return [], 0
        taken, self._lots, missing = take(self._lots, energy_wh)
        got = energy_wh - missing
        self.held_wh -= got
        self.certified_wh -= sum(lot.energy_wh for lot in taken if isinstance(lot, Certificate))
        return taken, missing

    def lots(self) -> Iterator[Lot]:
        return iter(self._lots)

    def mix(self) -> dict[str, int]:
        """Wh held per origin source; uncertified energy is listed as ``"grid"`` / ``"initial"``."""
        out: dict[str, int] = {}
        for lot in self._lots:
            key = lot.source if isinstance(lot, Certificate) else lot.reason
            out[key] = out.get(key, 0) + lot.energy_wh
        return out

    def __repr__(self) -> str:
        return f"OriginPool({self.storage_id!r}, held_wh={self.held_wh}, mix={self.mix()})"
