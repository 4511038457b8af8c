-- 4 districts x 10 streets x 25 communities x 100 grids = 100,000 unit grids on a 400 x 250 lattice
-- of ~100 m cells. Each cell's edges are subdivided into k = 5..14 points, so a grid has 20..56
-- distinct vertices; cells share edges exactly, so grids never overlap.
-- Cell (col,row): community block (col/10,row/10); district = col/100, street = (col/10)%10,
-- community = row/10, grid = (col%10)*10 + row%10 + 1.
INSERT INTO admin_areas (code, level, name, name_en, parent_code)
SELECT '3102' || lpad((d + 1)::text, 2, '0'), 'district', '基准区' || (d + 1), 'Bench district ' || (d + 1), NULL
FROM generate_series(0, 3) d;

INSERT INTO admin_areas (code, level, name, name_en, parent_code)
SELECT '3102' || lpad((d + 1)::text, 2, '0') || lpad((s + 1)::text, 3, '0'), 'street',
       '基准街道' || (d + 1) || '-' || (s + 1), NULL, '3102' || lpad((d + 1)::text, 2, '0')
FROM generate_series(0, 3) d, generate_series(0, 9) s;

INSERT INTO admin_areas (code, level, name, name_en, parent_code)
SELECT '3102' || lpad((d + 1)::text, 2, '0') || lpad((s + 1)::text, 3, '0') || lpad((m + 1)::text, 3, '0'),
       'community', '基准社区' || (d + 1) || '-' || (s + 1) || '-' || (m + 1), NULL,
       '3102' || lpad((d + 1)::text, 2, '0') || lpad((s + 1)::text, 3, '0')
FROM generate_series(0, 3) d, generate_series(0, 9) s, generate_series(0, 24) m;

CREATE TEMP TABLE cells AS
SELECT col, row_, 5 + (col * 7 + row_ * 13) % 10 AS k,
       121.0 + col * 0.00105 AS x0, 121.0 + (col + 1) * 0.00105 AS x1,
       31.0 + row_ * 0.0009 AS y0, 31.0 + (row_ + 1) * 0.0009 AS y1,
       '3102' || lpad((col / 100 + 1)::text, 2, '0') || lpad(((col / 10) % 10 + 1)::text, 3, '0')
         || lpad((row_ / 10 + 1)::text, 3, '0') || lpad(((col % 10) * 10 + row_ % 10 + 1)::text, 3, '0') AS code
FROM generate_series(0, 399) col, generate_series(0, 249) row_;

INSERT INTO grids (code, name, district_code, street_code, community_code, geom, area_m2)
SELECT c.code, '基准网格' || c.code, left(c.code, 6), left(c.code, 9), left(c.code, 12), g.geom,
       ST_Area(g.geom::geography)
FROM cells c
CROSS JOIN LATERAL (
  SELECT ST_SetSRID(ST_MakePolygon(ST_MakeLine(array_agg(p ORDER BY i))), 4326) AS geom
  FROM (
    SELECT i, CASE (i % (4 * c.k)) / c.k            -- which side, counter-clockwise from (x0,y0)
             WHEN 0 THEN ST_MakePoint(c.x0 + (c.x1 - c.x0) * ((i % c.k)::float8 / c.k), c.y0)
             WHEN 1 THEN ST_MakePoint(c.x1, c.y0 + (c.y1 - c.y0) * ((i % c.k)::float8 / c.k))
             WHEN 2 THEN ST_MakePoint(c.x1 - (c.x1 - c.x0) * ((i % c.k)::float8 / c.k), c.y1)
             ELSE        ST_MakePoint(c.x0, c.y1 - (c.y1 - c.y0) * ((i % c.k)::float8 / c.k))
           END AS p
    FROM generate_series(0, 4 * c.k) i
  ) pts
) g;
DROP TABLE cells;
