"""The sweep file: a base scenario and its axes, expanded into points (docs/sweep.md).

::

    scenario = "higashi-fuji-2020"   # a shipped scenario's name, or a TOML path (relative to this file)
    days = 2                         # each run shortened as `simulate --days` does
    [axes]                           # a grid: every combination
    seed = [1, 2]
    mechanism = ["cda", "pay-as-clear"]
    market.slot_minutes = [30, 60]   # any scenario setting by its dotted path
    community.homes = [20, 100]      # the community generator (scenario/synthetic.py)

or ``[[points]]`` tables, each one point (combined with the grid when both are given). Every
point is checked before anything runs: a bad value is an error naming the sweep file's field.
Each point carries the content hash of its whole configuration (the scenario it runs, after
its settings, and the run options): a sweep resumes by it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from p2penergy.scenario.load import SHIPPED, ScenarioError, parse_scenario, shipped_path
from p2penergy.scenario.synthetic import CommunityError, generate_community
from p2penergy.textfile import read_toml

# run options a point may set (axes, points or the file's top level), with what each accepts
OPTION_KEYS = ("seed", "mechanism", "agents", "green", "period", "days", "first_day", "history_days",
               "baseline_export_credit")
MECHANISMS = ("cda", "pay-as-clear", "pay-as-bid")
TOP_KEYS = ("scenario", "ledger", "report", "forecast_workers", "plan_workers", "community", "axes", "points",
            *OPTION_KEYS)
SCENARIO_ROOTS = ("scenario", "location", "period", "market", "emissions", "weather", "calendar", "tariffs",
                  "baseline", "home_types", "phv", "homes", "office", "cars")
# bump when a point's results change meaning for the same configuration (resume compares the hash)
CONFIG_FORMAT = 1
_INDEX = re.compile(r"^([A-Za-z_][\w-]*)\[(\d+)\]$")


class SweepError(ValueError):
    """The sweep file is invalid: ``key`` names its field (``axes.market.slot_minutes[1]``)."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


@dataclass(frozen=True, slots=True)
class Point:
    """One run of a sweep: its settings (``values``, by axis name), the scenario mapping it runs
    and the run options; ``key`` is the content hash of both."""

    values: dict[str, Any]
    scenario_data: dict[str, Any]
    base_dir: Path | None
    options: dict[str, Any]
    key: str
    label: str

    @property
    def short(self) -> str:
        return self.key[:12]


@dataclass(frozen=True, slots=True)
class Sweep:
    """A parsed sweep file: where it came from, its axis names (in order) and its points."""

    source: str
    scenario: str
    axes: tuple[str, ...]
    points: tuple[Point, ...]
    ledger: bool = False
    report: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    forecast_workers: int = 1
    """Each point's forecasting steps split across this many tasks on the cluster (the same
    results, so not part of a point's hash: docs/sweep.md)."""
    plan_workers: int = 1
    """Each point's planning steps made ahead in this many tasks on the cluster (the same results,
    so not part of a point's hash: docs/sweep.md)."""


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file (every point); raises :class:`SweepError` naming the field."""
    file = Path(path)
    try:
        data = read_toml(file)  # not UTF-8 or not TOML: InputFileError naming the line (cli/output.py reports it)
    except OSError as exc:
        raise SweepError(str(file), "", f"cannot read ({exc.strerror})") from exc
    return parse_sweep(data, str(file), file.resolve().parent)


def parse_sweep(data: dict[str, Any], source: str = "<sweep>", base_dir: Path | None = None) -> Sweep:
    """Expand a sweep mapping into its points, checking each (the scenario it builds too)."""
    for key in data:
        if key not in TOP_KEYS:
            raise SweepError(source, key, f"unknown key; known: {', '.join(TOP_KEYS)}")
    scenario_ref = data.get("scenario", SHIPPED.removesuffix(".toml"))
    if not isinstance(scenario_ref, str) or not scenario_ref:
        raise SweepError(source, "scenario", "must be a shipped scenario's name or a path to a scenario TOML")
    scenario_file = _scenario_file(scenario_ref, base_dir, source)
    try:
        base = read_toml(scenario_file)
    except OSError as exc:
        raise SweepError(source, "scenario", f"cannot read {scenario_file} ({exc.strerror})") from exc
    flags = {}
    for name in ("ledger", "report"):
        value = data.get(name, name == "report")
        if not isinstance(value, bool):
            raise SweepError(source, name, f"must be true or false, got {value!r}")
        flags[name] = value
    workers = {}
    for name in ("forecast_workers", "plan_workers"):
        value = data.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SweepError(source, name, f"must be a whole number, at least 1, got {value!r}")
        workers[name] = value
    fixed = {k: data[k] for k in OPTION_KEYS if k in data}
    community = data.get("community", {})
    if not isinstance(community, dict):
        raise SweepError(source, "community", "must be a table of generator settings (homes, shares)")
    fixed.update({f"community.{k}": v for k, v in _flatten(community).items()})
    grid = _grid(data.get("axes", {}), source)
    listed = _listed(data.get("points", [{}]), source)
    axes: list[str] = []
    for name in [*(k for p in listed for k in p), *grid]:
        if name not in axes:
            axes.append(name)
    combos = list(itertools.product(*(list(enumerate(v)) for v in grid.values())))
    points: list[Point] = []
    seen: dict[str, str] = {}
    for i, point in enumerate(listed):
        for combo in combos:
            values = dict(point)
            where = {name: f"points[{i}].{name}" for name in point}
            for name, (j, value) in zip(grid, combo, strict=True):
                if name in values:
                    raise SweepError(source, f"points[{i}].{name}", "also an axis of [axes]: set it in one place")
                values[name] = value
                where[name] = f"axes.{name}[{j}]"
            built = _point({**fixed, **values}, values, where, base, scenario_file, source)
            if built.key in seen:
                raise SweepError(source, "points" if len(listed) > 1 else "axes",
                                 f"two points run the same configuration ({seen[built.key]} and {built.label})")
            seen[built.key] = built.label
            points.append(built)
    return Sweep(source, scenario_ref, tuple(axes), tuple(points), flags["ledger"], flags["report"], fixed,
                 **workers)


def point_key(scenario_data: dict[str, Any], options: dict[str, Any]) -> str:
    """Content hash (SHA-256) of a point's whole configuration."""
    doc = {"format": CONFIG_FORMAT, "scenario": scenario_data, "options": options}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


def _scenario_file(ref: str, base_dir: Path | None, source: str) -> Path:
    shipped = shipped_path(f"{ref}.toml") if "/" not in ref and not ref.endswith(".toml") else None
    if shipped is not None and shipped.exists():
        return shipped
    path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise SweepError(source, "scenario", f"{ref!r} is neither a shipped scenario ("
                         f"{SHIPPED.removesuffix('.toml')}) nor a scenario file ({path} not found)")
    return path


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables as dotted names (``market.slot_minutes``); a ``shares`` table stays whole
    only when given as a value (an inline table in a list)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _grid(axes: Any, source: str) -> dict[str, list[Any]]:
    if not isinstance(axes, dict):
        raise SweepError(source, "axes", "must be a table of axis = [values]")
    grid = _flatten(axes)
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(source, f"axes.{name}", f"must be a non-empty list of values, got {values!r}")
        _check_name(name, f"axes.{name}", source)
    return grid


def _listed(points: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise SweepError(source, "points", "must be a non-empty list of tables ([[points]])")
    out = []
    for i, point in enumerate(points):
        flat = _flatten(point)
        for name in flat:
            _check_name(name, f"points[{i}].{name}", source)
        out.append(flat)
    return out


def _check_name(name: str, where: str, source: str) -> None:
    root = _INDEX.sub(r"\1", name.split(".", 1)[0])
    if name in OPTION_KEYS or root in SCENARIO_ROOTS or root == "community":
        return
    raise SweepError(source, where, f"unknown axis; an axis is a run option ({', '.join(OPTION_KEYS)}), "
                                    "community.homes / community.shares.<type>, or a scenario setting by "
                                    f"its dotted path ({', '.join(SCENARIO_ROOTS)}.…)")


def _point(values: dict[str, Any], shown: dict[str, Any], where: dict[str, str], base: dict[str, Any],
           scenario_file: Path, source: str) -> Point:
    def at(name: str) -> str:
        return where.get(name, name)

    data = base
    community = {k.removeprefix("community."): v for k, v in values.items() if k.startswith("community.")}
    if community:
        nested: dict[str, Any] = {}
        for k, v in community.items():
            _set(nested, k.split("."), v)
        try:
            data = generate_community(data, nested)
        except CommunityError as exc:
            name = next((n for n in values if n == f"community.{exc.key}" or n.startswith(f"community.{exc.key}")),
                        f"community.{exc.key}")
            raise SweepError(source, at(name), exc.message) from None
    else:
        data = copy.deepcopy(base)
    for name, value in values.items():
        if name in OPTION_KEYS or name.startswith("community."):
            continue
        try:
            _set(data, _path(name), value, create=False)
        except KeyError as exc:
            raise SweepError(source, at(name), f"the scenario has no setting {exc.args[0]!r}") from None
    options = _options(values, at, source)
    try:
        scenario = parse_scenario(data, f"{source} ({scenario_file.name})", scenario_file.parent)
    except ScenarioError as exc:
        name = next((n for n in values if exc.key == n or exc.key.startswith(f"{n}.") or exc.key.startswith(f"{n}[")),
                    None)
        raise SweepError(source, at(name) if name else "scenario",
                         f"the point's scenario is invalid: {exc.key}: {exc.message}") from None
    if options["mechanism"] is None:
        options["mechanism"] = scenario.market.mechanism
    if options["seed"] is None:
        options["seed"] = scenario.scenario.seed
    if options["baseline_export_credit"] is not None:
        try:
            scenario.with_baseline_export_credit(options["baseline_export_credit"], "baseline_export_credit")
        except ValueError as exc:
            raise SweepError(source, at("baseline_export_credit"), str(exc).split(": ", 1)[-1]) from None
    key = point_key(data, options)
    label = ", ".join(f"{k}={_text(v)}" for k, v in shown.items()) or "base"
    return Point(shown, data, scenario_file.parent, options, key, label)


def _options(values: dict[str, Any], at: Any, source: str) -> dict[str, Any]:
    opts: dict[str, Any] = {"seed": None, "mechanism": None, "agents": "demonstration", "green": False,
                            "period": None, "days": None, "first_day": 1, "history_days": 42,
                            "baseline_export_credit": None}
    from p2penergy.sim.simulate import AGENT_MODES

    for name in OPTION_KEYS:
        if name not in values:
            continue
        v = values[name]
        bad = None
        if name == "seed" and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            bad = "a whole number ≥ 0"
        elif name == "mechanism" and v not in MECHANISMS:
            bad = f"one of {', '.join(MECHANISMS)}"
        elif name == "agents" and v not in AGENT_MODES:
            bad = f"one of {', '.join(AGENT_MODES)}"
        elif name == "green" and not isinstance(v, bool):
            bad = "true or false"
        elif name == "period":
            try:
                date.fromisoformat(f"{v}-01") if isinstance(v, str) else None
            except ValueError:
                v = None
            if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}", v):
                bad = "a month as \"YYYY-MM\""
        elif name == "days" and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 31):
            bad = "a whole number of days from 1 to 31"
        elif name == "first_day" and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 31):
            bad = "a day of the month from 1 to 31"
        elif name == "history_days" and (isinstance(v, bool) or not isinstance(v, int) or not 8 <= v <= 366):
            bad = "a whole number of days from 8 to 366 (the forecasters need at least 7 days before the cutoff)"
        elif name == "baseline_export_credit" and not isinstance(v, str):
            bad = "a text (own-scheme, none or a buyback scheme)"
        if bad:
            raise SweepError(source, at(name), f"must be {bad}, got {values[name]!r}")
        opts[name] = v
    return opts


def _path(name: str) -> list[str | int]:
    parts: list[str | int] = []
    for part in name.split("."):
        m = _INDEX.match(part)
        if m:
            parts += [m.group(1), int(m.group(2))]
        else:
            parts.append(part)
    return parts


def _set(data: Any, path: list[Any], value: Any, create: bool = True) -> None:
    node = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise KeyError(".".join(map(str, path[: i + 1])))
        elif not isinstance(node, dict) or (part not in node and not (create or last)):
            raise KeyError(".".join(map(str, path[: i + 1])))
        if last:
            node[part] = value
        else:
            if not isinstance(part, int) and part not in node:
                node[part] = {}
            node = node[part]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {value!r}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=_jsonable, separators=(",", ":"))
