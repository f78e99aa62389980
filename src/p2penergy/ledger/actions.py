"""What participants sign: orders, cancels and modifies, and their canonical JSON.

The JSON form is what the journal stores; :func:`action_from_json` is its exact inverse
(datetimes keep their UTC offset, prices stay exact decimals).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from p2penergy.market import Order, Requirement, Tag
from p2penergy.market.errors import OrderError


@dataclass(frozen=True, slots=True)
class Cancel:
    """A participant cancels its open order ``order_id`` at ``cancelled_at`` (aware)."""

    order_id: str
    participant: str
    cancelled_at: datetime


@dataclass(frozen=True, slots=True)
class Modify:
    """A participant sets its open order's energy (Wh) and price (currency/kWh) at ``modified_at``."""

    order_id: str
    participant: str
    energy_wh: int
    price_per_kwh: Decimal
    modified_at: datetime


Action = Order | Cancel | Modify
KIND_OF = {Order: "order", Cancel: "cancel", Modify: "modify"}


def kind_of(action: Action) -> str:
    try:
        return KIND_OF[type(action)]
    except KeyError:
        raise TypeError(f"action: an Order, Cancel or Modify, got {type(action).__name__}") from None


# json.dumps with these options builds a new encoder every call; the journal encodes every row
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# JSONEncoder.encode still builds the C encoder (and its circular-reference memo) at every call: a
# fifth of its cost for a journal row. The same C encoder with the same options, made once: the same
# text (tested against JSONEncoder.encode), and a value JSON cannot hold raises the same TypeError.
# Without the memo a body that contains itself is refused by RecursionError instead (none is built).
_C_CANONICAL = (json.encoder.c_make_encoder(None, _CANONICAL.default, json.encoder.encode_basestring, None, ":", ",",
                                            True, False, True)
                if json.encoder.c_make_encoder is not None else None)


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace: the one byte form hashed everywhere."""
    if _C_CANONICAL is None or isinstance(data, str):  # pragma: no cover - CPython has the C encoder
        return _CANONICAL.encode(data)
    return "".join(_C_CANONICAL(data, 0))


def action_to_dict(action: Action) -> dict[str, Any]:
    if isinstance(action, Order):
        return {
            "order_id": action.order_id,
            "participant": action.participant,
            "side": action.side,
            "slot_start": action.slot_start.isoformat(),
            "energy_wh": action.energy_wh,
            "price_per_kwh": str(action.price_per_kwh),
            "submitted_at": action.submitted_at.isoformat(),
            "attributes": action.tag.as_dict(),
            "requirements": [r.as_dict() for r in action.requirements],
        }
    if isinstance(action, Cancel):
        return {
            "order_id": action.order_id,
            "participant": action.participant,
            "cancelled_at": action.cancelled_at.isoformat(),
        }
    if isinstance(action, Modify):
        return {
            "order_id": action.order_id,
            "participant": action.participant,
            "energy_wh": action.energy_wh,
            "price_per_kwh": str(action.price_per_kwh),
            "modified_at": action.modified_at.isoformat(),
        }
    raise TypeError(f"action: an Order, Cancel or Modify, got {type(action).__name__}")


def _time(data: dict[str, Any], key: str) -> datetime:
    value = datetime.fromisoformat(data[key])
    if value.tzinfo is None:
        raise OrderError(key, "a timezone-aware ISO 8601 datetime")
    return value


def action_from_dict(kind: str, data: dict[str, Any]) -> Action:
    """Inverse of :func:`action_to_dict`."""
    if kind == "order":
        return Order(
            order_id=data["order_id"],
            participant=data["participant"],
            side=data["side"],
            slot_start=_time(data, "slot_start"),
            energy_wh=data["energy_wh"],
            price_per_kwh=Decimal(data["price_per_kwh"]),
            submitted_at=_time(data, "submitted_at"),
            tag=Tag.of(data["attributes"]),
            requirements=tuple(Requirement.of(r["match"], r["premium_per_kwh"]) for r in data["requirements"]),
        )
    if kind == "cancel":
        return Cancel(data["order_id"], data["participant"], _time(data, "cancelled_at"))
    if kind == "modify":
        return Modify(
            data["order_id"], data["participant"], data["energy_wh"], Decimal(data["price_per_kwh"]),
            _time(data, "modified_at"),
        )
    raise ValueError(f"kind: one of order, cancel, modify; got {kind!r}")
