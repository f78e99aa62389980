"""Buyback of exported energy by the utility: feed-in tariff (FIT) or post-FIT price.

A FIT price is fixed for the whole term by the fiscal year the system was connected
(:class:`FitSchedule`); after the term the utility buys at its post-FIT price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Buyback:
    """Price [currency/kWh] the utility pays for exported energy under scheme ``scheme``."""

    scheme: str
    price_per_kwh: Decimal

    def __post_init__(self) -> None:
        if self.price_per_kwh < 0:
            raise ValueError(f"buyback.{self.scheme}: price must be >= 0, got {self.price_per_kwh}")

    def credit(self, energy_kwh: Decimal) -> Decimal:
        """Unrounded payment for ``energy_kwh`` exported."""
        if energy_kwh < 0:
            raise ValueError(f"energy_kwh: must be >= 0, got {energy_kwh}")
        return self.price_per_kwh * energy_kwh


def buyback_for(scheme: str, schemes: Mapping[str, Decimal]) -> Buyback:
    """Look a scheme up by name (e.g. ``fit-fy2019``, ``post-fit``); the error lists known names."""
    if scheme not in schemes:
        raise ValueError(f"buyback: unknown scheme {scheme!r}; known: {', '.join(sorted(schemes))}")
    return Buyback(scheme, schemes[scheme])


@dataclass(frozen=True, slots=True)
class FitSchedule:
    """Feed-in tariff by fiscal year of connection, for ``term_years``; then ``after_term``.

    prices : ``((fiscal_year, price_per_kwh), ...)`` — the price fixed for systems connected
             in that fiscal year (Japan, residential < 10 kW: 48 JPY in FY2009, 42 in FY2012, …)
    fiscal_year_start_month : the month a fiscal year starts (Japan: April)

    A month is credited at the FIT price when it starts before the term ends (connection date
    + ``term_years``), so the month a term ends in still earns FIT (the real term ends at the
    meter reading of the last month; the month's remainder is ignored).
    """

    prices: tuple[tuple[int, Decimal], ...]
    term_years: int
    after_term: Buyback
    fiscal_year_start_month: int = 4

    def __post_init__(self) -> None:
        if self.term_years <= 0:
            raise ValueError(f"term_years: must be > 0, got {self.term_years}")
        if not 1 <= self.fiscal_year_start_month <= 12:
            raise ValueError(f"fiscal_year_start_month: must be 1–12, got {self.fiscal_year_start_month}")
        for year, price in self.prices:
            if price < 0:
                raise ValueError(f"fit: price for fiscal year {year} must be >= 0, got {price}")

    def fiscal_year(self, day: date) -> int:
        """The fiscal year ``day`` falls in, named by the calendar year it starts in."""
        return day.year if day.month >= self.fiscal_year_start_month else day.year - 1

    def term_end(self, connected: date) -> date:
        """First day after the FIT term (29 February falls back to the 28th)."""
        year = connected.year + self.term_years
        try:
            return connected.replace(year=year)
        except ValueError:
            return connected.replace(year=year, day=28)

    def buyback(self, connected: date, month: date) -> Buyback:
        """The scheme crediting exports of a system connected on ``connected`` in ``month``."""
        month = month.replace(day=1)
        if connected.replace(day=1) > month:
            raise ValueError(f"pv_connected: {connected} is after the billed month {month:%Y-%m}")
        year = self.fiscal_year(connected)
        prices = dict(self.prices)
        if year not in prices:
            raise ValueError(f"fit: no price for fiscal year {year} (pv_connected {connected}); known: "
                             f"{', '.join(str(y) for y in sorted(prices))}")
        if month >= self.term_end(connected):
            return self.after_term
        return Buyback(f"fit-fy{year}", prices[year])


OWN_SCHEME = "own-scheme"
NO_CREDIT = "none"


@dataclass(frozen=True, slots=True)
class ExportCredit:
    """How a run credits the exports of sites that have a buyback scheme: each with its own
    scheme (``own-scheme``), not at all (``none``), or all at one ``common`` scheme (``scheme``).

    The utility-only baseline takes this as a setting because the demonstration did not publish
    how its baseline credited the homes' PV exports (FIT, post-FIT or nothing). Sites without a
    scheme stay without one.
    """

    mode: str = OWN_SCHEME
    common: Buyback | None = None

    def __post_init__(self) -> None:
        if self.mode not in (OWN_SCHEME, NO_CREDIT, "scheme"):
            raise ValueError(f"export_credit: must be {OWN_SCHEME!r}, {NO_CREDIT!r} or a buyback scheme, "
                             f"got {self.mode!r}")
        if (self.mode == "scheme") != (self.common is not None):
            raise ValueError("export_credit: a common scheme goes with mode 'scheme' only")

    @classmethod
    def own(cls) -> ExportCredit:
        return cls(OWN_SCHEME)

    @classmethod
    def none(cls) -> ExportCredit:
        return cls(NO_CREDIT)

    @classmethod
    def scheme(cls, buyback: Buyback) -> ExportCredit:
        return cls("scheme", buyback)

    def applied(self, own: Buyback | None) -> Buyback | None:
        """The scheme a site whose own scheme is ``own`` is credited by."""
        if own is None or self.mode == OWN_SCHEME:
            return own
        return None if self.mode == NO_CREDIT else self.common

    @property
    def label(self) -> str:
        if self.mode == OWN_SCHEME:
            return "each home's own scheme"
        if self.common is None:
            return "none"
        return f"{self.common.scheme} ({self.common.price_per_kwh}/kWh) for every home with PV"


OWN_SCHEMES = ExportCredit()
"""Every site credited by its own scheme (the default: what a real bill does)."""
