-- The cases' events, through the hash-chain trigger (seq, prev_hash, hash set per row): report for
-- all, register for registered and closed ones, then dispatch (to the case's team), handle (by it)
-- and verify_pass for the closed ones (~4.6 events per case). Rows go in per case and in time order
-- so each chain is in order. The KPI facts' trigger is off during the load: the facts are worked out
-- set-based afterwards, by the same function the trigger calls.
ALTER TABLE case_events DISABLE TRIGGER kpi_facts_refresh;
INSERT INTO case_events (case_id, at, actor_id, team_id, action, from_status, to_status, payload)
SELECT c.id, e.at, c.reporter_id, e.team_id, e.action, e.from_status, e.to_status, e.payload
FROM cases c
CROSS JOIN LATERAL (VALUES
    (1, c.reported_at, NULL::int, 'report', NULL, 'reported', jsonb_build_object('category_code', c.category_code)),
    (2, c.registered_at, NULL, 'register', 'reported', 'registered', '{}'::jsonb),
    (3, c.dispatched_at, NULL, 'dispatch', 'registered', 'dispatched', jsonb_build_object('team_id', c.lead_team_id)),
    (4, c.handled_at, c.lead_team_id, 'handle', 'dispatched', 'handled', '{}'::jsonb),
    (5, c.closed_at, NULL, 'verify_pass', 'handled', 'closed', '{}'::jsonb)
) AS e(n, at, team_id, action, from_status, to_status, payload)
WHERE e.at IS NOT NULL
ORDER BY c.id, e.n;
ALTER TABLE case_events ENABLE TRIGGER kpi_facts_refresh;
