"""grids: geometry in web mercator for tiles, a lattice index for locate

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 09:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

LATTICE = """
-- The lattice locate() looks a point up in: square cells of 0.002° (about 200 m), and of 1° for a
-- grid more than 32 small cells across, so a grid of any size is under a bounded number of cells.
-- A cell is one bigint (level, column, row); a point's column is floor(lon × cells per degree), the
-- same expression for the point and for a grid's bounds, so a point on a cell edge and a grid
-- reaching that edge always meet in the same cell. None is STRICT: SQL functions that are not get
-- inlined into the statements calling them (a NULL gives NULL, or no cells, all the same).
CREATE FUNCTION grid_cell_index(level int, v float8) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN floor(v * CASE level WHEN 0 THEN 500 ELSE 1 END)::int;

CREATE FUNCTION grid_cell_key(level int, col int, row_ int) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN level * 1000000000000::bigint + (col + 180000) * 1000000::bigint + (row_ + 90000);

-- a point's cell at each level
CREATE FUNCTION grid_point_cells(lon float8, lat float8) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[grid_cell_key(0, grid_cell_index(0, lon), grid_cell_index(0, lat)),
             grid_cell_key(1, grid_cell_index(1, lon), grid_cell_index(1, lat))];

-- every cell a polygon's bounding box meets, at the finest level where it spans at most 32 cells
CREATE FUNCTION grid_polygon_cells(g geometry) RETURNS SETOF bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT grid_cell_key(l.level, col, row_)
  FROM (SELECT CASE WHEN grid_cell_index(0, ST_XMax(g)) - grid_cell_index(0, ST_XMin(g)) < 32
                     AND grid_cell_index(0, ST_YMax(g)) - grid_cell_index(0, ST_YMin(g)) < 32
               THEN 0 ELSE 1 END AS level) l,
       generate_series(grid_cell_index(l.level, ST_XMin(g)), grid_cell_index(l.level, ST_XMax(g))) col,
       generate_series(grid_cell_index(l.level, ST_YMin(g)), grid_cell_index(l.level, ST_YMax(g))) row_
$$;

-- a grid's rows of grid_cells: its cells, each with its bounding box (exact, as float8)
CREATE FUNCTION grid_cell_rows(grid_code varchar, g geometry)
RETURNS TABLE (cell bigint, code varchar, west float8, south float8, east float8, north float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT k, grid_code, ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g) FROM grid_polygon_cells(g) k
$$;

-- grid_cells follows every insert, update and delete of grids (statement triggers: an import or
-- a bulk load refiles its grids in one statement)
CREATE FUNCTION grid_cells_refile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE grid_cells;
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO grid_cells (cell, code, west, south, east, north)
    SELECT r.* FROM new_rows n, grid_cell_rows(n.code, n.geom) r;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM grid_cells c USING old_rows o WHERE c.code = o.code;
  ELSE  -- only the rows whose code or polygon changed
    DELETE FROM grid_cells c USING old_rows o
    WHERE c.code = o.code AND NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.code = o.code AND n.geom = o.geom);
    INSERT INTO grid_cells (cell, code, west, south, east, north)
    SELECT r.* FROM new_rows n, grid_cell_rows(n.code, n.geom) r
    WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE o.code = n.code AND o.geom = n.geom);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER grids_cells_insert AFTER INSERT ON grids REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_refile();
CREATE TRIGGER grids_cells_update AFTER UPDATE ON grids REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_refile();
CREATE TRIGGER grids_cells_delete AFTER DELETE ON grids REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_refile();
CREATE TRIGGER grids_cells_truncate AFTER TRUNCATE ON grids
  FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_refile();

-- The grid containing a point among those whose code matches a pattern (the caller's scope), the
-- lowest code on a shared boundary: the candidates of the point's cells whose bounding box holds
-- it (read from the index alone), then the polygon test on those rows only. A function so that its
-- plan is made once per connection, not for every call.
CREATE FUNCTION grid_at(lon float8, lat float8, patterns text[]) RETURNS SETOF grids
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE ROWS 1 AS $$
BEGIN
  RETURN QUERY
    SELECT g.* FROM grid_cells c JOIN grids g ON g.code = c.code
    WHERE c.cell = ANY (grid_point_cells(lon, lat)) AND c.code LIKE ANY (patterns)
      AND c.west <= lon AND lon <= c.east AND c.south <= lat AND lat <= c.north
      -- IS TRUE: not an index condition, so the planner takes the cells' candidates, not the GiST index
      AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(lon, lat), 4326)) IS TRUE
    ORDER BY g.code LIMIT 1;
END $$;
"""


def upgrade():
    # tiles: the polygon in the tiles' projection, projected once when written
    op.execute("ALTER TABLE grids ADD COLUMN geom_3857 geometry(Polygon, 3857)"
               " GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED")
    op.create_index('ix_grids_geom_3857', 'grids', ['geom_3857'], unique=False, postgresql_using='gist')
    op.create_table('grid_cells',
    sa.Column('cell', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('west', sa.Float(), nullable=False),
    sa.Column('south', sa.Float(), nullable=False),
    sa.Column('east', sa.Float(), nullable=False),
    sa.Column('north', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('cell', 'code', name=op.f('pk_grid_cells'),
                            postgresql_include=['west', 'south', 'east', 'north'])
    )
    op.create_index(op.f('ix_grid_cells_code'), 'grid_cells', ['code'], unique=False)
    op.execute(LATTICE)
    op.execute("INSERT INTO grid_cells (cell, code, west, south, east, north)"
               " SELECT r.* FROM grids g, grid_cell_rows(g.code, g.geom) r")


def downgrade():
    op.execute("DROP FUNCTION grid_at(float8, float8, text[])")
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER grids_cells_{event} ON grids")
    op.execute("DROP FUNCTION grid_cells_refile(); DROP FUNCTION grid_cell_rows(varchar, geometry);"
               " DROP FUNCTION grid_polygon_cells(geometry);"
               " DROP FUNCTION grid_point_cells(float8, float8); DROP FUNCTION grid_cell_key(int, int, int);"
               " DROP FUNCTION grid_cell_index(int, float8)")
    op.drop_index(op.f('ix_grid_cells_code'), table_name='grid_cells')
    op.drop_table('grid_cells')
    op.drop_index('ix_grids_geom_3857', table_name='grids', postgresql_using='gist')
    op.execute("ALTER TABLE grids DROP COLUMN geom_3857")
