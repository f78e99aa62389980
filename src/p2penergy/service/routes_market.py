"""Public market data: market rules and clock, book depth, trades, prices, bills, provenance, stream.

Nothing here names the parties of an order or trade: bills and provenance flows are the
community's sums (a participant's own: ``routes_account``, signed reads; everyone's: the operator's).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from p2penergy.ledger.signing import typed_data_types
from p2penergy.market import Trade
from p2penergy.service.billing import month_readings
from p2penergy.service.deps import Live, public
from p2penergy.service.live import LiveExchange, ServiceError
from p2penergy.service.models import (
    Bill,
    BillLine,
    CommunityBill,
    Depth,
    Eip712Domain,
    Flow,
    Level,
    MarketInfo,
    MarketTime,
    MyFlow,
    PublicFlow,
    ReferencePrice,
    SlotOut,
    SlotPrice,
    TradeOut,
    UtilityBill,
    links,
    problems,
)

router = APIRouter(tags=["market"], dependencies=[Depends(public)],  # every read here: per client address
                   responses=problems(429))


SIGNED_STRUCTS = ("Order", "Cancel", "Modify", "MeterReading", "Read")


@router.get("/api/market", response_model=MarketInfo, responses=links(
    200, "The market's rules, signing domain and clock", Slots=("get", "/api/slots", {}),
    Trades=("get", "/api/trades", {}), Prices=("get", "/api/prices", {}),
    ReferencePrice=("get", "/api/reference-price", {}), Bills=("get", "/api/bills", {}),
    Provenance=("get", "/api/provenance", {}), Participants=("get", "/api/participants", {}),
    Health=("get", "/health", {})))
def market(ex: Live) -> MarketInfo:
    """Market rules, the EIP-712 domain and types to sign, and the exchange's clock."""
    return MarketInfo(market=ex.settings.to_mapping(),
                      domain=Eip712Domain.model_validate(ex.domain.as_typed_data_domain()),
                      eip712_types={p: typed_data_types(p) for p in SIGNED_STRUCTS},  # type: ignore[misc]
                      now=ex.now(), clock=ex.clock.as_meta())


@router.get("/api/slots", response_model=list[SlotOut], responses=links(
    200, "Tradable slots", DepthOfFirstSlot=("get", "/api/depth", {"slot_start": "$response.body#/0/slot_start"})))
def tradable_slots(ex: Live) -> list[SlotOut]:
    """The slots whose gate is open on the exchange's clock, from the market's calendar, in time order."""
    settings = ex.settings
    with_orders = set(ex.open_slots())
    return [SlotOut(slot_start=s, gate_opens_at=settings.gate_open(s), gate_closes_at=settings.gate_close(s),
                    has_orders=s in with_orders) for s in settings.tradable_slots(ex.now())]


@router.get("/api/depth", response_model=Depth, responses=problems(422))
def depth(ex: Live, slot_start: Annotated[MarketTime, Query()]) -> Depth:
    """Aggregated order-book depth of a slot: Wh per price level, best first (buy prices without premiums)."""
    if not ex.settings.is_slot_start(slot_start):
        raise ServiceError(422, "slot_start", f"the start of a {ex.settings.slot_minutes}-minute slot")
    slot_start = ex.settings.slot_start_of(slot_start)  # the slot's key: its UTC start
    d = ex.depth(slot_start)
    return Depth(slot_start=slot_start,
                 buy=[Level(price_per_kwh=str(p), energy_wh=e) for p, e in d["buy"]],
                 sell=[Level(price_per_kwh=str(p), energy_wh=e) for p, e in d["sell"]])


@router.get("/api/trades", response_model=list[TradeOut], responses=problems(422))
def trades(ex: Live, after: Annotated[int, Query(ge=0)] = 0,
           limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[TradeOut]:
    """Public trades in order, from position ``after`` (no participants or order ids)."""
    with ex.lock:
        return [TradeOut.public(t) for t in ex.trades[after:after + limit]]


@router.get("/api/prices", response_model=list[SlotPrice], responses=problems(422))
def prices(ex: Live, limit: Annotated[int, Query(ge=1, le=1000)] = 96) -> list[SlotPrice]:
    """Per traded slot (latest ``limit``): volume, trades, volume-weighted and last price, Wh by source."""
    with ex.lock:
        slots = sorted(ex.stats)[-limit:]
        return [SlotPrice(slot_start=s, volume_wh=st.volume_wh, trades=st.trades,
                          vwap_per_kwh=str(st.vwap_per_kwh) if st.vwap_per_kwh is not None else None,
                          last_price_per_kwh=str(st.last_price_per_kwh) if st.last_price_per_kwh is not None else None,
                          by_source_wh=dict(st.by_source_wh))
                for s in slots for st in (ex.stats[s],)]


@router.get("/api/reference-price", response_model=ReferencePrice)
def reference_price(ex: Live) -> ReferencePrice:
    """The public price tape's faded volume-weighted price (what agents see in the simulation)."""
    with ex.lock:
        p = ex.tape.reference_price()
    return ReferencePrice(price_per_kwh=str(p) if p is not None else None)


@router.get("/api/bills", response_model=CommunityBill, responses=problems(422))
def bills(ex: Live, month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None) -> CommunityBill:
    """The community's running bill of a month (default: the current one; what the dashboard shows):
    sums over every participant, none named. My own: ``/api/me/bill``; everyone's: the operator's
    ``/api/operator/bills``."""
    m = month_of(ex, month)
    with ex.lock:
        every = [bill_of(ex, pid, m) for pid in sorted(ex.addresses)]
    metered: dict[str, int] = {}
    for b in every:
        for name, value in b.metered.items():
            metered[name] = metered.get(name, 0) + value
    return CommunityBill(month=f"{m:%Y-%m}", currency=ex.settings.currency, participants=len(every),
                         traded_wh=sum(b.bought_wh for b in every),
                         traded_amount=_exact(sum((Decimal(b.paid) for b in every), Decimal(0))),
                         utility=_exact(sum((Decimal(b.utility.total) for b in every if b.utility), Decimal(0))),
                         metered=metered)


def bill_of(ex: LiveExchange, pid: str, month: date) -> Bill:
    """``pid``'s bill for the local calendar ``month`` (caller holds the lock)."""
    settings = ex.settings
    tz = settings.tz
    key = (month.year, month.month)

    def in_month(t: Trade) -> bool:
        local = t.slot_start.astimezone(tz)
        return (local.year, local.month) == key

    mine = [t for t in ex.trades_of.get(pid, ()) if in_month(t)]
    bought = sum(t.energy_wh for t in mine if t.buyer == pid)
    sold = sum(t.energy_wh for t in mine if t.seller == pid)
    paid = sum((t.amount for t in mine if t.buyer == pid), Decimal(0))
    received = sum((t.amount for t in mine if t.seller == pid), Decimal(0))
    utility = None
    total = paid - received
    contract = ex.contracts.get(pid)
    if contract is not None:
        imp, exp, starts = month_readings(ex.readings.get(pid, {}), month, tz)
        b = contract(pid, month, imp, exp, settings.currency, settings.slot_minutes, starts)
        utility = UtilityBill(import_kwh=str(b.import_kwh), export_kwh=str(b.export_kwh), charges=str(b.charges),
                              surcharge=str(b.surcharge), credit=str(b.credit), total=str(b.total),
                              lines=[BillLine(name=x.name, quantity=str(x.quantity), unit=x.unit, rate=str(x.rate),
                                              amount=str(x.amount)) for x in b.lines])
        total += b.total
    return Bill(participant=pid, month=f"{month:%Y-%m}", currency=settings.currency, bought_wh=bought, sold_wh=sold,
                paid=_exact(paid), received=_exact(received), utility=utility, total=_exact(total),
                metered=ex.meter_totals(pid, key))


def _exact(value: Decimal) -> str:
    """Exact money as text, no exponent and no trailing zeros (amounts are Wh x price / 1000)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def month_of(ex: LiveExchange, month: str | None) -> date:
    """``YYYY-MM`` (default: the exchange clock's current local month)."""
    if month is None:
        return ex.now().astimezone(ex.settings.tz).date().replace(day=1)
    try:
        return date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ServiceError(422, "month", f"a month as YYYY-MM, got {month!r}") from None


@router.get("/api/provenance", response_model=list[PublicFlow])
def provenance(ex: Live) -> list[PublicFlow]:
    """Energy traded per source and declared producer, Wh, summed over buyers: nobody's trades named
    (a participant's own flows: ``/api/me/provenance``; everyone's: ``/api/operator/provenance``)."""
    with ex.lock:
        flows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for t in ex.trades:
            f = flows[(t.tag.get("source") or "untagged", t.tag.get("producer") or "")]
            f[0] += t.energy_wh
            f[1] += 1
    return [PublicFlow(source=s, producer=p or None, energy_wh=e, trades=n) for (s, p), (e, n) in sorted(flows.items())]


def flows_of(trades: list[Trade]) -> list[Flow]:
    """Energy from each (source, producer — the tag's, else the seller) to each buyer, Wh."""
    flows: dict[tuple[str, str, str], int] = defaultdict(int)
    for t in trades:
        flows[(t.tag.get("source") or "untagged", t.tag.get("producer") or t.seller, t.buyer)] += t.energy_wh
    return [Flow(source=s, producer=p, buyer=b, energy_wh=e) for (s, p, b), e in sorted(flows.items())]


def my_flows_of(trades: list[Trade], participant: str) -> list[MyFlow]:
    """``participant``'s energy per side, source and declared producer, Wh (no counterparty named)."""
    flows: dict[tuple[str, str, str], int] = defaultdict(int)
    for t in trades:
        side = "buy" if t.buyer == participant else "sell"
        flows[(side, t.tag.get("source") or "untagged", t.tag.get("producer") or "")] += t.energy_wh
    return [MyFlow(side=side, source=s, producer=p or None, energy_wh=e)  # type: ignore[arg-type]
            for (side, s, p), e in sorted(flows.items())]


@router.get("/api/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
                       **problems(422)})
async def stream(request: Request, ex: Live, after: Annotated[int, Query(ge=0)] = 0) -> StreamingResponse:
    """Server-sent events: ``trade`` (each public trade) and ``price`` (its slot's running prices)."""

    async def events() -> AsyncIterator[bytes]:
        seen = after
        yield b": connected\n\n"
        while not await request.is_disconnected():
            with ex.lock:
                new = ex.trades[seen:]
                stats = {t.slot_start: ex.stats[t.slot_start] for t in new}
            for t in new:
                seen += 1
                data = TradeOut.public(t).model_dump(mode="json")
                yield f"id: {seen}\nevent: trade\ndata: {json.dumps(data)}\n\n".encode()
            for slot, st in stats.items():
                price = {"slot_start": slot.isoformat(), "volume_wh": st.volume_wh,
                         "vwap_per_kwh": str(st.vwap_per_kwh), "last_price_per_kwh": str(st.last_price_per_kwh)}
                yield f"event: price\ndata: {json.dumps(price)}\n\n".encode()
            if request.app.state.stopping:
                return
            await asyncio.sleep(0.25)

    return StreamingResponse(events(), media_type="text/event-stream")
