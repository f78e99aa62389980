"""Read a scenario TOML file into a validated :class:`Scenario`; errors name the key."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from p2penergy.scenario.model import Scenario
from p2penergy.textfile import parse_toml, read_text, toml_key_line

SHIPPED = "higashi-fuji-2020.toml"
# a validator's message that starts with the key it is about: "pv: required for …", "cars[2].owner: …"
_KEYED = re.compile(r"^([A-Za-z_][\w-]*(?:\[\d+\])?(?:\.[A-Za-z0-9_][\w-]*(?:\[\d+\])?)*): (.+)$", re.S)


class ScenarioError(ValueError):
    """The scenario is invalid: ``key`` names the dotted path at fault (e.g. ``homes[3].pv.kwp``)."""

    def __init__(self, source: str, key: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.key = key
        self.message = message
        self.line = line
        where = f"{source}: line {line}" if line is not None else source
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


def shipped_path(name: str = SHIPPED) -> Path:
    """Path of a scenario shipped inside the package (``p2penergy/data/scenarios``)."""
    return Path(str(resources.files("p2penergy") / "data" / "scenarios" / name))


def _key(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and "id" in node[item]:
                label += f" ({node[item]['id']})"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def parse_scenario(data: dict[str, Any], source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a mapping (a parsed TOML document); raises :class:`ScenarioError` naming the first bad key."""
    if "base_dir" in data:
        raise ScenarioError(source, "base_dir", "not a scenario key (it is set from the file's location)")
    try:
        return Scenario.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key(tuple(err["loc"]), data)
        message = str(err["msg"]).removeprefix("Value error, ")
        keyed = _KEYED.match(message) if err["type"] == "value_error" else None
        if keyed:
            key = f"{key}.{keyed.group(1)}" if key else keyed.group(1)
            message = keyed.group(2)
        if err["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against docs/scenario.md)"
        elif err["type"] == "missing":
            message = "required key is missing"
        raise ScenarioError(source, key, message) from None


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario file; ``None`` reads the shipped Higashi-Fuji 2020 scenario."""
    file = shipped_path() if path is None else Path(path)
    try:
        text = read_text(file)  # not UTF-8: InputFileError naming the line
    except OSError as exc:
        raise ScenarioError(str(file), "", f"cannot read ({exc.strerror})") from exc
    data = parse_toml(text, file)  # not TOML: InputFileError naming the line
    try:
        return parse_scenario(data, str(file), file.resolve().parent)
    except ScenarioError as exc:  # the same error, with the line that sets the key
        raise ScenarioError(exc.source, exc.key, exc.message, toml_key_line(text, exc.key) if exc.key else None) \
            from None
