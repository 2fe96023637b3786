-- Events and their deliveries: publish and fan-out, lease, outcomes, expiry, replay.

-- name: fan_out
INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start)
SELECT s.sink_sid, e.account_sid, e.seq, :now, :now FROM events e
JOIN subscribed_events se ON se.account_sid = e.account_sid AND se.type = e.type
JOIN subscriptions s ON s.sid = se.subscription_sid
WHERE e.seq IN LIST(:seqs);

-- name: fanned_sinks
SELECT DISTINCT s.sink_sid FROM subscribed_events se JOIN subscriptions s ON s.sid = se.subscription_sid
WHERE se.account_sid = :a AND se.type IN LIST(:types);

-- name: insert_delivery
INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start) VALUES (:s, :a, :q, :now, :now);

-- name: lease
UPDATE deliveries SET due_at = :until, leased_by = :lease WHERE id IN (
    SELECT id FROM deliveries WHERE sink_sid = :s AND due_at <= :now ORDER BY due_at LIMIT :n {skip_locked})
RETURNING id, sink_sid, account_sid, event_seq, attempts, window_start;

-- name: leased_events
SELECT seq, id, type, schema_version, payload FROM events WHERE seq IN LIST(:seqs);

-- name: delete_leased
DELETE FROM deliveries WHERE leased_by = :lease AND id IN LIST(:ids);

-- name: retry
UPDATE deliveries SET attempts = attempts + 1, due_at = :due, leased_by = NULL, last_code = :c, last_error = :e
WHERE id = :id AND leased_by = :lease;

-- name: dead
INSERT INTO dead_letters (account_sid, sink_sid, event_seq, event_id, type, attempts, last_code, last_error,
    dead_at)
SELECT d.account_sid, d.sink_sid, d.event_seq, :eid, :t, d.attempts + 1, :c, :e, :now FROM deliveries d
WHERE d.id = :id AND d.leased_by = :lease;

-- name: delete_one_leased
DELETE FROM deliveries WHERE id = :id AND leased_by = :lease;

-- name: insert_log
INSERT INTO delivery_log (account_sid, sink_sid, at, outcome, event_count, event_ids, attempt, code, http_status,
    detail)
VALUES (:a, :s, :at, :o, :n, :ids, :att, :c, :h, :d);

-- DELETE ... RETURNING first: on PostgreSQL that locks the rows, so a worker leasing them concurrently
-- skips them instead of delivering (and dead-lettering) them a second time.
-- name: expire
DELETE FROM deliveries WHERE sink_sid = :s AND window_start < :cut AND leased_by IS NULL
RETURNING account_sid, sink_sid, event_seq, attempts, last_code, last_error;

-- name: expired_events
SELECT seq, id, type FROM events WHERE seq IN LIST(:seqs);

-- name: insert_dead
INSERT INTO dead_letters (account_sid, sink_sid, event_seq, event_id, type, attempts, last_code, last_error,
    dead_at)
VALUES (:a, :s, :q, :eid, :t, :n, :c, :e, :now);

-- name: extend_lease
UPDATE deliveries SET due_at = :until WHERE leased_by = :lease AND id IN LIST(:ids);

-- name: release_leases
UPDATE deliveries SET due_at = 0, leased_by = NULL WHERE leased_by IS NOT NULL;

-- name: next_due
SELECT MIN(due_at) AS d FROM deliveries WHERE sink_sid = :s;

-- name: delivery_sinks
SELECT s.sid, s.account_sid, s.description, s.sink_type, s.configuration_sealed, s.status,
    s.signing_secret_sealed, s.date_created, s.date_updated,
    EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid) AS in_use
FROM sinks s
WHERE EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid)
    OR EXISTS (SELECT 1 FROM deliveries d WHERE d.sink_sid = s.sid);

-- name: subscribed_versions
SELECT s.sink_sid, se.type, se.schema_version FROM subscribed_events se
JOIN subscriptions s ON s.sid = se.subscription_sid;

-- name: select_dead_letters
SELECT id, sink_sid, account_sid, event_seq FROM dead_letters;

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE id = :id;

-- name: replay_events
INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start)
SELECT :s, e.account_sid, e.seq, :now, :now FROM events e;

-- name: backlog
-- What waits, for the metrics' gauges (read at most every few seconds).
SELECT COUNT(*) AS depth, COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) AS retrying,
       MIN(window_start) AS oldest
FROM deliveries;
