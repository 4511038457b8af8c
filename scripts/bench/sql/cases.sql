-- :n_cases cases over the two years before now, ~10% open ('reported' / 'registered', whose
-- constraints need no team) and every case of the last three days (its closure would lie ahead of
-- now), the rest closed: dispatched 2 hours after the report to one of 20
-- teams (5 per district), handled 2 days after it, against a handling deadline 3 days after the
-- dispatch (1 day for every fifth case, so those were late); each at a random point inside a random grid.
-- An open case has its stage's start and deadline (register: from the report, a day; dispatch: from the
-- registration, two days), so most of the older ones are overdue on the map, as they would be.
INSERT INTO teams (name, kind, agencies, area_codes, category_codes)
SELECT 'bench team ' || d || '-' || k, 'enforcement', ARRAY['城管'], ARRAY['31020' || d],
       ARRAY(SELECT code FROM categories)
FROM generate_series(1, 4) d, generate_series(1, 5) k;
CREATE TEMP TABLE team AS
SELECT left(area_codes[1], 6) AS district, row_number() OVER (PARTITION BY area_codes[1] ORDER BY id) - 1 AS k, id
FROM teams WHERE name LIKE 'bench team %';
CREATE TEMP TABLE cat AS
SELECT row_number() OVER (ORDER BY code) - 1 AS i, code FROM categories WHERE retired_in_version IS NULL;

INSERT INTO cases (number, status, category_code, urgency, description, location, accuracy_m, grid_code,
                   district_code, street_code, community_code, source, reporter_id, catalog_version,
                   observed_at, reported_at, registered_at, closed_at, version, updated_at,
                   lead_team_id, dispatched_at, handled_at, deadline_handle, stage_started_at, stage_deadline)
SELECT 'B' || lpad(n::text, 12, '0'),
       CASE WHEN open_ THEN (CASE WHEN reported_ THEN 'reported' ELSE 'registered' END) ELSE 'closed' END,
       cat.code, (ARRAY['A','B','B','C'])[1 + n % 4], 'bench case ' || n,
       ST_SetSRID(ST_MakePoint(121.0 + (col + 0.05 + 0.9 * random()) * 0.00105,
                               31.0 + (row_ + 0.05 + 0.9 * random()) * 0.0009), 4326),
       5 + 20 * random(), code15, left(code15, 6), left(code15, 9), left(code15, 12),
       (ARRAY['inspector','inspector','hotline'])[1 + n % 3], u.id, NULL,
       at_ - interval '5 minutes', at_,
       CASE WHEN NOT reported_ THEN at_ + interval '1 hour' END,
       CASE WHEN NOT open_ THEN at_ + interval '3 days' END,
       CASE WHEN open_ THEN (CASE WHEN reported_ THEN 1 ELSE 2 END) ELSE 3 END,
       at_,
       CASE WHEN NOT open_ THEN team.id END,
       CASE WHEN NOT open_ THEN at_ + interval '2 hours' END,
       CASE WHEN NOT open_ THEN at_ + interval '2 days' END,
       CASE WHEN NOT open_ THEN at_ + interval '2 hours' + (CASE WHEN n % 5 = 1 THEN interval '1 day'
                                                                   ELSE interval '3 days' END) END,
       CASE WHEN open_ THEN at_ + (CASE WHEN reported_ THEN interval '0' ELSE interval '1 hour' END) END,
       CASE WHEN open_ THEN at_ + (CASE WHEN reported_ THEN interval '1 day'
                                             ELSE interval '1 hour' + interval '2 days' END) END
FROM (
  SELECT n, col, row_, at_, open_, open_ AND (n % 20 = 0 OR (n % 10 <> 0 AND n % 2 = 0)) AS reported_,
         '3102' || lpad((col / 100 + 1)::text, 2, '0') || lpad(((col / 10) % 10 + 1)::text, 3, '0')
           || lpad((row_ / 10 + 1)::text, 3, '0') || lpad(((col % 10) * 10 + row_ % 10 + 1)::text, 3, '0') AS code15
  FROM (
    SELECT n, col, row_, at_, n % 10 = 0 OR at_ > now() - interval '3 days' AS open_
    FROM (
      SELECT n, floor(random() * 400)::int AS col, floor(random() * 250)::int AS row_,
             now() - interval '730 days' * (1 - n::float8 / :n_cases) AS at_   -- ascending in time with id
      FROM generate_series(1, :n_cases) n
    ) t
  ) r
) s
JOIN cat ON cat.i = s.n % (SELECT count(*) FROM cat)
JOIN team ON team.district = left(s.code15, 6) AND team.k = (s.n / 7) % 5
CROSS JOIN (SELECT id FROM users WHERE username = 'bench') u
ORDER BY n;
DROP TABLE cat, team;
SELECT setval('case_number_seq', 1);
