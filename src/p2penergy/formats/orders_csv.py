"""Order files: CSV with the header

``id,participant,side,slot_start,energy_wh,price_per_kwh,submitted_at,attributes,requirements``

``attributes`` is a JSON object on sell rows, ``requirements`` a JSON list on buy rows
(most preferred first, each ``{"match": {ATTR: VALUE or [VALUES]}, "premium_per_kwh": X}``);
both may be empty. Times are ISO 8601 with an offset. A bad row raises
:class:`RowError` naming its line and field; nothing is returned for a file with one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from p2penergy.market import BUY, SELL, FieldError, MarketSettings, Order, Requirement, Tag, check_against
from p2penergy.textfile import read_text

HEADER = (
    "id", "participant", "side", "slot_start", "energy_wh", "price_per_kwh", "submitted_at",
    "attributes", "requirements",
)


class RowError(ValueError):
    """A row of an order file is invalid: ``line`` (1-based, header is line 1) and ``field``."""

    def __init__(self, line: int, field: str, allowed: str) -> None:
        self.line = line
        self.field = field
        self.allowed = allowed
        super().__init__(f"line {line}: {field}: must be {allowed}")


def read_orders(path: str | Path, settings: MarketSettings) -> list[tuple[int, Order]]:
    """Parse and validate every row against ``settings``; returns ``(line, order)`` pairs."""
    try:
        text = read_text(path)  # not UTF-8: InputFileError naming the line
    except OSError as exc:
        raise RowError(0, "file", f"a readable file ({exc.strerror})") from exc
    return parse_orders(text.splitlines(), settings)


def parse_orders(lines: Iterable[str], settings: MarketSettings) -> list[tuple[int, Order]]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise RowError(1, "header", f"exactly {','.join(HEADER)}")
    orders: list[tuple[int, Order]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            raise RowError(line, "row", f"{len(HEADER)} comma-separated cells, got {len(row)}")
        order = _order(line, dict(zip(HEADER, (c.strip() for c in row), strict=True)))
        try:
            check_against(order, settings)
        except FieldError as exc:
            raise RowError(line, exc.field, exc.allowed) from exc
        if order.order_id in seen:
            raise RowError(line, "id", f"unique in the file (also on line {seen[order.order_id]})")
        seen[order.order_id] = line
        orders.append((line, order))
    return orders


def _order(line: int, cells: dict[str, str]) -> Order:
    side = cells["side"]
    if side not in (BUY, SELL):
        raise RowError(line, "side", f"'buy' or 'sell', got {side!r}")
    try:
        energy_wh = int(cells["energy_wh"])
    except ValueError as exc:
        raise RowError(line, "energy_wh", f"a whole number of Wh, got {cells['energy_wh']!r}") from exc
    try:
        price = Decimal(cells["price_per_kwh"])
        if not price.is_finite():
            raise InvalidOperation
    except InvalidOperation as exc:
        raise RowError(line, "price_per_kwh", f"a decimal number, got {cells['price_per_kwh']!r}") from exc
    times = {name: _time(line, name, cells[name]) for name in ("slot_start", "submitted_at")}
    tag = Tag()
    requirements: tuple[Requirement, ...] = ()
    try:
        if cells["attributes"]:
            if side != SELL:
                raise RowError(line, "attributes", "empty on a buy row (buy rows carry requirements)")
            raw = _json(line, "attributes", cells["attributes"])
            if not isinstance(raw, dict):
                raise RowError(line, "attributes", 'a JSON object such as {"source": "solar"}')
            tag = Tag.of(raw)
        if cells["requirements"]:
            if side != BUY:
                raise RowError(line, "requirements", "empty on a sell row (sell rows carry attributes)")
            requirements = _requirements(line, _json(line, "requirements", cells["requirements"]))
        return Order(
            order_id=cells["id"], participant=cells["participant"], side=side,
            slot_start=times["slot_start"], energy_wh=energy_wh, price_per_kwh=price,
            submitted_at=times["submitted_at"], tag=tag, requirements=requirements,
        )
    except FieldError as exc:
        raise RowError(line, exc.field, exc.allowed) from exc


def _requirements(line: int, raw: object) -> tuple[Requirement, ...]:
    if not isinstance(raw, list):
        raise RowError(line, "requirements", 'a JSON list such as [{"match": {"source": "solar"}}]')
    result = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("match", None), dict):
            raise RowError(line, "requirements", 'a list of objects each with a "match" object')
        extra = set(item) - {"match", "premium_per_kwh"}
        if extra:
            allowed = 'objects with only "match" and "premium_per_kwh"'
            raise RowError(line, "requirements", f"{allowed}, got {sorted(extra)}")
        premium = item.get("premium_per_kwh", 0)
        if isinstance(premium, bool) or not isinstance(premium, (int, float, str)):
            raise RowError(line, "requirements.premium_per_kwh", f"a number, got {premium!r}")
        match = item["match"]
        for key, value in match.items():
            if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
                raise RowError(line, f"requirements.match.{key}", "a string or a list of strings")
        result.append(Requirement.of(match, str(premium)))
    return tuple(result)


def _json(line: int, field: str, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowError(line, field, f"valid JSON ({exc.msg} at column {exc.colno})") from exc


def _time(line: int, field: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RowError(line, field, f"an ISO 8601 time with offset, got {text!r}") from exc
    if value.tzinfo is None:
        raise RowError(line, field, f"an ISO 8601 time with an offset such as +09:00, got {text!r}")
    return value
