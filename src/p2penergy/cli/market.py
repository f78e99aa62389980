"""``p2penergy market``: clear order files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2penergy.cli.output import fail, wide_console

if TYPE_CHECKING:  # imported when the command runs, not to parse its arguments (tests/cli/test_startup.py)
    from p2penergy.market import MarketSettings
    from p2penergy.market.batch import BatchResult

app = typer.Typer(no_args_is_help=True, help="Clear orders on the exchange.")


def load_market(path: Path | None) -> MarketSettings:
    from p2penergy.market import FieldError, MarketSettings

    try:
        return MarketSettings.from_toml(path) if path else MarketSettings.demonstration()
    except FieldError as exc:
        raise fail(f"{path}: {exc}") from exc
    except OSError as exc:
        raise fail(f"{path}: cannot read ({exc.strerror})") from exc


@app.command("clear")
def clear(
    orders_csv: Annotated[Path, typer.Argument(help="Order file (see README, 'Order files').")],
    mechanism: Annotated[str, typer.Option(help="cda | pay-as-clear | pay-as-bid")] = "cda",
    market: Annotated[Path | None, typer.Option(help="Market settings TOML (default: the demonstration's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Clear an order file and print its trades and a summary."""
    from p2penergy.formats.orders_csv import RowError, read_orders
    from p2penergy.market import OrderRejected
    from p2penergy.market.batch import clear_batch

    if mechanism not in ("cda", "pay-as-clear", "pay-as-bid"):
        raise fail(f"--mechanism: must be cda, pay-as-clear or pay-as-bid, got {mechanism!r}")
    settings = load_market(market)
    try:
        rows = read_orders(orders_csv, settings)
    except RowError as exc:
        raise fail(f"{orders_csv}: {exc}") from exc
    line_of = {order.order_id: line for line, order in rows}
    try:
        result = clear_batch([order for _, order in rows], settings, mechanism)
    except OrderRejected as exc:
        raise fail(f"{orders_csv}: line {line_of.get(exc.order_id, '?')}: {exc.field}: {exc.reason}") from exc
    if as_json:
        typer.echo(json.dumps(result_json(result, settings)))
    else:
        print_result(result, settings)


def result_json(result: BatchResult, settings: MarketSettings) -> dict[str, object]:
    summary = result.summary
    uniform = result.clearing_price_per_kwh
    body: dict[str, object] = {
        "trades": [
            {
                "trade_id": t.trade_id, "slot_start": settings.local(t.slot_start).isoformat(),
                "buy_id": t.buy_id, "sell_id": t.sell_id, "buyer": t.buyer, "seller": t.seller,
                "energy_wh": t.energy_wh, "price_per_kwh": float(t.price_per_kwh),
                "premium_per_kwh": float(t.premium_per_kwh), "attributes": t.tag.as_dict(),
                "preference_level": t.preference_level,
            }
            for t in result.trades
        ],
        "summary": {
            "currency": settings.currency,
            "trades": summary.count,
            "volume_wh": summary.volume_wh,
            "amount": float(summary.amount),
            "vwap_per_kwh": float(summary.vwap_per_kwh) if summary.vwap_per_kwh is not None else None,
            "min_price_per_kwh": float(summary.min_price_per_kwh) if summary.min_price_per_kwh is not None else None,
            "max_price_per_kwh": float(summary.max_price_per_kwh) if summary.max_price_per_kwh is not None else None,
            "welfare": float(summary.welfare),
        },
    }
    if result.mechanism == "pay-as-clear":
        body["summary"]["clearing_price_per_kwh"] = float(uniform) if uniform is not None else None  # type: ignore[index]
        body["summary"]["clearing_prices"] = [  # type: ignore[index]
            {"slot_start": settings.local(slot).isoformat(), "attributes": tag.as_dict(),
             "price_per_kwh": float(price)}
            for slot, per_tag in sorted(result.clearing_prices.items())
            for tag, price in per_tag.items()
        ]
    return body


def print_result(result: BatchResult, settings: MarketSettings) -> None:
    from rich.table import Table

    console = wide_console()
    cur = settings.currency
    table = Table(title=f"Trades ({result.mechanism})")
    for column in ("trade", "slot", "buy", "sell", "Wh", f"price {cur}/kWh", f"premium {cur}/kWh", "tag"):
        table.add_column(column, justify="right" if column in ("Wh",) or cur in column else "left")
    for t in result.trades:
        table.add_row(
            t.trade_id, settings.local(t.slot_start).strftime("%Y-%m-%d %H:%M%z"), t.buy_id, t.sell_id,
            str(t.energy_wh), str(t.price_per_kwh), str(t.premium_per_kwh), str(t.tag),
        )
    console.print(table)
    s = result.summary
    summary = Table(title="Summary", show_header=False)
    summary.add_row("trades", str(s.count))
    summary.add_row("volume", f"{s.volume_wh} Wh")
    summary.add_row("volume-weighted price", f"{s.vwap_per_kwh:.4f} {cur}/kWh" if s.vwap_per_kwh is not None else "-")
    summary.add_row("min / max price", f"{s.min_price_per_kwh} / {s.max_price_per_kwh} {cur}/kWh" if s.count else "-")
    summary.add_row("amount paid", f"{s.amount} {cur}")
    summary.add_row("welfare", f"{s.welfare} {cur}")
    if result.mechanism == "pay-as-clear":
        for slot, per_tag in sorted(result.clearing_prices.items()):
            for tag, price in per_tag.items():
                summary.add_row(f"clearing price {settings.local(slot):%H:%M%z} {tag}", f"{price} {cur}/kWh")
    console.print(summary)
