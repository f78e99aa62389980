"""The exchange core: orders with tags and requirements, CDA and call auctions, trades.

Pure and deterministic: no clock, no I/O, no randomness. Imports nothing else of ours.
"""

from p2penergy.market.call_auction import (
    PAY_AS_BID,
    PAY_AS_CLEAR,
    Clearing,
    clear_call,
    clear_uniform_arrays,
)
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
from p2penergy.market.settings import MECHANISMS, MarketSettings
from p2penergy.market.tags import ATTRIBUTES, RENEWABLE_SOURCES, SOURCES, UNTAGGED, Requirement, Tag
from p2penergy.market.trades import Trade, TradeSummary

__all__ = [
    "ATTRIBUTES", "BUY", "MECHANISMS", "PAY_AS_BID", "PAY_AS_CLEAR", "RENEWABLE_SOURCES", "SELL",
    "SOURCES", "UNTAGGED", "CallMarket", "Clearing", "ContinuousMarket", "Exchange", "FieldError",
    "MarketConfigError", "MarketError", "MarketSettings", "Order", "OrderError", "OrderRejected",
    "Requirement", "SlotClose", "Tag", "Trade", "TradeSummary", "check_against", "clear_call",
    "clear_uniform_arrays", "make_exchange",
]
