"""Key figures for people and for machines: one rounding policy, read from the unit in a name.

The project names every quantity with its unit (``p2p_energy_kwh``, ``office_peak_kw_p2p``,
``co2_reduction_pct``); :class:`FigureStyle` reads the unit from the name's words and rounds:

==================== ============================== ================================
unit (word in name)  for people (report, CLI)        for machines (``results.json``)
==================== ============================== ================================
``per_kwh`` (price)  the market's tick: 21.23 JPY/kWh the tick plus two digits (21.2265)
``kwh``              0.1 kWh: 2,363.5 kWh            0.001 kWh (the Wh, exact)
``kw``               0.1 kW: 93.2 kW                 0.001 kW (the W)
``pct``              0.1 %: -50.0 %                  0.1
``share``,           0.1 %: 40.5 %                   a fraction to 0.0001 (0.01 %)
``sufficiency``
``kg``               1 kg: 1,235 kg                  0.1 kg
money                the currency's minor unit       exact decimals (bills, ``participants``)
counts (int)         1: 11,123                       as they are
==================== ============================== ================================

Figures of other names keep four significant digits. ``None`` is printed as ``-``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import TYPE_CHECKING

from p2penergy.market import MarketSettings
from p2penergy.market.settings import tick_decimals
from p2penergy.sim.results import DEMONSTRATION_KPIS, Flow
from p2penergy.tariffs.money import minor_unit

if TYPE_CHECKING:
    from p2penergy.sim.simulate import Simulation

Number = int | float | None


@dataclass(frozen=True, slots=True)
class FigureStyle:
    """How a run's figures are rounded: prices to the market's tick, money to its currency."""

    currency: str
    price_tick_per_kwh: Decimal

    @classmethod
    def of(cls, settings: MarketSettings) -> FigureStyle:
        return cls(settings.currency, settings.price_tick_per_kwh)

    @property
    def price_decimals(self) -> int:
        """Digits after the point of the market's price tick (0.01 → 2, 0.0001 → 4)."""
        return tick_decimals(self.price_tick_per_kwh)

    @property
    def price_number_decimals(self) -> int:
        """Digits of a price in ``results.json``: the tick's and two more (a VWAP is not on the tick)."""
        return self.price_decimals + 2

    def unit(self, name: str) -> str:
        """The kind of quantity ``name`` holds: price, kwh, kw, pct, fraction, kg or other."""
        words = name.lower().split("_")
        if any(a == "per" and b == "kwh" for a, b in pairwise(words)):
            return "price"
        for word, kind in (("kwh", "kwh"), ("kw", "kw"), ("pct", "pct"), ("share", "fraction"),
                           ("sufficiency", "fraction"), ("kg", "kg")):
            if word in words:
                return kind
        return "other"

    def number(self, name: str, value: Number) -> Number:
        """``value`` rounded for ``results.json`` (a number, not text)."""
        if value is None or isinstance(value, (bool, int)):
            return value
        digits = {"price": self.price_number_decimals, "kwh": 3, "kw": 3, "pct": 1, "fraction": 4, "kg": 1}
        kind = self.unit(name)
        if kind in digits:
            return round(float(value), digits[kind])
        return float(f"{value:.4g}")

    def text(self, name: str, value: Number) -> str:
        """``value`` for people, with its unit."""
        if value is None:
            return "-"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        kind = self.unit(name)
        if kind == "price":
            return self.price(value)
        if kind == "kwh":
            return f"{value:,.1f} kWh"
        if kind == "kw":
            return f"{value:,.1f} kW"
        if kind == "pct":
            return f"{value:.1f} %"
        if kind == "fraction":
            return f"{value * 100:.1f} %"
        if kind == "kg":
            return f"{value:,.0f} kg"
        return f"{value:,.4g}"

    def price(self, value: float | Decimal, unit: bool = True) -> str:
        """A price per kWh at the market's tick (21.23 JPY/kWh)."""
        text = f"{float(value):,.{self.price_decimals}f}"
        return f"{text} {self.currency}/kWh" if unit else text

    def money(self, amount: Decimal, unit: bool = True) -> str:
        """An amount at the currency's minor unit, rounded half up (207,427 JPY; -1,234.57 EUR)."""
        step = minor_unit(self.currency)
        text = f"{Decimal(amount).quantize(step, rounding=ROUND_HALF_UP):,.{tick_decimals(step)}f}"
        return f"{text} {self.currency}" if unit else text


def key_figures(sim: Simulation) -> list[tuple[str, str]]:
    """The run's key figures as (label, text), the same in the report, the CLI and ``results.json``.

    The demonstration's published figures stand beside them only for a run of its community
    and month (:func:`p2penergy.sim.results.reproduces_demonstration`)."""
    style = FigureStyle.of(sim.community.settings)
    k = sim.kpis
    demo = sim.reproduces_demonstration

    def t(name: str) -> str:
        return style.text(name, k.get(name))

    def change(before: str, after: str) -> str:
        return f"{t(before)} -> {t(after)}"

    def published(name: str, sep: str) -> str:
        """The demonstration's figure for ``name``, after ``sep``, or nothing."""
        if not demo or name not in DEMONSTRATION_KPIS:
            return ""
        return f"{sep}demonstration {style.text(name, DEMONSTRATION_KPIS[name])}"

    driving = "car_renewable_driving_share"
    market = [
        ("energy traded P2P", f"{t('p2p_energy_kwh')} in {t('p2p_trades')} trades"),
        ("volume-weighted P2P price", t("p2p_vwap_per_kwh")),
        ("community self-sufficiency", change("self_sufficiency_baseline", "self_sufficiency_p2p")),
        ("office peak", change("office_peak_kw_baseline", "office_peak_kw_p2p")),
        ("CO2 (community)", f"{change('co2_kg_baseline', 'co2_kg_p2p')} (reduction {t('co2_reduction_pct')})"),
        ("CO2 (cars)", f"{change('car_co2_kg_baseline', 'car_co2_kg_p2p')} (reduction {t('car_co2_reduction_pct')}"
                       f"{published('car_co2_reduction_pct', '; ')})"),
        ("renewable share of cars' driving", t(driving) + (f" ({published(driving, '')})" if demo else "")),
    ]
    fees = sim.grid_fees
    if fees is not None and sim.community.settings.grid_fees.charged:
        kwh = ", ".join(f"{d.replace('_', ' ')} {wh / 1000:,.1f} kWh" for d, wh in fees.energy_wh.items())
        market.append(("grid fees on P2P trades", f"{style.money(fees.total)} ({kwh})"))
    return market + network_figures(sim)


def network_figures(sim: Simulation) -> list[tuple[str, str]]:
    """The feeder's figures, baseline -> P2P (none for a scenario without a feeder)."""
    if sim.network is None:
        return []
    fig = sim.network.figures()
    b, p = fig["baseline"], fig["p2p"]
    band = sim.network.feeder.band
    return [
        ("feeder voltage (lowest–highest bus)", f"{b['v_min_pu']:.3f}–{b['v_max_pu']:.3f} p.u. -> "
                                                f"{p['v_min_pu']:.3f}–{p['v_max_pu']:.3f} p.u. "
                                                f"(band {band.min_pu:.2f}–{band.max_pu:.2f})"),
        ("hours with a bus outside the voltage band", f"{b['hours_outside_limits']:,.1f} h -> "
                                                     f"{p['hours_outside_limits']:,.1f} h"),
        ("peak loading: transformer, most loaded line",
         f"{b['peak_transformer_loading_pct']:.1f} %, {b['peak_line_loading_pct']:.1f} % -> "
         f"{p['peak_transformer_loading_pct']:.1f} %, {p['peak_line_loading_pct']:.1f} %"),
        ("feeder losses", f"{b['losses_kwh']:,.1f} kWh -> {p['losses_kwh']:,.1f} kWh"),
    ]


FLOW_COLUMNS = ("seller type", "buyer type", "energy", "share of P2P energy", "volume-weighted price")


def flow_rows(flows: list[Flow], style: FigureStyle) -> list[tuple[str, str, str, str, str]]:
    """The run's flows between participant types as text rows (columns: ``FLOW_COLUMNS``)."""
    total_wh = sum(f.energy_wh for f in flows)
    return [(f.seller_type, f.buyer_type, f"{f.energy_wh / 1000:,.1f} kWh", f"{f.energy_wh / total_wh * 100:.1f} %",
             style.price(f.vwap_per_kwh)) for f in flows]
