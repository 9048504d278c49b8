"""CSV rendering that spreadsheet programs cannot be tricked by."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

# A text cell starting with one of these is run as a formula by spreadsheet programs
# ("CSV injection"); prefixing a quote makes it plain text. Numbers are written as they are.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | Decimal | None


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, int | Decimal):
        return str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def render(header: Sequence[str], rows: Iterable[Sequence[Cell]], *, delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue()
