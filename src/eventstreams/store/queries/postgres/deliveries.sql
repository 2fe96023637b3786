-- PostgreSQL's forms of deliveries.sql statements that differ.

-- name: lease_start
-- As in deliveries.sql, with json_agg; and the lease's COMMIT does not wait for the disk (Dialect.redoable):
-- set here rather than in a statement of its own, one round trip less per lease.
SELECT c.account_sid, c.position,
    (SELECT MAX(e.seq) FROM events e WHERE e.account_sid = c.account_sid) AS head,
    (SELECT b.id FROM delivery_batches b WHERE b.sink_sid = k.sid AND b.lease_until <= :now
     ORDER BY b.id LIMIT 1) AS expired,
    (SELECT MIN(d.due_at) FROM deliveries d WHERE d.sink_sid = k.sid) AS retry_due,
    (SELECT MIN(b.lease_until) FROM delivery_batches b WHERE b.sink_sid = k.sid) AS batch_due,
    (SELECT json_agg(json_build_array(t.type, t.from_seq)) FROM (
        SELECT se.type, MIN(se.from_seq) AS from_seq FROM subscribed_events se
        JOIN subscriptions x ON x.sid = se.subscription_sid WHERE x.sink_sid = k.sid GROUP BY se.type) t)::text
        AS types,
    set_config('synchronous_commit', 'off', true) AS redoable
FROM (SELECT CAST(:s AS TEXT) AS sid) k LEFT JOIN sink_cursors c ON c.sink_sid = k.sid;
