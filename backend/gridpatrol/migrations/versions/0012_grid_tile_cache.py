"""grid tiles: the grids' part of each grid tile kept, valid for a version of the grids

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 13:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# A grid tile is the grids meeting it (their codes, names and polygons cut to the tile and put in
# its coordinates, which is most of the tile's work) and the case counts of each under the caller's
# filters and scope (which move with every case action and with the clock: overdue). The first part
# is the same for every caller, so it is kept per tile in grid_tile_cache, with the version of the
# grids it was cut from; the counts are read per request. grid_tile_state holds the version of the
# grids: every statement changing what a tile shows of a grid (code, name, polygon) adds one to it,
# in the changing transaction, and empties the cache (every row in it is of an older version).
# A tile is read from the cache only when its version is the one in grid_tile_state, both read in
# one statement: rows cut from grids as an older transaction saw them (a tile cut while a change
# was committing) are never taken, whatever the isolation level or the order of commits.
TRIGGERS = """
CREATE FUNCTION grid_tiles_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- an update that leaves every code, name and polygon as it was (a re-import of the same file,
    -- area or timestamps only) changes no tile
    IF NOT EXISTS (SELECT 1 FROM old_rows o FULL JOIN new_rows n ON n.code = o.code
                   WHERE o.code IS NULL OR n.code IS NULL OR n.name IS DISTINCT FROM o.name
                      OR NOT (n.geom = o.geom)) THEN
      RETURN NULL;
    END IF;
  ELSIF TG_OP = 'INSERT' THEN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
      RETURN NULL;
    END IF;
  ELSIF TG_OP = 'DELETE' THEN
    IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
      RETURN NULL;
    END IF;
  END IF;
  UPDATE grid_tile_state SET version = version + 1;
  DELETE FROM grid_tile_cache;
  RETURN NULL;
END $$;

CREATE TRIGGER grids_tiles_insert AFTER INSERT ON grids REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION grid_tiles_invalidate();
CREATE TRIGGER grids_tiles_update AFTER UPDATE ON grids REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION grid_tiles_invalidate();
CREATE TRIGGER grids_tiles_delete AFTER DELETE ON grids REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION grid_tiles_invalidate();
CREATE TRIGGER grids_tiles_truncate AFTER TRUNCATE ON grids
  FOR EACH STATEMENT EXECUTE FUNCTION grid_tiles_invalidate();
"""


def upgrade():
    op.create_table('grid_tile_state',
    sa.Column('id', sa.SmallInteger(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_grid_tile_state_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_tile_state'))
    )
    op.execute("INSERT INTO grid_tile_state (id, version) VALUES (1, 1)")
    # one row per tile that holds grids (an empty tile is not kept: any of billions could be asked):
    # the grids in the order they are drawn, their names (NULL below the zoom showing names) and
    # their polygons as ST_AsMVTGeom made them, in the tile's coordinates
    op.execute("""
        CREATE TABLE grid_tile_cache (
          z smallint NOT NULL, x integer NOT NULL, y integer NOT NULL,
          version bigint NOT NULL,
          codes varchar(15)[] NOT NULL, names text[] NOT NULL, geoms geometry[] NOT NULL,
          CONSTRAINT pk_grid_tile_cache PRIMARY KEY (z, x, y))
    """)
    op.execute(TRIGGERS)


def downgrade():
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER grids_tiles_{event} ON grids")
    op.execute("DROP FUNCTION grid_tiles_invalidate()")
    op.drop_table('grid_tile_cache')
    op.drop_table('grid_tile_state')
