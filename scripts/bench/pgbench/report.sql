-- The SQL of POST /api/v1/reports (cases.routes.ReportsView.post) in one transaction: the four
-- statements the app sends after reading the caller's token, in order: the idempotency key claimed
-- (its lock, waited for under lock_timeout set for that wait only, and its row read), the grid lookup
-- (grids.services.locate), the case with its number and first event in one statement (only if the
-- category takes reports; the event through the hash-chain trigger), and the key's row with the answer.
-- Values (or a few expressions making one) stand where the app binds parameters;
-- tests/integration/test_bench_city.py holds the two to each other. :bench_user is the bench
-- inspector's id (pgbench -D); :client_id and a random number make each key unique.
\set x random(1, 41999999)
\set y random(1, 22499999)
\set n random(1, 2000000000)
BEGIN;

SELECT scope, request_hash, status_code, response FROM idempotency_claim(:bench_user, 'pgb-' || :client_id || '-' || :n || '-' || txid_current(), '5000');

SELECT grids.code, grids.name, grids.district_code, grids.street_code, grids.community_code, grids.area_m2,
       grids.created_at, grids.updated_at
FROM grid_at(121.0 + :x * 1e-8, 31.0 + :y * 1e-8, ARRAY['310201%', '310202%', '310203%', '310204%']) AS grids \gset g_

WITH new_case AS (
  INSERT INTO cases (number, status, category_code, urgency, description, address, location, accuracy_m,
                     grid_code, district_code, street_code, community_code, location_flags, source, reporter_id,
                     catalog_version, contact, observed_at, reported_at, updated_at, version,
                     deadline_register, stage_started_at, stage_deadline, stage_clock)
  SELECT (SELECT to_char(now(), 'YYYYMMDD') || lpad(s.n::text, greatest(5, length(s.n::text)), '0')
          FROM (SELECT nextval('case_number_seq') AS n) s),
         'reported', categories.code, 'B', 'pgbench report', NULL,
         ST_SetSRID(ST_MakePoint(121.0 + :x * 1e-8, 31.0 + :y * 1e-8), 4326), 8.0,
         :g_code::text, :g_district_code::text, :g_street_code::text, :g_community_code::text, '{}', 'inspector', :bench_user,
         NULL, CAST(NULL AS jsonb), now(), now(), now(), 1,
         now() + interval '1 day', now(), now() + interval '1 day', false
  FROM categories
  WHERE categories.code = '0101' AND (categories.retired_in_version IS NULL OR categories.retired_in_version > NULL::integer)
  RETURNING *
), first_event AS (
  INSERT INTO case_events (case_id, at, actor_id, action, from_status, to_status, payload, client_time)
  SELECT id, reported_at, CAST(:bench_user AS integer), 'report', NULL, status, CAST('{"category_code": "0101", "description": "pgbench report", "lon": 121.2, "lat": 31.1, "accuracy_m": 8.0, "observed_at": "2026-11-26T05:00:00+00:00"}' AS jsonb),
         CAST(now() AS timestamptz)
  FROM new_case
)
SELECT new_case.id, new_case.number, new_case.status, new_case.category_code, new_case.urgency, new_case.description, new_case.address, ST_AsEWKB(new_case.location), new_case.accuracy_m, new_case.grid_code, new_case.district_code, new_case.street_code, new_case.community_code, new_case.location_flags, new_case.source, new_case.reporter_id, new_case.catalog_version, new_case.contact, new_case.observed_at, new_case.reported_at, new_case.registered_at, new_case.dispatched_at, new_case.handled_at, new_case.closed_at, new_case.lead_team_id, new_case.assisting_team_ids, new_case.parent_id, new_case.rework_count, new_case.extension_hours, new_case.pending_extension, new_case.suspended_from, new_case.suspended_at, new_case.deadline_register, new_case.deadline_dispatch, new_case.deadline_handle, new_case.deadline_verify, new_case.stage_started_at, new_case.stage_deadline, new_case.stage_clock, new_case.escalation_level, new_case.escalation_note, new_case.version, new_case.updated_at FROM new_case;

INSERT INTO idempotency_keys (user_id, key, scope, request_hash, status_code, response)
VALUES (:bench_user, 'pgb-' || :client_id || '-' || :n || '-' || txid_current(), 'report', md5(random()::text) || md5(random()::text), 201, jsonb_build_object('text', repeat('x', 1500), 'headers', '{}'::jsonb)::jsonb)
ON CONFLICT DO NOTHING RETURNING 1;
COMMIT;
