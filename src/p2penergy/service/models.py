"""Request and response bodies of the HTTP API (pydantic at the edge; the core stays dataclasses).

Prices are decimal strings in the market's currency per kWh (exact); energy is whole Wh;
times are ISO 8601 with an offset. Signatures are 65-byte ``r || s || v`` hex.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from p2penergy.market import Order, Requirement, Tag, Trade
from p2penergy.market.settings import CALENDAR_END, CALENDAR_START

SIGNATURE = r"^0x[0-9a-fA-F]{130}$"


def _in_calendar(value: datetime) -> datetime:
    if not CALENDAR_START <= value < CALENDAR_END:
        raise ValueError(f"a time from {CALENDAR_START.date()} until before {CALENDAR_END.date()} (UTC), "
                         "the market's calendar")
    return value


MarketTime = Annotated[AwareDatetime, AfterValidator(_in_calendar)]
"""Every time a request carries: aware, and in the market's calendar (``market/settings.py``), so
that nothing out of range reaches the signature's encoding or the slot arithmetic."""


def _id() -> Any:
    return Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")


def _nonce() -> Any:
    return Field(ge=0, lt=2**64)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequirementIn(Strict):
    match: dict[str, str | list[str]] = Field(default_factory=dict, max_length=4)
    premium_per_kwh: Decimal = Field(Decimal(0), ge=0, le=10**6, max_digits=16, decimal_places=6)


class OrderIn(Strict):
    """An order as signed (EIP-712 ``Order``): buy orders carry requirements, sell orders attributes."""

    order_id: str = _id()
    participant: str = _id()
    side: Literal["buy", "sell"]
    slot_start: MarketTime
    energy_wh: int = Field(gt=0, le=10**9)
    price_per_kwh: Decimal = Field(ge=0, le=10**6, max_digits=16, decimal_places=6)
    submitted_at: MarketTime
    attributes: dict[str, str] = Field(default_factory=dict, max_length=4)
    requirements: list[RequirementIn] = Field(default_factory=list, max_length=8)

    def to_order(self) -> Order:
        """The core order; raises the market's ``OrderError`` naming a bad attribute or requirement."""
        return Order(self.order_id, self.participant, self.side, self.slot_start, self.energy_wh,
                     self.price_per_kwh, self.submitted_at, tag=Tag.of(self.attributes),
                     requirements=tuple(Requirement.of(r.match, r.premium_per_kwh) for r in self.requirements))

    @classmethod
    def of(cls, order: Order) -> OrderIn:
        return cls(order_id=order.order_id, participant=order.participant, side=order.side,  # type: ignore[arg-type]
                   slot_start=order.slot_start, energy_wh=order.energy_wh, price_per_kwh=order.price_per_kwh,
                   submitted_at=order.submitted_at, attributes=order.tag.as_dict(),
                   requirements=[RequirementIn(match=r.as_dict()["match"],  # type: ignore[arg-type]
                                               premium_per_kwh=r.premium_per_kwh) for r in order.requirements])


class SignedOrderIn(Strict):
    order: OrderIn
    nonce: int = _nonce()
    signature: str = Field(pattern=SIGNATURE)


class CancelIn(Strict):
    """A signed EIP-712 ``Cancel`` of the order in the path."""

    participant: str = _id()
    cancelled_at: MarketTime
    nonce: int = _nonce()
    signature: str = Field(pattern=SIGNATURE)


class ModifyIn(Strict):
    """A signed EIP-712 ``Modify`` of the order in the path: its new open energy and price."""

    participant: str = _id()
    energy_wh: int = Field(gt=0, le=10**9)
    price_per_kwh: Decimal = Field(ge=0, le=10**6, max_digits=16, decimal_places=6)
    modified_at: MarketTime
    nonce: int = _nonce()
    signature: str = Field(pattern=SIGNATURE)


class ParticipantIn(Strict):
    participant: str = _id()
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")


class MeterIn(Strict):
    """One slot's metered values (whole Wh; ``soc_wh`` is the state of charge at the slot's end)."""

    participant: str = _id()
    slot_start: MarketTime
    values: dict[str, Annotated[int, Field(ge=0, lt=2**64)]] = Field(max_length=5)
    nonce: int = _nonce()
    signature: str = Field(pattern=SIGNATURE)


class TradeOut(BaseModel):
    trade_id: str
    slot_start: datetime
    energy_wh: int
    price_per_kwh: str
    premium_per_kwh: str
    attributes: dict[str, str]
    side: Literal["buy", "sell"] | None = None
    order_id: str | None = None

    @classmethod
    def public(cls, t: Trade) -> TradeOut:
        return cls(trade_id=t.trade_id, slot_start=t.slot_start, energy_wh=t.energy_wh,
                   price_per_kwh=str(t.price_per_kwh), premium_per_kwh=str(t.premium_per_kwh),
                   attributes=t.tag.as_dict())

    @classmethod
    def mine(cls, t: Trade, participant: str) -> TradeOut:
        out = cls.public(t)
        out.side = "buy" if t.buyer == participant else "sell"
        out.order_id = t.buy_id if t.buyer == participant else t.sell_id
        return out


class SelfTradeCancelOut(BaseModel):
    """One of my resting orders that my new order cancelled instead of trading with it
    (self-trade prevention), with the Wh it still had open."""

    order_id: str
    cancelled_wh: int
    by_order_id: str

    @classmethod
    def of(cls, c: Any) -> SelfTradeCancelOut:
        return cls(order_id=c.order_id, cancelled_wh=c.remaining_wh, by_order_id=c.by)


OrderStatus = Literal["open", "filled", "cancelled", "expired"]


class OrderAck(BaseModel):
    order_id: str
    status: OrderStatus
    remaining_wh: int
    trades: list[TradeOut]
    self_trade_cancels: list[SelfTradeCancelOut] = Field(default_factory=list)


class CancelAck(BaseModel):
    order_id: str
    cancelled_wh: int


class MyOrder(BaseModel):
    order: OrderIn
    status: OrderStatus
    remaining_wh: int
    cancelled_by: str | None = Field(None, description="the order of mine that cancelled this one by "
                                                        "self-trade prevention, if that is how it was cancelled")


class Level(BaseModel):
    price_per_kwh: str
    energy_wh: int


class Depth(BaseModel):
    slot_start: datetime
    buy: list[Level]
    sell: list[Level]


class SlotPrice(BaseModel):
    slot_start: datetime
    volume_wh: int
    trades: int
    vwap_per_kwh: str | None
    last_price_per_kwh: str | None
    by_source_wh: dict[str, int]


class BillLine(BaseModel):
    name: str
    quantity: str
    unit: str
    rate: str
    amount: str


class UtilityBill(BaseModel):
    """The utility's bill of the month's uploaded readings on the participant's contract."""

    import_kwh: str
    export_kwh: str
    charges: str
    surcharge: str
    credit: str
    total: str
    lines: list[BillLine]


class Bill(BaseModel):
    """One participant's month so far: P2P energy and money both ways, the utility bill of its
    uploaded readings (``None`` without a contract, e.g. a car), and the total to pay."""

    participant: str
    month: str
    currency: str
    bought_wh: int
    sold_wh: int
    paid: str
    received: str
    utility: UtilityBill | None
    total: str
    metered: dict[str, int]


class CommunityBill(BaseModel):
    """The community's month so far, summed over every registered participant (the public view: no
    participant's energy, readings or bill can be read from it; each reads its own at ``/api/me/bill``,
    the operator every one at ``/api/operator/bills``)."""

    month: str
    currency: str
    participants: int
    traded_wh: int = Field(description="P2P energy traded (each trade once)")
    traded_amount: str = Field(description="what P2P buyers paid sellers")
    utility: str = Field(description="the utility bills of everyone's uploaded readings, summed")
    metered: dict[str, int] = Field(description="everyone's readings summed (soc_wh: the sum of the latest)")


class Certificate(BaseModel):
    """Origin of energy a participant bought on the exchange.

    ``certified``: certificates the provenance registry transferred to me for a trade of a
    settled slot (``attributes``: the certificate's source, producer, device and site; ``cert_id``
    names the bundle). ``pending``: a trade of a slot not settled yet — ``attributes`` are what
    the seller declared (its order's tag), not yet backed by any certificate."""

    trade_id: str
    slot_start: datetime
    energy_wh: int
    attributes: dict[str, str]
    status: Literal["certified", "pending"] = "pending"
    cert_id: str | None = None


class Flow(BaseModel):
    """Energy traded from a source and producer to a buyer (the operator's view: names both parties;
    ``producer`` is the tag's, else the seller)."""

    source: str
    producer: str
    buyer: str
    energy_wh: int


class PublicFlow(BaseModel):
    """Energy traded per source and declared producer, summed over every buyer (the public view names no
    buyer and no seller beyond the ``producer`` its sellers' tags declared, as ``/api/trades`` shows)."""

    source: str
    producer: str | None = Field(description="the producer the energy's tag declares; null when none")
    energy_wh: int
    trades: int


class MyFlow(BaseModel):
    """Energy I traded per side, source and declared producer (counterparties are not named)."""

    side: Literal["buy", "sell"]
    source: str
    producer: str | None = Field(description="the producer the energy's tag declares; null when none")
    energy_wh: int


class Eip712Domain(BaseModel):
    """The EIP-712 domain every signed request is bound to (``EIP712Domain(string name,string version,
    uint256 chainId,address verifyingContract)``): the chain and the settlement contract."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(examples=["p2penergy"])
    version: str = Field(examples=["2"])
    chain_id: int = Field(alias="chainId", examples=[31337])
    verifying_contract: str = Field(alias="verifyingContract", pattern=r"^0x[0-9a-fA-F]{40}$",
                                    examples=["0x0000000000000000000000000000000000000000"])


class TypedField(BaseModel):
    """One member of an EIP-712 struct, as ``eth_signTypedData_v4`` lists it."""

    name: str
    type: str


class MarketInfo(BaseModel):
    """Market rules, what to sign in, and the exchange's clock (docs/service.md, "API for third parties")."""

    market: dict[str, object]
    domain: Eip712Domain
    eip712_types: dict[str, dict[str, list[TypedField]]] = Field(
        description="per signed struct (Order, Cancel, Modify, MeterReading, Read): the ``types`` member of an "
                    "``eth_signTypedData_v4`` request for it (EIP712Domain, the struct and the structs it uses)")
    now: datetime = Field(description="the exchange's clock, which decides gates and bounds signed times")
    clock: dict[str, object] = Field(description="``{kind: real}``, or ``{kind: accelerated, start, wall_origin, "
                                                 "speed}``: market time = start + speed x (wall time - wall_origin)")


class SlotOut(BaseModel):
    """A slot whose gate is open on the exchange's clock."""

    slot_start: datetime
    gate_opens_at: datetime
    gate_closes_at: datetime
    has_orders: bool = Field(description="its book holds orders")


class Problem(BaseModel):
    """Every refusal's body: the field at fault (a body field, a header, ``nonce``, ...) and what is allowed."""

    field: str = Field(examples=["price_per_kwh"])
    message: str = Field(examples=["on the market's tick of 0.01"])


def links(status: int, description: str, **targets: tuple[str, str, dict[str, str]]
          ) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry for ``status`` with links ``name=(method, path, parameters)`` to what
    a client can do next (runtime expressions such as ``$response.body#/order_id``); a generated client
    and the stateful schema test (``tests/service/test_schema.py``) follow them."""
    return {status: {"description": description, "links": {
        name: {"operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method,
               **({"parameters": params} if params else {})}
        for name, (method, path, params) in targets.items()}}}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for refusals with these status codes (all answer a :class:`Problem`)."""
    return {code: {"model": Problem, "description": ERROR_MEANING.get(code, "refused"),
                   **({"headers": {"Retry-After": RETRY_AFTER}} if code == 429 else {})} for code in codes}


RETRY_AFTER = {"description": "seconds to wait before retrying (whole seconds, rounded up; the message says it "
                              "exactly)", "schema": {"type": "integer", "minimum": 1}}


ERROR_MEANING = {
    401: "missing, malformed or foreign signature; unknown participant; missing admin token",
    404: "no open order of yours with this id (someone else's order answers the same)",
    409: "a used nonce, an order id the signer already used, an address already registered, a closed gate",
    413: "body too large", 422: "a value out of range or malformed (names the field)",
    429: "over the rate limit", 500: "an unexpected error in the exchange; nothing was accepted",
    503: "the journal could not be written; nothing was accepted",
}


class ReferencePrice(BaseModel):
    price_per_kwh: str | None
