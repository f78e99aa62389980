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
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = _TOML_AT.match(str(exc))
        if at is None:  # "at end of document"
            raise InputFileError(path, None, "file", f"valid TOML ({exc})") from None
        raise InputFileError(path, int(at.group(2)), "file",
                             f"valid TOML ({at.group(1)} at column {at.group(3)})") from None
