"""Geometry helpers: points in SQL, and distances in metres."""
import math

from geoalchemy2 import Geography
from sqlalchemy import cast, func

EARTH_RADIUS_M = 6_371_008.8


def point(lon: float, lat: float):
    """A SQL expression for a WGS 84 point."""
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


def geography(expr):
    return cast(expr, Geography(srid=4326))


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance, for checks made in Python (the database uses geography)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
