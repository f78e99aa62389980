"""From a plan's positions to limit prices: the bidding strategy.

Every agent prices the same way (documented in the README, "Bidding"):

* Each side has a **reservation price**: a seller never sells below what the utility
  would pay it (its buyback price, or for stored energy the value it gave up), a buyer
  never pays above what the utility would charge it (its marginal retail price).
* Around a **reference price** ``r`` — the exponentially weighted volume-weighted price of
  recent public trades, or the midpoint of the reservation prices before any trade — the
  agent **concedes linearly with time to the gate**: with ``f`` = the fraction of the
  gate window still ahead (1 when the book opens, 0 when it closes) a seller asks
  ``r + spread × (2f − 1)`` and a buyer bids ``r − spread × (2f − 1)``, each clamped to
  its reservation price and the market's band; ``spread`` is a share of the band (6 %:
  3 JPY/kWh on 0–50 JPY, 0.03 EUR/kWh on 0–0.50 EUR). Day-ahead offers therefore start above
  the market and bids below it; they meet near ``r`` as the gate approaches, and late
  orders cross.
* **Grid fees** (issue 17): the buyer pays the network fee of each P2P trade on top of its price, so
  a buyer's reservation is what the utility would charge it **less the worst-case fee**
  (:func:`net_of_fee`: the highest fee of any distance class; in a CDA the buyer does not know
  whom it will trade with, and the worst case means a trade never costs it more than the utility
  kWh). A seller's floor is unchanged: the buyer pays the fee.
* A buyer whose slot is **urgent** (the office where a purchase avoids demand charge) raises
  its bid from the usual one toward its reservation as the gate nears (``urgent_buy_price``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from p2penergy.market import MarketSettings

# The concession's half-width as a share of the market's price band (max − min): 6 % is 3 JPY/kWh
# on the demonstration's 0–50 JPY band (the value the agents always used: about a tenth of a
# home's retail kWh, so day-ahead offers start a little above the market and meet it at the gate)
# and 0.03 EUR/kWh on a 0–0.50 EUR band. Sized by the band so one strategy fits any currency.
SPREAD_SHARE_OF_BAND = Decimal("0.06")


@dataclass(frozen=True, slots=True)
class BiddingStrategy:
    """Linear concession toward the reference price. ``spread_per_kwh`` in currency/kWh; ``None``
    (the default): ``spread_share_of_band`` of the market's price band."""

    spread_per_kwh: Decimal | None = None
    spread_share_of_band: Decimal = SPREAD_SHARE_OF_BAND

    def spread(self, settings: MarketSettings) -> Decimal:
        """The concession's half-width on this market (currency/kWh)."""
        if self.spread_per_kwh is not None:
            return self.spread_per_kwh
        return self.spread_share_of_band * (settings.price_max_per_kwh - settings.price_min_per_kwh)

    def gate_fraction(self, settings: MarketSettings, slot_start: datetime, now: datetime) -> float:
        """Share of the slot's gate window still ahead at ``now``, in [0, 1]."""
        opens, closes = settings.gate_open(slot_start), settings.gate_close(slot_start)
        total = (closes - opens).total_seconds()
        ahead = (closes - now).total_seconds()
        return min(1.0, max(0.0, ahead / total))

    def sell_price(self, settings: MarketSettings, slot_start: datetime, now: datetime,
                   reference: Decimal | None, reservation: Decimal, ceiling: Decimal) -> Decimal:
        """Ask for energy: never below ``reservation`` (currency/kWh)."""
        r = reference if reference is not None else (reservation + ceiling) / 2
        f = Decimal(str(round(self.gate_fraction(settings, slot_start, now), 6)))
        ask = r + self.spread(settings) * (2 * f - 1)
        return _on_tick(settings, max(ask, reservation), ROUND_CEILING)

    def buy_price(self, settings: MarketSettings, slot_start: datetime, now: datetime,
                  reference: Decimal | None, reservation: Decimal, floor: Decimal) -> Decimal:
        """Bid for energy: never above ``reservation`` (currency/kWh)."""
        r = reference if reference is not None else (reservation + floor) / 2
        f = Decimal(str(round(self.gate_fraction(settings, slot_start, now), 6)))
        bid = r - self.spread(settings) * (2 * f - 1)
        return _on_tick(settings, min(bid, reservation), ROUND_FLOOR)

    def urgent_buy_price(self, settings: MarketSettings, slot_start: datetime, now: datetime,
                         reference: Decimal | None, reservation: Decimal, floor: Decimal) -> Decimal:
        """Bid of a buyer whose energy is worth far more than the usual price in this slot (the
        office where a purchase cuts its demand charge): from the usual bid it rises linearly to its
        ``reservation`` as the gate nears, ``usual + (reservation − usual)·(1 − f)``. Public, so
        sellers (cars) can see what the slot is worth to it."""
        usual = self.buy_price(settings, slot_start, now, reference, reservation, floor)
        f = Decimal(str(round(self.gate_fraction(settings, slot_start, now), 6)))
        bid = usual + (max(reservation, usual) - usual) * (1 - f)
        return _on_tick(settings, min(bid, reservation), ROUND_FLOOR)


def _on_tick(settings: MarketSettings, price: Decimal, rounding: str) -> Decimal:
    """Onto the tick grid (asks round up, bids down) and inside the price band."""
    tick = settings.price_tick_per_kwh
    price = (price / tick).to_integral_value(rounding=rounding) * tick
    return min(max(price, settings.price_min_per_kwh), settings.price_max_per_kwh)


def net_of_fee(reservations: list[Decimal], fee_per_kwh: Decimal, floor: Decimal) -> list[Decimal]:
    """A buyer's reservation prices less the grid fee it may owe per kWh, never below ``floor``
    (the market's minimum price); unchanged without a fee."""
    if not fee_per_kwh:
        return reservations
    return [max(r - fee_per_kwh, floor) for r in reservations]
