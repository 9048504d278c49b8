"""argparse types for the command line's numbers: each refuses what is not a number, not finite
or out of its range, in one wording (``argument --wait: must be a number of seconds from 0 to
86400, not '-1'``), before anything runs."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["count", "seconds"]


def seconds(high: float, *, positive: bool = False) -> Callable[[str], float]:
    """Seconds from 0 (above 0 if ``positive``) to ``high``."""
    most = f"{high:.0f}" + (f" ({high / 86_400:g} days)" if high > 86_400 else "")
    span = f"above 0, up to {most}" if positive else f"from 0 to {most}"

    def read(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (value > 0 if positive else value >= 0) or not value <= high:
            raise argparse.ArgumentTypeError(f"must be a number of seconds {span}, not {text!r}")
        return value

    return read


def count(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""

    def read(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high}, not {text!r}"
            )
        return value

    return read
