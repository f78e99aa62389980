"""An agent's :class:`~p2penergy.agents.market_access.MarketAccess` over HTTP.

:class:`HttpMarketAccess` signs every action with the participant's own key (EIP-712,
bound to the domain the service announces) and every private read with signed headers,
so :class:`~p2penergy.agents.trader.TradingAgent` runs unchanged against a live service.
Refusals come back as the market's :class:`OrderRejected` naming the field, as in-process.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from p2penergy.agents.market_access import OpenOrder
from p2penergy.ledger.actions import Cancel, Modify
from p2penergy.ledger.keys import Key
from p2penergy.ledger.signing import Domain, sign_action
from p2penergy.market import MarketSettings, Order, OrderRejected, Tag, Trade
from p2penergy.service.auth import read_headers, signed_reading
from p2penergy.service.clock import MarketClock
from p2penergy.service.models import OrderIn

RETRY_ATTEMPTS = 6
"""Times one request is sent when the service answers 429 (over its rate limit) before the 429 is
taken as the answer (assumption: an agent's burst above the default 500/s budget drains within a
few seconds)."""
RETRY_FIRST_S = 0.25
"""Wait before the first retry when a 429 carries no ``Retry-After``; doubled for each next one."""
RETRY_MAX_WAIT_S = 10.0
"""Most time spent waiting on 429s for one request: a signed request is re-sent as it was signed,
and its signed time must stay within the exchange's skew (30 wall seconds by default)."""


class ServiceRefused(RuntimeError):
    """The service refused a request that is not an order (HTTP status, field, message)."""

    def __init__(self, status: int, field: str, message: str) -> None:
        self.status = status
        self.field = field
        super().__init__(f"HTTP {status}: {field}: {message}")


def _problem(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("field", "?")), str(body.get("message", body))
    except ValueError:
        return "?", response.text


class HttpMarketAccess:
    """:class:`MarketAccess` for one participant on the service at ``url``.

    Nonces are Unix microseconds (kept strictly increasing), so an agent that restarts
    never reuses one. ``opening_price`` is the reference before the first public trade.
    """

    def __init__(self, url: str, key: Key, opening_price: Decimal | None = None,
                 client: httpx.Client | None = None, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.participant = key.participant
        self.opening_price = opening_price
        self.http = client or httpx.Client(base_url=self.url, timeout=timeout_s)
        info = self._get("/api/market")
        self.settings = MarketSettings.from_mapping(info["market"])
        d = info["domain"]
        self.domain = Domain(int(d["chainId"]), str(d["verifyingContract"]), str(d["name"]), str(d["version"]))
        self._last_nonce = 0
        # the exchange's clock, run locally (its origin and speed are public): no request per tick
        self._clock = MarketClock.from_meta(info["clock"])
        self._offset = datetime.fromisoformat(info["now"]) - self._clock.now()

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request; a 429 is retried after its ``Retry-After`` (else a doubling wait) up to
        :data:`RETRY_ATTEMPTS` times and :data:`RETRY_MAX_WAIT_S` in all (a 429 uses no nonce, so the
        same signed body is sent again)."""
        waited = 0.0
        for attempt in range(RETRY_ATTEMPTS):
            r = self.http.request(method, path, **kw)
            if r.status_code != 429 or attempt == RETRY_ATTEMPTS - 1:
                return r
            wait = _retry_after_s(r, RETRY_FIRST_S * 2**attempt)
            if waited + wait > RETRY_MAX_WAIT_S:
                return r
            time.sleep(wait)
            waited += wait
        return r

    def _get(self, path: str, signed: bool = False, **params: Any) -> Any:
        query = str(httpx.QueryParams(params)) if params else ""  # signed as sent
        headers = read_headers(self.key, self.domain, path, self.now(), query) if signed else None
        r = self._send("GET", f"{path}?{query}" if query else path, headers=headers)
        if r.status_code >= 400:
            raise ServiceRefused(r.status_code, *_problem(r))
        return r.json()

    def next_nonce(self) -> int:
        self._last_nonce = max(self._last_nonce + 1, time.time_ns() // 1000)
        return self._last_nonce

    def now(self) -> datetime:
        """The exchange's clock (computed locally from its published origin and speed, corrected by the
        offset seen when connecting: at most the request's latency times the speed)."""
        return self._clock.now() + self._offset

    # -- MarketAccess ---------------------------------------------------------------------
    def submit(self, order: Order) -> list[Trade]:
        if order.participant != self.participant:
            raise OrderRejected(order.order_id, "participant", f"must be {self.participant!r}")
        signed = sign_action(self.key, self.domain, order, self.next_nonce())
        body = {"order": OrderIn.of(order).model_dump(mode="json"), "nonce": signed.nonce,
                "signature": "0x" + signed.signature.hex()}
        r = self._send("POST", "/api/orders", json=body)
        if r.status_code >= 400:
            raise OrderRejected(order.order_id, *_problem(r))
        return [_trade(t, order) for t in r.json()["trades"]]

    def cancel(self, order_id: str, now: datetime) -> int:
        signed = sign_action(self.key, self.domain, Cancel(order_id, self.participant, now), self.next_nonce())
        r = self._send("POST", f"/api/orders/{order_id}/cancel", json={
            "participant": self.participant, "cancelled_at": now.isoformat(), "nonce": signed.nonce,
            "signature": "0x" + signed.signature.hex()})
        if r.status_code >= 400:
            raise OrderRejected(order_id, *_problem(r))
        return int(r.json()["cancelled_wh"])

    def modify(self, order_id: str, energy_wh: int, price_per_kwh: Decimal, now: datetime) -> list[Trade]:
        """Set my open order's energy and price (not part of :class:`MarketAccess`)."""
        action = Modify(order_id, self.participant, energy_wh, price_per_kwh, now)
        signed = sign_action(self.key, self.domain, action, self.next_nonce())
        r = self._send("POST", f"/api/orders/{order_id}/modify", json={
            "participant": self.participant, "energy_wh": energy_wh, "price_per_kwh": str(price_per_kwh),
            "modified_at": now.isoformat(), "nonce": signed.nonce, "signature": "0x" + signed.signature.hex()})
        if r.status_code >= 400:
            raise OrderRejected(order_id, *_problem(r))
        rows = r.json()["trades"]
        return [Trade(t["trade_id"], datetime.fromisoformat(t["slot_start"]), "?", "?", "?", "?", int(t["energy_wh"]),
                      Decimal(t["price_per_kwh"]), Decimal(t["premium_per_kwh"]), Tag.of(t["attributes"]), 0,
                      Decimal(t["price_per_kwh"]), Decimal(t["price_per_kwh"])) for t in rows]

    def open_orders(self) -> dict[str, OpenOrder]:
        rows = self._get("/api/me/orders", signed=True)
        out = {}
        for row in rows:
            order = OrderIn.model_validate(row["order"]).to_order()
            out[order.order_id] = OpenOrder(order, int(row["remaining_wh"]))
        return out

    def position(self, slot_start: datetime) -> tuple[int, int]:
        """Wh I have bought and sold for the slot so far (from my trades, a signed read)."""
        return positions_of(self.my_trades()).get(slot_start, (0, 0))

    def reference_price(self) -> Decimal | None:
        price = self._get("/api/reference-price")["price_per_kwh"]
        return Decimal(price) if price is not None else self.opening_price

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        """The best buy level of the slot's public depth (``/api/depth``)."""
        levels = self._get("/api/depth", slot_start=slot_start.isoformat())["buy"]
        return Decimal(str(levels[0]["price_per_kwh"])) if levels else None

    # -- beyond the protocol: meters and my account ------------------------------------------
    def upload_meter(self, slot_start: datetime, values: dict[str, int]) -> None:
        r = self._send("POST", "/api/meter", json=signed_reading(self.key, self.domain, slot_start, values,
                                                                  self.next_nonce()))
        if r.status_code >= 400:
            raise ServiceRefused(r.status_code, *_problem(r))

    def bill(self, month: str | None = None) -> dict[str, Any]:
        """My bill of ``month`` (YYYY-MM; default the exchange clock's month), a signed read."""
        return self._get("/api/me/bill", signed=True, **({"month": month} if month else {}))  # type: ignore[no-any-return]

    def my_trades(self) -> list[dict[str, Any]]:
        return self._get("/api/me/trades", signed=True)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.http.close()


def _retry_after_s(response: httpx.Response, default_s: float) -> float:
    """Seconds the 429's ``Retry-After`` asks for (delay-seconds), else ``default_s``."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return default_s


def positions_of(rows: list[dict[str, Any]]) -> dict[datetime, tuple[int, int]]:
    """Wh bought and sold per slot, from my trades as ``/api/me/trades`` lists them."""
    wh: dict[datetime, tuple[int, int]] = {}
    for row in rows:
        slot = datetime.fromisoformat(str(row["slot_start"]))
        bought, sold = wh.get(slot, (0, 0))
        energy = int(row["energy_wh"])
        wh[slot] = (bought + energy, sold) if row["side"] == "buy" else (bought, sold + energy)
    return wh


def _trade(row: dict[str, Any], order: Order) -> Trade:
    """A trade as the submitting agent sees it (its own side; the counterparty is not disclosed)."""
    price = Decimal(row["price_per_kwh"])
    mine_buy = order.side == "buy"
    other = "?"
    return Trade(row["trade_id"], datetime.fromisoformat(row["slot_start"]),
                 order.order_id if mine_buy else other, other if mine_buy else order.order_id,
                 order.participant if mine_buy else other, other if mine_buy else order.participant,
                 int(row["energy_wh"]), price, Decimal(row["premium_per_kwh"]), Tag.of(row["attributes"]), 0,
                 price, price)
