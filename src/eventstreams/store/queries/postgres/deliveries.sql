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

-- name: fanned_sinks
-- The subscribed sinks, and in the same round trip their NOTIFY and the account's log lock, which the append
-- that follows needs (PostgresDialect.fanned; the lock is held from here to COMMIT, as from the append's own).
-- One row with a NULL sink when no sink is subscribed: the lock is taken either way.
WITH s AS (
    SELECT DISTINCT x.sink_sid FROM subscribed_events se JOIN subscriptions x ON x.sid = se.subscription_sid
    WHERE se.account_sid = :a AND se.type IN LIST(:types)),
fx AS (
    SELECT pg_advisory_xact_lock(:lock, hashtext(:a)) IS NULL AS locked,
        (SELECT pg_notify(:ch, left(:origin || ':' || string_agg(sink_sid, ','), 7900)) FROM s
         HAVING COUNT(*) > 0) IS NULL AS notified)
SELECT s.sink_sid FROM fx LEFT JOIN s ON true;
