-- The cases' events, through the hash-chain trigger (seq, prev_hash, hash set per row):
-- report for all, register for registered and closed ones, verify_pass closing the closed ones
-- (~2.9 events per case). Rows go in per case and in time order so each chain is in order.
INSERT INTO case_events (case_id, at, actor_id, action, from_status, to_status, payload)
SELECT c.id, e.at, c.reporter_id, e.action, e.from_status, e.to_status, e.payload
FROM cases c
CROSS JOIN LATERAL (VALUES
    (1, c.reported_at, 'report', NULL, 'reported', jsonb_build_object('category_code', c.category_code)),
    (2, c.registered_at, 'register', 'reported', 'registered', '{}'::jsonb),
    (3, c.closed_at, 'verify_pass', 'handled', 'closed', '{}'::jsonb)
) AS e(n, at, action, from_status, to_status, payload)
WHERE e.at IS NOT NULL
ORDER BY c.id, e.n;
