-- grids.services.locate(): the grid containing a point, lowest code first, within the user's scope
-- (the bench user's scope is the four districts, as LIKE patterns). grid_at() (migration 0008) looks
-- the point's lattice cells up in grid_cells and tests the polygons of those candidates only.
-- A random point inside the 100,000-grid lattice.
\set x random(1, 41999999)
\set y random(1, 22499999)
SELECT grids.code, grids.name, grids.district_code, grids.street_code, grids.community_code, grids.area_m2,
       grids.created_at, grids.updated_at
FROM grid_at(121.0 + :x * 1e-8, 31.0 + :y * 1e-8, ARRAY['310201%', '310202%', '310203%', '310204%']) AS grids;
