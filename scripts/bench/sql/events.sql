-- The cases' events: report for all, register for registered and closed ones, then dispatch (to the
-- case's team), handle (by it) and verify_pass for the closed ones (~4.6 events per case).
-- Set-based, with the row triggers off (session_replication_role = replica, set by the caller): each
-- event's seq, prev_hash and hash are what the chain trigger (case_events_chain) writes, worked out one
-- step of every case's chain at a time with the function it calls (case_event_hash), and `gridpatrol
-- verify-events` checks them. The bench has no webhooks (case_events_webhooks would write nothing), and
-- the KPI facts that kpi_facts_refresh would write per event are worked out once afterwards. The rows
-- go in in time order, as a live system appends them (a case's events days apart, among other cases').
-- `ev` has case_events' columns (without its constraints: no id yet), so its rows are case_events rows;
-- a column added there with a default that the hash reads must be given here too.
CREATE TEMP TABLE ev ON COMMIT DROP AS SELECT * FROM case_events WITH NO DATA;
INSERT INTO ev (case_id, seq, at, actor_id, team_id, action, from_status, to_status, payload)
SELECT c.id, row_number() OVER (PARTITION BY c.id ORDER BY e.n), e.at, c.reporter_id, e.team_id, e.action,
       e.from_status, e.to_status, e.payload
FROM cases c
CROSS JOIN LATERAL (VALUES
    (1, c.reported_at, NULL::int, 'report', NULL, 'reported', jsonb_build_object('category_code', c.category_code)),
    (2, c.registered_at, NULL, 'register', 'reported', 'registered', '{}'::jsonb),
    (3, c.dispatched_at, NULL, 'dispatch', 'registered', 'dispatched', jsonb_build_object('team_id', c.lead_team_id)),
    (4, c.handled_at, c.lead_team_id, 'handle', 'dispatched', 'handled', '{}'::jsonb),
    (5, c.closed_at, NULL, 'verify_pass', 'handled', 'closed', '{}'::jsonb)
) AS e(n, at, team_id, action, from_status, to_status, payload)
WHERE e.at IS NOT NULL;

-- each step's hash from the step before it: seq 1 chains to nothing
CREATE TEMP TABLE chained (case_id bigint, seq int, prev_hash text, hash text) ON COMMIT DROP;
DO $$
DECLARE
  step int := 1;
  n bigint;
BEGIN
  LOOP
    INSERT INTO chained
    SELECT ev.case_id, ev.seq, p.hash,
           case_event_hash(ROW(ev.*)::case_events, p.hash)
    FROM ev LEFT JOIN chained p ON p.case_id = ev.case_id AND p.seq = ev.seq - 1
    WHERE ev.seq = step;
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
    ANALYZE chained;
    step := step + 1;
  END LOOP;
END $$;

INSERT INTO case_events (case_id, seq, at, actor_id, team_id, action, from_status, to_status, payload,
                         prev_hash, hash)
SELECT ev.case_id, ev.seq, ev.at, ev.actor_id, ev.team_id, ev.action, ev.from_status, ev.to_status,
       ev.payload, h.prev_hash, h.hash
FROM ev JOIN chained h USING (case_id, seq)
ORDER BY ev.at, ev.case_id, ev.seq;
