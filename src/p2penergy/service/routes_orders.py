"""Orders: submit and cancel (signed EIP-712 actions), and a participant's own orders and trades."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from p2penergy.ledger.actions import Cancel, Modify
from p2penergy.ledger.signing import Signed
from p2penergy.market.errors import FieldError
from p2penergy.service.commit import GroupCommit
from p2penergy.service.deps import Commits, Live, Reader
from p2penergy.service.live import LiveExchange, ServiceError
from p2penergy.service.models import (
    CancelAck,
    CancelIn,
    ModifyIn,
    MyOrder,
    OrderAck,
    OrderIn,
    SelfTradeCancelOut,
    SignedOrderIn,
    TradeOut,
    links,
    problems,
)

router = APIRouter(tags=["orders"])
ERRORS = problems(401, 404, 409, 413, 422, 429, 500, 503)
READ_ERRORS = problems(401, 422, 429)


def _links_to_my_order(status: int, description: str) -> dict[int | str, dict[str, object]]:
    """Links from an order's acknowledgement to what its owner can do next: change the order, read its
    own orders, trades, nonce and certificates."""
    order_id = {"order_id": "$response.body#/order_id"}
    return links(status, description, CancelOrder=("post", "/api/orders/{order_id}/cancel", order_id),
                 ModifyOrder=("post", "/api/orders/{order_id}/modify", order_id),
                 MyOrders=("get", "/api/me/orders", {}), MyTrades=("get", "/api/me/trades", {}),
                 MyNonce=("get", "/api/me/nonce", {}), MyCertificates=("get", "/api/me/certificates", {}))


def _signed(primary: str) -> dict[str, object]:
    """OpenAPI extension naming the EIP-712 struct a request body is signed as."""
    return {"x-eip712-primary-type": primary}


def _signature(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.removeprefix("0x"))


@router.post("/api/orders", status_code=201, response_model=OrderAck,
             responses={**ERRORS, **_links_to_my_order(201, "Accepted and journalled: my trades")},
             openapi_extra=_signed("Order"))
async def submit_order(body: SignedOrderIn, ex: Live, commits: Commits) -> OrderAck:
    """Submit a signed order; it matches at once (CDA) and rests for the rest. Acknowledged after journaling.

    Runs on the event loop (no thread hop): the work is a few hundred microseconds of CPU
    and one short database commit, under the exchange's lock."""
    return await accept_order(body, ex, commits)


async def accept_order(body: SignedOrderIn, ex: LiveExchange, commits: GroupCommit) -> OrderAck:
    """The one handling of a parsed order request, for this route and for the service's fast path
    (``app.OrderFastPath``, which serves well-formed ``POST /api/orders`` without the router)."""
    try:
        order = body.order.to_order()
    except FieldError as exc:
        raise ServiceError(422, exc.field, f"must be {exc.allowed}") from exc
    done = ex.submit(Signed(order, body.nonce, _signature(body.signature)), durable=False)
    status, left = ex.status_after(order.participant, order.order_id, done)
    await commits.durable(done.seq, done.generation)  # acknowledged only once journaled
    return OrderAck(order_id=order.order_id, status=status, remaining_wh=left,
                    trades=[TradeOut.mine(t, order.participant) for t in done.trades],
                    self_trade_cancels=[SelfTradeCancelOut.of(c) for c in done.self_cancels])


@router.post("/api/orders/{order_id}/cancel", response_model=CancelAck, responses=ERRORS,
             openapi_extra=_signed("Cancel"))
async def cancel_order(order_id: str, body: CancelIn, ex: Live, commits: Commits) -> CancelAck:
    """Cancel my open order (signed EIP-712 ``Cancel``); returns the Wh that were still open.

    An id that is not one of my open orders — someone else's, or none at all — answers the same 404."""
    done = ex.cancel(Signed(Cancel(order_id, body.participant, body.cancelled_at), body.nonce,
                            _signature(body.signature)), durable=False)
    await commits.durable(done.seq, done.generation)
    return CancelAck(order_id=order_id, cancelled_wh=done.cancelled_wh)


@router.post("/api/orders/{order_id}/modify", response_model=OrderAck,
             responses={**ERRORS, **_links_to_my_order(200, "Changed and journalled: my trades")},
             openapi_extra=_signed("Modify"))
async def modify_order(order_id: str, body: ModifyIn, ex: Live, commits: Commits) -> OrderAck:
    """Change my open order's energy and price (signed EIP-712 ``Modify``).

    Lowering only the energy keeps time priority; anything else re-queues it and it may trade at once.
    An id that is not one of my open orders answers 404, as for cancel.
    """
    action = Modify(order_id, body.participant, body.energy_wh, body.price_per_kwh, body.modified_at)
    done = ex.modify(Signed(action, body.nonce, _signature(body.signature)), durable=False)
    status, left = ex.status_after(body.participant, order_id, done)
    await commits.durable(done.seq, done.generation)
    return OrderAck(order_id=order_id, status=status, remaining_wh=left,
                    trades=[TradeOut.mine(t, body.participant) for t in done.trades],
                    self_trade_cancels=[SelfTradeCancelOut.of(c) for c in done.self_cancels])


@router.get("/api/me/orders", response_model=list[MyOrder], responses=READ_ERRORS)
def my_orders(who: Reader, ex: Live,
              status: Annotated[Literal["open", "all"], Query()] = "open") -> list[MyOrder]:
    """My orders (signed read): open ones by default, or all with their status."""
    with ex.lock:
        if status == "open":
            return [MyOrder(order=OrderIn.of(o), status="open", remaining_wh=left) for o, left in ex.open_orders(who)]
        out = []
        for oid in ex.mine.get(who, ()):
            st, left = ex.status_of(who, oid)
            out.append(MyOrder(order=OrderIn.of(ex.orders[who, oid]), status=st, remaining_wh=left,  # type: ignore[arg-type]
                               cancelled_by=ex.self_cancelled.get((who, oid))))
        return out


@router.get("/api/me/trades", response_model=list[TradeOut], responses=READ_ERRORS)
def my_trades(who: Reader, ex: Live) -> list[TradeOut]:
    """My trades (signed read), with my side and my order id."""
    with ex.lock:
        return [TradeOut.mine(t, who) for t in ex.trades_of.get(who, ())]
