-- Retention: what is deleted once it is older than its window. The delivery log is kept for the log
-- window; its error entries (failed, dead) are the error log and stay for the error window, like
-- Twilio's 7 and 23 days.

-- name: log
-- Keyset on the arrival time: the error entries the error window keeps are not stepped over again per chunk.
DELETE FROM delivery_log WHERE id IN (
    SELECT id FROM delivery_log WHERE at >= :since AND at < :t AND outcome IN ('delivered', 'skipped')
    ORDER BY at LIMIT :n) RETURNING at;

-- name: error_log
DELETE FROM delivery_log WHERE id IN (
    SELECT id FROM delivery_log WHERE at >= :since AND at < :t AND outcome NOT IN ('delivered', 'skipped')
    ORDER BY at LIMIT :n) RETURNING at;

-- name: alerts
DELETE FROM alerts WHERE created_at < :t;

-- name: dead_letters
DELETE FROM dead_letters WHERE dead_at < :t;

-- Tables that grow with traffic are deleted from in chunks of :n rows, a transaction each (repos/retention.py):
-- one DELETE of millions of rows held SQLite's one writer, and so every publish, for as long as it ran.

-- name: event_ids
DELETE FROM event_ids WHERE (account_sid, id) IN (
    SELECT account_sid, id FROM event_ids WHERE received_at >= :since AND received_at < :t
    ORDER BY received_at LIMIT :n) RETURNING received_at AS at;

-- name: event_accounts
-- Accounts are closed, never deleted, so their table lists every account an event can belong to.
SELECT sid AS account_sid FROM accounts;

-- name: events_upto
-- Events are deleted by ranges of the account's log, up to the newest one old enough but never from where a
-- subscribed sink's cursor has yet to read, nor from a batch being sent.
SELECT
    (SELECT e.seq FROM events e WHERE e.account_sid = :a AND e.received_at < :t
     ORDER BY e.received_at DESC LIMIT 1) AS old,
    (SELECT MIN(c.position) FROM sink_cursors c WHERE c.account_sid = :a
     AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.sink_sid = c.sink_sid)) AS unread,
    (SELECT MIN(b.from_seq) FROM delivery_batches b WHERE b.account_sid = :a) AS sending;

-- name: events_window
-- The next :n of the account's events after :after, up to :upto: the chunk's end.
SELECT MAX(seq) AS hi FROM (
    SELECT e.seq FROM events e WHERE e.account_sid = :a AND e.seq > :after AND e.seq <= :upto
    ORDER BY e.seq LIMIT :n) w;

-- name: events
-- A retry row or a dead letter holds its event (they are replayed from it). The age is checked per row as
-- well: received_at comes from the publishing host's clock, so a later seq may carry an earlier time.
DELETE FROM events WHERE account_sid = :a AND seq > :after AND seq <= :hi AND received_at < :t
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)
    AND NOT EXISTS (SELECT 1 FROM dead_letters x WHERE x.event_seq = events.seq);

-- name: sms_ledger
-- the twilio-sms ledger lives as long as the events and dead letters it could be replayed from (and at least
-- the rate window): repos/retention.py. Never while its event is still stored: a dead letter keeps its event
-- (and a replayed dead letter that ends "unknown outcome" again is a new, younger dead letter).
DELETE FROM sms_messages WHERE claimed_ms < :t
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.account_sid = sms_messages.account_sid AND e.id = sms_messages.event_id);
