from __future__ import annotations

import math
from pathlib import Path

import pytest
from acme_geo import decode, encode, haversine_km
from acme_geo.actions import bounding_box, decode_geohash, distance, encode_geohash, neighbors
from switchyard import InvalidInputError, Registry, call_action, load_config
from switchyard.testing import make_registry, run, use_registry

ACTIONS = (
    "geo.encode_geohash",
    "geo.decode_geohash",
    "geo.neighbors",
    "geo.distance",
    "geo.bounding_box",
)


def test_encode_matches_the_reference_geohash():
    # The example from the geohash article (Jutland, Denmark).
    out = run(encode_geohash, {"lat": 57.64911, "lon": 10.40744, "precision": 11})
    assert out.geohash == "u4pruydqqvj"
    assert encode(-90.0, -180.0, 5) == "00000"
    assert encode(90.0, 180.0, 5) == "zzzzz"


def test_decode_inverts_encode_within_the_cell_error():
    out = run(decode_geohash, {"geohash": "U4PRUYDQQVJ"})  # case-insensitive
    assert abs(out.lat - 57.64911) <= out.lat_error
    assert abs(out.lon - 10.40744) <= out.lon_error
    assert out.south < out.lat < out.north
    assert out.west < out.lon < out.east
    assert out.lat_error < 1e-5


def test_neighbors_share_edges_with_the_cell():
    out = run(neighbors, {"geohash": "u4pru"})
    cell = decode("u4pru")
    north, east = decode(out.n or ""), decode(out.e or "")
    assert math.isclose(north.south, cell.north)
    assert math.isclose(north.west, cell.west)
    assert math.isclose(east.west, cell.east)
    assert math.isclose(east.south, cell.south)
    assert len({out.n, out.ne, out.e, out.se, out.s, out.sw, out.w, out.nw, "u4pru"}) == 9


def test_neighbors_wrap_at_the_antimeridian_and_stop_at_the_pole():
    out = run(neighbors, {"geohash": "zzzz"})  # the north-east corner of the world
    assert out.n is None
    assert out.ne is None
    assert out.nw is None
    east = decode(out.e or "")
    assert east.west == -180.0
    assert out.s is not None


def test_distance_london_to_new_york():
    data = {
        "origin": {"lat": 51.5007, "lon": -0.1246},
        "destination": {"lat": 40.6892, "lon": -74.0445},
    }
    km = run(distance, data)
    assert km.distance == pytest.approx(5574.8, abs=1.0)
    assert km.initial_bearing == pytest.approx(288.3, abs=0.5)
    miles = run(distance, {**data, "unit": "mi"})
    assert miles.distance == pytest.approx(km.distance / 1.609344)
    assert haversine_km(10, 20, 10, 20) == 0.0


def test_distance_bearing_due_east_on_the_equator():
    out = run(distance, {"origin": {"lat": 0, "lon": 0}, "destination": {"lat": 0, "lon": 10}})
    assert out.initial_bearing == pytest.approx(90.0)
    assert out.distance == pytest.approx(1111.95, abs=0.1)


def test_bounding_box_holds_the_radius():
    one_degree_km = 2 * math.pi * 6371.0088 / 360
    out = run(bounding_box, {"center": {"lat": 0, "lon": 0}, "radius": one_degree_km})
    assert (out.south, out.north) == (pytest.approx(-1.0), pytest.approx(1.0))
    assert (out.west, out.east) == (pytest.approx(-1.0), pytest.approx(1.0))
    assert not out.crosses_antimeridian


def test_bounding_box_across_the_antimeridian_and_over_a_pole():
    fiji = run(bounding_box, {"center": {"lat": -17.7, "lon": 179.9}, "radius": 50})
    assert fiji.crosses_antimeridian
    assert fiji.west > 179
    assert fiji.east < -179
    polar = run(bounding_box, {"center": {"lat": 89.9, "lon": 10}, "radius": 100, "unit": "km"})
    assert (polar.west, polar.east, polar.north) == (-180.0, 180.0, 90.0)


@pytest.mark.parametrize(
    ("act", "data", "field"),
    [
        (encode_geohash, {"lat": 91, "lon": 0}, "lat"),
        (encode_geohash, {"lat": 0, "lon": 0, "precision": 13}, "precision"),
        (encode_geohash, {"lat": "nan", "lon": 0}, "lat"),
        (decode_geohash, {"geohash": "abc"}, "geohash"),
        (neighbors, {"geohash": ""}, "geohash"),
        (
            distance,
            {"origin": {"lat": 0, "lon": 181}, "destination": {"lat": 0, "lon": 0}},
            "origin.lon",
        ),
        (
            distance,
            {"origin": {"lat": 0, "lon": 0}, "destination": {"lat": 0, "lon": 0}, "unit": "ft"},
            "unit",
        ),
        (bounding_box, {"center": {"lat": 0, "lon": 0}, "radius": 0}, "radius"),
        (bounding_box, {"center": {"lat": 0, "lon": 0, "alt": 3}, "radius": 1}, "center.alt"),
    ],
)
def test_bad_input_names_the_field(act, data, field):
    with pytest.raises(InvalidInputError) as info:
        run(act, data)
    assert [e.loc for e in info.value.errors] == [field]
    assert f"{field}:" in str(info.value)


def test_call_action_through_an_in_memory_registry():
    with use_registry(make_registry(encode_geohash, decode_geohash)):
        out = call_action("geo.encode_geohash", {"lat": 57.64911, "lon": 10.40744, "precision": 5})
    assert out.geohash == "u4pru"


def test_actions_are_registered_as_entry_points():
    registry = Registry.from_entry_points()
    for name in ACTIONS:
        assert registry.info(name).distribution == "acme-geo"
    assert registry.resolve("geo.distance") is distance


def test_root_routing_puts_the_actions_on_a_shared_queue():
    config = load_config(Path(__file__).parent)
    assert config.route("geo.distance") == "interactive"
