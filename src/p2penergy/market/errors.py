"""Errors of the market core. Each names the field at fault and what is allowed."""

from __future__ import annotations


class MarketError(Exception):
    """Base class of every error the market raises."""


class FieldError(MarketError, ValueError):
    """A value is not allowed: ``field`` names it, ``allowed`` says what would be."""

    def __init__(self, field: str, allowed: str) -> None:
        self.field = field
        self.allowed = allowed
        super().__init__(f"{field}: must be {allowed}")


class MarketConfigError(FieldError):
    """A market setting is invalid."""


class OrderError(FieldError):
    """An order is invalid; nothing was changed."""


class OrderRejected(MarketError):
    """A valid order that the book refuses now (gate closed, unknown or duplicate id)."""

    def __init__(self, order_id: str, field: str, reason: str) -> None:
        self.order_id = order_id
        self.field = field
        self.reason = reason
        super().__init__(f"order {order_id!r}: {field}: {reason}")
