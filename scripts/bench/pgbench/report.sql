-- The SQL of POST /api/v1/reports (cases.routes.ReportsView.post): idempotency key check and insert,
-- grid lookup, case number, INSERT case, INSERT its first event (through the hash-chain trigger),
-- and the idempotency row filled with the answer, in one transaction. :client_id and a counter make
-- each key unique; the run's prefix keeps runs apart.
\set x random(1, 41999999)
\set y random(1, 22499999)
\set n random(1, 2000000000)
BEGIN;
SELECT user_id, key, status_code FROM idempotency_keys
  WHERE user_id = (SELECT id FROM users WHERE username = 'bench') AND key = 'pgb-' || :client_id || '-' || :n || '-' || txid_current();
SET LOCAL lock_timeout = 3000;
INSERT INTO idempotency_keys (user_id, key, scope, request_hash)
  SELECT id, 'pgb-' || :client_id || '-' || :n || '-' || txid_current(), 'report', md5(random()::text) || md5(random()::text)
  FROM users WHERE username = 'bench'
  ON CONFLICT DO NOTHING RETURNING key;
SET LOCAL lock_timeout = DEFAULT;
SELECT code AS code FROM grids
WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(121.0 + :x * 1e-8, 31.0 + :y * 1e-8), 4326))
  AND (district_code = '310201' OR district_code = '310202' OR district_code = '310203' OR district_code = '310204')
ORDER BY code LIMIT 1 \gset g_
SELECT nextval('case_number_seq') AS n \gset seq_
INSERT INTO cases (number, status, category_code, urgency, description, location, accuracy_m, grid_code,
                   district_code, street_code, community_code, location_flags, source, reporter_id,
                   observed_at, reported_at, updated_at, version, stage_started_at, stage_deadline, stage_clock,
                   deadline_register)
VALUES ('P' || :seq_n, 'reported', '0101', 'B', 'pgbench report',
        ST_SetSRID(ST_MakePoint(121.0 + :x * 1e-8, 31.0 + :y * 1e-8), 4326), 8.0, :g_code::text,
        left(:g_code::text, 6), left(:g_code::text, 9), left(:g_code::text, 12), '{}', 'inspector',
        (SELECT id FROM users WHERE username = 'bench'), now(), now(), now(), 1,
        now(), now() + interval '1 hour', true, now() + interval '1 hour')
RETURNING id \gset case_
INSERT INTO case_events (case_id, at, actor_id, action, from_status, to_status, payload, client_time)
SELECT :case_id, now(), id, 'report', NULL, 'reported',
       '{"category_code": "0101", "lon": 121.2, "lat": 31.1, "observed_at": "2026-11-26T05:00:00+00:00"}', now()
FROM users WHERE username = 'bench';
UPDATE idempotency_keys SET status_code = 201, response = jsonb_build_object('text', repeat('x', 1500), 'headers', '{}'::jsonb)
  WHERE user_id = (SELECT id FROM users WHERE username = 'bench') AND key = 'pgb-' || :client_id || '-' || :n || '-' || txid_current();
COMMIT;
