"""Text files a user gives a command (scenario and market TOML, order and meter CSV, keystores,
a run's ledger): read as UTF-8, and one error type for a file that is unusable.

:class:`InputFileError` names the file, the line where the format has lines and the fault is on
one, the field, and what is allowed. It is deliberately not a ``ValueError``: no caller's
``except ValueError`` takes it for a bad option; the command line reports it in one place
(``cli/output.py``) as one line and exit code 2.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

UTF8_BOM = "\ufeff"
# where tomllib (Python 3.11) puts the position of a syntax error: "... (at line 3, column 5)"
_TOML_AT = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$", re.S)


class InputFileError(Exception):
    """A file given to a command is unusable: ``path``, ``line`` (1-based; ``None`` where the
    format has no lines or the fault is not on one), ``field`` and what is ``allowed``."""

    def __init__(self, path: str | Path, line: int | None, field: str, allowed: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.allowed = allowed
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {field}: must be {allowed}")


def read_text(path: str | Path) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark, as spreadsheets write, is
    dropped). A byte that is not UTF-8 raises :class:`InputFileError` naming its line and column;
    ``OSError`` (missing, unreadable) is left to the caller, which knows the option to name."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputFileError(path, line, "encoding", f"UTF-8 text (byte 0x{data[exc.start]:02x} at column "
                                                     f"{column} is not; save the file as UTF-8)") from None
    return text.removeprefix(UTF8_BOM)


def read_json(path: str | Path) -> Any:
    """The file's JSON document; invalid JSON raises :class:`InputFileError` naming the line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, exc.lineno, "file", f"JSON ({exc.msg} at column {exc.colno})") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's TOML document; invalid TOML raises :class:`InputFileError` naming the line."""
    return parse_toml(read_text(path), path)


def parse_toml(text: str, path: str | Path) -> dict[str, Any]:
    """``text`` (the content of ``path``) as a TOML document; see :func:`read_toml`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = _TOML_AT.match(str(exc))
        if at is None:  # "at end of document"
            raise InputFileError(path, None, "file", f"valid TOML ({exc})") from None
        raise InputFileError(path, int(at.group(2)), "file",
                             f"valid TOML ({at.group(1)} at column {at.group(3)})") from None


# a TOML table header ("[a.b]", "[[a.b]]") and a key line ("key = ...", "a.b = ...", '"key" = ...')
_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_NAME = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_TOML_KEY = re.compile(rf"^\s*({_TOML_NAME}(?:\s*\.\s*{_TOML_NAME})*)\s*=")
# a key path as the loaders name it: "homes[3] (house-04).pv.kwp", "market.slot_minutes"
_PATH_PART = re.compile(r"([^.\[\]\s]+)|\[(\d+)\]")


def _toml_names(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in dotted.split(".")]


def toml_key_line(text: str, key: str) -> int | None:
    """The line (1-based) of ``text`` that sets ``key`` — a dotted path with array indices, as
    :class:`InputFileError` and the scenario loader name fields (``homes[3] (house-04).pv.kwp``) —
    or, for a key inside an inline table or array, the line of the nearest enclosing key or
    ``[[table]]`` header that the file writes out. ``None`` where the file does not write it
    (a missing key). Line-based: enough to point a person at the line, not a TOML parser."""
    plain = re.sub(r"\s*\([^)]*\)", "", key)  # "homes[3] (house-04)": the id is a reader's aid
    target: list[str | int] = [int(i) if i else name for name, i in _PATH_PART.findall(plain)]
    table: list[str | int] = []
    counts: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (length of the matched prefix, line)
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(line)
        if header:
            names = _toml_names(header.group(2))
            if header.group(1) == "[[":
                index = counts[tuple(names)] = counts.get(tuple(names), -1) + 1
                table = [*names, index]
            else:
                table = list(names)
            full = table
        else:
            assigned = _TOML_KEY.match(line)
            if not assigned:
                continue
            full = [*table, *_toml_names(assigned.group(1))]
        if full and full == target[:len(full)] and (best is None or len(full) > best[0]):
            best = (len(full), number)
            if len(full) == len(target):
                break
    return best[1] if best is not None else None
