-- PostgreSQL's forms of deliveries.sql statements that differ.

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
