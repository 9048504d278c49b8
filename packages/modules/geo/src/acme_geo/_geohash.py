"""Geohash (base-32, interleaved longitude/latitude bits) encoding, decoding and neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

BASE32: Final = "0123456789bcdefghjkmnpqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(BASE32)}
MAX_PRECISION: Final = 12

# Compass directions as (latitude steps, longitude steps), clockwise from north.
DIRECTIONS: Final = {
    "n": (1, 0),
    "ne": (1, 1),
    "e": (0, 1),
    "se": (-1, 1),
    "s": (-1, 0),
    "sw": (-1, -1),
    "w": (0, -1),
    "nw": (1, -1),
}


@dataclass(frozen=True, slots=True)
class Cell:
    """The rectangle a geohash names."""

    geohash: str
    south: float
    west: float
    north: float
    east: float

    @property
    def lat(self) -> float:
        return (self.south + self.north) / 2

    @property
    def lon(self) -> float:
        return (self.west + self.east) / 2

    @property
    def lat_error(self) -> float:
        return (self.north - self.south) / 2

    @property
    def lon_error(self) -> float:
        return (self.east - self.west) / 2


def encode(lat: float, lon: float, precision: int = 9) -> str:
    """The geohash of ``(lat, lon)`` with ``precision`` characters (1-12)."""
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be 1-{MAX_PRECISION}, got {precision}")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"({lat}, {lon}) is not a latitude/longitude pair")
    lat_lo, lat_hi = -90.0, 90.0
    lon_lo, lon_hi = -180.0, 180.0
    chars: list[str] = []
    bits = 0
    value = 0
    even = True  # bits alternate, starting with longitude
    while len(chars) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                value = value * 2 + 1
                lon_lo = mid
            else:
                value *= 2
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                value = value * 2 + 1
                lat_lo = mid
            else:
                value *= 2
                lat_hi = mid
        even = not even
        bits += 1
        if bits == 5:
            chars.append(BASE32[value])
            bits = 0
            value = 0
    return "".join(chars)


def decode(geohash: str) -> Cell:
    """The cell that ``geohash`` names; raises ValueError naming a bad character."""
    if not 1 <= len(geohash) <= MAX_PRECISION:
        raise ValueError(f"a geohash has 1-{MAX_PRECISION} characters, got {len(geohash)}")
    lat_lo, lat_hi = -90.0, 90.0
    lon_lo, lon_hi = -180.0, 180.0
    even = True
    for position, char in enumerate(geohash.lower()):
        index = _INDEX.get(char)
        if index is None:
            raise ValueError(
                f"character {char!r} at position {position} is not in the geohash alphabet"
            )
        for shift in range(4, -1, -1):
            bit = (index >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return Cell(geohash.lower(), lat_lo, lon_lo, lat_hi, lon_hi)


def neighbors(geohash: str) -> dict[str, str | None]:
    """The eight cells around ``geohash``, same precision, keyed by compass direction.

    Longitude wraps at the antimeridian; there is no cell beyond a pole (``None``).
    """
    cell = decode(geohash)
    height = cell.north - cell.south
    width = cell.east - cell.west
    out: dict[str, str | None] = {}
    for direction, (dlat, dlon) in DIRECTIONS.items():
        lat = cell.lat + dlat * height
        if not -90.0 < lat < 90.0:
            out[direction] = None
            continue
        lon = cell.lon + dlon * width
        lon = (lon + 180.0) % 360.0 - 180.0
        out[direction] = encode(lat, lon, len(geohash))
    return out
