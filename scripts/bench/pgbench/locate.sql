-- grids.services.locate(): the grid containing a point, lowest code first, within the user's scope
-- (the bench user's scope is the four districts). A random point inside the 100,000-grid lattice.
\set x random(1, 41999999)
\set y random(1, 22499999)
SELECT grids.code, grids.name, grids.district_code, grids.street_code, grids.community_code,
       ST_AsEWKB(grids.geom), grids.area_m2, grids.created_at, grids.updated_at
FROM grids
WHERE ST_Intersects(grids.geom, ST_SetSRID(ST_MakePoint(121.0 + :x * 1e-8, 31.0 + :y * 1e-8), 4326))
  AND (grids.district_code = '310201' OR grids.district_code = '310202'
       OR grids.district_code = '310203' OR grids.district_code = '310204')
ORDER BY grids.code
LIMIT 1;
