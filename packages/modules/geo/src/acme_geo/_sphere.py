"""Great-circle geometry on a spherical Earth: haversine distance, bearing, bounding boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

EARTH_RADIUS_KM: Final = 6371.0088  # IUGG mean radius


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A latitude/longitude rectangle. ``west > east`` when it crosses the antimeridian."""

    south: float
    west: float
    north: float
    east: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.west > self.east


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def initial_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The compass bearing (0-360, degrees clockwise from north) to set out on from point 1."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    x = math.sin(dlmb) * math.cos(phi2)
    y = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlmb)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


def bounding_box(lat: float, lon: float, radius_km: float) -> BoundingBox:
    """The smallest latitude/longitude box holding every point within ``radius_km``.

    Uses the exact spherical formula (Jan Matuschek's): a box reaching a pole spans all
    longitudes; one crossing the antimeridian has ``west > east``.
    """
    if radius_km < 0:
        raise ValueError(f"radius_km must not be negative, got {radius_km}")
    angular = radius_km / EARTH_RADIUS_KM
    phi = math.radians(lat)
    south = phi - angular
    north = phi + angular
    if south <= -math.pi / 2 or north >= math.pi / 2 or angular >= math.pi / 2:
        return BoundingBox(
            south=max(math.degrees(south), -90.0),
            west=-180.0,
            north=min(math.degrees(north), 90.0),
            east=180.0,
        )
    dlmb = math.asin(min(1.0, math.sin(angular) / math.cos(phi)))
    west = (lon - math.degrees(dlmb) + 180.0) % 360.0 - 180.0
    east = (lon + math.degrees(dlmb) + 180.0) % 360.0 - 180.0
    return BoundingBox(math.degrees(south), west, math.degrees(north), east)
