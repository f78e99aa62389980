"""Flow (Sankey) diagram of where certified energy went: sources → (storage) → consumers.

Left: one node per origin, ``"solar · house-07"`` (``by="producer"``) or ``"solar"``
(``by="source"``), and ``"grid"`` for use not covered by certificates. Middle: ``"storage"``
for certificates that passed through a battery or a car battery before their end. Right:
one node per consuming participant, ``"grid export"`` and ``"storage losses"``. Link values
are Wh. Built from certificate events only; ``group`` maps each participant to a group
(e.g. its type: ``"solar · prosumer"`` → ``"car"``) so a large community stays readable.
:func:`sankey_links` makes the same data from any links (e.g. P2P flows between types);
:func:`sankey_figure` and :func:`sankey_views` (several diagrams with buttons to switch)
turn them into plotly figures (plotly is imported only there).
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


def sankey_data(events: Iterable[Mapping[str, Any]], by: str = "producer",
                group: Mapping[str, str] | None = None) -> SankeyData:
    """Aggregate certificate ends (cancel, export, loss) and uncovered use into links.

    ``group``: participant → the node it is drawn as (producers and consumers alike); every
    participant of the events must have one. ``None``: one node per participant."""
    if by not in ("producer", "source"):
        raise ValueError(f"by: must be 'producer' or 'source', got {by!r}")

    def node(participant: str) -> str:
        if group is None:
            return participant
        if participant not in group:
            raise ValueError(f"group: participant {participant!r} has no group")
        return group[participant]

    flows: dict[tuple[str, str], int] = {}
    use: dict[str, int] = {}
    claimed: dict[str, int] = {}

    def add(a: str, b: str, wh: int) -> None:
        if wh > 0:
            flows[(a, b)] = flows.get((a, b), 0) + wh

    for e in events:
        kind = e["kind"]
        if kind == "meter":
            holder = node(e["from_holder"])
            use[holder] = use.get(holder, 0) + e["energy_wh"] + (e["drive_wh"] or 0)
            continue
        if kind not in ("cancel", "export", "loss"):
            continue
        origin = f"{e['source']} · {node(e['producer'])}" if by == "producer" else e["source"]
        end = node(e["from_holder"]) if kind == "cancel" else EXPORT_NODE if kind == "export" else LOSS_NODE
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


def sankey_links(links: Mapping[tuple[str, str], int]) -> SankeyData:
    """Sankey data of ``(from, to) → Wh`` links; nodes in the order they are first named."""
    labels: dict[str, int] = {}
    for a, b in links:
        labels.setdefault(a, len(labels))
        labels.setdefault(b, len(labels))
    return SankeyData(labels=tuple(labels), source=tuple(labels[a] for a, _ in links),
                      target=tuple(labels[b] for _, b in links), value=tuple(links.values()))


def sankey_figure(data: SankeyData, title: str = "Where the energy came from (kWh)") -> Any:
    """A ``plotly.graph_objects.Figure`` of ``data`` (values shown in kWh)."""
    return sankey_views({title: data}, title)


def sankey_views(views: Mapping[str, SankeyData], title: str) -> Any:
    """One figure of several Sankey diagrams, the first shown, with a button per view name to
    switch (e.g. by participant type / per site). Values shown in kWh."""
    import plotly.graph_objects as go

    if not views:
        raise ValueError("views: at least one diagram is needed")
    figure = go.Figure(layout={"title": {"text": title}})
    for k, data in enumerate(views.values()):
        figure.add_trace(go.Sankey(
            visible=k == 0, valueformat=",.1f", valuesuffix=" kWh",
            node={"label": list(data.labels), "pad": 12, "thickness": 14},
            link={"source": list(data.source), "target": list(data.target),
                  "value": [v / 1000 for v in data.value]},
        ))
    if len(views) > 1:
        figure.update_layout(updatemenus=[{
            "type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.08, "yanchor": "bottom",
            "buttons": [{"label": name, "method": "update",
                         "args": [{"visible": [j == k for j in range(len(views))]}]}
                        for k, name in enumerate(views)],
        }], margin={"t": 110})
    return figure
