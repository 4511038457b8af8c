"""cases: open cases of a map tile as one range of an index

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 21:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

OPEN = "status IN ('dispatched', 'handled', 'in_progress', 'registered', 'reported', 'returned', 'suspended')"

# A point's web-mercator tile at zoom 24 (about 2 m a side here) with the bits of its column and row
# interleaved (a Morton or quadkey order): every tile of zoom 24 or less is then one range of keys,
# the tile (z, x, y) being the keys from interleave(x, y) << 2·(24 − z) on. Out-of-range latitudes are
# held to web mercator's ±85.05°, so no location makes the index expression fail.
TILE_KEY = """
CREATE FUNCTION tile_key(lon float8, lat float8) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n CONSTANT float8 := 16777216;  -- 2^24 tiles a side
  x bigint := least(greatest(floor((lon + 180) / 360 * n), 0), n - 1);
  y bigint := least(greatest(floor((1 - asinh(tan(radians(least(greatest(lat, -85.0511287798066), 85.0511287798066))))
                                     / pi()) / 2 * n), 0), n - 1);
BEGIN
  -- each 24-bit number spread to the even bits of 48 (0x0000FFFF0000FFFF, 0x00FF00FF00FF00FF, ...)
  x := (x | (x << 16)) & 281470681808895;
  x := (x | (x << 8)) & 71777214294589695;
  x := (x | (x << 4)) & 1085102592571150095;
  x := (x | (x << 2)) & 3689348814741910323;
  x := (x | (x << 1)) & 6148914691236517205;
  y := (y | (y << 16)) & 281470681808895;
  y := (y | (y << 8)) & 71777214294589695;
  y := (y | (y << 4)) & 1085102592571150095;
  y := (y | (y << 2)) & 3689348814741910323;
  y := (y | (y << 1)) & 6148914691236517205;
  RETURN x | (y << 1);
END $$;
"""


# A zoomed-out map tile clusters every open case it covers: with a B-tree on the tile key they are one
# range scan of neighbouring index entries, cheaper per case than a GiST index (a tree of overlapping
# boxes checked entry by entry). Every column the map's filters and clusters read is beside the key, so
# a tile reads no table page.
def upgrade():
    op.execute(TILE_KEY)
    op.execute(f"""
        CREATE INDEX ix_cases_open_tile ON cases (tile_key(ST_X(location), ST_Y(location)))
        INCLUDE (location, status, reported_at, id, district_code, street_code, community_code, grid_code,
                 category_code, urgency, lead_team_id, escalation_level, stage_deadline)
        WHERE {OPEN}""")


def downgrade():
    op.execute("DROP INDEX ix_cases_open_tile")
    op.execute("DROP FUNCTION tile_key(float8, float8)")
