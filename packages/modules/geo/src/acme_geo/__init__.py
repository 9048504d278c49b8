"""Geography for Switchyard: geohash encoding, great-circle distances and bounding boxes.

The actions live in :mod:`acme_geo.actions`; the pure functions below are the package's API.
"""

from __future__ import annotations

from acme_geo._geohash import Cell, decode, encode, neighbors
from acme_geo._sphere import (
    EARTH_RADIUS_KM,
    BoundingBox,
    bounding_box,
    haversine_km,
    initial_bearing,
)

__all__ = [
    "EARTH_RADIUS_KM",
    "BoundingBox",
    "Cell",
    "bounding_box",
    "decode",
    "encode",
    "haversine_km",
    "initial_bearing",
    "neighbors",
]
