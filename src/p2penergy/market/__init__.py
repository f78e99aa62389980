"""The exchange core: orders with tags and requirements, CDA and call auctions, trades.

Pure and deterministic: no clock, no I/O, no randomness. Imports nothing else of ours.
The call auctions (numpy, HiGHS: about half a second to import) load when first used, so that
a continuous double auction, the simulation's agents and the CLI never wait for them.
"""

from typing import TYPE_CHECKING, Any

from p2penergy.market.errors import (
    FieldError,
    MarketConfigError,
    MarketError,
    OrderError,
    OrderRejected,
)
from p2penergy.market.exchange import (
    CallMarket,
    ContinuousMarket,
    Exchange,
    SlotClose,
    make_exchange,
)
from p2penergy.market.orders import BUY, SELL, Order, check_against
from p2penergy.market.settings import MECHANISMS, PAY_AS_BID, PAY_AS_CLEAR, MarketSettings
from p2penergy.market.tags import ATTRIBUTES, RENEWABLE_SOURCES, SOURCES, UNTAGGED, Requirement, Tag
from p2penergy.market.trades import Trade, TradeSummary

__all__ = [
    "ATTRIBUTES", "BUY", "MECHANISMS", "PAY_AS_BID", "PAY_AS_CLEAR", "RENEWABLE_SOURCES", "SELL",
    "SOURCES", "UNTAGGED", "CallMarket", "Clearing", "ContinuousMarket", "Exchange", "FieldError",
    "MarketConfigError", "MarketError", "MarketSettings", "Order", "OrderError", "OrderRejected",
    "Requirement", "SlotClose", "Tag", "Trade", "TradeSummary", "check_against", "clear_call",
    "clear_uniform_arrays", "make_exchange",
]

_CALL_AUCTION = ("Clearing", "clear_call", "clear_uniform_arrays")

if TYPE_CHECKING:
    from p2penergy.market.call_auction import Clearing, clear_call, clear_uniform_arrays


def __getattr__(name: str) -> Any:
    """The call auction's names, imported on first use (PEP 562)."""
    if name in _CALL_AUCTION:
        from p2penergy.market import call_auction

        return getattr(call_auction, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
