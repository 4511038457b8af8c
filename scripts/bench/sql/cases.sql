-- :n_cases cases over the two years before now, ~10% open ('reported' / 'registered', whose
-- constraints need no team), the rest closed; each at a random point inside a random grid.
CREATE TEMP TABLE cat AS
SELECT row_number() OVER (ORDER BY code) - 1 AS i, code FROM categories WHERE retired_in_version IS NULL;

INSERT INTO cases (number, status, category_code, urgency, description, location, accuracy_m, grid_code,
                   district_code, street_code, community_code, source, reporter_id, catalog_version,
                   observed_at, reported_at, registered_at, closed_at, version, updated_at)
SELECT 'B' || lpad(n::text, 12, '0'),
       CASE WHEN n % 10 = 0 THEN (CASE WHEN n % 20 = 0 THEN 'reported' ELSE 'registered' END) ELSE 'closed' END,
       cat.code, (ARRAY['A','B','B','C'])[1 + n % 4], 'bench case ' || n,
       ST_SetSRID(ST_MakePoint(121.0 + (col + 0.05 + 0.9 * random()) * 0.00105,
                               31.0 + (row_ + 0.05 + 0.9 * random()) * 0.0009), 4326),
       5 + 20 * random(), code15, left(code15, 6), left(code15, 9), left(code15, 12),
       (ARRAY['inspector','inspector','hotline'])[1 + n % 3], u.id, NULL,
       at_ - interval '5 minutes', at_,
       CASE WHEN n % 20 <> 0 THEN at_ + interval '1 hour' END,
       CASE WHEN n % 10 <> 0 THEN at_ + interval '3 days' END,
       CASE WHEN n % 10 = 0 THEN (CASE WHEN n % 20 = 0 THEN 1 ELSE 2 END) ELSE 3 END,
       at_
FROM (
  SELECT n, col, row_, at_,
         '3102' || lpad((col / 100 + 1)::text, 2, '0') || lpad(((col / 10) % 10 + 1)::text, 3, '0')
           || lpad((row_ / 10 + 1)::text, 3, '0') || lpad(((col % 10) * 10 + row_ % 10 + 1)::text, 3, '0') AS code15
  FROM (
    SELECT n, floor(random() * 400)::int AS col, floor(random() * 250)::int AS row_,
           now() - interval '730 days' * (1 - n::float8 / :n_cases) AS at_   -- ascending in time with id
    FROM generate_series(1, :n_cases) n
  ) r
) s
JOIN cat ON cat.i = s.n % (SELECT count(*) FROM cat)
CROSS JOIN (SELECT id FROM users WHERE username = 'bench') u
ORDER BY n;
DROP TABLE cat;
SELECT setval('case_number_seq', 1);
