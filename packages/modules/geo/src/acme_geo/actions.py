"""The geo actions: ``geo.encode_geohash``, ``geo.decode_geohash``, ``geo.neighbors``,
``geo.distance``, ``geo.bounding_box``."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from switchyard import action

from acme_geo._geohash import decode, encode
from acme_geo._geohash import neighbors as cell_neighbors
from acme_geo._sphere import bounding_box as box_around
from acme_geo._sphere import haversine_km, initial_bearing

Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Geohash = Annotated[
    str,
    Field(
        min_length=1,
        max_length=12,
        pattern=r"^[0-9bcdefghjkmnpqrstuvwxyzBCDEFGHJKMNPQRSTUVWXYZ]+$",
        description="base-32 geohash (no a, i, l, o)",
    ),
]
Unit = Literal["km", "m", "mi", "nmi"]

_KM_PER: Final[dict[str, float]] = {"km": 1.0, "m": 0.001, "mi": 1.609344, "nmi": 1.852}


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Latitude
    lon: Longitude


class EncodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Latitude
    lon: Longitude
    precision: int = Field(default=9, ge=1, le=12)


class EncodeOut(BaseModel):
    geohash: str


@action("geo.encode_geohash", description="Encode a latitude/longitude as a geohash.")
def encode_geohash(data: EncodeIn) -> EncodeOut:
    return EncodeOut(geohash=encode(data.lat, data.lon, data.precision))


class DecodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geohash: Geohash


class DecodeOut(BaseModel):
    lat: float
    lon: float
    lat_error: float
    lon_error: float
    south: float
    west: float
    north: float
    east: float


@action("geo.decode_geohash", description="Decode a geohash to its centre, error and bounds.")
def decode_geohash(data: DecodeIn) -> DecodeOut:
    cell = decode(data.geohash)
    return DecodeOut(
        lat=cell.lat,
        lon=cell.lon,
        lat_error=cell.lat_error,
        lon_error=cell.lon_error,
        south=cell.south,
        west=cell.west,
        north=cell.north,
        east=cell.east,
    )


class NeighborsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geohash: Geohash


class NeighborsOut(BaseModel):
    geohash: str
    n: str | None
    ne: str | None
    e: str | None
    se: str | None
    s: str | None
    sw: str | None
    w: str | None
    nw: str | None


@action(
    "geo.neighbors",
    description="The eight geohash cells around one (None beyond a pole).",
)
def neighbors(data: NeighborsIn) -> NeighborsOut:
    geohash = data.geohash.lower()
    return NeighborsOut(geohash=geohash, **cell_neighbors(geohash))


class DistanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    origin: Point
    destination: Point
    unit: Unit = "km"


class DistanceOut(BaseModel):
    distance: float
    unit: Unit
    initial_bearing: float


@action(
    "geo.distance",
    description="Great-circle (haversine) distance and initial bearing between two points.",
)
def distance(data: DistanceIn) -> DistanceOut:
    a, b = data.origin, data.destination
    km = haversine_km(a.lat, a.lon, b.lat, b.lon)
    return DistanceOut(
        distance=km / _KM_PER[data.unit],
        unit=data.unit,
        initial_bearing=initial_bearing(a.lat, a.lon, b.lat, b.lon),
    )


class BoundingBoxIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    center: Point
    radius: float = Field(gt=0, le=20_037_508.0, allow_inf_nan=False)
    unit: Unit = "km"


class BoundingBoxOut(BaseModel):
    south: float
    west: float
    north: float
    east: float
    crosses_antimeridian: bool


@action(
    "geo.bounding_box",
    description="The latitude/longitude box around a point holding a radius (for range queries).",
)
def bounding_box(data: BoundingBoxIn) -> BoundingBoxOut:
    box = box_around(data.center.lat, data.center.lon, data.radius * _KM_PER[data.unit])
    return BoundingBoxOut(
        south=box.south,
        west=box.west,
        north=box.north,
        east=box.east,
        crosses_antimeridian=box.crosses_antimeridian,
    )
