"""Flow (Sankey) diagram of where certified energy went: sources → (storage) → consumers.

Left: one node per origin, ``"solar · house-07"`` (``by="producer"``) or ``"solar"``
(``by="source"``), and ``"grid"`` for use not covered by certificates. Middle: ``"storage"``
for certificates that passed through a battery or a car battery before their end. Right:
one node per consuming participant, ``"grid export"`` and ``"storage losses"``. Link values
are Wh. Built from certificate events only; :func:`sankey_figure` turns the data into a
plotly figure (plotly is imported only there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GRID_NODE = "grid"
STORAGE_NODE = "storage"
EXPORT_NODE = "grid export"
LOSS_NODE = "storage losses"


@dataclass(frozen=True, slots=True)
class SankeyData:
    """Node labels and links (``source``/``target`` index into ``labels``; ``value`` in Wh)."""

    labels: tuple[str, ...]
    source: tuple[int, ...]
    target: tuple[int, ...]
    value: tuple[int, ...]

    def links(self) -> dict[tuple[str, str], int]:
        """Links by label pair, for reading and testing."""
        return {(self.labels[s], self.labels[t]): v for s, t, v in zip(self.source, self.target, self.value,
                                                                         strict=True)}


def sankey_data(events: Iterable[Mapping[str, Any]], by: str = "producer") -> SankeyData:
    """Aggregate certificate ends (cancel, export, loss) and uncovered use into links."""
    if by not in ("producer", "source"):
        raise ValueError(f"by: must be 'producer' or 'source', got {by!r}")
    flows: dict[tuple[str, str], int] = {}
    use: dict[str, int] = {}
    claimed: dict[str, int] = {}

    def add(a: str, b: str, wh: int) -> None:
        if wh > 0:
            flows[(a, b)] = flows.get((a, b), 0) + wh

    for e in events:
        kind = e["kind"]
        if kind == "meter":
            use[e["from_holder"]] = use.get(e["from_holder"], 0) + e["energy_wh"] + (e["drive_wh"] or 0)
            continue
        if kind not in ("cancel", "export", "loss"):
            continue
        origin = f"{e['source']} · {e['producer']}" if by == "producer" else e["source"]
        end = e["from_holder"] if kind == "cancel" else EXPORT_NODE if kind == "export" else LOSS_NODE
        wh = e["energy_wh"]
        if kind == "cancel":
            claimed[end] = claimed.get(end, 0) + wh
        if e["origin"] == "storage" or kind == "loss":
            add(origin, STORAGE_NODE, wh)
            add(STORAGE_NODE, end, wh)
        else:
            add(origin, end, wh)
    for p, wh in use.items():
        add(GRID_NODE, p, wh - claimed.get(p, 0))
    origins = sorted({a for a, _ in flows} - {STORAGE_NODE, GRID_NODE})
    ends = sorted({b for _, b in flows} - {STORAGE_NODE, EXPORT_NODE, LOSS_NODE})
    labels = [*origins]
    labels += [n for n in (GRID_NODE, STORAGE_NODE) if any(n in pair for pair in flows)]
    labels += ends + [n for n in (EXPORT_NODE, LOSS_NODE) if any(b == n for _, b in flows)]
    index = {label: i for i, label in enumerate(labels)}
    ordered = sorted(flows.items(), key=lambda kv: (index[kv[0][0]], index[kv[0][1]]))
    return SankeyData(
        labels=tuple(labels),
        source=tuple(index[a] for (a, _), _ in ordered),
        target=tuple(index[b] for (_, b), _ in ordered),
        value=tuple(v for _, v in ordered),
    )


def sankey_figure(data: SankeyData, title: str = "Where the energy came from (kWh)") -> Any:
    """A ``plotly.graph_objects.Figure`` of ``data`` (values shown in kWh)."""
    import plotly.graph_objects as go

    return go.Figure(go.Sankey(
        node={"label": list(data.labels), "pad": 12, "thickness": 14},
        link={"source": list(data.source), "target": list(data.target), "value": [v / 1000 for v in data.value]},
    ), layout={"title": {"text": title}})
