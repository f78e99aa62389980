"""Certificate files: ``RUN_DIR/certificates.csv``, one certificate event per row.

The header is exactly :data:`p2penergy.provenance.EVENT_FIELDS`; an empty cell is ``None``;
the columns in :data:`p2penergy.provenance.INT_FIELDS` are whole numbers; times are ISO 8601
with offset. Rows are in settlement order (slot by slot, as the registry emitted them).
A plain CSV so that any spreadsheet or auditor can read it without our code.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from p2penergy.provenance import EVENT_FIELDS, INT_FIELDS, KINDS
from p2penergy.textfile import read_text

FILE_NAME = "certificates.csv"


class CertificateFileError(ValueError):
    """A certificate file is invalid: ``line`` (1-based; the header is line 1) and ``field``."""

    def __init__(self, path: Path, line: int, field: str, allowed: str) -> None:
        self.line = line
        self.field = field
        super().__init__(f"{path}: line {line}: {field}: must be {allowed}")


def certificates_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / FILE_NAME


def write_certificates(run_dir: str | Path, events: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``events`` to ``RUN_DIR/certificates.csv`` (replacing it); returns the path."""
    path = certificates_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(EVENT_FIELDS)
        writer.writerows(["" if e[f] is None else e[f] for f in EVENT_FIELDS] for e in events)
    return path


def read_certificates(run_dir: str | Path) -> list[dict[str, Any]]:
    """Read ``RUN_DIR/certificates.csv`` back into event dicts equal to those written."""
    path = certificates_path(run_dir)
    try:
        text = read_text(path)  # not UTF-8: InputFileError naming the line
    except OSError as exc:
        raise CertificateFileError(path, 0, "file", f"a readable file ({exc.strerror})") from exc
    with io.StringIO(text, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != EVENT_FIELDS:
            raise CertificateFileError(path, 1, "header", f"exactly {','.join(EVENT_FIELDS)}")
        int_index = [EVENT_FIELDS.index(f) for f in INT_FIELDS]
        events: list[dict[str, Any]] = []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(EVENT_FIELDS):
                raise CertificateFileError(path, line, "row", f"{len(EVENT_FIELDS)} cells, got {len(row)}")
            values: list[Any] = [cell if cell != "" else None for cell in row]
            for i in int_index:
                if values[i] is not None:
                    try:
                        values[i] = int(values[i])
                    except ValueError as exc:
                        raise CertificateFileError(path, line, EVENT_FIELDS[i], f"a whole number, got {row[i]!r}") \
                            from exc
            if values[0] not in KINDS:
                raise CertificateFileError(path, line, "kind", f"one of {', '.join(KINDS)}, got {row[0]!r}")
            events.append(dict(zip(EVENT_FIELDS, values, strict=True)))
    return events
